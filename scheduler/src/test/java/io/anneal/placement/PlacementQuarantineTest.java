package io.anneal.placement;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** A quarantined device is never offered again, whether it was free or busy when it was taken out. */
class PlacementQuarantineTest {
  private static JobRequest job(String id, int gpus) {
    return new JobRequest(id, "a", 0, gpus, null, 0, Map.of(), 60, false);
  }

  private static List<Integer> devicesOf(List<Assignment> placed) {
    List<Integer> out = new ArrayList<>();
    placed.forEach(a -> a.parts().forEach(p -> out.addAll(p.devices())));
    return out;
  }

  @Test
  void aQuarantinedDeviceIsNeverPlacedOnAndLeavesTheTotals() {
    PlacementEngine e = new PlacementEngine(PlacementEngine.Config.defaults());
    List<Device> ds = new ArrayList<>();
    for (int i = 0; i < 4; i++) ds.add(new Device("n1", i, "H100", 80_000, false));
    e.addNode("n1", ds, Map.of());
    e.enqueue(job("busy", 1), 0);
    List<Assignment> first = e.schedule(0, 10);
    int busyDevice = devicesOf(first).get(0);
    int freeDevice = (busyDevice + 1) % 4;

    assertThat(e.quarantine("n1", freeDevice)).isTrue();
    assertThat(e.quarantine("n1", freeDevice)).as("already out").isFalse();
    assertThat(e.quarantine("n1", 99)).as("unknown device").isFalse();
    assertThat(e.quarantine("n1", busyDevice)).isTrue();
    assertThat(e.totalGpus()).isEqualTo(2);
    assertThat(e.freeGpus()).isEqualTo(2);
    assertThat(e.shape().get("H100")[0]).as("largest gang the class can offer").isEqualTo(2);
    assertThat(e.couldEverFit(job("four", 4))).isFalse();

    // the busy one is not given back when its job ends
    e.release("busy", 1_000);
    assertThat(e.freeGpus()).isEqualTo(2);
    for (int k = 0; k < 4; k++) e.enqueue(job("j" + k, 1), 1_000);
    List<Assignment> next = e.schedule(1_000, 10);
    assertThat(next).hasSize(2);
    assertThat(devicesOf(next)).doesNotContain(busyDevice, freeDevice);
    assertThat(e.devices()).filteredOn(d -> (Boolean) d[5]).extracting(d -> d[1]).containsExactlyInAnyOrder(busyDevice, freeDevice);
  }

  @Test
  void aLiftedQuarantineGivesTheDeviceBackAtOnceOrWhenItsJobEnds() {
    PlacementEngine e = new PlacementEngine(PlacementEngine.Config.defaults());
    List<Device> ds = new ArrayList<>();
    for (int i = 0; i < 2; i++) ds.add(new Device("n1", i, "H100", 80_000, false));
    e.addNode("n1", ds, Map.of());
    e.enqueue(job("busy", 1), 0);
    int busy = devicesOf(e.schedule(0, 10)).get(0);
    int idle = 1 - busy;
    e.quarantine("n1", busy);
    e.quarantine("n1", idle);
    assertThat(e.totalGpus()).isZero();

    assertThat(e.unquarantine("n1", idle)).isTrue();
    assertThat(e.unquarantine("n1", idle)).as("not quarantined any more").isFalse();
    assertThat(e.totalGpus()).isEqualTo(1);
    assertThat(e.freeGpus()).as("idle: free at once").isEqualTo(1);

    assertThat(e.unquarantine("n1", busy)).isTrue();
    assertThat(e.totalGpus()).isEqualTo(2);
    assertThat(e.freeGpus()).as("its job still runs there").isEqualTo(1);
    e.release("busy", 1_000);
    assertThat(e.freeGpus()).isEqualTo(2);
    e.enqueue(job("two", 2), 1_000);
    assertThat(e.schedule(1_000, 10)).hasSize(1);
  }
}
