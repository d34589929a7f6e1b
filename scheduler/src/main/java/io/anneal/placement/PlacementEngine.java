package io.anneal.placement;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.Collection;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.TreeMap;

/**
 * The placement core: a durable queue's in-memory mirror and the GPUs of every node, with the rules
 * that decide who runs where. Pure Java, single-threaded (one owner), no I/O.
 *
 * <ul>
 *   <li><b>Gang, best fit</b>: a job gets all its GPUs at once on one node; among the nodes that fit,
 *       the one with the fewest free GPUs of the class wins, so whole nodes stay free for large jobs.
 *       Nodes are indexed by free count per class, so a decision is O(log nodes), not O(GPUs).
 *   <li><b>Spread</b>: only a job that asks may span nodes (largest free first, all or nothing).
 *   <li><b>Priorities</b>: higher priority is served first; lower priorities use what is left.
 *   <li><b>Weighted fair share</b>: within a priority, the tenant with the smallest (decayed
 *       GPU-seconds used + GPUs in use) / weight goes next.
 *   <li><b>Quotas</b>: a tenant never holds more GPUs than its quota.
 *   <li><b>Aging and backfill</b>: a job that waited longer than {@code reserveAfterMillis} gets a
 *       reservation on the node where it can start soonest; other jobs may use that node's free GPUs
 *       only if they leave enough for it or will end (by {@code maxSeconds}) before it starts.
 * </ul>
 */
public final class PlacementEngine {
  /** Tunables. */
  public record Config(double usageHalfLifeSeconds, long reserveAfterMillis, int maxScanPerPass) {
    public static Config defaults() {
      return new Config(3600, 30_000, 4096);
    }
  }

  private static final class Host {
    final String id;
    final String nodeId;
    final String gpuClass;
    final long memoryMiB;
    final Map<String, String> labels;
    final int[] deviceIndex;
    final BitSet free;
    int freeCount;
    /** expected end (ms) → GPUs that free then, for reservations. */
    final TreeMap<Long, Integer> ends = new TreeMap<>();

    Host(String id, String nodeId, String gpuClass, long memoryMiB, Map<String, String> labels, int[] deviceIndex) {
      this.id = id;
      this.nodeId = nodeId;
      this.gpuClass = gpuClass;
      this.memoryMiB = memoryMiB;
      this.labels = labels;
      this.deviceIndex = deviceIndex;
      this.free = new BitSet(deviceIndex.length);
      this.free.set(0, deviceIndex.length);
      this.freeCount = deviceIndex.length;
    }

    boolean accepts(JobRequest j) {
      if (j.gpuClass() != null && !j.gpuClass().equals(gpuClass)) return false;
      if (memoryMiB < j.memoryMiB()) return false;
      for (Map.Entry<String, String> l : j.labels().entrySet()) {
        if (!l.getValue().equals(labels.get(l.getKey()))) return false;
      }
      return true;
    }
  }

  private static final class Tenant {
    final String id;
    double weight = 1.0;
    int quota = Integer.MAX_VALUE;
    int inUse;
    double usage;
    long usageAtMs;
    /** priority → FIFO of this tenant's jobs. */
    final TreeMap<Integer, ArrayDeque<JobRequest>> queues = new TreeMap<>();

    Tenant(String id) {
      this.id = id;
    }
  }

  private record Running(JobRequest job, Assignment assignment, long startMs, long expectedEndMs) {}

  private record Reservation(JobRequest job, Host host, long startMs) {}

  private final Config config;
  private final Map<String, Host> hosts = new LinkedHashMap<>();
  /** class → free count → hosts with that many free GPUs (free count > 0 only). */
  private final Map<String, TreeMap<Integer, LinkedHashSet<Host>>> index = new HashMap<>();
  private final Map<String, Tenant> tenants = new HashMap<>();
  /** priority (descending) → tenants with jobs queued at that priority. */
  private final TreeMap<Integer, LinkedHashSet<Tenant>> levels = new TreeMap<>(java.util.Comparator.reverseOrder());
  private final Map<String, JobRequest> queued = new HashMap<>();
  private final Map<String, Running> running = new HashMap<>();
  private final Map<String, Long> waitingSince = new HashMap<>();
  private Reservation reservation;
  private int totalGpus;
  private int freeGpus;

