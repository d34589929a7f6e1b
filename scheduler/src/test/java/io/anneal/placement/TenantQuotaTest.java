package io.anneal.placement;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Quotas and weights set before a tenant's first job take effect. */
class TenantQuotaTest {
  private static List<Device> devices(String node, int n) {
    List<Device> ds = new ArrayList<>();
    for (int i = 0; i < n; i++) ds.add(new Device(node, i, "cpu", 16_000, false));
    return ds;
  }

  @Test
  void aQuotaSetBeforeTheFirstJobCapsPlacement() {
    PlacementEngine e = new PlacementEngine(PlacementEngine.Config.defaults());
    e.addNode("n", devices("n", 4), Map.of());
    e.setTenant("capped", 2.0, 1);
    long now = 1_000;
    for (int i = 0; i < 3; i++) e.enqueue(new JobRequest("c" + i, "capped", 0, 1, null, 0, Map.of(), 60, false), now);
    assertThat(e.schedule(now, 100)).hasSize(1);
    e.release("c0", now + 10);
    assertThat(e.schedule(now + 10, 100)).hasSize(1);
    e.setTenant("capped", 2.0, 3);
    assertThat(e.schedule(now + 20, 100)).hasSize(1);
  }
}
