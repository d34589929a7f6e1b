package io.anneal.placement;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Cluster mode (ADR 19): a scheduler that takes over adopts runs going on on its nodes' devices, and
 * takes a node that stopped answering out of the fleet with the jobs that ran on it.
 */
class PlacementTakeoverTest {
  private static JobRequest job(String id, String tenant, int gpus) {
    return new JobRequest(id, tenant, 0, gpus, null, 0, Map.of(), 60, false);
  }

  private static List<Device> devices(String node, int n) {
    List<Device> ds = new ArrayList<>();
    for (int i = 0; i < n; i++) ds.add(new Device(node, i, "H100", 80_000, false));
    return ds;
  }

  @Test
  void anAdoptedRunHoldsItsDevicesUntilReleasedAndCountsForItsTenant() {
    PlacementEngine e = new PlacementEngine(PlacementEngine.Config.defaults());
    e.addNode("n1", devices("n1", 4), Map.of());
    e.setTenant("t", 1.0, 3);
    assertThat(e.adopt(job("running", "t", 2), "n1", List.of(1, 3), 0)).isTrue();
    assertThat(e.freeGpus()).isEqualTo(2);
    assertThat(e.assignmentOf("running").parts().get(0).devices()).containsExactly(1, 3);
    assertThat(e.adopt(job("running", "t", 2), "n1", List.of(0, 2), 0)).as("known already").isFalse();
    assertThat(e.adopt(job("other", "t", 1), "n1", List.of(3), 0)).as("device busy").isFalse();
    assertThat(e.adopt(job("other", "t", 1), "n9", List.of(0), 0)).as("unknown node").isFalse();
    assertThat(e.adopt(job("other", "t", 1), "n1", List.of(7), 0)).as("unknown device").isFalse();
    assertThat(e.freeGpus()).as("failed adoptions change nothing").isEqualTo(2);

    // the tenant's quota (3) counts the adopted run: a 2-GPU job waits, placed once the run is released
    e.enqueue(job("next", "t", 2), 0);
    assertThat(e.schedule(0, 10)).isEmpty();
    e.release("running", 1_000);
    List<Assignment> placed = e.schedule(1_000, 10);
    assertThat(placed).hasSize(1);
    assertThat(e.freeGpus()).isEqualTo(2);
  }

  @Test
  void aLostNodeLeavesTheFleetAndGivesBackTheJobsThatRanOnIt() {
    PlacementEngine e = new PlacementEngine(PlacementEngine.Config.defaults());
    e.addNode("n1", devices("n1", 2), Map.of());
    e.addNode("n2", devices("n2", 4), Map.of());
    e.setTenant("t", 1.0, Integer.MAX_VALUE);
    e.adopt(job("a", "t", 2), "n1", List.of(0, 1), 0);
    e.adopt(job("b", "t", 1), "n2", List.of(0), 0);
    assertThat(e.totalGpus()).isEqualTo(6);
    assertThat(e.freeGpus()).isEqualTo(3);

    assertThat(e.removeNode("n1", 1_000)).containsExactly("a");
    assertThat(e.isRunning("a")).isFalse();
    assertThat(e.isRunning("b")).isTrue();
    assertThat(e.totalGpus()).isEqualTo(4);
    assertThat(e.freeGpus()).isEqualTo(3);
    assertThat(e.removeNode("n1", 1_000)).as("gone already").isEmpty();
    // what is left is placed on, and a 4-GPU job no longer fits anywhere but n2 once b ends
    e.enqueue(job("c", "t", 3), 1_000);
    assertThat(e.schedule(1_000, 10)).extracting(Assignment::jobId).containsExactly("c");
    assertThat(e.assignmentOf("c").parts().get(0).nodeId()).isEqualTo("n2");
    // the node comes back: registered again, it is offered again
    e.addNode("n1", devices("n1", 2), Map.of());
    assertThat(e.totalGpus()).isEqualTo(6);
    assertThat(e.freeGpus()).isEqualTo(2);
  }
}
