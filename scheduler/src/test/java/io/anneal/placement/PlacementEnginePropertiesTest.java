package io.anneal.placement;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;

/** Safety and liveness of the placement core under random fleets and arrival sequences. */
class PlacementEnginePropertiesTest {
  private static final String[] CLASSES = {"H100", "A100", "L4"};

  /** An event: a job arrives (gpus, class, tenant, priority, spread) or time passes. */
  record Arrival(int gpus, int cls, int tenant, int priority, boolean spread, long maxSeconds) {}

  @Provide
  Arbitrary<List<Arrival>> arrivals() {
    Arbitrary<Arrival> a = Combinators.combine(Arbitraries.of(1, 1, 1, 2, 2, 4, 8, 3), Arbitraries.integers().between(-1, 2),
        Arbitraries.integers().between(0, 3), Arbitraries.integers().between(0, 2), Arbitraries.integers().between(0, 9)
            .map(i -> i == 0), Arbitraries.longs().between(1, 600)).as(Arrival::new);
    return a.list().ofMinSize(1).ofMaxSize(120);
  }

  private static PlacementEngine fleet(int nodes, int perNode, long reserveAfter) {
    PlacementEngine e = new PlacementEngine(new PlacementEngine.Config(600, reserveAfter, 100_000));
    e.trackTenantsQueuingAtLeast(MANY_QUEUED);
    for (int n = 0; n < nodes; n++) {
      List<Device> ds = new ArrayList<>();
      String cls = CLASSES[n % CLASSES.length];
      for (int i = 0; i < perNode; i++) ds.add(new Device("n" + n, i, cls, 80_000, true));
      e.addNode("n" + n, ds, Map.of("zone", n % 2 == 0 ? "a" : "b"));
    }
    return e;
  }

  private static JobRequest job(int i, Arrival a) {
    return new JobRequest("j" + i, "t" + a.tenant(), a.priority(), a.gpus(), a.cls() < 0 ? null : CLASSES[a.cls()], 0,
        Map.of(), a.maxSeconds(), a.spread());
  }

  /** Checks every safety property of the current state against an independent device ledger. */
  private static void checkSafety(PlacementEngine e, Map<String, Assignment> live, Map<String, JobRequest> jobs) {
    Set<String> used = new HashSet<>();
    Map<String, Integer> perTenant = new HashMap<>();
    for (Assignment a : live.values()) {
      JobRequest j = jobs.get(a.jobId());
      assertThat(a.gpus()).as("gang of %s", a.jobId()).isEqualTo(j.gpus());
      if (!j.spread()) assertThat(a.parts()).as("single node unless asked").hasSize(1);
      if (j.gpuClass() != null) assertThat(a.gpuClass()).isEqualTo(j.gpuClass());
      for (Assignment.Part p : a.parts()) {
        for (int d : p.devices()) assertThat(used.add(p.nodeId() + "/" + d)).as("GPU %s/%s given twice", p.nodeId(), d).isTrue();
      }
      perTenant.merge(j.tenant(), j.gpus(), Integer::sum);
    }
    assertThat(e.freeGpus()).isEqualTo(e.totalGpus() - used.size());
    perTenant.forEach((t, n) -> assertThat(n).as("quota of %s", t).isLessThanOrEqualTo(e.quota(t)));
    // each tenant's queued count (the per-tenant queue bound's, ADR 24) adds up, and the tenants with
    // many queued are exactly those at the tracked count
    Map<String, Integer> many = new HashMap<>();
    int queued = 0;
    for (int t = 0; t < 4; t++) {
      int n = e.queuedOf("t" + t);
      queued += n;
      if (n >= MANY_QUEUED) many.put("t" + t, n);
    }
    assertThat(queued).as("queued, by tenant").isEqualTo(e.queuedCount());
    assertThat(e.tenantsWithManyQueued()).isEqualTo(many);
  }

  private static final int MANY_QUEUED = 3;

  @Property(tries = 400)
  void neverOverAllocatesGangsAreAllOrNothingQuotasHold(@ForAll("arrivals") List<Arrival> arrivals,
      @ForAll @IntRange(min = 1, max = 6) int nodes, @ForAll @IntRange(min = 1, max = 8) int perNode,
      @ForAll @IntRange(min = 1, max = 12) int quota) {
    PlacementEngine e = fleet(nodes, perNode, 5_000);
    e.setTenant("t0", 2.0, quota);
    e.setTenant("t1", 1.0, quota + 3);
    Map<String, Assignment> live = new HashMap<>();
    Map<String, JobRequest> jobs = new HashMap<>();
    long now = 0;
    int i = 0;
    for (Arrival a : arrivals) {
      JobRequest j = job(i++, a);
      jobs.put(j.id(), j);
      if (e.couldEverFit(j)) e.enqueue(j, now);
      for (Assignment x : e.schedule(now, 1000)) live.put(x.jobId(), x);
      checkSafety(e, live, jobs);
      // some running job ends now and then
      if (!live.isEmpty() && i % 3 == 0) {
        String done = live.keySet().iterator().next();
        e.release(done, now);
        live.remove(done);
        checkSafety(e, live, jobs);
      }
      now += 1000;
    }
  }

