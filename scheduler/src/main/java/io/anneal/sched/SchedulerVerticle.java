package io.anneal.sched;

import io.anneal.bus.Addresses;
import io.anneal.job.JobState;
import io.anneal.metrics.Metrics;
import io.anneal.placement.Assignment;
import io.anneal.placement.Device;
import io.anneal.placement.JobRequest;
import io.anneal.placement.PlacementEngine;
import io.anneal.store.JobRecord;
import io.anneal.store.JobStore;
import io.anneal.store.NodeLabels;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.Message;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/**
 * Matches queued jobs to free GPUs. Owns the in-memory queue and the fleet; the store is the
 * source of truth, so a restart rebuilds both. Placement runs on change (job arrives, GPUs free,
 * node joins), never blocks the event loop, and writes PLACED through the group-commit store
 * before the worker is told.
 */
public final class SchedulerVerticle extends VerticleBase {
  private static final Logger LOG = Logger.getLogger(SchedulerVerticle.class.getName());
  /** Most placements decided in one pass, so one pass stays short under load. */
  private static final int MAX_PER_PASS = 4096;

  private final JobStore store;
  private final Metrics metrics;
  private final PlacementEngine engine = new PlacementEngine(PlacementEngine.Config.defaults());
  private final Set<String> kinds = new TreeSet<>();
  /** Kinds that every node runs (null before the first node); other kinds are placed by label. */
  private Set<String> kindsEverywhere;
  /** node → (kinds it runs, its backend's parameter limits "kind.param" → max). */
  private final Map<String, Map.Entry<Set<String>, Map<String, Long>>> nodeLimits = new HashMap<>();
  /**
   * "kind.param" → the smallest limit among the nodes that run the kind, for keys some such node
   * limits: a job asking more needs a node whose limit reaches it ({@link JobRequest#needs()}).
   */
  private Map<String, Long> limitFloor = Map.of();
  private static final String KIND_LABEL = "anneal.kind.";
  /** Bus form of every queued or running job, by id (the engine keeps only what placement needs). */
  private final Map<String, JsonObject> jobs = new HashMap<>();
  private final Map<String, Long> enqueuedNanos = new HashMap<>();
  /** "node/index" of simulated devices, so the fleet view never shows them as real. */
  private final Set<String> simulated = new java.util.HashSet<>();
  /** "node/index" → what the worker reported of the device (name, UUID, SMs, compute capability, driver). */
  private final Map<String, JsonObject> inventory = new HashMap<>();
  /** nodeId/device → why it was taken out of service. */
  private final Map<String, String> quarantineReasons = new HashMap<>();
  private boolean passScheduled;
  /** Jobs told to stop for a higher-priority one, until their GPUs are released. */
  private final Set<String> preempting = new java.util.HashSet<>();
  /** How often each job was preempted: a job is preempted at most MAX_PREEMPTIONS times. */
  private final Map<String, Integer> preemptions = new HashMap<>();
  static final int MAX_PREEMPTIONS = 2;
  private boolean stopping;
  /** Queued jobs with a start-by deadline, by deadline (ms); entries of jobs placed meanwhile are skipped. */
  private final java.util.TreeMap<Long, Set<String>> deadlines = new java.util.TreeMap<>();

  public SchedulerVerticle(JobStore store, Metrics metrics) {
    this(store, metrics, 0);
  }

  /**
   * @param pricingWindowSeconds when > 0, busy and available GPU-seconds per class are sampled every
   *     second and reported to billing at the end of each window of this length (bme-spec 16.2)
   */
  public SchedulerVerticle(JobStore store, Metrics metrics, long pricingWindowSeconds) {
    this.store = store;
    this.metrics = metrics;
    this.pricingWindowMs = pricingWindowSeconds * 1000;
  }

  private final long pricingWindowMs;
  /**
   * Per API instance, the sequence number of the last admission received from it (published with the
   * queue length so that each API bounds the queue exactly; messages from one sender arrive in order).
   */
  private final Map<String, Long> seenByApi = new HashMap<>();
  /** This scheduler, as the API tells schedulers apart (a new one after a takeover, ADR 19). */
  private final String schedulerId = java.util.UUID.randomUUID().toString();
  /** class → {busy, available} GPU-seconds sampled in the current pricing window. */
  private final Map<String, long[]> windowUsage = new HashMap<>();
  /**
   * node → its GPUs in service, summed over the current pricing window's one-second samples (the
   * bootstrap fund's commitment; a quarantined GPU is offered to no job, so it does not count).
   */
  private final Map<String, Long> windowOnline = new HashMap<>();
  private int windowSamples;
  private long windowStartMs;

  @Override
  public Future<?> start() throws Exception {
    var bus = vertx.eventBus();
    bus.<JsonObject>consumer(Addresses.NODE_REGISTER, m -> onNode(m.body()));
    bus.<JsonObject>consumer(Addresses.JOB_SUBMITTED, m -> {
      JsonObject job = m.body();
      Object api = job.remove("api");
      Object seq = job.remove("apiSeq");
      if (api instanceof String a && seq instanceof Number n) seenByApi.put(a, n.longValue());
      enqueue(job);
    });
    bus.<JsonObject>consumer(Addresses.GPUS_RELEASED, m -> onReleased(m.body()));
    // whether a worker is alive is its entry in FLEET_ALIVE, not this answer, which may wait behind a busy loop
    bus.<JsonObject>consumer(Addresses.NODE_HEARTBEAT, m -> m.reply(onHeartbeat(m.body())));
    bus.<JsonObject>consumer(Addresses.JOB_CANCEL, this::onCancel);
    bus.<JsonObject>consumer(Addresses.FLEET, m -> m.reply(fleetView()));
    bus.<JsonObject>consumer(Addresses.FLEET_SHAPE_NOW, m -> {
      if (fleetKnown) {
        m.reply(shape());
      } else {
        m.fail(503, "a scheduler is taking over: it does not know the fleet yet"); // the API keeps the shape it has
      }
    });
    bus.<JsonObject>consumer(Addresses.DEVICE_RESTORED, m -> {
      quarantineMessages++;
      String node = m.body().getString("nodeId");
      int device = m.body().getInteger("device");
      quarantineReasons.remove(node + "/" + device);
      if (engine.unquarantine(node, device)) {
        LOG.info("GPU " + node + "/" + device + " back in service");
        publishShape();
        schedulePass();
      }
    });
    bus.<JsonObject>consumer(Addresses.DEVICE_QUARANTINED, m -> {
      quarantineMessages++;
      String node = m.body().getString("nodeId");
      int device = m.body().getInteger("device");
      if (engine.quarantine(node, device)) {
        quarantineReasons.put(node + "/" + device, m.body().getString("reason"));
        LOG.warning("GPU " + node + "/" + device + " out of service: " + m.body().getString("reason"));
        publishShape();
      }
    });
    bus.<JsonObject>consumer(Addresses.NODE_MEMORY, m -> {
      String node = m.body().getString("nodeId");
      m.body().getJsonObject("freeMemoryMiB", new JsonObject()).forEach(e -> {
        JsonObject d = inventory.get(node + "/" + e.getKey());
        if (d != null) d.put("freeMemoryMiB", e.getValue());
      });
    });
    bus.<JsonObject>consumer(Addresses.NODE_LABELS, m -> {
      labelMessages++;
      setOperatorLabels(m.body().getString("nodeId"), NodeLabels.fromJson(m.body().getJsonObject("labels")));
    });
    bus.<JsonObject>consumer(Addresses.TENANT_POLICY, m -> {
      policyMessages++;
      setTenant(m.body().getString("tenantId"), m.body().getDouble("weight", 1.0), m.body().getInteger("gpuQuota"),
          m.body().getInteger("maxQueuedJobs"));
      schedulePass();
    });
    windowStartMs = System.currentTimeMillis();
    sweptUpToMs = windowStartMs;
    vertx.setPeriodic(1000, id -> {
      if (deposed) return;
      publishShape();
      long now = System.currentTimeMillis();
      // a tick that comes late says this loop was held up (a burst, a pause): silence is not judged on it
      if (nodeTimeoutMs > 0 && now - lastTickMs < 2 * 1000) checkAlive();
      lastTickMs = now;
      expireDeadlines(now);
      if (pricingWindowMs > 0 && !windowsEnded) {
        samplePricingWindow(now);
        sendWindows(now);
        saveWindows(now);
        metrics.pricingWindowsUnsent(unsentWindows.size());
      }
      // passes run on change; this one also lets time-driven decisions (a job reaching the reservation
      // age, a backfill pass cut short) happen while nothing arrives or ends
      if (engine.queuedCount() > 0 && engine.freeGpus() > 0) schedulePass();
    });
    lastTickMs = System.currentTimeMillis();
    fleetKnown = claimGraceMs == 0;
    Future<?> live = nodeTimeoutMs <= 0 ? Future.succeededFuture()
        : vertx.sharedData().<String, Long>getAsyncMap(Addresses.FLEET_ALIVE).onSuccess(m -> alive = m);
    return live.compose(x -> vertx.executeBlocking(() -> List.of(store.tenantPoliciesBlocking(), store.activeJobsBlocking(),
        store.nodeLabelsBlocking()))).map(read -> {
      @SuppressWarnings("unchecked")
      Map<String, Map<String, String>> labelled = (Map<String, Map<String, String>>) read.get(2);
      operatorLabels.putAll(labelled);
      @SuppressWarnings("unchecked")
      List<io.anneal.store.TenantStore.Tenant> policies = (List<io.anneal.store.TenantStore.Tenant>) read.get(0);
      @SuppressWarnings("unchecked")
      List<JobRecord> recovered = (List<JobRecord>) read.get(1);
      for (var t : policies) {
        setTenant(t.id(), t.weight(), t.gpuQuota(), t.maxQueuedJobs());
      }
      for (JobRecord j : recovered) {
        // with its preemption count (a run's re-submission after a preemption adds one)
        JsonObject job = JobMessages.fromRecord(j);
        if (j.state() != JobState.QUEUED && claimGraceMs > 0) {
          // cluster mode: its run may go on on a worker that outlived the last scheduler; it waits for a claim
          unclaimed.put(j.id(), job);
          continue;
        }
        if (j.state() != JobState.QUEUED) {
          // it was on a GPU when this node stopped: the run is lost, the job is not
          store.requeue(j.id(), "re-queued after restart");
        }
        enqueue(job);
      }
      if (!recovered.isEmpty()) LOG.info("recovered " + recovered.size() + " active job(s) from the store");
      this.recovered = true;
      takeSavedWindows(Long.MAX_VALUE);
      if (claimGraceMs > 0) {
        // every worker answers with its registration and the runs it has (onNode adopts them), at an
        // address of this scheduler's own: the public one may still route to a scheduler that died, until
        // the cluster has dropped its subscriptions (seen to take over 10 s after a SIGKILL); so are releases
        // of GPUs, so that none of the runs adopted here is freed at a dead scheduler
        String own = Addresses.NODE_REGISTER + "." + schedulerId;
        String releases = Addresses.GPUS_RELEASED + "." + schedulerId;
        vertx.eventBus().<JsonObject>consumer(own, m -> onNode(m.body()));
        vertx.eventBus().<JsonObject>consumer(releases, m -> onReleased(m.body()));
        vertx.eventBus().publish(Addresses.SCHEDULER_HELLO, new JsonObject().put("registerAt", own).put("releaseAt", releases));
        vertx.setTimer(claimGraceMs, t -> requeueUnclaimed());
        // submissions sent while the cluster still routed some to a dead or deposed scheduler are in the store
        // only: for as long as a member the cluster cannot reach is still counted in (a partition, until
        // Hazelcast gives up on it), or after a partition heals
        vertx.setPeriodic(claimGraceMs, SWEEP_EVERY_MS, t -> {
          sweepQueued();
          rereadPolicies();
          rereadQuarantines();
          rereadLabels();
          takeSavedWindows(System.currentTimeMillis() - 3 * WINDOW_SAVE_MS);
        });
      }
      return null;
    });
  }

