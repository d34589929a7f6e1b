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
import java.util.Set;
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
    /** The node's labels: its kinds and those an operator gave it ({@link #relabel}). */
    Map<String, String> labels;
    /** The node's own parameter limits ("kind.param" -> largest value it runs); absent: no limit. */
    final Map<String, Long> limits;
    final int[] deviceIndex;
    final BitSet free;
    /** Devices taken out of service (they failed repeatedly): never free again. */
    final BitSet out = new BitSet();
    int freeCount;
    /** expected end (ms) → GPUs that free then, for reservations. */
    final TreeMap<Long, Integer> ends = new TreeMap<>();

    Host(String id, String nodeId, String gpuClass, long memoryMiB, Map<String, String> labels, Map<String, Long> limits,
        int[] deviceIndex) {
      this.id = id;
      this.nodeId = nodeId;
      this.gpuClass = gpuClass;
      this.memoryMiB = memoryMiB;
      this.labels = labels;
      this.limits = limits;
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
      if (j.needs().isEmpty()) return true;
      for (Map.Entry<String, Long> n : j.needs().entrySet()) {
        Long limit = limits.get(n.getKey());
        if (limit != null && limit < n.getValue()) return false;
      }
      return true;
    }
  }

  /** One tenant's jobs at one priority: plain demands bucketed by size, the rest in FIFO order. */
  private static final class TenantQueue {
    final TreeMap<Integer, ArrayDeque<JobRequest>> plain = new TreeMap<>();
    final ArrayDeque<JobRequest> special = new ArrayDeque<>();
    int size;

    void add(JobRequest j) {
      if ("*".equals(plainKey(j))) {
        plain.computeIfAbsent(j.gpus(), k -> new ArrayDeque<>()).addLast(j);
      } else {
        special.addLast(j);
      }
      size++;
    }

    void remove(JobRequest j) {
      if ("*".equals(plainKey(j))) {
        ArrayDeque<JobRequest> b = plain.get(j.gpus());
        if (b.peekFirst() == j) {
          b.pollFirst();
        } else {
          b.remove(j);
        }
        if (b.isEmpty()) plain.remove(j.gpus());
      } else if (special.peekFirst() == j) {
        special.pollFirst();
      } else {
        special.remove(j);
      }
      size--;
    }

    boolean isEmpty() {
      return size == 0;
    }
  }

  private static final class Tenant {
    final String id;
    double weight = 1.0;
    int quota = Integer.MAX_VALUE;
    int inUse;
    /** Jobs of this tenant queued, at every priority. */
    int queuedJobs;
    /** Its own count from which it is among {@link #tenantsWithManyQueued}; 0: the engine's. */
    int manyQueuedAt;
    /** Last pass stamp that collected this tenant (see {@link #collect}). */
    long stamp;
    /** GPU-seconds used, scaled to {@code usageRefMs} (see {@link #decayFactor}). */
    double usage;
    /** priority → FIFO of this tenant's jobs. */
    final TreeMap<Integer, TenantQueue> queues = new TreeMap<>();

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
  /**
   * priority → job size → tenants holding a plain job of that size at that priority, and priority →
   * tenants holding special jobs there: a pass visits only tenants that have something that could fit.
   */
  private final Map<Integer, TreeMap<Integer, LinkedHashSet<Tenant>>> plainBySize = new HashMap<>();
  private final Map<Integer, LinkedHashSet<Tenant>> withSpecial = new HashMap<>();
  private final Map<String, JobRequest> queued = new HashMap<>();
  /** Tenants with at least {@link #manyQueued} jobs queued (see {@link #tenantsWithManyQueued}). */
  private final Set<Tenant> withManyQueued = new java.util.HashSet<>();
  private int manyQueued = Integer.MAX_VALUE;
  private final Map<String, Running> running = new HashMap<>();
  /** job → when it was queued, in queueing order (so the oldest waiting job is the first entry). */
  private final Map<String, Long> waitingSince = new LinkedHashMap<>();
  private Reservation reservation;
  private long usageRefMs;
  /** Sizes of queued plain jobs → how many, to know the smallest. */
  private final TreeMap<Integer, Integer> plainSizes = new TreeMap<>();
  /** maxSeconds of queued plain jobs → how many, to know the shortest. */
  private final TreeMap<Long, Integer> plainMaxSeconds = new TreeMap<>();
  private final Map<String, Long> seqOf = new HashMap<>();
  private long nextSeq;
  /** How many special (non-plain) jobs of a tenant one pass looks at. */
  private static final int SPECIAL_SCAN = 64;
  /** How many of the oldest waiting jobs a pass considers for the reservation. */
  private static final int OLDEST_SCAN = 16;
  /**
   * How many tenants whose jobs fit only the GPUs held for the reservation a pass visits without
   * placing anything before it stops trying them (the next release, arrival or the scheduler's
   * 1 s timer tries again).
   */
  private static final int BACKFILL_TRIES = 8;
  /** Queued jobs that are not plain (class-less size) demands: memory, labels, spread, or a class. */
  private int specialQueued;
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
    addNode(nodeId, devices, labels, Map.of());
  }

  /**
   * As above, with the node's own parameter limits ({@code "kind.param" -> max}): a job whose {@link
   * JobRequest#needs()} exceed one of them is not placed on the node.
   */
  public void addNode(String nodeId, List<Device> devices, Map<String, String> labels, Map<String, Long> limits) {
    Map<String, Long> ownLimits = limits == null ? Map.of() : Map.copyOf(limits);
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
      Host h = new Host(hostId, nodeId, ds.get(0).gpuClass(), mem, labels == null ? Map.of() : Map.copyOf(labels), ownLimits,
          idx);
      hosts.put(hostId, h);
      indexAdd(h);
      totalGpus += idx.length;
      freeGpus += idx.length;
    }
  }

  /**
   * Gives a node's hosts new labels (an operator labelled the node): queued jobs that ask for labels
   * are matched against them from the next pass on; jobs running there run on. False when the node is
   * unknown or its labels are already these.
   */
  public boolean relabel(String nodeId, Map<String, String> labels) {
    Map<String, String> now = labels == null ? Map.of() : Map.copyOf(labels);
    boolean changed = false;
    for (Host h : hosts.values()) {
      if (!h.nodeId.equals(nodeId) || h.labels.equals(now)) continue;
      h.labels = now;
      changed = true;
    }
    return changed;
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

  /**
   * Takes one device out of service (it failed repeatedly): a free device stops being offered at once;
   * a busy one is not given back when its job ends. Totals, utilization and the fleet's shape count
   * only devices in service. False if the device is unknown or already out.
   */
  public boolean quarantine(String nodeId, int device) {
    for (Host h : hosts.values()) {
      if (!h.nodeId.equals(nodeId)) continue;
      for (int i = 0; i < h.deviceIndex.length; i++) {
        if (h.deviceIndex[i] != device) continue;
        if (h.out.get(i)) return false;
        h.out.set(i);
        totalGpus--;
        if (h.free.get(i)) {
          indexRemove(h);
          h.free.clear(i);
          h.freeCount--;
          freeGpus--;
          indexAdd(h);
        }
        return true;
      }
    }
    return false;
  }

  /**
   * Puts a quarantined device back in service (an operator lifted the quarantine, e.g. after the GPU
   * was replaced): free again unless a job still runs on it (then it comes back when that job ends).
   * False when the device is unknown or not quarantined.
   */
  public boolean unquarantine(String nodeId, int device) {
    for (Host h : hosts.values()) {
      if (!h.nodeId.equals(nodeId)) continue;
      for (int i = 0; i < h.deviceIndex.length; i++) {
        if (h.deviceIndex[i] != device) continue;
        if (!h.out.get(i)) return false;
        h.out.clear(i);
        totalGpus++;
        if (!runsOn(h, device)) {
          indexRemove(h);
          h.free.set(i);
          h.freeCount++;
          freeGpus++;
          indexAdd(h);
        }
        return true;
      }
    }
    return false;
  }

  private boolean runsOn(Host h, int device) {
    for (Running r : running.values()) {
      for (Assignment.Part p : r.assignment().parts()) {
        if (p.hostId().equals(h.id) && p.devices().contains(device)) return true;
      }
    }
    return false;
  }

  /** Devices of a host in service. */
  private static int inService(Host h) {
    return h.deviceIndex.length - h.out.cardinality();
  }

  /** True when some host could hold the job if it were idle (else refuse it at submit). */
  public boolean couldEverFit(JobRequest j) {
    Map<String, Integer> spreadTotal = new HashMap<>(); // a spread gang stays within one class
    for (Host h : hosts.values()) {
      if (!h.accepts(j)) continue;
      if (inService(h) >= j.gpus()) return true;
      if (spreadTotal.merge(h.gpuClass, inService(h), Integer::sum) >= j.gpus() && j.spread()) return true;
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
    TenantQueue tq = t.queues.computeIfAbsent(j.priority(), k -> new TenantQueue());
    tq.add(j);
    indexAdded(t, j);
    seqOf.put(j.id(), nextSeq++);
    levels.computeIfAbsent(j.priority(), k -> new LinkedHashSet<>()).add(t);
    queued.put(j.id(), j);
    if (++t.queuedJobs == manyQueuedAt(t)) withManyQueued.add(t);
    waitingSince.putIfAbsent(j.id(), nowMs);
    if (!"*".equals(plainKey(j))) specialQueued++;
    countPlain(j, 1);
  }

  private long visitStamp;

  private static void collect(Iterable<Tenant> from, long stamp, List<Tenant> into) {
    for (Tenant t : from) {
      if (t.stamp != stamp) {
        t.stamp = stamp;
        into.add(t);
      }
    }
  }

  private void indexAdded(Tenant t, JobRequest j) {
    if ("*".equals(plainKey(j))) {
      plainBySize.computeIfAbsent(j.priority(), k -> new TreeMap<>())
          .computeIfAbsent(j.gpus(), k -> new LinkedHashSet<>()).add(t);
    } else {
      withSpecial.computeIfAbsent(j.priority(), k -> new LinkedHashSet<>()).add(t);
    }
  }

  private void indexRemoved(Tenant t, JobRequest j, TenantQueue q) {
    if ("*".equals(plainKey(j))) {
      if (q.plain.containsKey(j.gpus())) return;
      TreeMap<Integer, LinkedHashSet<Tenant>> bySize = plainBySize.get(j.priority());
      LinkedHashSet<Tenant> ts = bySize.get(j.gpus());
      ts.remove(t);
      if (ts.isEmpty()) bySize.remove(j.gpus());
      if (bySize.isEmpty()) plainBySize.remove(j.priority());
    } else if (q.special.isEmpty()) {
      LinkedHashSet<Tenant> ts = withSpecial.get(j.priority());
      ts.remove(t);
      if (ts.isEmpty()) withSpecial.remove(j.priority());
    }
  }

  /**
   * Replaces queued jobs' requests (same ids: what they need of a node changed, e.g. a node with
   * smaller limits joined), keeping how long each has waited, so that aging still finds the oldest
   * first; each goes to the back of its tenant's queue at its priority. Jobs not queued are skipped.
   * Returns how many were replaced.
   */
  public int requeue(Collection<JobRequest> changed) {
    int n = 0;
    for (JobRequest j : changed) {
      Long since = waitingSince.get(j.id());
      if (since == null || !dequeue(j.id())) continue;
      enqueue(j, since);
      n++;
    }
    if (n > 0) {
      // enqueue appended them: restore oldest-first (a stable sort keeps the others' order)
      List<Map.Entry<String, Long>> order = new ArrayList<>();
      waitingSince.forEach((id, since) -> order.add(Map.entry(id, since))); // copies: the map is cleared below
      order.sort(Map.Entry.comparingByValue());
      waitingSince.clear();
      order.forEach(e -> waitingSince.put(e.getKey(), e.getValue()));
    }
    return n;
  }

  /** Queued job ids, longest waiting first: the order aging looks at them in (for tests). */
  List<String> waitingOrder() {
    return List.copyOf(waitingSince.keySet());
  }

  /** Removes a queued job; false when it is not queued. */
  public boolean dequeue(String jobId) {
    JobRequest j = queued.remove(jobId);
    if (j == null) return false;
    waitingSince.remove(jobId);
    if (!"*".equals(plainKey(j))) specialQueued--;
    countPlain(j, -1);
    Tenant t = tenants.get(j.tenant());
    unqueued(t);
    TenantQueue q = t.queues.get(j.priority());
    q.remove(j);
    indexRemoved(t, j, q);
    seqOf.remove(j.id());
    if (q.isEmpty()) {
      t.queues.remove(j.priority());
      LinkedHashSet<Tenant> lv = levels.get(j.priority());
      lv.remove(t);
      if (lv.isEmpty()) levels.remove(j.priority());
    }
    if (reservation != null && reservation.job().id().equals(jobId)) reservation = null;
    return true;
  }

  /**
   * Decayed usage is kept scaled to a reference time, so that one factor per pass decays every
   * tenant at once: usage(now) = scaledUsage × 0.5^((now − ref) / halfLife).
   */
  private double decayFactor(long nowMs) {
    double halfLives = (nowMs - usageRefMs) / 1000.0 / config.usageHalfLifeSeconds();
    if (halfLives > 30) { // rebase before the factor underflows
      double f = Math.pow(0.5, halfLives);
      for (Tenant t : tenants.values()) t.usage *= f;
      usageRefMs = nowMs;
      return 1.0;
    }
    return Math.pow(0.5, halfLives);
  }

  private static double share(Tenant t, double factor) {
    return (t.usage * factor + t.inUse) / t.weight;
  }

  // ------------------------------------------------------------------ decisions

  /** Places what can run now, in priority then fair-share order; at most {@code max} placements. */
  public List<Assignment> schedule(long nowMs, int max) {
    List<Assignment> out = new ArrayList<>();
    if (queued.isEmpty() || freeGpus == 0) return out;
    passesTotal++;
    refreshReservation(nowMs);
    reserveForOldest(nowMs);
    int[] scanned = {0};
    // within one pass capacity only shrinks: a plain demand that failed makes every larger one fail too
    Map<String, Integer> failedAt = new HashMap<>();
    double f = decayFactor(nowMs);
    for (int priority : new ArrayList<>(levels.keySet())) {
      // only tenants with a job that could fit somewhere now: a plain job no larger than the largest
      // free block, or special jobs (their own checks decide)
      int largestNow = largestFree();
      int ordinary = largestOutsideReservation(largestNow);
      long stamp = ++visitStamp; // marks tenants already collected, instead of hashing them into a set
      List<Tenant> eligible = new ArrayList<>();
      TreeMap<Integer, LinkedHashSet<Tenant>> bySize = plainBySize.get(priority);
      if (bySize != null) {
        for (LinkedHashSet<Tenant> withSize : bySize.headMap(ordinary, true).values()) collect(withSize, stamp, eligible);
      }
      LinkedHashSet<Tenant> special = withSpecial.get(priority);
      if (special != null) collect(special, stamp, eligible);
      // tenants whose jobs fit only the GPUs held for the reservation: they can place only a job that
      // ends before it starts, so a pass tries a few of them (in fair-share order), not all
      int firstBackfill = eligible.size();
      if (bySize != null && ordinary < largestNow) {
        for (LinkedHashSet<Tenant> withSize : bySize.subMap(ordinary, false, largestNow, true).values()) {
          collect(withSize, stamp, eligible);
        }
      }
      if (eligible.isEmpty()) continue;
      int backfillTries = 0;
      Tenant[] ts = eligible.toArray(new Tenant[0]);
      double[] shares = new double[ts.length];
      for (int x = 0; x < ts.length; x++) shares[x] = share(ts[x], f);
      while (out.size() < max && scanned[0] < config.maxScanPerPass() && freeGpus > 0) {
        // the tenant with the smallest share goes next; a linear pick beats a heap for a few hundred tenants
        int pick = -1;
        for (int x = 0; x < ts.length; x++) {
          if (shares[x] != Double.POSITIVE_INFINITY && (pick < 0 || shares[x] < shares[pick])) pick = x;
        }
        if (pick < 0) break;
        if (specialQueued == 0 && (plainExhausted(failedAt) || nothingFits(nowMs))) break; // no queued job can fit
        Tenant t = ts[pick];
        shares[pick] = Double.POSITIVE_INFINITY; // done at this level unless it places a job below
        boolean backfillOnly = pick >= firstBackfill;
        if (backfillOnly && backfillTries >= BACKFILL_TRIES) continue;
        visitsTotal++;
        if (backfillOnly) backfillVisitsTotal++;
        TenantQueue q = t.queues.get(priority);
        if (q == null || q.isEmpty()) continue;
        int largest = largestFree();
        if (largest == 0) break;
        // candidates in this tenant's FIFO order: the oldest job of each size that could fit, and its
        // first special jobs; the first that fits runs (smaller jobs backfill around larger ones)
        List<JobRequest> candidates = new ArrayList<>();
        for (Map.Entry<Integer, ArrayDeque<JobRequest>> b : q.plain.headMap(largest, true).entrySet()) {
          candidates.add(b.getValue().peekFirst());
        }
        int k = 0;
        for (JobRequest sj : q.special) {
          if (k++ >= SPECIAL_SCAN) break;
          candidates.add(sj);
        }
        if (candidates.size() > 1) candidates.sort((x, y) -> Long.compare(seqOf.get(x.id()), seqOf.get(y.id())));
        Assignment a = null;
        JobRequest chosen = null;
        boolean head = true;
        for (JobRequest j : candidates) {
          if (scanned[0] >= config.maxScanPerPass()) break;
          scanned[0]++;
          scannedTotal++;
          if (t.inUse + j.gpus() > t.quota) {
            head = false;
            continue;
          }
          boolean isReserved = reservation != null && reservation.job().id().equals(j.id());
          String key = isReserved ? null : shortcutKey(j, nowMs);
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
        if (chosen == null) {
          if (backfillOnly) backfillTries++;
          continue; // nothing of this tenant fits now at this priority
        }
        remove(t, priority, chosen);
        commit(chosen, a, nowMs);
        out.add(a);
        if (t.queues.containsKey(priority)) shares[pick] = share(t, f);
        int ordinaryNow = largestOutsideReservation(largestFree());
        if (ordinaryNow < ordinary) {
          // the blocks shrank: tenants whose every job is now too large for them are done at this level
          ordinary = ordinaryNow;
          for (int x = 0; x < firstBackfill; x++) {
            if (shares[x] != Double.POSITIVE_INFINITY && !couldOffer(ts[x], priority, ordinary)) {
              shares[x] = Double.POSITIVE_INFINITY;
            }
          }
        }
      }
    }
    return out;
  }

  /**
   * Key under which a failed placement proves that every larger job of the same key fails too in
   * this pass: plain demands, split by whether the job would end before a reservation starts (on
   * the reserved host that decides, and within each side refusal is monotone in size).
   */
  private String shortcutKey(JobRequest j, long nowMs) {
    String key = plainKey(j);
    if (key == null || reservation == null) return key;
    return key + (nowMs + j.maxSeconds() * 1000 <= reservation.startMs() ? "|ends-before" : "|ends-after");
  }

  /** True when failures in this pass prove that no plain queued job of any size fits. */
  private boolean plainExhausted(Map<String, Integer> failedAt) {
    if (plainSizes.isEmpty()) return true;
    int smallest = plainSizes.firstKey();
    if (reservation == null) return failedAt.getOrDefault("*", Integer.MAX_VALUE) <= smallest;
    return failedAt.getOrDefault("*|ends-before", Integer.MAX_VALUE) <= smallest
        && failedAt.getOrDefault("*|ends-after", Integer.MAX_VALUE) <= smallest;
  }

  private void countPlain(JobRequest j, int delta) {
    if (!"*".equals(plainKey(j))) return;
    plainSizes.merge(j.gpus(), delta, (a, b) -> a + b == 0 ? null : a + b);
    plainMaxSeconds.merge(j.maxSeconds(), delta, (a, b) -> a + b == 0 ? null : a + b);
  }

  /**
   * O(1) proof, for plain jobs only, that nothing queued fits now: the smallest is larger than every
   * free block outside the reserved host, and the reserved host admits none of them (too large to
   * leave the reserved job its GPUs, and none ends before the reservation starts), and the reserved
   * job itself does not fit yet.
   */
  private boolean nothingFits(long nowMs) {
    if (plainSizes.isEmpty()) return true;
    int smallest = plainSizes.firstKey();
    Host reservedHost = reservation == null ? null : reservation.host();
    if (smallest <= largestFreeExcept(reservedHost)) return false;
    if (reservation == null) return true;
    JobRequest rj = reservation.job();
    if (largestFreeExcept(null) >= rj.gpus()) return false;
    boolean leavesEnough = smallest <= reservedHost.freeCount - rj.gpus();
    boolean endsBefore = nowMs + plainMaxSeconds.firstKey() * 1000 <= reservation.startMs();
    return !leavesEnough && !endsBefore;
  }

  /** True when the tenant has, at this priority, a special job or a plain one of at most {@code gpus}. */
  private static boolean couldOffer(Tenant t, int priority, int gpus) {
    TenantQueue q = t.queues.get(priority);
    return q != null && (!q.special.isEmpty() || (!q.plain.isEmpty() && q.plain.firstKey() <= gpus));
  }

  /**
   * The largest block a job that ends after the reservation starts can use: any host's but the
   * reserved one's, or what the reserved host can spare beyond the reserved job's GPUs.
   */
  private int largestOutsideReservation(int largestNow) {
    if (reservation == null) return largestNow;
    Host rh = reservation.host();
    return Math.max(largestFreeExcept(rh), rh.freeCount - reservation.job().gpus());
  }

  private int largestFreeExcept(Host skip) {
    int m = 0;
    for (TreeMap<Integer, LinkedHashSet<Host>> byFree : index.values()) {
      for (Map.Entry<Integer, LinkedHashSet<Host>> e = byFree.lastEntry(); e != null && e.getKey() > m;
          e = byFree.lowerEntry(e.getKey())) {
        if (e.getValue().size() > 1 || !e.getValue().contains(skip)) {
          m = e.getKey();
          break;
        }
      }
    }
    return m;
  }

  /** The most free GPUs on any one host, of any class. */
  private int largestFree() {
    int m = 0;
    for (TreeMap<Integer, LinkedHashSet<Host>> byFree : index.values()) {
      if (!byFree.isEmpty()) m = Math.max(m, byFree.lastKey());
    }
    return m;
  }

  /** A demand described by class alone (no memory, labels, parameter needs or spread), so that sizes compare; else null. */
  private static String plainKey(JobRequest j) {
    if (j.spread() || j.memoryMiB() > 0 || !j.labels().isEmpty() || !j.needs().isEmpty()) return null;
    return j.gpuClass() == null ? "*" : j.gpuClass();
  }

  private void remove(Tenant t, int priority, JobRequest j) {
    TenantQueue q = t.queues.get(priority);
    q.remove(j);
    indexRemoved(t, j, q);
    queued.remove(j.id());
    unqueued(t);
    waitingSince.remove(j.id());
    seqOf.remove(j.id());
    if (!"*".equals(plainKey(j))) specialQueued--;
    countPlain(j, -1);
    if (q.isEmpty()) {
      t.queues.remove(priority);
      LinkedHashSet<Tenant> lv = levels.get(priority);
      lv.remove(t);
      if (lv.isEmpty()) levels.remove(priority);
    }
  }

  private long scannedTotal;
  private long attemptsTotal;
  private long visitsTotal;
  private long passesTotal;
  private long backfillVisitsTotal;

  /**
   * Jobs looked at, placement attempts, tenants visited, passes, and visits to tenants whose jobs fit
   * only the reserved GPUs, since start: how much work passes do.
   */
  public long[] workCounters() {
    return new long[] {scannedTotal, attemptsTotal, visitsTotal, passesTotal, backfillVisitsTotal};
  }

  private Assignment tryPlace(JobRequest j, long nowMs) {
    attemptsTotal++;
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
    boolean ok = h.freeCount - j.gpus() >= reservation.job().gpus() || nowMs + j.maxSeconds() * 1000 <= reservation.startMs();
    return ok;
  }

  /** Aging: the oldest blocked job past the threshold reserves the host where it can start soonest. */
  private void maybeReserve(JobRequest j, long nowMs) {
    if (reservation != null || j.spread()) return;
    Long since = waitingSince.get(j.id());
    if (since == null || nowMs - since < config.reserveAfterMillis()) return;
    Host best = null;
    long bestStart = Long.MAX_VALUE;
    for (Host h : hosts.values()) {
      if (!h.accepts(j) || inService(h) < j.gpus()) continue;
      long start = earliestStart(h, j.gpus(), nowMs);
      if (start < bestStart) {
        bestStart = start;
        best = h;
      }
    }
    if (best != null) reservation = new Reservation(j, best, bestStart);
  }

  /**
   * Before anything is placed, the oldest job past the reservation age gets the reservation, even when
   * it is larger than every free block now (a pass never visits such a job, so without this a stream
   * of small jobs could keep the GPUs it waits for busy forever). Looks at the few oldest only, so a
   * pass stays O(1) here; a job its tenant's quota holds back, or that may spread, is passed over.
   */
  private void reserveForOldest(long nowMs) {
    if (reservation != null) return;
    int looked = 0;
    for (Map.Entry<String, Long> w : waitingSince.entrySet()) {
      if (nowMs - w.getValue() < config.reserveAfterMillis() || looked++ >= OLDEST_SCAN) return;
      JobRequest j = queued.get(w.getKey());
      Tenant t = j == null ? null : tenants.get(j.tenant());
      if (t == null || t.inUse + j.gpus() > t.quota) continue;
      maybeReserve(j, nowMs);
      if (reservation != null) return;
    }
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

  /**
   * Takes a node's GPUs out of the fleet (it stopped answering, ADR 19): the jobs running on it are
   * released (their tenants' usage counted to now) and returned, so the caller can queue them again.
   * Unknown node: nothing, an empty list.
   */
  public List<String> removeNode(String nodeId, long nowMs) {
    List<String> lost = new ArrayList<>();
    for (Running r : running.values()) {
      for (Assignment.Part p : r.assignment().parts()) {
        if (p.nodeId().equals(nodeId)) {
          lost.add(r.job().id());
          break;
        }
      }
    }
    for (String j : lost) release(j, nowMs);
    for (java.util.Iterator<Host> it = hosts.values().iterator(); it.hasNext(); ) {
      Host h = it.next();
      if (!h.nodeId.equals(nodeId)) continue;
      indexRemove(h);
      totalGpus -= inService(h);
      freeGpus -= h.freeCount;
      it.remove();
    }
    if (reservation != null && reservation.host().nodeId.equals(nodeId)) reservation = null;
    return lost;
  }

  /**
   * Takes over a job that is already running on the given devices of a node (a scheduler that took
   * over from another, ADR 19): the devices become busy with it, as if this engine had placed it at
   * {@code startMs}. False, and nothing changed, if the job is known here already, or the devices are
   * not all free devices of one host of that node.
   */
  public boolean adopt(JobRequest j, String nodeId, List<Integer> devices, long startMs) {
    if (running.containsKey(j.id()) || queued.containsKey(j.id()) || devices.isEmpty()) return false;
    for (Host h : hosts.values()) {
      if (!h.nodeId.equals(nodeId)) continue;
      int[] at = new int[devices.size()];
      boolean all = true;
      for (int k = 0; k < at.length && all; k++) {
        at[k] = -1;
        for (int i = 0; i < h.deviceIndex.length; i++) {
          if (h.deviceIndex[i] == devices.get(k)) at[k] = i;
        }
        all = at[k] >= 0 && h.free.get(at[k]);
      }
      if (!all) continue;
      indexRemove(h);
      for (int i : at) h.free.clear(i);
      h.freeCount -= at.length;
      freeGpus -= at.length;
      indexAdd(h);
      commit(j, new Assignment(j.id(), h.gpuClass, List.of(new Assignment.Part(h.nodeId, h.id, List.copyOf(devices)))), startMs);
      return true;
    }
    return false;
  }

  /** The job stopped using its GPUs (finished, failed, cancelled, preempted). */
  public void release(String jobId, long nowMs) {
    Running r = running.remove(jobId);
    if (r == null) return;
    for (Assignment.Part p : r.assignment().parts()) {
      Host h = hosts.get(p.hostId());
      indexRemove(h);
      int back = 0;
      for (int dev : p.devices()) {
        int i = indexOf(h, dev);
        if (h.free.get(i)) throw new IllegalStateException("GPU " + p.nodeId() + "/" + dev + " released twice");
        if (h.out.get(i)) continue; // quarantined while the job ran: it stays out of service
        h.free.set(i);
        back++;
      }
      h.freeCount += back;
      freeGpus += back;
      h.ends.computeIfPresent(r.expectedEndMs(), (k, v) -> v - p.devices().size() <= 0 ? null : v - p.devices().size());
      indexAdd(h);
    }
    Tenant t = tenant(r.job().tenant());
    t.inUse -= r.job().gpus();
    t.usage += r.job().gpus() * Math.max(0, nowMs - r.startMs()) / 1000.0 / decayFactor(nowMs);
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
      if (!h.accepts(j) || inService(h) < j.gpus()) continue;
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

  /** The oldest job of the highest priority level that has queued jobs (fair-share order aside). */
  public java.util.Optional<JobRequest> highestPriorityWaiting() {
    if (levels.isEmpty()) return java.util.Optional.empty();
    JobRequest best = null;
    for (Tenant t : levels.firstEntry().getValue()) {
      TenantQueue q = t.queues.get(levels.firstKey());
      List<JobRequest> heads = new ArrayList<>();
      for (ArrayDeque<JobRequest> b : q.plain.values()) heads.add(b.peekFirst());
      if (!q.special.isEmpty()) heads.add(q.special.peekFirst());
      for (JobRequest j : heads) {
        if (best == null || seqOf.get(j.id()) < seqOf.get(best.id())) best = j;
      }
    }
    return java.util.Optional.ofNullable(best);
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

  private void unqueued(Tenant t) {
    if (t.queuedJobs-- == manyQueuedAt(t)) withManyQueued.remove(t);
  }

  private int manyQueuedAt(Tenant t) {
    return t.manyQueuedAt > 0 ? t.manyQueuedAt : manyQueued;
  }

  /**
   * One tenant is among {@link #tenantsWithManyQueued} from {@code jobs} queued ({@code 0}: from the count
   * {@link #trackTenantsQueuingAtLeast} set for all).
   */
  public void trackTenantQueuingAtLeast(String tenant, int jobs) {
    if (jobs < 0) throw new IllegalArgumentException("jobs must be >= 0");
    Tenant t = tenant(tenant);
    t.manyQueuedAt = jobs;
    if (t.queuedJobs >= manyQueuedAt(t)) {
      withManyQueued.add(t);
    } else {
      withManyQueued.remove(t);
    }
  }

  /** The tenant's own count set by {@link #trackTenantQueuingAtLeast(String, int)}, or 0. */
  public int manyQueuedAtOf(String tenant) {
    Tenant t = tenants.get(tenant);
    return t == null ? 0 : t.manyQueuedAt;
  }

  /** Jobs the tenant has queued. */
  public int queuedOf(String tenant) {
    Tenant t = tenants.get(tenant);
    return t == null ? 0 : t.queuedJobs;
  }

  /**
   * From now on, {@link #tenantsWithManyQueued} names the tenants with at least {@code jobs} queued
   * (kept as jobs come and go, so that asking costs nothing per tenant that has fewer).
   */
  public void trackTenantsQueuingAtLeast(int jobs) {
    if (jobs < 1) throw new IllegalArgumentException("jobs must be >= 1");
    manyQueued = jobs;
    withManyQueued.clear();
    for (Tenant t : tenants.values()) {
      if (t.queuedJobs >= manyQueuedAt(t)) withManyQueued.add(t);
    }
  }

  /** The tenants with at least the tracked number of jobs queued, and how many each has. */
  public Map<String, Integer> tenantsWithManyQueued() {
    Map<String, Integer> out = new HashMap<>();
    for (Tenant t : withManyQueued) out.put(t.id, t.queuedJobs);
    return out;
  }

  public int runningCount() {
    return running.size();
  }

  public boolean isRunning(String jobId) {
    return running.containsKey(jobId);
  }

  /** The jobs holding GPUs of a node, with when each was placed (or adopted) there. */
  public Map<String, Long> placedOn(String nodeId) {
    Map<String, Long> out = new HashMap<>();
    for (Running r : running.values()) {
      for (Assignment.Part p : r.assignment().parts()) {
        if (p.nodeId().equals(nodeId)) out.put(r.job().id(), r.startMs());
      }
    }
    return out;
  }

  public Assignment assignmentOf(String jobId) {
    Running r = running.get(jobId);
    return r == null ? null : r.assignment();
  }

  public Collection<JobRequest> queuedJobs() {
    return queued.values();
  }

  public int quota(String tenant) {
    Tenant t = tenants.get(tenant);
    return t == null ? Integer.MAX_VALUE : t.quota;
  }

  public double weight(String tenant) {
    Tenant t = tenants.get(tenant);
    return t == null ? 1.0 : t.weight;
  }

  /** The tenants whose weight or quota is not the default (weight 1, no quota). */
  public java.util.Set<String> tenantsWithPolicy() {
    java.util.Set<String> out = new java.util.HashSet<>();
    tenants.forEach((id, t) -> {
      if (t.weight != 1.0 || t.quota != Integer.MAX_VALUE || t.manyQueuedAt != 0) out.add(id);
    });
    return out;
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
      ft[1] += inService(h);
    }
    return out;
  }

  /** Every device with whether it is free, for the fleet view. */
  public List<Object[]> devices() {
    List<Object[]> out = new ArrayList<>();
    for (Host h : hosts.values()) {
      for (int i = 0; i < h.deviceIndex.length; i++) {
        out.add(new Object[] {h.nodeId, h.deviceIndex[i], h.gpuClass, h.memoryMiB, h.free.get(i), h.out.get(i)});
      }
    }
    return out;
  }

  /**
   * For admission checks, per class: the largest single-host gang it offers with the GPUs in service,
   * its largest device memory (MiB), and the largest gang it would offer with every GPU back in service.
   */
  public Map<String, int[]> shape() {
    return shape(node -> true);
  }

  /** As {@link #shape()}, over the nodes {@code nodes} accepts only. */
  public Map<String, int[]> shape(java.util.function.Predicate<String> nodes) {
    Map<String, int[]> out = new TreeMap<>();
    for (Host h : hosts.values()) {
      if (!nodes.test(h.nodeId)) continue;
      int[] v = out.computeIfAbsent(h.gpuClass, k -> new int[] {0, 0, 0});
      v[0] = Math.max(v[0], inService(h));
      v[1] = (int) Math.max(v[1], Math.min(Integer.MAX_VALUE, h.memoryMiB));
      v[2] = Math.max(v[2], h.deviceIndex.length);
    }
    return out;
  }

  /** Queued jobs per tenant and priority, for metrics. */
  public Map<String, Map<Integer, Integer>> queueDepth() {
    Map<String, Map<Integer, Integer>> out = new TreeMap<>();
    for (Tenant t : tenants.values()) {
      for (Map.Entry<Integer, TenantQueue> e : t.queues.entrySet()) {
        out.computeIfAbsent(t.id, k -> new TreeMap<>()).put(e.getKey(), e.getValue().size);
      }
    }
    return out;
  }
}