  public PlacementEngine(Config config) {
    this.config = config;
  }

  // ------------------------------------------------------------------ fleet

  /**
   * Adds a node's GPUs. Devices are grouped into placement hosts by their {@code host} key and class;
   * a gang never spans hosts unless the job asks to spread.
   */
  public void addNode(String nodeId, List<Device> devices, Map<String, String> labels) {
    Map<String, List<Device>> groups = new LinkedHashMap<>();
    for (Device d : devices) groups.computeIfAbsent(d.nodeId() + "|" + d.gpuClass(), k -> new ArrayList<>()).add(d);
    for (Map.Entry<String, List<Device>> g : groups.entrySet()) {
      List<Device> ds = g.getValue();
      int[] idx = new int[ds.size()];
      long mem = Long.MAX_VALUE;
      for (int i = 0; i < idx.length; i++) {
        idx[i] = ds.get(i).index();
        mem = Math.min(mem, ds.get(i).memoryMiB());
      }
      String hostId = g.getKey();
      if (hosts.containsKey(hostId)) throw new IllegalArgumentException("host " + hostId + " registered twice");
      Host h = new Host(hostId, nodeId, ds.get(0).gpuClass(), mem, labels == null ? Map.of() : Map.copyOf(labels), idx);
      hosts.put(hostId, h);
      indexAdd(h);
      totalGpus += idx.length;
      freeGpus += idx.length;
    }
  }

  private void indexAdd(Host h) {
    if (h.freeCount > 0) {
      index.computeIfAbsent(h.gpuClass, k -> new TreeMap<>()).computeIfAbsent(h.freeCount, k -> new LinkedHashSet<>()).add(h);
    }
  }

  private void indexRemove(Host h) {
    TreeMap<Integer, LinkedHashSet<Host>> byFree = index.get(h.gpuClass);
    if (byFree == null) return;
    LinkedHashSet<Host> set = byFree.get(h.freeCount);
    if (set != null && set.remove(h) && set.isEmpty()) byFree.remove(h.freeCount);
  }

  /** True when some host could hold the job if it were idle (else refuse it at submit). */
  public boolean couldEverFit(JobRequest j) {
    Map<String, Integer> spreadTotal = new HashMap<>(); // a spread gang stays within one class
    for (Host h : hosts.values()) {
      if (!h.accepts(j)) continue;
      if (h.deviceIndex.length >= j.gpus()) return true;
      if (spreadTotal.merge(h.gpuClass, h.deviceIndex.length, Integer::sum) >= j.gpus() && j.spread()) return true;
    }
    return false;
  }

  // ------------------------------------------------------------------ tenants and queue

  /** Sets a tenant's fair-share weight (> 0) and GPU quota. */
  public void setTenant(String tenant, double weight, int quota) {
    if (weight <= 0) throw new IllegalArgumentException("weight must be > 0");
    if (quota < 0) throw new IllegalArgumentException("quota must be >= 0");
    Tenant t = tenant(tenant);
    t.weight = weight;
    t.quota = quota;
  }

  private Tenant tenant(String id) {
    return tenants.computeIfAbsent(id, Tenant::new);
  }

  /** Queues a job (it must be able to fit somewhere; see {@link #couldEverFit}). */
  public void enqueue(JobRequest j, long nowMs) {
    if (queued.containsKey(j.id()) || running.containsKey(j.id())) return;
    Tenant t = tenant(j.tenant());
    t.queues.computeIfAbsent(j.priority(), k -> new ArrayDeque<>()).addLast(j);
    levels.computeIfAbsent(j.priority(), k -> new LinkedHashSet<>()).add(t);
    queued.put(j.id(), j);
    waitingSince.putIfAbsent(j.id(), nowMs);
  }