  /**
   * Cluster mode (ADR 19): how long a scheduler that takes over waits for workers to claim the runs the
   * store shows on GPUs before it re-queues the rest; 0 on a single instance, where every such run
   * died with the process.
   */
  private long claimGraceMs;
  /**
   * Cluster mode (ADR 19): a worker not heard from for this long (heartbeats every 2 s) is taken out of
   * the fleet and its jobs queued again; 0 (a single instance, whose worker is in the process): never.
   */
  private long nodeTimeoutMs;
  /** node → when it registered: a node is judged by its liveness entry only once it has had time to write one. */
  private final Map<String, Long> joinedAt = new HashMap<>();
  /** The workers' liveness entries (cluster mode): a node whose entry expired stopped answering. */
  private io.vertx.core.shareddata.AsyncMap<String, Long> alive;
  private boolean checkingAlive;
  private long lastTickMs;

  /** Cluster mode: how long a job may be held on a node that does not run it before it is set right. */
  private long reconcileAfterMs = 30_000;
  /** node → consecutive heartbeats on which this scheduler held more old runs there than the node has. */
  private final Map<String, Integer> heldBeyond = new HashMap<>();

  /**
   * The API refuses a tenant's submits at {@code limit} jobs queued (limits.maxQueuedJobsPerTenant): the
   * queue state this scheduler publishes names the tenants with at least half that many, with their count.
   * Call before the verticle is deployed.
   */
  public SchedulerVerticle withTenantQueueLimit(int limit) {
    engine.trackTenantsQueuingAtLeast(listedAt(limit));
    return this;
  }

  /**
   * A tenant's policy (as stored and told): fair-share weight, GPU quota (null: none) and queue bound (null:
   * the service's), applied to the engine.
   */
  private void setTenant(String id, double weight, Integer gpuQuota, Integer maxQueuedJobs) {
    engine.setTenant(id, weight, gpuQuota == null ? Integer.MAX_VALUE : gpuQuota);
    engine.trackTenantQueuingAtLeast(id, maxQueuedJobs == null ? 0 : listedAt(maxQueuedJobs));
  }

  /** A tenant with fewer queued jobs than this is not named in the queue state (so has fewer, for the API). */
  public static int listedAt(int tenantQueueLimit) {
    return Math.max(1, tenantQueueLimit / 2);
  }

  public SchedulerVerticle withSweepMargin(long ms) {
    this.sweepMarginMs = ms;
    return this;
  }

  public SchedulerVerticle withReconcileAfter(long ms) {
    this.reconcileAfterMs = ms;
    return this;
  }

  /**
   * Answers a worker's heartbeat (cluster mode): {@code known}, and {@code resync} when, on three
   * heartbeats in a row, this scheduler held more jobs on the node, placed more than reconcileAfter (plus a
   * third for messages under way) ago, than the node runs of that age: a run message or a release was lost,
   * and the node's registration lets reconcileHeld set it right.
   */
  private JsonObject onHeartbeat(JsonObject body) {
    String node = body.getString("nodeId");
    boolean known = nodeLimits.containsKey(node);
    if (known && body.getString("member") != null) memberOf.put(node, body.getString("member"));
    JsonObject reply = new JsonObject().put("known", known);
    JsonObject older = body.getJsonObject("runsOlderThan");
    if (!known || older == null || !recovered) return reply;
    long cutoff = System.currentTimeMillis() - older.getLong("ms") - older.getLong("ms") / 3;
    long held = engine.placedOn(node).entrySet().stream().filter(e -> e.getValue() < cutoff).count();
    if (held > older.getLong("count")) {
      if (heldBeyond.merge(node, 1, Integer::sum) >= 3) {
        heldBeyond.remove(node);
        reply.put("resync", true);
      }
    } else {
      heldBeyond.remove(node);
    }
    return reply;
  }

  /**
   * A known node registered again with the runs it has: jobs held on it for more than reconcileAfter that
   * it does not run lost their run message (queued again if the store still shows them PLACED there) or
   * their release (they ended: their GPUs are freed).
   */
  private void reconcileHeld(String nodeId, JsonObject body) {
    JsonArray running = body.getJsonArray("running");
    if (running == null || !recovered) return;
    Set<String> claimed = new java.util.HashSet<>();
    running.forEach(o -> claimed.add(((JsonObject) o).getString("jobId")));
    long now = System.currentTimeMillis();
    for (Map.Entry<String, Long> e : engine.placedOn(nodeId).entrySet()) {
      String id = e.getKey();
      if (claimed.contains(id) || claimed.contains(id.replaceFirst("^" + STALE, "")) || now - e.getValue() < reconcileAfterMs) {
        continue;
      }
      engine.release(id, now);
      if (id.startsWith(STALE)) continue; // the stale run has stopped; its release was lost
      JsonObject job = forget(id);
      preempting.remove(id);
      LOG.warning("node " + nodeId + " does not run " + id + ", held there for " + (now - e.getValue()) / 1000
          + " s: its run message or its release was lost; its GPUs are free again");
      if (job == null) continue;
      String reason = "its run message to node " + nodeId + " was lost";
      // not moved: it ran and ended there (the release was what was lost), or this lease is gone
      queueAgain(job, reason, store.requeueNeverStarted(id, nodeId, reason));
    }
  }

