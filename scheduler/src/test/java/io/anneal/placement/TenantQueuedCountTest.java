package io.anneal.placement;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Each tenant's count of queued jobs, and the tenants with many queued (what the scheduler publishes for
 * the API's per-tenant queue bound): kept as jobs are queued, placed, dequeued and re-queued.
 */
class TenantQueuedCountTest {
  private static JobRequest job(String id, String tenant, int priority) {
    return new JobRequest(id, tenant, priority, 1, null, 0, Map.of(), 60, false);
  }

  @Test
  void countsFollowQueueingPlacementAndDequeueAtEveryPriority() {
    PlacementEngine e = new PlacementEngine(PlacementEngine.Config.defaults());
    e.trackTenantsQueuingAtLeast(3);
    long now = 1_000;
    for (int i = 0; i < 4; i++) e.enqueue(job("a" + i, "a", i % 2), now);
    for (int i = 0; i < 2; i++) e.enqueue(job("b" + i, "b", 0), now);
    e.enqueue(job("a0", "a", 0), now); // queued already: not counted twice
    assertThat(e.queuedOf("a")).isEqualTo(4);
    assertThat(e.queuedOf("b")).isEqualTo(2);
    assertThat(e.queuedOf("nobody")).isZero();
    assertThat(e.tenantsWithManyQueued()).isEqualTo(Map.of("a", 4));

    e.enqueue(job("b2", "b", 5), now);
    assertThat(e.tenantsWithManyQueued()).isEqualTo(Map.of("a", 4, "b", 3));

    assertThat(e.dequeue("a1")).isTrue();
    assertThat(e.dequeue("a1")).isFalse();
    assertThat(e.tenantsWithManyQueued()).isEqualTo(Map.of("a", 3, "b", 3));

    // two GPUs: placing takes two jobs out of the queue
    e.addNode("n", List.of(new Device("n", 0, "cpu", 16_000, false), new Device("n", 1, "cpu", 16_000, false)), Map.of());
    List<Assignment> placed = e.schedule(now, 100);
    assertThat(placed).hasSize(2);
    assertThat(e.queuedOf("a") + e.queuedOf("b")).isEqualTo(4);
    assertThat(e.tenantsWithManyQueued()).allSatisfy((t, n) -> assertThat(n).isEqualTo(e.queuedOf(t)).isGreaterThanOrEqualTo(3));
    assertThat(e.tenantsWithManyQueued().keySet()).containsExactlyInAnyOrderElementsOf(
        List.of("a", "b").stream().filter(t -> e.queuedOf(t) >= 3).toList());

    // a placed job that comes back (preempted, or its node lost) counts again
    String back = placed.get(0).jobId();
    String owner = back.substring(0, 1);
    int before = e.queuedOf(owner);
    e.release(back, now + 10);
    e.enqueue(job(back, owner, 0), now + 10);
    assertThat(e.queuedOf(owner)).isEqualTo(before + 1);
  }

  @Test
  void aNewThresholdAppliesToTheJobsAlreadyQueued() {
    PlacementEngine e = new PlacementEngine(PlacementEngine.Config.defaults());
    assertThat(e.tenantsWithManyQueued()).as("nothing tracked by default").isEmpty();
    for (int i = 0; i < 5; i++) e.enqueue(job("a" + i, "a", 0), 1_000);
    e.enqueue(job("b0", "b", 0), 1_000);
    assertThat(e.tenantsWithManyQueued()).isEmpty();
    e.trackTenantsQueuingAtLeast(1);
    assertThat(e.tenantsWithManyQueued()).isEqualTo(Map.of("a", 5, "b", 1));
    e.trackTenantsQueuingAtLeast(5);
    assertThat(e.tenantsWithManyQueued()).isEqualTo(Map.of("a", 5));
    e.dequeue("a0");
    assertThat(e.tenantsWithManyQueued()).isEmpty();
    assertThatThrownBy(() -> e.trackTenantsQueuingAtLeast(0)).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void aTenantsOwnCountTakesPrecedenceAndZeroGivesItTheEnginesBack() {
    PlacementEngine e = new PlacementEngine(PlacementEngine.Config.defaults());
    e.trackTenantsQueuingAtLeast(10);
    for (int i = 0; i < 3; i++) e.enqueue(job("a" + i, "a", 0), 1_000);
    e.enqueue(job("b0", "b", 0), 1_000);
    assertThat(e.tenantsWithManyQueued()).isEmpty();
    e.trackTenantQueuingAtLeast("a", 2);
    assertThat(e.tenantsWithManyQueued()).isEqualTo(Map.of("a", 3));
    assertThat(e.manyQueuedAtOf("a")).isEqualTo(2);
    e.dequeue("a0");
    assertThat(e.tenantsWithManyQueued()).isEqualTo(Map.of("a", 2));
    e.dequeue("a1");
    assertThat(e.tenantsWithManyQueued()).isEmpty();
    e.enqueue(job("a1", "a", 0), 1_000);
    assertThat(e.tenantsWithManyQueued()).isEqualTo(Map.of("a", 2));
    e.trackTenantQueuingAtLeast("a", 0);
    assertThat(e.tenantsWithManyQueued()).as("the engine's count again").isEmpty();
    assertThat(e.tenantsWithPolicy()).doesNotContain("a");
    e.trackTenantQueuingAtLeast("b", 1);
    assertThat(e.tenantsWithManyQueued()).isEqualTo(Map.of("b", 1));
    assertThat(e.tenantsWithPolicy()).contains("b");
  }
}