  @Property(tries = 300)
  void everyFeasibleJobIsEventuallyPlaced(@ForAll("arrivals") List<Arrival> arrivals,
      @ForAll @IntRange(min = 1, max = 5) int nodes, @ForAll @IntRange(min = 1, max = 8) int perNode) {
    PlacementEngine e = fleet(nodes, perNode, 2_000);
    Map<String, Assignment> live = new HashMap<>();
    Map<String, Long> endAt = new HashMap<>();
    Map<String, JobRequest> jobs = new HashMap<>();
    Set<String> accepted = new HashSet<>();
    Set<String> placed = new HashSet<>();
    long now = 0;
    int i = 0;
    // arrivals keep coming (saturation), then stop; running jobs end by their maxSeconds. The horizon
    // allows even a fully serial drain (every job alone on the fleet, one after the other): a job
    // still unplaced after it starved; a fixed bound failed on small fleets with long queues.
    long horizon = arrivals.size() + 1000;
    for (Arrival a : arrivals) horizon += a.maxSeconds() + 1;
    for (int step = 0; step < horizon && (placed.size() < accepted.size() || step < arrivals.size()); step++) {
      if (step < arrivals.size()) {
        JobRequest j = job(i++, arrivals.get(step));
        jobs.put(j.id(), j);
        if (e.couldEverFit(j)) {
          e.enqueue(j, now);
          accepted.add(j.id());
        }
      }
      for (Assignment x : e.schedule(now, 1000)) {
        live.put(x.jobId(), x);
        placed.add(x.jobId());
        endAt.put(x.jobId(), now + jobs.get(x.jobId()).maxSeconds() * 1000);
      }
      checkSafety(e, live, jobs);
      now += 1000;
      for (String id : new ArrayList<>(live.keySet())) {
        if (endAt.get(id) <= now) {
          e.release(id, now);
          live.remove(id);
        }
      }
    }
    assertThat(placed).as("no feasible job starves").containsExactlyInAnyOrderElementsOf(accepted);
  }

  @Property(tries = 300)
  void aPassIsWorkConservingWhenNoReservationHolds(@ForAll("arrivals") List<Arrival> arrivals,
      @ForAll @IntRange(min = 1, max = 4) int nodes, @ForAll @IntRange(min = 1, max = 8) int perNode) {
    // reference model: after a pass with no reservation, no queued job fits on any host, by exhaustive search
    PlacementEngine e = fleet(nodes, perNode, Long.MAX_VALUE);
    int i = 0;
    for (Arrival a : arrivals) {
      JobRequest j = job(i++, a);
      if (e.couldEverFit(j)) e.enqueue(j, 0);
    }
    e.schedule(0, Integer.MAX_VALUE);
    Map<String, int[]> freeByHost = new HashMap<>();
    Map<String, String> classOf = new HashMap<>();
    for (Object[] d : e.devices()) {
      int[] f = freeByHost.computeIfAbsent((String) d[0], k -> new int[1]);
      if ((boolean) d[4]) f[0]++;
      classOf.put((String) d[0], (String) d[2]);
    }
    for (JobRequest q : e.queuedJobs()) {
      int spreadable = 0;
      for (Map.Entry<String, int[]> h : freeByHost.entrySet()) {
        boolean classOk = q.gpuClass() == null || q.gpuClass().equals(classOf.get(h.getKey()));
        assertThat(classOk && h.getValue()[0] >= q.gpus()).as("%s fits on %s but waits", q.id(), h.getKey()).isFalse();
      }
      if (q.spread()) {
        for (String cls : CLASSES) {
          spreadable = 0;
          for (Map.Entry<String, int[]> h : freeByHost.entrySet()) {
            if ((q.gpuClass() == null || q.gpuClass().equals(cls)) && cls.equals(classOf.get(h.getKey()))) spreadable += h.getValue()[0];
          }
          assertThat(spreadable >= q.gpus()).as("spread job %s fits across %s but waits", q.id(), cls).isFalse();
        }
      }
    }
  }

  @Property(tries = 200)
  void preemptionNeverPicksEqualOrHigherPriorityNorAJobPreemptedTooOften(@ForAll("arrivals") List<Arrival> arrivals) {
    PlacementEngine e = fleet(2, 8, 1_000);
    int i = 0;
    Map<String, JobRequest> jobs = new HashMap<>();
    for (Arrival a : arrivals) {
      JobRequest j = job(i++, a);
      jobs.put(j.id(), j);
      if (e.couldEverFit(j)) e.enqueue(j, 0);
    }
    e.schedule(0, Integer.MAX_VALUE);
    JobRequest urgent = new JobRequest("urgent", "t9", 1, 8, null, 0, Map.of(), 60, false);
    Map<String, Integer> preemptions = new HashMap<>();
    for (String id : jobs.keySet()) if (id.hashCode() % 3 == 0) preemptions.put(id, 2);
    List<String> victims = e.preemptionVictims(urgent, preemptions, 2);
    for (String v : victims) {
      assertThat(jobs.get(v).priority()).isLessThan(urgent.priority());
      assertThat(preemptions.getOrDefault(v, 0)).isLessThan(2);
    }
  }
}