  /**
   * Once the store has the job queued again ({@code requeued} true; false when it ended meanwhile or this
   * scheduler's lease is gone): subscribers are told, and it is queued here, one attempt on.
   */
  private void queueAgain(JsonObject job, String reason, java.util.concurrent.CompletableFuture<Boolean> requeued) {
    Future.fromCompletionStage(requeued, vertx.getOrCreateContext()).onSuccess(moved -> {
      if (!moved) return;
      vertx.eventBus().publish(Addresses.JOB_EVENTS, JobMessages.event(job, JobState.QUEUED).put("reason", reason));
      enqueue(job.copy().put("attempt", job.getInteger("attempt", 0) + 1));
    }).onFailure(e -> LOG.warning("could not queue " + job.getString("id") + " again: " + e.getMessage()));
  }

  public SchedulerVerticle withNodeTimeout(long ms) {
    this.nodeTimeoutMs = ms;
    return this;
  }

  /**
   * A node is gone when its cluster member has left the cluster for {@link #MEMBER_GONE_MS} (a stopped or
   * killed process at once; one cut off once Hazelcast gives it up), or when its liveness entry has been
   * missing for twice the node timeout (a node whose process lives but does not beat). The entry alone is
   * not enough: while any member is cut off and not yet given up, writes to the entries it owns wait, and
   * live nodes' entries expire (seen in the partition drill: a node given up because another was cut off).
   */
  private void checkAlive() {
    if (nodeLimits.isEmpty()) return;
    long now = System.currentTimeMillis();
    if (clusterMembers != null) {
      java.util.Set<String> members = new java.util.HashSet<>(clusterMembers.get());
      for (String node : List.copyOf(nodeLimits.keySet())) {
        String member = memberOf.get(node);
        if (member == null || members.contains(member)) {
          memberGoneSince.remove(node);
        } else if (now - memberGoneSince.computeIfAbsent(node, k -> now) >= MEMBER_GONE_MS) {
          loseNode(node, now, "its cluster member left the cluster");
        }
      }
    }
    if (alive == null || checkingAlive || nodeLimits.isEmpty()) return;
    checkingAlive = true;
    alive.keys().onComplete(ar -> {
      checkingAlive = false;
      // the read may have waited on a partition (until Hazelcast gave the unreachable members up) while the
      // lease was lost: a deposed scheduler judges no node
      if (deposed) return;
      if (ar.failed()) {
        LOG.warning("could not read the workers' liveness entries: " + ar.cause().getMessage());
        return;
      }
      long at = System.currentTimeMillis();
      for (String node : List.copyOf(nodeLimits.keySet())) {
        Long joined = joinedAt.get(node);
        if (ar.result().contains(node) || joined == null || at - joined <= nodeTimeoutMs) {
          entryMissingSince.remove(node);
        } else if (at - entryMissingSince.computeIfAbsent(node, k -> at) >= 2 * nodeTimeoutMs) {
          loseNode(node, at, "no liveness entry for " + 3 * nodeTimeoutMs / 1000 + " s");
        }
      }
    });
  }

  /** Where the cluster's members are read (cluster mode), or null. */
  private java.util.function.Supplier<? extends java.util.Collection<String>> clusterMembers;
  /** node → the cluster member it said it is, last (registration and heartbeats). */
  private final Map<String, String> memberOf = new HashMap<>();
  private final Map<String, Long> memberGoneSince = new HashMap<>();
  private final Map<String, Long> entryMissingSince = new HashMap<>();
  /**
   * How long a node's member may be missing from the cluster before the node is gone: a member that merged
   * back after a partition has a new id, which its next heartbeat (every 2 s) tells.
   */
  static final long MEMBER_GONE_MS = 5_000;

  /** Reads the cluster's members to judge whether a node's process is still in it (cluster mode, ADR 19). */
  public SchedulerVerticle withClusterMembers(java.util.function.Supplier<? extends java.util.Collection<String>> members) {
    this.clusterMembers = members;
    return this;
  }

  /**
   * Takes a silent node out of the fleet and queues its jobs again (fenced like a placement). If it
   * comes back, its heartbeat is answered "unknown", it registers again, and the runs it still has of
   * those jobs are stopped without being recorded (adoptClaims).
   */
  private void loseNode(String node, long now, String why) {
    List<String> lost = engine.removeNode(node, now);
    nodeLimits.remove(node);
    joinedAt.remove(node);
    memberOf.remove(node);
    memberGoneSince.remove(node);
    entryMissingSince.remove(node);
    String prefix = node + "/";
    inventory.keySet().removeIf(k -> k.startsWith(prefix));
    simulated.removeIf(k -> k.startsWith(prefix));
    quarantineReasons.keySet().removeIf(k -> k.startsWith(prefix));
    kinds.clear();
    kindsEverywhere = null;
    for (Map.Entry<Set<String>, Map<String, Long>> n : nodeLimits.values()) {
      kinds.addAll(n.getKey());
      if (kindsEverywhere == null) {
        kindsEverywhere = new TreeSet<>(n.getKey());
      } else {
        kindsEverywhere.retainAll(n.getKey());
      }
    }
    limitFloor = limitFloor();
    metrics.nodesLost.increment();
    LOG.warning("node " + node + " stopped answering (" + why + "): out of the fleet, " + lost.size()
        + " job(s) on it queued again");
    for (String id : lost) {
      JsonObject job = forget(id);
      preempting.remove(id);
      if (job == null) continue;
      String reason = "node " + node + " stopped answering";
      queueAgain(job, reason, store.requeueByScheduler(id, reason));
    }
    publishShape();
    schedulePass();
  }

  /**
   * Whether the fleet's shape may be published. A scheduler taking over (cluster mode) knows no node at
   * first: publishing its empty shape would make every API refuse every job as one no node runs, until
   * the workers' registrations arrive. So it waits for the first node; until then each API keeps the
   * shape it had (jobs it accepts wait in the queue).
   */
  private boolean fleetKnown;

  /** The store's active jobs have been read (claims of runs are looked at from then on). */
  private boolean recovered;
  /** Jobs the store shows on GPUs that no worker has claimed yet since this scheduler started. */
  private final Map<String, JsonObject> unclaimed = new HashMap<>();

  /** Waits {@code graceMs} for workers to claim the runs found on GPUs at start (cluster mode, ADR 19). */
  public SchedulerVerticle withTakeover(long graceMs) {
    this.claimGraceMs = graceMs;
    return this;
  }

  /**
   * Cluster mode, every {@link #SWEEP_EVERY_MS}: queues the jobs the store holds as QUEUED, that entered the
   * queue (submitted, or re-queued by a worker after a preemption or a restart) since the last look (less
   * {@link #sweepMarginMs}) and at least {@link #SWEEP_MIN_AGE_MS} ago, that this scheduler was not told
   * of: their message went to a scheduler that died, was deposed or was cut off, while the cluster still
   * routed messages to it, or was lost (ADR 19).
   */
  private void sweepQueued() {
    if (deposed || sweeping) return;
    sweeping = true;
    // a submission younger than this may have its message still on the way (under load, seconds)
    long upTo = System.currentTimeMillis() - SWEEP_MIN_AGE_MS;
    long from = sweptUpToMs - sweepMarginMs;
    vertx.executeBlocking(() -> store.queuedIdsBlocking(from, upTo)).compose(ids -> {
      List<String> unknown = ids.stream().filter(id -> !jobs.containsKey(id)).toList();
      return unknown.isEmpty() ? Future.succeededFuture(List.<JobRecord>of()) : vertx.executeBlocking(() -> store.jobsBlocking(unknown));
    }).onComplete(ar -> {
      sweeping = false;
      if (ar.failed()) {
        LOG.warning("could not read the queued jobs: " + ar.cause().getMessage());
        return;
      }
      sweptUpToMs = upTo;
      int found = 0;
      for (JobRecord j : ar.result()) {
        if (deposed || j.state() != JobState.QUEUED || jobs.containsKey(j.id())) continue;
        enqueue(JobMessages.fromRecord(j));
        found++;
      }
      metrics.repairedFromStore("submission", found);
      if (found > 0) LOG.info(found + " queued job(s) this scheduler had not been told of, found in the store: queued");
    });
  }