  /** Removes a queued job; false when it is not queued. */
  public boolean dequeue(String jobId) {
    JobRequest j = queued.remove(jobId);
    if (j == null) return false;
    waitingSince.remove(jobId);
    Tenant t = tenants.get(j.tenant());
    ArrayDeque<JobRequest> q = t.queues.get(j.priority());
    q.remove(j);
    if (q.isEmpty()) {
      t.queues.remove(j.priority());
      LinkedHashSet<Tenant> lv = levels.get(j.priority());
      lv.remove(t);
      if (lv.isEmpty()) levels.remove(j.priority());
    }
    if (reservation != null && reservation.job().id().equals(jobId)) reservation = null;
    return true;
  }

  private double share(Tenant t, long nowMs) {
    double dt = Math.max(0, nowMs - t.usageAtMs) / 1000.0;
    double decayed = t.usage * Math.pow(0.5, dt / config.usageHalfLifeSeconds());
    t.usage = decayed;
    t.usageAtMs = nowMs;
    return (decayed + t.inUse) / t.weight;
  }

  // ------------------------------------------------------------------ decisions

  /** Places what can run now, in priority then fair-share order; at most {@code max} placements. */
  public List<Assignment> schedule(long nowMs, int max) {
    List<Assignment> out = new ArrayList<>();
    if (queued.isEmpty() || freeGpus == 0) return out;
    refreshReservation(nowMs);
    int[] scanned = {0};
    // within one pass capacity only shrinks: a plain demand that failed makes every larger one fail too
    Map<String, Integer> failedAt = new HashMap<>();
    for (Map.Entry<Integer, LinkedHashSet<Tenant>> level : new ArrayList<>(levels.entrySet())) {
      int priority = level.getKey();
      PriorityQueue<Object[]> order = new PriorityQueue<>((a, b) -> Double.compare((double) a[1], (double) b[1]));
      for (Tenant t : level.getValue()) order.add(new Object[] {t, share(t, nowMs)});
      while (!order.isEmpty() && out.size() < max && scanned[0] < config.maxScanPerPass() && freeGpus > 0) {
        Tenant t = (Tenant) order.poll()[0];
        ArrayDeque<JobRequest> q = t.queues.get(priority);
        if (q == null || q.isEmpty()) continue;
        Assignment a = null;
        JobRequest chosen = null;
        boolean head = true;
        // the tenant's jobs in FIFO order: the first that fits runs (small jobs backfill holes)
        for (Iterator<JobRequest> it = q.iterator(); it.hasNext() && scanned[0] < config.maxScanPerPass(); ) {
          JobRequest j = it.next();
          scanned[0]++;
          if (t.inUse + j.gpus() > t.quota) {
            head = false;
            continue;
          }
          // a reservation refuses jobs for reasons other than size, so the shortcut holds only without one
          String key = reservation == null ? plainKey(j) : null;
          Integer failed = key == null ? null : failedAt.get(key);
          if (failed == null || j.gpus() < failed) {
            a = tryPlace(j, nowMs);
            if (a != null) {
              chosen = j;
              break;
            }
            if (key != null) failedAt.merge(key, j.gpus(), Math::min);
          }
          if (head) maybeReserve(j, nowMs);
          head = false;
        }
        if (chosen == null) continue; // nothing of this tenant fits now at this priority
        remove(t, priority, chosen);
        commit(chosen, a, nowMs);
        out.add(a);
        if (t.queues.containsKey(priority)) order.add(new Object[] {t, share(t, nowMs)});
      }
    }
    return out;
  }

  /** A demand described by class alone (no memory, labels or spread), so that sizes compare; else null. */
  private static String plainKey(JobRequest j) {
    if (j.spread() || j.memoryMiB() > 0 || !j.labels().isEmpty()) return null;
    return j.gpuClass() == null ? "*" : j.gpuClass();
  }

