package io.anneal.placement;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Backfill around a reservation: once a large job has waited past {@code reserveAfterMillis}, small
 * jobs may use the GPUs it waits for only if they end (by {@code maxSeconds}) before it can start.
 */
class BackfillTest {
  private static final long RESERVE_AFTER = 5_000;

  private static PlacementEngine oneEightGpuNode(long reserveAfter) {
    PlacementEngine e = new PlacementEngine(new PlacementEngine.Config(3600, reserveAfter, 4096));
    List<Device> ds = new ArrayList<>();
    for (int i = 0; i < 8; i++) ds.add(new Device("n", i, "H100", 80_000, true));
    e.addNode("n", ds, Map.of());
    return e;
  }

  private static JobRequest job(String id, int gpus, long maxSeconds) {
    return new JobRequest(id, "t-" + id, 0, gpus, null, 0, Map.of(), maxSeconds, false);
  }

  private static List<String> ids(List<Assignment> placed) {
    return placed.stream().map(Assignment::jobId).toList();
  }

  /** 6 of 8 GPUs busy until t = 100 s, an 8-GPU job waiting since t = 0 and now past its reservation age. */
  private static PlacementEngine withReservation(long reserveAfter) {
    PlacementEngine e = oneEightGpuNode(reserveAfter);
    e.enqueue(job("running", 6, 100), 0);
    assertThat(ids(e.schedule(0, 10))).containsExactly("running");
    e.enqueue(job("large", 8, 600), 0);
    assertThat(e.schedule(0, 10)).isEmpty();
    return e;
  }

  @Test
  void aSmallJobThatEndsBeforeTheReservationRunsInTheHoleAndOneThatWouldNotWaits() {
    PlacementEngine e = withReservation(RESERVE_AFTER);
    long now = 10_000; // the large job has waited 10 s: it holds a reservation at t = 100 s

    e.enqueue(job("long-small", 2, 500), now);
    assertThat(e.schedule(now, 10)).as("it would still hold 2 GPUs at t = 100 s and delay the large job").isEmpty();

    e.enqueue(job("short-small", 2, 60), now);
    assertThat(ids(e.schedule(now, 10))).as("ends at t = 70 s, before the reservation").containsExactly("short-small");

    // both holders end; the large job starts before the small one that came earlier
    e.release("short-small", 70_000);
    e.release("running", 100_000);
    assertThat(ids(e.schedule(100_000, 10))).containsExactly("large");
    assertThat(e.queuedJobs()).extracting(JobRequest::id).containsExactly("long-small");
  }

  @Test
  void withoutAReservationTheSameHoleGoesToWhicheverSmallJobFitsAndTheLargeJobKeepsWaiting() {
    // the reference: no reservation (aging off), so plain best fit fills the hole with the long job too
    PlacementEngine e = withReservation(Long.MAX_VALUE);
    long now = 10_000;
    e.enqueue(job("long-small", 2, 500), now);
    assertThat(ids(e.schedule(now, 10))).containsExactly("long-small");
    e.release("running", 100_000);
    assertThat(e.schedule(100_000, 10)).as("6 free of 8: the large job starves behind the small one").isEmpty();
  }
}