  /**
   * Cluster mode, every {@link #SWEEP_EVERY_MS}: applies the tenant policies the store holds where they differ
   * from this scheduler's. A policy change is published once, by the API instance that stored it; a
   * scheduler that took the role while the cluster did not yet route to it, or that read the policies
   * while the change was being stored, would otherwise keep the old policy until the next change.
   */
  private void rereadPolicies() {
    if (deposed || rereadingPolicies) return;
    rereadingPolicies = true;
    long messagesBefore = policyMessages;
    vertx.executeBlocking(store::tenantPoliciesBlocking).onComplete(ar -> {
      rereadingPolicies = false;
      if (ar.failed()) {
        LOG.warning("could not read the tenant policies: " + ar.cause().getMessage());
        return;
      }
      // a change told while the store was read may be newer than what was read: the next look applies it
      if (deposed || policyMessages != messagesBefore) return;
      java.util.Set<String> reset = engine.tenantsWithPolicy();
      int changed = 0;
      for (var t : ar.result()) {
        reset.remove(t.id());
        int quota = t.gpuQuota() == null ? Integer.MAX_VALUE : t.gpuQuota();
        int manyAt = t.maxQueuedJobs() == null ? 0 : listedAt(t.maxQueuedJobs());
        if (engine.weight(t.id()) != t.weight() || engine.quota(t.id()) != quota || engine.manyQueuedAtOf(t.id()) != manyAt) {
          setTenant(t.id(), t.weight(), t.gpuQuota(), t.maxQueuedJobs());
          changed++;
        }
      }
      for (String id : reset) setTenant(id, 1.0, null, null); // back to the default in the store
      changed += reset.size();
      metrics.repairedFromStore("policy", changed);
      if (changed > 0) {
        LOG.info(changed + " tenant policy change(s) this scheduler had not been told of, read from the store: applied");
        schedulePass();
      }
    });
  }

  private boolean rereadingPolicies;

  /**
   * Cluster mode, every {@link #SWEEP_EVERY_MS}: checks the quarantined GPUs against the store, which holds
   * every quarantine until it is lifted. A quarantine the store holds and this scheduler does not is taken
   * (its message went to a scheduler that is gone); one this scheduler holds and the store has not held at
   * two looks in a row is lifted (the lift was told to a scheduler that is gone). Two looks, because a
   * worker tells a quarantine before it stores it: one look's absence may be the write on its way.
   */
  private void rereadQuarantines() {
    if (deposed || rereadingQuarantines) return;
    rereadingQuarantines = true;
    long messagesBefore = quarantineMessages;
    vertx.executeBlocking(store::quarantinesBlocking).onComplete(ar -> {
      rereadingQuarantines = false;
      if (ar.failed()) {
        LOG.warning("could not read the quarantined GPUs: " + ar.cause().getMessage());
        return;
      }
      if (deposed || quarantineMessages != messagesBefore) return; // told meanwhile: the next look decides
      Map<String, Map<Integer, String>> stored = ar.result();
      int taken = 0;
      int lifted = 0;
      for (var n : stored.entrySet()) {
        if (!nodeLimits.containsKey(n.getKey())) continue;
        for (var d : n.getValue().entrySet()) {
          if (engine.quarantine(n.getKey(), d.getKey())) {
            quarantineReasons.put(n.getKey() + "/" + d.getKey(), d.getValue());
            LOG.warning("GPU " + n.getKey() + "/" + d.getKey() + " out of service (found quarantined in the store): "
                + d.getValue());
            taken++;
          }
        }
      }
      java.util.Set<String> missing = new java.util.HashSet<>();
      for (String key : List.copyOf(quarantineReasons.keySet())) {
        int slash = key.lastIndexOf('/');
        String node = key.substring(0, slash);
        int device = Integer.parseInt(key.substring(slash + 1));
        if (stored.getOrDefault(node, Map.of()).containsKey(device)) continue;
        if (!notQuarantinedInStore.contains(key)) {
          missing.add(key);
        } else if (engine.unquarantine(node, device)) {
          quarantineReasons.remove(key);
          LOG.info("GPU " + key + " back in service (its quarantine was lifted in the store)");
          lifted++;
        } else {
          quarantineReasons.remove(key);
        }
      }
      notQuarantinedInStore = missing;
      metrics.repairedFromStore("quarantine", taken);
      metrics.repairedFromStore("lift", lifted);
      if (taken + lifted > 0) {
        publishShape();
        schedulePass();
      }
    });
  }

  private boolean rereadingQuarantines;
  /** Quarantines and lifts told on the bus so far. */
  private long quarantineMessages;
  /** GPUs quarantined here that the last look did not find in the store ("node/device"). */
  private java.util.Set<String> notQuarantinedInStore = java.util.Set.of();
  /** Policy changes told on the bus so far. */
  private long policyMessages;

  /** Cluster mode: how often the store is looked at for submissions this scheduler was not told of. */
  static final long SWEEP_EVERY_MS = 10_000;
  /** Submissions younger than this are not looked for: their message may be on its way. */
  static final long SWEEP_MIN_AGE_MS = 5_000;
  /**
   * How far before the last look each look starts (cluster.sweepMarginSeconds): the time a job entered the
   * queue is stamped by its API instance or worker (another host's clock) before its write commits.
   */
  private long sweepMarginMs = 60_000;
  /** Submissions up to here (ms, less the margin) were looked for; earlier ones were read at start. */
  private long sweptUpToMs;
  private boolean sweeping;
  /** The lease is lost (cluster mode): this scheduler does nothing more, not even on its timers. */
  private boolean deposed;

  private void requeueUnclaimed() {
    if (unclaimed.isEmpty()) return;
    LOG.info(unclaimed.size() + " job(s) on GPUs claimed by no worker after " + claimGraceMs + " ms: re-queued");
    for (JsonObject job : List.copyOf(unclaimed.values())) {
      String id = job.getString("id");
      unclaimed.remove(id);
      Future.fromCompletionStage(store.requeueByScheduler(id, "re-queued: no node claimed its run after a scheduler"
          + " took over"), vertx.getOrCreateContext()).onSuccess(moved -> {
            // not moved: it ended meanwhile, or this scheduler's lease is gone
            if (moved) enqueue(job);
          }).onFailure(e -> LOG.warning("could not re-queue " + id + ": " + e.getMessage()));
    }
  }

  /**
   * The runs a worker says it has ({@code running}: job id and devices): adopted when the store shows
   * them on GPUs and no worker claimed them yet; a run of a job this scheduler gave up on (re-queued,
   * or ended) is stopped.
   */
  /** Id prefix of a stale run's GPUs, held until it has stopped (see adoptClaims). */
  private static final String STALE = "stale:";

  private boolean heldOn(String jobId, String nodeId) {
    Assignment a = engine.assignmentOf(jobId);
    return a != null && a.parts().stream().anyMatch(p -> p.nodeId().equals(nodeId));
  }

  private void adoptClaims(String nodeId, JsonObject body) {
    JsonArray running = body.getJsonArray("running");
    if (running == null || !recovered) return;
    long now = System.currentTimeMillis();
    for (Object o : running) {
      JsonObject claim = (JsonObject) o;
      String jobId = claim.getString("jobId");
      if (heldOn(jobId, nodeId) || heldOn(STALE + jobId, nodeId)) continue;
      JsonObject job = engine.isRunning(jobId) ? null : unclaimed.remove(jobId);
      List<Integer> devices = new ArrayList<>();
      claim.getJsonArray("devices", new JsonArray()).forEach(d -> devices.add(((Number) d).intValue()));
      if (job != null && engine.adopt(request(job), nodeId, devices, now)) {
        jobs.put(jobId, job);
        rememberPreemptions(job);
        LOG.info("adopted " + jobId + ", running on " + nodeId + " " + devices);
      } else {
        if (job != null) unclaimed.put(jobId, job);
        // a run of a job queued again, or running elsewhere: stopped, its GPUs kept busy until it has ended
        engine.adopt(new JobRequest(STALE + jobId, STALE, 0, devices.size(), null, 0L, Map.of(), 60L, false, Map.of()),
            nodeId, devices, now);
        LOG.warning("node " + nodeId + " runs " + jobId + ", which this scheduler does not hold on it: stopped");
        vertx.eventBus().send(Addresses.workerCancel(nodeId), new JsonObject().put("jobId", jobId).put("stale", true));
      }
    }
  }

  /** Stops placing new jobs (shutdown drains what runs). */
  public void stopPlacing() {
    stopping = true;
  }

  /**
   * Graceful stop: ends the pricing window under way (what it sampled would be lost with this scheduler, and
   * the next one starts its own window when it starts) and sends billing every window it has not taken,
   * waiting up to {@code maxMs}. Nothing for a deposed scheduler: another one owns the windows now.
   */
  public Future<Void> closeOpenWindow(long maxMs) {
    if (context == null) return Future.succeededFuture(); // never started
    io.vertx.core.Promise<Void> done = io.vertx.core.Promise.promise();
    context.runOnContext(v -> {
      if (deposed || pricingWindowMs <= 0) {
        done.complete();
        return;
      }
      long now = System.currentTimeMillis();
      windowsEnded = true;
      if (windowSamples > 0 && now > windowStartMs) closeWindow(now, nodesNow(), true);
      windowRetryAtMs = 0;
      sendWindows(now);
      long deadline = now + maxMs;
      vertx.setPeriodic(100, id -> {
        long t = System.currentTimeMillis();
        if ((unsentWindows.isEmpty() || t > deadline) && (!windowSaveInFlight || t > deadline)) {
          vertx.cancelTimer(id);
          if (!unsentWindows.isEmpty()) {
            LOG.warning(unsentWindows.size() + " pricing window(s) not taken by billing before this scheduler stopped:"
                + " saved, the next scheduler to start sends them");
          }
          // what billing took is no longer anyone's to send; what it did not take is the next scheduler's
          String left = pendingWindowsJson(t);
          Future.fromCompletionStage(store.savePendingWindows(schedulerId, left, t), vertx.getOrCreateContext())
              .onComplete(ar -> {
                if (ar.failed()) LOG.warning("pricing windows not saved at stop: " + ar.cause());
                done.complete();
              });
        } else {
          sendWindows(t);
        }
      });
    });
    return done.future();
  }