  private void remove(Tenant t, int priority, JobRequest j) {
    ArrayDeque<JobRequest> q = t.queues.get(priority);
    if (q.peekFirst() == j) {
      q.pollFirst();
    } else {
      q.remove(j);
    }
    queued.remove(j.id());
    waitingSince.remove(j.id());
    if (q.isEmpty()) {
      t.queues.remove(priority);
      LinkedHashSet<Tenant> lv = levels.get(priority);
      lv.remove(t);
      if (lv.isEmpty()) levels.remove(priority);
    }
  }

  private Assignment tryPlace(JobRequest j, long nowMs) {
    boolean reserved = reservation != null && reservation.job().id().equals(j.id());
    Host best = null;
    Iterable<String> classes = j.gpuClass() != null ? List.of(j.gpuClass()) : index.keySet();
    int bestFree = Integer.MAX_VALUE;
    for (String cls : classes) {
      TreeMap<Integer, LinkedHashSet<Host>> byFree = index.get(cls);
      if (byFree == null) continue;
      for (Map.Entry<Integer, LinkedHashSet<Host>> e = byFree.ceilingEntry(j.gpus()); e != null && e.getKey() < bestFree;
          e = byFree.higherEntry(e.getKey())) {
        Host found = null;
        for (Host h : e.getValue()) {
          if (h.accepts(j) && (reserved || allowedOnReservedHost(h, j, nowMs))) {
            found = h;
            break;
          }
        }
        if (found != null) {
          best = found;
          bestFree = e.getKey();
          break;
        }
      }
    }
    if (best != null) {
      List<Integer> devs = take(best, j.gpus());
      return new Assignment(j.id(), best.gpuClass, List.of(new Assignment.Part(best.nodeId, best.id, devs)));
    }
    if (!j.spread()) return null;
    return trySpread(j, nowMs, reserved);
  }

  /** A gang across hosts of one class: the hosts with the most free GPUs first; all or nothing. */
  private Assignment trySpread(JobRequest j, long nowMs, boolean reserved) {
    Iterable<String> classes = j.gpuClass() != null ? List.of(j.gpuClass()) : index.keySet();
    for (String cls : classes) {
      TreeMap<Integer, LinkedHashSet<Host>> byFree = index.get(cls);
      if (byFree == null) continue;
      List<Host> chosen = new ArrayList<>();
      int have = 0;
      outer:
      for (Map.Entry<Integer, LinkedHashSet<Host>> e : byFree.descendingMap().entrySet()) {
        for (Host h : e.getValue()) {
          if (!h.accepts(j) || !(reserved || allowedOnReservedHost(h, j, nowMs))) continue;
          chosen.add(h);
          have += h.freeCount;
          if (have >= j.gpus()) break outer;
        }
      }
      if (have < j.gpus()) continue;
      List<Assignment.Part> parts = new ArrayList<>();
      int need = j.gpus();
      for (Host h : chosen) {
        int n = Math.min(need, h.freeCount);
        parts.add(new Assignment.Part(h.nodeId, h.id, take(h, n)));
        need -= n;
      }
      return new Assignment(j.id(), cls, parts);
    }
    return null;
  }

  private List<Integer> take(Host h, int n) {
    indexRemove(h);
    List<Integer> devs = new ArrayList<>(n);
    for (int i = h.free.nextSetBit(0); i >= 0 && devs.size() < n; i = h.free.nextSetBit(i + 1)) {
      h.free.clear(i);
      devs.add(h.deviceIndex[i]);
    }
    h.freeCount -= n;
    freeGpus -= n;
    indexAdd(h);
    return devs;
  }

  private void commit(JobRequest j, Assignment a, long nowMs) {
    long end = nowMs + j.maxSeconds() * 1000;
    running.put(j.id(), new Running(j, a, nowMs, end));
    for (Assignment.Part p : a.parts()) {
      Host h = hosts.get(p.hostId());
      h.ends.merge(end, p.devices().size(), Integer::sum);
    }
    tenant(j.tenant()).inUse += j.gpus();
    if (reservation != null && reservation.job().id().equals(j.id())) reservation = null;
  }

