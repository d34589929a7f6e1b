package io.anneal.placement;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Label and memory constraints: a job lands only where every label matches and memory suffices. */
class PlacementLabelsTest {
  private static List<Device> gpus(String node, int n, long mem) {
    List<Device> ds = new ArrayList<>();
    for (int i = 0; i < n; i++) ds.add(new Device(node, i, "H100", mem, false));
    return ds;
  }

  @Test
  void jobsGoOnlyWhereTheirLabelsAndMemoryFit() {
    PlacementEngine e = new PlacementEngine(PlacementEngine.Config.defaults());
    e.addNode("gpu-node", gpus("gpu-node", 4, 80_000), Map.of("anneal.kind.matmul", "true"));
    e.addNode("cpu-node", gpus("cpu-node", 4, 16_000), Map.of("anneal.kind.train", "true", "anneal.kind.matmul", "true"));
    JobRequest train = new JobRequest("t", "a", 0, 1, null, 0, Map.of("anneal.kind.train", "true"), 60, false);
    JobRequest big = new JobRequest("b", "a", 0, 1, null, 40_000, Map.of(), 60, false);
    JobRequest nowhere = new JobRequest("n", "a", 0, 1, null, 40_000, Map.of("anneal.kind.train", "true"), 60, false);
    assertThat(e.couldEverFit(train)).isTrue();
    assertThat(e.couldEverFit(big)).isTrue();
    assertThat(e.couldEverFit(nowhere)).as("train needs the cpu node, which has too little memory").isFalse();
    e.enqueue(train, 0);
    e.enqueue(big, 0);
    List<Assignment> placed = e.schedule(0, 10);
    assertThat(placed).hasSize(2);
    for (Assignment a : placed) {
      String node = a.parts().get(0).nodeId();
      assertThat(node).isEqualTo(a.jobId().equals("t") ? "cpu-node" : "gpu-node");
    }
  }
}