  /**
   * The lease is lost (cluster mode, ADR 19): places nothing and, on its timers, judges no node, closes
   * no pricing window, publishes no fleet or queue and looks for no submission any more, even while its
   * undeployment waits on a cluster it cannot reach. Its writes were fenced already; this keeps it quiet.
   */
  public void depose() {
    stopping = true;
    deposed = true;
  }

  private void onNode(JsonObject body) {
    String nodeId = body.getString("nodeId");
    // a scheduler taking over (ADR 19) learns nodes only once it knows which jobs run: else it could place
    // jobs on GPUs busy with runs not claimed yet. The hello that follows the store's read asks again.
    if (claimGraceMs > 0 && !recovered) return;
    joinedAt.putIfAbsent(nodeId, System.currentTimeMillis());
    if (body.getString("member") != null) memberOf.put(nodeId, body.getString("member"));
    if (nodeLimits.containsKey(nodeId)) {
      // registered again (answering a new scheduler's hello, or restarted): its GPUs are known; its runs may not be
      adoptClaims(nodeId, body);
      reconcileHeld(nodeId, body);
      if (quarantineFrom(nodeId, body)) publishShape();
      schedulePass();
      return;
    }
    List<Device> devices = new ArrayList<>();
    for (Object o : body.getJsonArray("devices")) {
      JsonObject d = (JsonObject) o;
      devices.add(new Device(d.getString("host", nodeId), d.getInteger("index"), d.getString("gpuClass"),
          d.getLong("memoryMiB"), d.getBoolean("simulated", false)));
      if (d.getBoolean("simulated", false)) simulated.add(nodeId + "/" + d.getInteger("index"));
      inventory.put(nodeId + "/" + d.getInteger("index"), d.copy());
    }
    Set<String> nodeKinds = new TreeSet<>();
    body.getJsonArray("kinds").forEach(k -> nodeKinds.add((String) k));
    JsonObject limits = body.getJsonObject("limits", new JsonObject());
    Map<String, Long> own = new HashMap<>();
    limits.forEach(e -> own.put(e.getKey(), ((Number) e.getValue()).longValue()));
    // its labels are its kinds and those an operator gave it: a node's registration cannot claim any
    engine.addNode(nodeId, devices, placementLabels(nodeKinds, operatorLabels.getOrDefault(nodeId, Map.of())), own);
    kinds.addAll(nodeKinds);
    nodeLimits.put(nodeId, Map.entry(nodeKinds, own));
    Set<String> everywhereBefore = kindsEverywhere == null ? null : Set.copyOf(kindsEverywhere);
    if (kindsEverywhere == null) {
      kindsEverywhere = new TreeSet<>(nodeKinds);
    } else {
      kindsEverywhere.retainAll(nodeKinds);
    }
    Map<String, Long> floorBefore = limitFloor;
    limitFloor = limitFloor();
    if (!java.util.Objects.equals(everywhereBefore, kindsEverywhere) || !floorBefore.equals(limitFloor)) {
      // queued jobs were matched against the fleet before this node (or, queued before any node, against
      // none): a kind it lacks, or a smaller limit it has, may now need a node that runs or reaches it
      List<JobRequest> changed = new ArrayList<>();
      for (JobRequest queued : engine.queuedJobs()) {
        JsonObject job = jobs.get(queued.id());
        if (job == null) continue;
        JobRequest now = request(job);
        // only what placement must now also check (a label or a need it lacks): a requirement that
        // fell away, such as a kind every node runs now, does no harm and is not worth the requeue
        if (!queued.needs().equals(now.needs()) || !queued.labels().entrySet().containsAll(now.labels().entrySet())) {
          changed.add(now);
        }
      }
      if (!changed.isEmpty()) LOG.info("node " + nodeId + ": " + engine.requeue(changed) + " queued job(s) matched again");
    }
    LOG.info("node " + nodeId + " joined with " + devices.size() + " device(s)");
    fleetKnown = true;
    adoptClaims(nodeId, body);
    quarantineFrom(nodeId, body);
    publishShape();
    schedulePass();
  }

  /** Takes a node's GPUs that its registration says are quarantined out of service; true if any was not yet. */
  private boolean quarantineFrom(String nodeId, JsonObject registration) {
    boolean changed = false;
    for (Map.Entry<String, Object> q : registration.getJsonObject("quarantined", new JsonObject())) {
      int device;
      try {
        device = Integer.parseInt(q.getKey());
      } catch (NumberFormatException e) {
        continue;
      }
      if (engine.quarantine(nodeId, device)) {
        quarantineReasons.put(nodeId + "/" + device, String.valueOf(q.getValue()));
        LOG.warning("GPU " + nodeId + "/" + device + " out of service (its node's registration): " + q.getValue());
        changed = true;
      }
    }
    return changed;
  }

  private JobRequest request(JsonObject job) {
    String kind = job.getString("kind");
    Map<String, String> labels = kindsEverywhere != null && kindsEverywhere.contains(kind)
        ? Map.of() : Map.of(KIND_LABEL + kind, "true");
    JsonObject nodeLabels = job.getJsonObject("nodeLabels"); // absent for most jobs: nothing made for them
    if (nodeLabels != null && !nodeLabels.isEmpty()) {
      // the labels the job asks a node for (ADR 29), beside the kind's
      labels = new HashMap<>(labels);
      labels.putAll(NodeLabels.fromJson(nodeLabels));
    }
    // a parameter above the smallest limit of the kind's nodes must land on a node that reaches it
    Map<String, Long> needs = Map.of();
    JsonObject params = job.getJsonObject("params");
    for (Map.Entry<String, Long> floor : limitFloor.entrySet()) {
      String key = floor.getKey();
      if (params == null || !key.startsWith(kind + ".")) continue;
      if (params.getValue(key.substring(kind.length() + 1)) instanceof Number asked && asked.longValue() > floor.getValue()) {
        if (needs.isEmpty()) needs = new HashMap<>();
        needs.put(key, asked.longValue());
      }
    }
    return new JobRequest(job.getString("id"), job.getString("tenantId"), job.getInteger("priority", 0),
        job.getInteger("gpus"), job.getString("gpuClass"), job.getLong("memoryMiB", 0L), labels,
        job.getLong("maxSeconds"), false, needs);
  }

  /** See {@link #limitFloor}: for each limited key, the smallest limit among the nodes running its kind. */
  private Map<String, Long> limitFloor() {
    return Map.copyOf(acrossNodes(Math::min));
  }

  /**
   * For each limited job parameter ("kind.param", as {@code GpuBackend.paramLimits} names them), the
   * limits of the nodes that run its kind combined by {@code pick}, a node without a limit of its own
   * counting as unlimited; keys that come out unlimited, or that no node running the kind limits, are
   * left out.
   */
  private Map<String, Long> acrossNodes(java.util.function.LongBinaryOperator pick) {
    Map<String, Long> out = new java.util.TreeMap<>();
    for (Map.Entry<Set<String>, Map<String, Long>> node : nodeLimits.values()) {
      for (String key : node.getValue().keySet()) {
        int dot = key.indexOf('.');
        if (dot <= 0 || out.containsKey(key)) continue; // anything but "kind.param" limits nothing placement knows
        String kind = key.substring(0, dot);
        Long combined = null;
        for (Map.Entry<Set<String>, Map<String, Long>> n : nodeLimits.values()) {
          if (!n.getKey().contains(kind)) continue;
          long limit = n.getValue().getOrDefault(key, Long.MAX_VALUE);
          combined = combined == null ? limit : pick.applyAsLong(combined, limit);
        }
        out.put(key, combined);
      }
    }
    out.values().removeIf(v -> v == null || v == Long.MAX_VALUE);
    return out;
  }