  private boolean allowedOnReservedHost(Host h, JobRequest j, long nowMs) {
    if (reservation == null || reservation.host() != h) return true;
    return h.freeCount - j.gpus() >= reservation.job().gpus() || nowMs + j.maxSeconds() * 1000 <= reservation.startMs();
  }

  /** Aging: the oldest blocked job past the threshold reserves the host where it can start soonest. */
  private void maybeReserve(JobRequest j, long nowMs) {
    if (reservation != null || j.spread()) return;
    Long since = waitingSince.get(j.id());
    if (since == null || nowMs - since < config.reserveAfterMillis()) return;
    Host best = null;
    long bestStart = Long.MAX_VALUE;
    for (Host h : hosts.values()) {
      if (!h.accepts(j) || h.deviceIndex.length < j.gpus()) continue;
      long start = earliestStart(h, j.gpus(), nowMs);
      if (start < bestStart) {
        bestStart = start;
        best = h;
      }
    }
    if (best != null) reservation = new Reservation(j, best, bestStart);
  }

  private void refreshReservation(long nowMs) {
    if (reservation == null) return;
    if (!queued.containsKey(reservation.job().id())) {
      reservation = null;
      return;
    }
    Host h = reservation.host();
    reservation = new Reservation(reservation.job(), h, earliestStart(h, reservation.job().gpus(), nowMs));
  }

  private static long earliestStart(Host h, int gpus, long nowMs) {
    int free = h.freeCount;
    if (free >= gpus) return nowMs;
    for (Map.Entry<Long, Integer> e : h.ends.entrySet()) {
      free += e.getValue();
      if (free >= gpus) return Math.max(nowMs, e.getKey());
    }
    return Long.MAX_VALUE;
  }

  /** The job stopped using its GPUs (finished, failed, cancelled, preempted). */
  public void release(String jobId, long nowMs) {
    Running r = running.remove(jobId);
    if (r == null) return;
    for (Assignment.Part p : r.assignment().parts()) {
      Host h = hosts.get(p.hostId());
      indexRemove(h);
      for (int dev : p.devices()) {
        int i = indexOf(h, dev);
        if (h.free.get(i)) throw new IllegalStateException("GPU " + p.nodeId() + "/" + dev + " released twice");
        h.free.set(i);
      }
      h.freeCount += p.devices().size();
      freeGpus += p.devices().size();
      h.ends.computeIfPresent(r.expectedEndMs(), (k, v) -> v - p.devices().size() <= 0 ? null : v - p.devices().size());
      indexAdd(h);
    }
    Tenant t = tenant(r.job().tenant());
    share(t, nowMs);
    t.inUse -= r.job().gpus();
    t.usage += r.job().gpus() * Math.max(0, nowMs - r.startMs()) / 1000.0;
  }

  private static int indexOf(Host h, int device) {
    for (int i = 0; i < h.deviceIndex.length; i++) {
      if (h.deviceIndex[i] == device) return i;
    }
    throw new IllegalArgumentException("device " + device + " is not on host " + h.id);
  }

  /**
   * Lower-priority running jobs whose eviction would let {@code j} start now on one host, fewest
   * GPUs evicted first; empty when none. Jobs already preempted {@code maxPreemptions} times, and
   * jobs of equal or higher priority, are never chosen, so preemption cannot loop.
   */
  public List<String> preemptionVictims(JobRequest j, Map<String, Integer> preemptions, int maxPreemptions) {
    List<String> best = List.of();
    int bestCost = Integer.MAX_VALUE;
    for (Host h : hosts.values()) {
      if (!h.accepts(j) || h.deviceIndex.length < j.gpus()) continue;
      int free = h.freeCount;
      List<Running> candidates = new ArrayList<>();
      for (Running r : running.values()) {
        if (r.job().priority() >= j.priority()) continue;
        if (preemptions.getOrDefault(r.job().id(), 0) >= maxPreemptions) continue;
        if (r.assignment().parts().size() != 1) continue;
        Assignment.Part p = r.assignment().parts().get(0);
        if (!p.hostId().equals(h.id)) continue;
        candidates.add(r);
      }
      candidates.sort((a, b) -> a.job().priority() != b.job().priority()
          ? Integer.compare(a.job().priority(), b.job().priority()) : Long.compare(b.startMs(), a.startMs()));
      List<String> victims = new ArrayList<>();
      int cost = 0;
      for (Running r : candidates) {
        if (free >= j.gpus()) break;
        victims.add(r.job().id());
        free += r.job().gpus();
        cost += r.job().gpus();
      }
      if (free >= j.gpus() && cost > 0 && cost < bestCost) {
        bestCost = cost;
        best = victims;
      }
    }
    return best;
  }

