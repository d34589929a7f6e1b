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

  @Test
  void parameterNeedsGoOnlyWhereTheNodesOwnLimitReachesThem() {
    PlacementEngine e = new PlacementEngine(PlacementEngine.Config.defaults());
    e.addNode("small", gpus("small", 4, 80_000), Map.of(), Map.of("matmul.n", 2048L));
    e.addNode("big", gpus("big", 1, 80_000), Map.of(), Map.of()); // no limit of its own
    JobRequest large = new JobRequest("l1", "a", 0, 1, null, 0, Map.of(), 60, false, Map.of("matmul.n", 4096L));
    JobRequest large2 = new JobRequest("l2", "a", 0, 1, null, 0, Map.of(), 60, false, Map.of("matmul.n", 4096L));
    JobRequest within = new JobRequest("w", "a", 0, 1, null, 0, Map.of(), 60, false, Map.of("matmul.n", 2048L));
    assertThat(e.couldEverFit(large)).isTrue();
    e.enqueue(large, 0);
    e.enqueue(large2, 0);
    e.enqueue(within, 0);
    List<Assignment> placed = e.schedule(0, 10);
    // best fit would take the small node's 4 free GPUs for none of them; the large ones need the big node
    assertThat(placed).extracting(Assignment::jobId).containsExactlyInAnyOrder("l1", "w");
    for (Assignment a : placed) {
      assertThat(a.parts().get(0).nodeId()).isEqualTo(a.jobId().equals("l1") ? "big" : "small");
    }
    assertThat(e.queuedJobs()).extracting(JobRequest::id).containsExactly("l2");

    PlacementEngine smallOnly = new PlacementEngine(PlacementEngine.Config.defaults());
    smallOnly.addNode("small", gpus("small", 4, 80_000), Map.of(), Map.of("matmul.n", 2048L));
    assertThat(smallOnly.couldEverFit(large)).isFalse();
  }

  @Test
  void aRequeuedJobTakesItsNewNeeds() {
    PlacementEngine e = new PlacementEngine(PlacementEngine.Config.defaults());
    e.addNode("busy", gpus("busy", 1, 80_000), Map.of(), Map.of());
    e.enqueue(JobRequest.simple("hold", "a", 0, 1, null, 60), 0);
    assertThat(e.schedule(0, 10)).hasSize(1);
    JobRequest asked = new JobRequest("j", "a", 0, 1, null, 0, Map.of(), 60, false, Map.of());
    e.enqueue(asked, 0);
    e.addNode("tiny", gpus("tiny", 2, 80_000), Map.of(), Map.of("matmul.n", 1024L));
    JobRequest now = new JobRequest("j", "a", 0, 1, null, 0, Map.of(), 60, false, Map.of("matmul.n", 1500L));
    e.enqueue(JobRequest.simple("later", "b", 0, 1, "none-such-class", 60), 5);
    assertThat(e.requeue(List.of(now, JobRequest.simple("not-queued", "a", 0, 1, null, 60)))).isEqualTo(1);
    assertThat(e.queuedJobs()).contains(now);
    assertThat(e.waitingOrder()).as("it keeps its age: still the longest waiting").containsExactly("j", "later");
    e.dequeue("later");
    assertThat(e.schedule(1, 10)).as("the tiny node's limit is below what it needs now").isEmpty();
    e.release("hold", 2);
    assertThat(e.schedule(2, 10)).extracting(a -> a.parts().get(0).nodeId()).containsExactly("busy");
  }

  @Test
  void aJobAskingForALabelWaitsUntilANodeIsGivenItAndGoesOnlyThere() {
    PlacementEngine e = new PlacementEngine(PlacementEngine.Config.defaults());
    e.addNode("a", gpus("a", 4, 80_000), Map.of());
    e.addNode("b", gpus("b", 1, 80_000), Map.of("tier", "certified"));
    JobRequest certified = new JobRequest("c1", "t", 0, 1, null, 0, Map.of("tier", "certified"), 60, false);
    JobRequest certified2 = new JobRequest("c2", "t", 0, 1, null, 0, Map.of("tier", "certified"), 60, false);
    JobRequest any = new JobRequest("x", "t", 0, 1, null, 0, Map.of(), 60, false);
    e.enqueue(certified, 0);
    e.enqueue(certified2, 0);
    e.enqueue(any, 0);
    List<Assignment> placed = e.schedule(0, 10);
    // best fit would put a 1-GPU job on b (one free GPU); c1 takes it, c2 finds no other certified node
    assertThat(placed).extracting(Assignment::jobId).containsExactlyInAnyOrder("c1", "x");
    for (Assignment a : placed) assertThat(a.parts().get(0).nodeId()).isEqualTo(a.jobId().equals("c1") ? "b" : "a");
    assertThat(e.queuedJobs()).extracting(JobRequest::id).containsExactly("c2");
    // the operator takes the label off b and gives it to a: c2 goes to a at the next pass
    assertThat(e.relabel("b", Map.of())).isTrue();
    assertThat(e.relabel("a", Map.of("tier", "certified"))).isTrue();
    assertThat(e.relabel("a", Map.of("tier", "certified"))).as("the same labels again change nothing").isFalse();
    assertThat(e.relabel("nowhere", Map.of("tier", "certified"))).as("an unknown node").isFalse();
    List<Assignment> next = e.schedule(1, 10);
    assertThat(next).extracting(Assignment::jobId).containsExactly("c2");
    assertThat(next.get(0).parts().get(0).nodeId()).isEqualTo("a");
    // the label matches by value too: a job asking for another value fits no node
    assertThat(e.couldEverFit(new JobRequest("r", "t", 0, 1, null, 0, Map.of("tier", "gold"), 60, false))).isFalse();
  }
}