  private void enqueue(JsonObject job) {
    String id = job.getString("id");
    if (jobs.containsKey(id)) return;
    unclaimed.remove(id);
    jobs.put(id, job);
    rememberPreemptions(job);
    enqueuedNanos.put(id, System.nanoTime());
    engine.enqueue(request(job), System.currentTimeMillis());
    Long deadline = job.getLong("deadlineAt");
    if (deadline != null) deadlines.computeIfAbsent(deadline, k -> new java.util.HashSet<>()).add(id);
    schedulePass();
  }

  /**
   * A preempted job comes back with its count: in the worker's re-submission (which adds one), or read
   * from the store by a scheduler that starts or takes over (V10).
   */
  private void rememberPreemptions(JsonObject job) {
    int preempted = job.getInteger("preemptions", 0);
    if (preempted > 0) preemptions.merge(job.getString("id"), preempted, Math::max);
  }

  /**
   * A job leaves this scheduler (finished, cancelled, lost, or its run released): what it held here by
   * its id goes with it. A preempted job's count comes back with its re-submission ({@link #enqueue}).
   */
  private JsonObject forget(String jobId) {
    preemptions.remove(jobId);
    return jobs.remove(jobId);
  }

  /**
   * How many jobs each of the scheduler's per-job maps holds now (tests: nothing stays behind for a job
   * that left; {@code deadlines} keeps an id until its deadline passes, and is not counted).
   */
  public Future<Map<String, Integer>> perJobState() {
    io.vertx.core.Promise<Map<String, Integer>> sizes = io.vertx.core.Promise.promise();
    context.runOnContext(v -> sizes.complete(Map.of("jobs", jobs.size(), "enqueuedNanos", enqueuedNanos.size(),
        "preempting", preempting.size(), "preemptions", preemptions.size(), "unclaimed", unclaimed.size())));
    return sizes.future();
  }

  /** One second of each class's busy and available GPUs; a window's totals go to billing when it ends. */
  private void samplePricingWindow(long nowMs) {
    engine.byClass().forEach((cls, ft) -> {
      long[] u = windowUsage.computeIfAbsent(cls, k -> new long[2]);
      u[0] += ft[1] - ft[0];
      u[1] += ft[1];
    });
    Map<String, Object[]> nodes = nodesNow();
    nodes.forEach((n, v) -> windowOnline.merge(n, (long) (Integer) v[2], Long::sum));
    windowSamples++;
    if (nowMs - windowStartMs < pricingWindowMs) return;
    closeWindow(nowMs, nodes);
  }

  /** Ends the pricing window under way at {@code nowMs} and queues it for billing. */
  private void closeWindow(long nowMs, Map<String, Object[]> nodes) {
    closeWindow(nowMs, nodes, false);
  }

  /** The window under way as billing takes it, ending at {@code nowMs}. */
  private JsonObject windowJson(long nowMs, Map<String, Object[]> nodes, boolean partial) {
    JsonObject classes = new JsonObject();
    windowUsage.forEach((cls, u) -> classes.put(cls, new JsonObject().put("busyGpuSeconds", u[0]).put("availableGpuSeconds", u[1])));
    JsonObject nodeJson = new JsonObject();
    nodes.forEach((n, v) -> nodeJson.put(n, new JsonObject().put("gpus", v[0]).put("gpuClass", v[1])
        .put("online", windowOnline.getOrDefault(n, 0L) / (double) Math.max(1, (long) windowSamples * (Integer) v[0]))));
    return new JsonObject().put("startMs", windowStartMs).put("endMs", nowMs).put("classes", classes)
        .put("nodes", nodeJson).put("partial", partial);
  }

  /** {@code partial}: ended before its length (a stop); billing pays its seconds but moves no price on it. */
  private void closeWindow(long nowMs, Map<String, Object[]> nodes, boolean partial) {
    unsentWindows.addLast(windowJson(nowMs, nodes, partial));
    while (unsentWindows.size() > MAX_UNSENT_WINDOWS) {
      JsonObject dropped = unsentWindows.pollFirst();
      LOG.warning("pricing window " + dropped.getLong("startMs") + ".." + dropped.getLong("endMs") + " ms dropped: billing"
          + " has taken none of the last " + MAX_UNSENT_WINDOWS + " windows (its prices do not move, its seconds are not"
          + " paid by the bootstrap fund)");
    }
    windowUsage.clear();
    windowOnline.clear();
    windowSamples = 0;
    windowStartMs = nowMs;
    sendWindows(nowMs);
  }

  /**
   * Closed pricing windows billing has not answered yet, oldest first. Each is sent until billing answers that
   * it stored it (a billing role changing hands, a store out of reach), one at a time and in order, since each
   * window's prices are worked out from those the one before stored. Sent twice, a window moves no price and
   * pays no second that was paid (ADR 21).
   */
  private final java.util.ArrayDeque<JsonObject> unsentWindows = new java.util.ArrayDeque<>();
  private boolean windowInFlight;
  private long windowRetryAtMs;
  private long warnedWindowEndMs = -1;
  /** A day of the default 600 s windows. */
  static final int MAX_UNSENT_WINDOWS = 144;
  static final long WINDOW_RETRY_MS = 5_000;
  static final long WINDOW_ANSWER_MS = 30_000;

  private void sendWindows(long nowMs) {
    if (deposed || windowInFlight || unsentWindows.isEmpty() || nowMs < windowRetryAtMs) return;
    JsonObject w = unsentWindows.peekFirst();
    windowInFlight = true;
    vertx.eventBus().request(io.anneal.billing.BillingAddresses.CLASS_UTILIZATION, w,
        new io.vertx.core.eventbus.DeliveryOptions().setSendTimeout(WINDOW_ANSWER_MS)).onComplete(ar -> {
          windowInFlight = false;
          if (ar.succeeded()) {
            unsentWindows.remove(w);
            sendWindows(System.currentTimeMillis());
            return;
          }
          windowRetryAtMs = System.currentTimeMillis() + WINDOW_RETRY_MS;
          // once a window: billing out of reach for long would otherwise fill the log
          long endMs = w.getLong("endMs");
          java.util.logging.Level level = endMs == warnedWindowEndMs ? java.util.logging.Level.FINE
              : java.util.logging.Level.WARNING;
          warnedWindowEndMs = endMs;
          LOG.log(level, "pricing window ending at " + w.getLong("endMs") + " ms not taken by billing ("
              + ar.cause().getMessage() + "); sent again every " + WINDOW_RETRY_MS / 1000 + " s, " + unsentWindows.size()
              + " window(s) waiting");
        });
  }

  /** How often the windows billing has not stored are saved to the store (ADR 22): what a crash can lose. */
  public static final long WINDOW_SAVE_MS = 5_000;
  private long windowsSavedAtMs;
  private boolean windowSaveInFlight;
  /** Whether the store holds no windows of this scheduler's (nothing to save while there is none). */
  private boolean savedNone = true;
  private boolean warnedWindowSave;
  /** Set by a graceful stop: no more samples, and what is left it saves itself. */
  private boolean windowsEnded;

  /**
   * The windows billing has not stored, oldest first: the closed ones waiting, then the one under way as it
   * stands now (marked partial: should a successor send it, its seconds are paid and no price moves on it).
   * Cut to the store's column from the oldest, with a warning.
   */
  private String pendingWindowsJson(long nowMs) {
    List<JsonObject> all = new ArrayList<>(unsentWindows);
    if (windowSamples > 0 && nowMs > windowStartMs) all.add(windowJson(nowMs, nodesNow(), true));
    String json = new JsonArray(new ArrayList<>(all)).encode();
    while (json.length() > JobStore.MAX_PENDING_WINDOWS_CHARS && !all.isEmpty()) {
      JsonObject dropped = all.remove(0);
      LOG.warning("pricing window " + dropped.getLong("startMs") + ".." + dropped.getLong("endMs") + " ms not saved:"
          + " the windows billing has not taken exceed what the store keeps; lost if this scheduler dies");
      json = new JsonArray(new ArrayList<>(all)).encode();
    }
    return json;
  }

  /**
   * Saves the windows billing has not stored, every {@link #WINDOW_SAVE_MS} (ADR 22), so that a scheduler
   * that dies does not take the seconds it sampled with it: the next one to start sends them.
   */
  private void saveWindows(long nowMs) {
    if (deposed || windowsEnded || windowSaveInFlight || nowMs - windowsSavedAtMs < WINDOW_SAVE_MS) return;
    String json = pendingWindowsJson(nowMs);
    windowsSavedAtMs = nowMs;
    boolean none = json.equals("[]");
    if (none && savedNone) return;
    windowSaveInFlight = true;
    Future.fromCompletionStage(store.savePendingWindows(schedulerId, json, nowMs), vertx.getOrCreateContext())
        .onComplete(ar -> {
          windowSaveInFlight = false;
          if (ar.succeeded()) {
            savedNone = none;
            warnedWindowSave = false;
          } else {
            LOG.log(warnedWindowSave ? java.util.logging.Level.FINE : java.util.logging.Level.WARNING,
                "pricing windows not saved (" + ar.cause() + "); tried again in " + WINDOW_SAVE_MS / 1000 + " s");
            warnedWindowSave = true;
          }
        });
  }