  // ------------------------------------------------------------------ views

  public int totalGpus() {
    return totalGpus;
  }

  public int freeGpus() {
    return freeGpus;
  }

  public int queuedCount() {
    return queued.size();
  }

  public int runningCount() {
    return running.size();
  }

  public boolean isQueued(String jobId) {
    return queued.containsKey(jobId);
  }

  public boolean isRunning(String jobId) {
    return running.containsKey(jobId);
  }

  public Assignment assignmentOf(String jobId) {
    Running r = running.get(jobId);
    return r == null ? null : r.assignment();
  }

  public Collection<JobRequest> queuedJobs() {
    return queued.values();
  }

  public int inUse(String tenant) {
    Tenant t = tenants.get(tenant);
    return t == null ? 0 : t.inUse;
  }

  public int quota(String tenant) {
    Tenant t = tenants.get(tenant);
    return t == null ? Integer.MAX_VALUE : t.quota;
  }

  /** Free GPUs that cannot serve the largest queued job (single-host gang) — the fragmentation. */
  public int fragmentation() {
    int largest = 0;
    for (JobRequest j : queued.values()) largest = Math.max(largest, j.gpus());
    if (largest == 0) return 0;
    int unusable = 0;
    for (Host h : hosts.values()) {
      if (h.freeCount > 0 && h.freeCount < largest) unusable += h.freeCount;
    }
    return unusable;
  }

  /** Per class: {free, total}. */
  public Map<String, int[]> byClass() {
    Map<String, int[]> out = new TreeMap<>();
    for (Host h : hosts.values()) {
      int[] ft = out.computeIfAbsent(h.gpuClass, k -> new int[2]);
      ft[0] += h.freeCount;
      ft[1] += h.deviceIndex.length;
    }
    return out;
  }

  /** Every device with whether it is free, for the fleet view. */
  public List<Object[]> devices() {
    List<Object[]> out = new ArrayList<>();
    for (Host h : hosts.values()) {
      for (int i = 0; i < h.deviceIndex.length; i++) out.add(new Object[] {h.nodeId, h.deviceIndex[i], h.gpuClass, h.memoryMiB, h.free.get(i)});
    }
    return out;
  }

  /** Largest single-host gang each class can ever offer, for admission checks. */
  public Map<String, int[]> shape() {
    Map<String, int[]> out = new TreeMap<>();
    for (Host h : hosts.values()) {
      int[] v = out.computeIfAbsent(h.gpuClass, k -> new int[] {0, 0});
      v[0] = Math.max(v[0], h.deviceIndex.length);
      v[1] = (int) Math.max(v[1], Math.min(Integer.MAX_VALUE, h.memoryMiB));
    }
    return out;
  }

  /** Queued jobs per tenant and priority, for metrics. */
  public Map<String, Map<Integer, Integer>> queueDepth() {
    Map<String, Map<Integer, Integer>> out = new TreeMap<>();
    for (Tenant t : tenants.values()) {
      for (Map.Entry<Integer, ArrayDeque<JobRequest>> e : t.queues.entrySet()) {
        out.computeIfAbsent(t.id, k -> new TreeMap<>()).put(e.getKey(), e.getValue().size());
      }
    }
    return out;
  }

  Iterator<Host> hostIterator() {
    return hosts.values().iterator();
  }
}