  /**
   * The windows other schedulers saved before {@code savedBeforeMs} and billing has not stored (one that
   * crashed, or lost its lease), sent in time order with this scheduler's own (ADR 22): at start, all of them; in
   * cluster mode also, with the other looks at the store, those not saved again for a while (a scheduler
   * deposed after this one took over went on saving until it learnt). Billing pays each second once
   * (ADR 21), so a window sent before and sent again pays nothing twice.
   */
  private Future<Void> takeSavedWindows(long savedBeforeMs) {
    if (pricingWindowMs <= 0 || deposed) return Future.succeededFuture();
    Future<List<String>> saved =
        Future.fromCompletionStage(store.takePendingWindows(schedulerId, savedBeforeMs), vertx.getOrCreateContext());
    return saved.map(lists -> {
      List<JsonObject> windows = new ArrayList<>();
      for (String json : lists) {
        for (Object w : new JsonArray(json)) windows.add((JsonObject) w);
      }
      List<JsonObject> queue = inTimeOrder(unsentWindows, windows, windowInFlight);
      unsentWindows.clear();
      unsentWindows.addAll(queue);
      metrics.repairedFromStore("window", windows.size());
      if (!windows.isEmpty()) {
        LOG.info(windows.size() + " pricing window(s) that scheduler(s) before this one sampled and billing had not"
            + " stored are sent now");
        sendWindows(System.currentTimeMillis());
      }
      return (Void) null;
    }).recover(e -> {
      LOG.warning("pricing windows saved by earlier schedulers not read (" + e + "): their seconds stay unpaid until a"
          + " scheduler reads them");
      return Future.succeededFuture();
    });
  }

  /**
   * The windows to send, {@code own} (this scheduler's, oldest first) and {@code taken} (saved by schedulers
   * before it) together, by start then end. Billing pays a window from the latest end it paid (ADR 21), so a
   * window sent after a later one would be paid for none of its seconds: a deposed leader's windows, taken
   * while this scheduler's own wait for billing, may be later than some of them. The first of {@code own}
   * stays first when it is being sent.
   */
  static List<JsonObject> inTimeOrder(java.util.Collection<JsonObject> own, List<JsonObject> taken, boolean firstInFlight) {
    List<JsonObject> rest = new ArrayList<>(own);
    JsonObject inFlight = firstInFlight && !rest.isEmpty() ? rest.remove(0) : null;
    rest.addAll(taken);
    rest.sort(java.util.Comparator.comparingLong((JsonObject w) -> w.getLong("startMs"))
        .thenComparingLong(w -> w.getLong("endMs")));
    if (inFlight != null) rest.add(0, inFlight);
    return rest;
  }

  /** node → {GPU count, GPU class of its first device, GPUs in service (not quarantined)} of the fleet now. */
  private Map<String, Object[]> nodesNow() {
    Map<String, Object[]> out = new java.util.LinkedHashMap<>();
    for (Object[] d : engine.devices()) {
      Object[] n = out.computeIfAbsent((String) d[0], k -> new Object[] {0, d[2], 0});
      n[0] = (Integer) n[0] + 1;
      if (!(Boolean) d[5]) n[2] = (Integer) n[2] + 1;
    }
    return out;
  }

  /** Fails every job still queued past its start-by deadline, with its escrow returned. */
  private void expireDeadlines(long nowMs) {
    while (!deadlines.isEmpty() && deadlines.firstKey() <= nowMs) {
      for (String jobId : deadlines.pollFirstEntry().getValue()) {
        if (!engine.dequeue(jobId)) continue; // placed, cancelled or finished meanwhile
        enqueuedNanos.remove(jobId);
        expire(forget(jobId), nowMs);
      }
    }
  }

  private void expire(JsonObject job, long nowMs) {
    String jobId = job.getString("id");
    String reason = "deadline: not started within " + (job.getLong("deadlineAt") - job.getLong("submittedAt")) / 1000
        + " s of submission";
    Future.fromCompletionStage(store.expireQueued(jobId, reason, nowMs), vertx.getOrCreateContext()).onComplete(ar -> {
      if (ar.succeeded() && ar.result()) {
        vertx.eventBus().publish(Addresses.JOB_EVENTS, JobMessages.event(job, JobState.FAILED).put("outcome", "FAILED")
            .put("error", reason));
      } else if (ar.failed()) {
        LOG.warning("could not expire " + jobId + ": " + ar.cause().getMessage() + "; it stays queued");
        enqueue(job);
      }
    });
  }

  private void onReleased(JsonObject body) {
    String jobId = body.getString("jobId");
    String node = body.getString("nodeId");
    if (node != null && heldOn(STALE + jobId, node)) {
      engine.release(STALE + jobId, System.currentTimeMillis()); // a stale run has stopped (adoptClaims)
    }
    // only GPUs the job holds on that node: a stale run elsewhere (cluster mode, ADR 19) frees nothing here
    if (engine.isRunning(jobId) && (node == null || heldOn(jobId, node))) {
      engine.release(jobId, System.currentTimeMillis());
      forget(jobId);
      preempting.remove(jobId);
    } else if (!engine.isRunning(jobId)) {
      preempting.remove(jobId);
    }
    schedulePass();
  }

  private void onCancel(Message<JsonObject> m) {
    String jobId = m.body().getString("jobId");
    if (engine.dequeue(jobId)) {
      JsonObject job = forget(jobId);
      enqueuedNanos.remove(jobId);
      Future.fromCompletionStage(store.cancelQueued(jobId, System.currentTimeMillis()), vertx.getOrCreateContext())
          .onSuccess(ok -> {
            publishQueue();
            if (ok) {
              vertx.eventBus().publish(Addresses.JOB_EVENTS, JobMessages.event(job, JobState.CANCELLED)
                  .put("outcome", "CANCELLED"));
            }
            m.reply(new JsonObject().put("result", ok ? "cancelled" : "finished"));
          })
          .onFailure(e -> m.fail(500, e.getMessage()));
      return;
    }
    Assignment a = engine.assignmentOf(jobId);
    if (a != null) {
      for (Assignment.Part p : a.parts()) {
        vertx.eventBus().send(Addresses.workerCancel(p.nodeId()), new JsonObject().put("jobId", jobId));
      }
      m.reply(new JsonObject().put("result", "cancelling"));
      return;
    }
    m.reply(new JsonObject().put("result", "not-active"));
  }

  private void schedulePass() {
    if (passScheduled) return;
    passScheduled = true;
    vertx.runOnContext(v -> {
      passScheduled = false;
      placePass();
    });
  }

  /** One placement pass; more passes follow while jobs keep being placed. */
  private void placePass() {
    if (stopping) return;
    List<Assignment> placed = engine.schedule(System.currentTimeMillis(), MAX_PER_PASS);
    long now = System.nanoTime();
    for (Assignment a : placed) {
      Long since = enqueuedNanos.remove(a.jobId());
      if (since != null) metrics.placementLatency.record(now - since, TimeUnit.NANOSECONDS);
      dispatch(jobs.get(a.jobId()), a);
    }
    if (placed.size() == MAX_PER_PASS) schedulePass();
    if (!placed.isEmpty()) publishQueue();
    preemptIfBlocked();
    // metrics walk every host: they are refreshed by the 1 s timer (publishShape), not per pass
  }

  /**
   * When the oldest job of the highest waiting priority cannot be placed, stop lower-priority jobs
   * on one host to make room (one preemption round at a time; never equal or higher priority, never
   * a job already preempted MAX_PREEMPTIONS times). Their runs are metered and billed, and they are
   * re-queued; the freed GPUs go to the highest priority first on the next pass.
   */
  private void preemptIfBlocked() {
    if (!preempting.isEmpty()) return;
    var head = engine.highestPriorityWaiting();
    if (head.isEmpty() || head.get().priority() == 0) return;
    List<String> victims = engine.preemptionVictims(head.get(), preemptions, MAX_PREEMPTIONS);
    for (String v : victims) {
      Assignment a = engine.assignmentOf(v);
      preempting.add(v);
      preemptions.merge(v, 1, Integer::sum);
      metrics.preemptions.increment();
      for (Assignment.Part p : a.parts()) {
        vertx.eventBus().send(Addresses.workerCancel(p.nodeId()), new JsonObject().put("jobId", v).put("preempt", true));
      }
    }
    if (!victims.isEmpty()) {
      LOG.info("preempting " + victims + " for " + head.get().id() + " (priority " + head.get().priority() + ")");
    }
  }

  private void dispatch(JsonObject job, Assignment a) {
    String jobId = job.getString("id");
    Long deadline = job.getLong("deadlineAt");
    if (deadline != null && deadline <= System.currentTimeMillis()) {
      // too late to start: give the GPUs back and fail it
      engine.release(jobId, System.currentTimeMillis());
      forget(jobId);
      expire(job, System.currentTimeMillis());
      schedulePass();
      return;
    }
    Assignment.Part part = a.parts().get(0);
    JsonArray devices = new JsonArray(part.devices());
    Future.fromCompletionStage(store.placed(jobId, part.nodeId(), a.gpuClass(), devices.encode()), vertx.getOrCreateContext())
        .onComplete(ar -> {
          if (ar.succeeded() && ar.result()) {
            JsonObject run = job.copy().put("nodeId", part.nodeId()).put("gpuClass", a.gpuClass()).put("devices", devices);
            vertx.eventBus().publish(Addresses.JOB_EVENTS, JobMessages.event(job, JobState.PLACED)
                .put("nodeId", part.nodeId()).put("devices", devices));
            vertx.eventBus().send(Addresses.workerRun(part.nodeId()), run);
          } else {
            // cancelled meanwhile, or the store failed: give the GPUs back; a store failure re-queues
            engine.release(jobId, System.currentTimeMillis());
            forget(jobId);
            if (ar.failed()) {
              LOG.warning("could not record placement of " + jobId + ": " + ar.cause().getMessage() + "; re-queued");
              enqueue(job);
            }
            schedulePass();
          }
        });
  }

  private void updateMetrics() {
    metrics.fleet(engine.freeGpus(), engine.totalGpus(), engine.queuedCount());
    metrics.placement(engine.fragmentation(), engine.byClass(), engine.queueDepth());
  }

  private void publishShape() {
    if (!fleetKnown) {
      updateMetrics();
      return;
    }
    vertx.eventBus().publish(Addresses.FLEET_SHAPE, shape());
    publishQueue();
    updateMetrics();
  }

  private JsonObject shape() {
    JsonObject classes = new JsonObject();
    engine.shape().forEach((cls, v) -> classes.put(cls, new JsonObject().put("maxPerNode", v[0]).put("memoryMiB", (long) v[1])
        .put("installedPerNode", v[2])));
    return new JsonObject().put("classes", classes).put("kinds", new JsonArray(new ArrayList<>(kinds)))
        .put("limits", paramLimits()).put("labelled", labelledShape());
  }

  /**
   * The shape of the labelled nodes, per set of operator labels: {@code [{labels, classes}]} with
   * {@code classes} as in {@link #shape()}, so that the API refuses at submit a job that asks for
   * labels no node that could run it carries.
   */
  private JsonArray labelledShape() {
    Map<Map<String, String>, Set<String>> nodesBySet = new HashMap<>();
    operatorLabels.forEach((node, labels) -> {
      if (!labels.isEmpty() && nodeLimits.containsKey(node)) nodesBySet.computeIfAbsent(labels, k -> new HashSet<>()).add(node);
    });
    JsonArray out = new JsonArray();
    nodesBySet.forEach((labels, nodes) -> {
      JsonObject classes = new JsonObject();
      engine.shape(nodes::contains).forEach((cls, v) -> classes.put(cls, new JsonObject().put("maxPerNode", v[0])
          .put("memoryMiB", (long) v[1]).put("installedPerNode", v[2])));
      out.add(new JsonObject().put("labels", NodeLabels.toJson(labels)).put("classes", classes));
    });
    return out;
  }

  /** A node's labels for placement: the kinds it runs ({@link #KIND_LABEL}) and the operator's labels. */
  private static Map<String, String> placementLabels(Set<String> nodeKinds, Map<String, String> operator) {
    Map<String, String> labels = new HashMap<>(operator);
    nodeKinds.forEach(k -> labels.put(KIND_LABEL + k, "true"));
    return labels;
  }

  /**
   * An operator's labels for a node (told on the bus, or found in the store): kept for the node's next
   * registration and, if it is in the fleet, applied at once; queued jobs that ask for labels are matched
   * against them at the next pass. Jobs running there run on.
   */
  private void setOperatorLabels(String nodeId, Map<String, String> labels) {
    if (labels.isEmpty()) {
      operatorLabels.remove(nodeId);
    } else {
      operatorLabels.put(nodeId, Map.copyOf(labels));
    }
    Map.Entry<Set<String>, Map<String, Long>> known = nodeLimits.get(nodeId);
    if (known != null && engine.relabel(nodeId, placementLabels(known.getKey(), labels))) {
      LOG.info("node " + nodeId + " labelled " + labels);
      publishShape();
      schedulePass();
    }
  }

  /**
   * Cluster mode, every {@link #SWEEP_EVERY_MS}: takes the nodes' labels from the store, which holds them
   * (a change told to a scheduler that is gone, or a message this one missed), unless one was told meanwhile.
   */
  private void rereadLabels() {
    if (deposed) return;
    long messagesBefore = labelMessages;
    vertx.executeBlocking(store::nodeLabelsBlocking).onComplete(ar -> {
      if (ar.failed()) {
        LOG.warning("could not read the nodes' labels: " + ar.cause().getMessage());
        return;
      }
      if (deposed || labelMessages != messagesBefore) return; // told meanwhile: the next look decides
      Set<String> nodes = new HashSet<>(operatorLabels.keySet());
      nodes.addAll(ar.result().keySet());
      int repaired = 0;
      for (String node : nodes) {
        Map<String, String> stored = ar.result().getOrDefault(node, Map.of());
        if (stored.equals(operatorLabels.getOrDefault(node, Map.of()))) continue;
        setOperatorLabels(node, stored);
        repaired++;
      }
      metrics.repairedFromStore("labels", repaired);
    });
  }

  /** Labels an operator gave nodes (ADR 29), by node; also of nodes not in the fleet now. */
  private final Map<String, Map<String, String>> operatorLabels = new HashMap<>();
  /** Label changes told on the bus so far. */
  private long labelMessages;

  /**
   * The largest value of each limited job parameter that some node of the fleet accepts ("kind.param"
   * → max): a node that runs the kind without a limit of its own lifts it. The API refuses, at
   * submit, a job above it (no node could run it).
   */
  private JsonObject paramLimits() {
    JsonObject out = new JsonObject();
    acrossNodes(Math::max).forEach(out::put);
    return out;
  }

  /** The queue's length for the API's bound: after every pass that placed jobs, and with the shape. */
  private void publishQueue() {
    JsonObject tenants = new JsonObject();
    engine.tenantsWithManyQueued().forEach(tenants::put);
    vertx.eventBus().publish(Addresses.QUEUE_STATE,
        new JsonObject().put("queued", engine.queuedCount()).put("scheduler", schedulerId)
            .put("seen", new JsonObject(new HashMap<>(seenByApi))).put("tenants", tenants));
  }

  private JsonObject fleetView() {
    Map<String, String> jobOn = new HashMap<>();
    for (String id : jobs.keySet()) {
      Assignment a = engine.assignmentOf(id);
      if (a == null) continue;
      for (Assignment.Part p : a.parts()) p.devices().forEach(i -> jobOn.put(p.nodeId() + "/" + i, id));
    }
    JsonArray gpus = new JsonArray();
    for (Object[] d : engine.devices()) {
      String nodeId = (String) d[0];
      JsonObject reported = inventory.getOrDefault(nodeId + "/" + d[1], new JsonObject());
      gpus.add(new JsonObject().put("nodeId", nodeId).put("index", d[1]).put("gpuClass", d[2]).put("memoryMiB", d[3])
          .put("name", reported.getString("name")).put("uuid", reported.getString("uuid"))
          .put("smCount", reported.getInteger("smCount")).put("computeCapability", reported.getString("computeCapability"))
          .put("driverVersion", reported.getString("driverVersion"))
          .put("freeMemoryMiB", reported.getLong("freeMemoryMiB"))
          .put("free", d[4]).put("jobId", jobOn.get(nodeId + "/" + d[1])).put("simulated", simulated.contains(nodeId + "/" + d[1]))
          .put("quarantined", d[5]).put("quarantineReason", quarantineReasons.get(nodeId + "/" + d[1]))
          .put("labels", NodeLabels.toJson(operatorLabels.getOrDefault(nodeId, Map.of()))));
    }
    JsonObject byClass = new JsonObject();
    engine.byClass().forEach((c, ft) -> byClass.put(c, new JsonObject().put("free", ft[0]).put("total", ft[1])));
    return new JsonObject().put("gpus", gpus).put("byClass", byClass).put("free", engine.freeGpus())
        .put("total", engine.totalGpus()).put("queued", engine.queuedCount()).put("running", engine.runningCount())
        .put("fragmentation", engine.fragmentation());
  }
}
