package io.anneal.worker;

import io.anneal.billing.BillingAddresses;
import io.anneal.billing.ReceiptJson;
import io.anneal.billing.ledger.NodeKey;
import io.anneal.billing.ledger.SqlLedger;
import io.anneal.billing.receipt.NodeKeys;
import io.anneal.billing.receipt.Receipt;
import io.anneal.billing.receipt.ReceiptCheck;
import io.anneal.billing.receipt.ReceiptSigner;
import io.anneal.billing.receipt.ReceiptVerifier;
import io.anneal.billing.receipt.SignedReceipt;
import io.anneal.bus.Addresses;
import io.anneal.gpu.GpuBackend;
import io.anneal.gpu.GpuDevice;
import io.anneal.gpu.RunControl;
import io.anneal.gpu.Workload;
import io.anneal.gpu.WorkloadException;
import io.anneal.gpu.WorkloadResult;
import io.anneal.job.JobState;
import io.anneal.metrics.Metrics;
import io.anneal.sched.JobMessages;
import io.anneal.store.JobStore;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.Message;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.security.KeyPair;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.logging.Logger;

/**
 * Runs placed jobs on this node's devices, one thread per device (backend calls block), then turns
 * each finished run into a signed receipt: written to the outbox with the job's final state in one
 * transaction, sent to billing, re-sent until billing acknowledges it.
 */
public final class WorkerVerticle extends VerticleBase {
  private static final Logger LOG = Logger.getLogger(WorkerVerticle.class.getName());
  private static final long OUTBOX_RETRY_MS = 3000;
  private static final int SIMULATED_GPUS_PER_HOST = 8;
  /** Infrastructure failures (device errors) are retried this often, then the job fails; job errors never are. */
  static final int MAX_INFRASTRUCTURE_RETRIES = 3;
  /**
   * Consecutive device failures after which a device is quarantined — if they came from at least
   * {@link #QUARANTINE_DISTINCT_JOBS} different jobs, so that one poisonous job (which fails anywhere)
   * cannot take a good device out of service.
   */
  static final int QUARANTINE_AFTER = 3;
  static final int QUARANTINE_DISTINCT_JOBS = 2;
  /** device → consecutive DEVICE_FAILURE runs and the jobs they came from; a success clears it. */
  private final Map<Integer, java.util.Set<String>> failingJobs = new java.util.HashMap<>();
  private final Map<Integer, Integer> consecutiveFailures = new java.util.HashMap<>();
  private final java.util.Set<Integer> quarantined = new java.util.HashSet<>();
  /** Why each quarantined device is out (told again to a scheduler that takes over). */
  private final Map<Integer, String> quarantineReasons = new java.util.TreeMap<>();

  /** A finished run waiting to be signed with the others of its flush. */
  private record Finished(JsonObject job, JobState outcome, String error, JsonObject result, Receipt receipt,
      boolean runningWritten) {}

  private final String nodeId;
  private final GpuBackend backend;
  /** The key this node signs with; replaced by a rotation (ADR 18), on this verticle's context. */
  private volatile KeyPair key;
  private final JobStore store;
  private final Metrics metrics;
  private volatile ReceiptSigner signer;
  /** Where the node's key files are (rotation writes the new pair there); null when not on disk. */
  private Path keyDir;
  /** A key rotation is under way. */
  private boolean rotating;
  /** The outbox is being signed again with the current key. */
  private boolean resigning;
  private final List<ExecutorService> deviceThreads = new ArrayList<>();
  private final Map<String, RunState> runs = new ConcurrentHashMap<>();
  private final List<Finished> toSign = new ArrayList<>();
  private final Set<String> inFlight = new HashSet<>();
  private boolean flushScheduled;
  /** Finished runs being signed or written; shutdown waits for them. */
  private int persisting;
  /** An outbox read is under way (touched on this verticle's context only). */
  private boolean resending;
  /** When a drain's time is up (set by {@link #drain}). */
  private long drainDeadlineMs = Long.MAX_VALUE;
  private volatile boolean draining;

  /** How long a job runs before its RUNNING state is written (shorter jobs skip that write). */
  static final long RUNNING_WRITE_DELAY_MS = 250;

  private static final class RunState {
    /** Set on the worker's event loop when the run has ended (the deferred RUNNING write is then skipped). */
    boolean ended;
    /** Set on the worker's event loop when the RUNNING write was made. */
    boolean runningWritten;
    volatile boolean cancelled;
    volatile boolean shutdown;
    volatile boolean preempted;
    /** The devices it runs on (claimed to a scheduler that takes over, ADR 19). */
    JsonArray devices;
    /** When the run started (ms). */
    volatile long startedAt;
    /** The scheduler gave the job up on this node (it stopped answering, ADR 19): the run's end is not recorded. */
    volatile boolean stale;
  }

  public WorkerVerticle(String nodeId, GpuBackend backend, KeyPair key, JobStore store, Metrics metrics) {
    this.nodeId = nodeId;
    this.backend = backend;
    this.key = key;
    this.store = store;
    this.metrics = metrics;
    this.signer = new ReceiptSigner(key.getPrivate());
  }

  /** The directory holding this node's key files, so that its key can be rotated (before deployment). */
  public WorkerVerticle withKeyDir(Path dir) {
    this.keyDir = dir;
    return this;
  }

  @Override
  public Future<?> start() {
    for (GpuDevice d : backend.devices()) {
      int idx = d.index();
      deviceThreads.add(Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "anneal-gpu-" + idx);
        t.setDaemon(true);
        return t;
      }));
    }
    var bus = vertx.eventBus();
    bus.<JsonObject>consumer(Addresses.workerRun(nodeId), m -> run(m.body()));
    bus.<JsonObject>consumer(Addresses.DEVICE_RESTORED, m -> {
      if (!nodeId.equals(m.body().getString("nodeId"))) return;
      int device = m.body().getInteger("device");
      quarantineReasons.remove(device);
      unrecorded.remove(device);
      if (quarantined.remove(device)) LOG.info("GPU " + nodeId + "/" + device + " back in service (quarantine lifted)");
      consecutiveFailures.remove(device);
      failingJobs.remove(device);
    });
    bus.<JsonObject>consumer(Addresses.workerRotateKey(nodeId), this::rotateKey);
    // an operator took a GPU out of service (stored by the API): its registrations say so from now on
    bus.<JsonObject>consumer(Addresses.workerQuarantine(nodeId), m -> {
      int device = m.body().getInteger("device", -1);
      if (device < 0 || device >= backend.devices().size() || !quarantined.add(device)) return;
      quarantineReasons.put(device, m.body().getString("reason"));
      LOG.warning("GPU " + nodeId + "/" + device + " quarantined by an operator: " + m.body().getString("reason"));
    });
    bus.<JsonObject>consumer(Addresses.workerCancel(nodeId), m -> {
      RunState s = runs.get(m.body().getString("jobId"));
      if (s != null) {
        s.preempted = m.body().getBoolean("preempt", false);
        s.stale = m.body().getBoolean("stale", false);
        s.cancelled = true;
      }
    });
    String pub = NodeKeys.encodePublic(key.getPublic());
    return Future.fromCompletionStage(store.writer().submit(c -> SqlLedger.registerNode(c, nodeId, pub)),
        vertx.getOrCreateContext()).compose(ok -> {
          if (!ok) {
            // say which: a key of this node's past (an older backup restored?) or one it never had
            return Future.fromCompletionStage(store.read(c -> SqlLedger.nodeKeys(c, nodeId)), vertx.getOrCreateContext())
                .compose(keys -> {
                  String was = keys.stream().filter(k -> k.publicKey().equals(pub)).findFirst()
                      .map(k -> "; the data dir holds its " + k.state() + " key " + ReceiptCheck.fingerprint(pub)
                          + ", replaced by " + ReceiptCheck.fingerprint(keys.get(0).publicKey())
                          + " (a data dir older than its last key rotation?)")
                      .orElse("");
                  return Future.failedFuture("node " + nodeId + " is registered with another signing key" + was
                      + "; restore its key in the data dir or start with a new --node-id");
                });
          }
          // devices quarantined before this start stay out: their registration tells the scheduler, before its
          // first placement pass on this node
          return Future.fromCompletionStage(store.read(c -> io.anneal.store.Quarantines.of(c, nodeId)),
              vertx.getOrCreateContext());
        }).compose(known -> recoverOwnRuns().map(known)).compose(known -> {
          restoreQuarantines(known);
          bus.send(Addresses.NODE_REGISTER, registration());
          // a scheduler that took over (cluster mode, ADR 19) learns this node, its runs and quarantines again
          bus.<JsonObject>consumer(Addresses.SCHEDULER_HELLO, m -> {
            registerAt = m.body().getString("registerAt", Addresses.NODE_REGISTER);
            releaseAt = m.body().getString("releaseAt", Addresses.GPUS_RELEASED);
            registerAgain();
          });
          vertx.setPeriodic(OUTBOX_RETRY_MS, id -> {
            resendOutbox();
            recordQuarantines();
            forgetLiftedQuarantines();
          });
          vertx.setPeriodic(MEMORY_REPORT_MS, id -> reportMemory());
          resendOutbox();
          if (!inCluster) return Future.succeededFuture();
          // on a thread of its own: a loop busy with thousands of runs ending must not make this node look silent
          io.vertx.core.Context mine = context;
          return vertx.deployVerticle(new VerticleBase() {
            @Override
            public Future<?> start() {
              return vertx.sharedData().<String, Long>getAsyncMap(Addresses.FLEET_ALIVE).onSuccess(alive -> {
                heartbeat(mine, alive, aliveTtlMs);
                vertx.setPeriodic(HEARTBEAT_MS, id -> heartbeat(mine, alive, aliveTtlMs));
              });
            }
          }, new io.vertx.core.DeploymentOptions().setThreadingModel(io.vertx.core.ThreadingModel.WORKER)
              .setWorkerPoolName("anneal-heartbeat-" + nodeId).setWorkerPoolSize(1)).mapEmpty();
        });
  }

  /** Cluster mode (ADR 19). */
  private boolean inCluster;
  /** The TTL of this node's liveness entry: the cluster's node timeout. */
  private long aliveTtlMs;
  /**
   * Runs older than this are counted at each heartbeat and compared with the scheduler's books (ADR 19):
   * a job the scheduler holds on this node for longer, which this node does not run, lost its run message
   * or its release, and the scheduler asks for a registration to set it right.
   */
  private long reconcileAfterMs = 30_000;

  /** How often a worker in a cluster renews its liveness entry and asks whether the scheduler knows it (ADR 19). */
  public static final long HEARTBEAT_MS = 2_000;

  /**
   * Cluster mode (ADR 19). This worker may start again while the scheduler goes on, which then still
   * counts the GPUs of the runs this node had before as busy: at start, those runs (lost with the
   * process) are re-queued here, and the scheduler told that their GPUs are free and the jobs queued.
   * Every {@link #HEARTBEAT_MS} it renews its liveness entry ({@link Addresses#FLEET_ALIVE}, TTL
   * {@code aliveTtlMs}), and registers again when the scheduler does not know it (a new scheduler, or one
   * that gave this node up). Its runs' starts and ends are written only while their jobs are still placed
   * on this node.
   */
  public WorkerVerticle inCluster(long aliveTtlMs, long reconcileAfterMs) {
    return inCluster(aliveTtlMs, reconcileAfterMs, () -> null);
  }

  /**
   * As {@link #inCluster(long, long)}, telling the scheduler with each registration and heartbeat which
   * cluster member this node is now ({@code member}: Hazelcast gives a member a new id when the two sides
   * of a partition merge): when that member leaves the cluster, the node is gone (ADR 19).
   */
  public WorkerVerticle inCluster(long aliveTtlMs, long reconcileAfterMs, java.util.function.Supplier<String> member) {
    this.member = member;
    this.inCluster = true;
    this.aliveTtlMs = aliveTtlMs;
    this.reconcileAfterMs = reconcileAfterMs;
    store.recordRunsOf(nodeId);
    return this;
  }

  /** The cluster member this node is now (cluster mode), or null. */
  private java.util.function.Supplier<String> member = () -> null;

  /** Whether this node keeps its liveness entry up (see {@link #heartbeats}). */
  private volatile boolean beating = true;

  /**
   * Stops (false) or resumes this node's heartbeats, as a network partition or a hung node would:
   * for fault drills and tests of what the scheduler does with a silent node (ADR 19).
   */
  public void heartbeats(boolean on) {
    beating = on;
  }

  /**
   * Every {@link #HEARTBEAT_MS}, from the heartbeat's own context: the liveness entry (Hazelcast map, TTL
   * {@code ttlMs}), then whether the scheduler knows this node, registering again on this verticle's
   * context ({@code mine}) if not.
   */
  private void heartbeat(io.vertx.core.Context mine, io.vertx.core.shareddata.AsyncMap<String, Long> alive, long ttlMs) {
    if (!beating) return;
    alive.put(nodeId, System.currentTimeMillis(), ttlMs)
        .onFailure(e -> LOG.warning("node " + nodeId + ": liveness entry not written: " + e.getMessage()));
    long settledBefore = System.currentTimeMillis() - reconcileAfterMs;
    long oldRuns = runs.values().stream().filter(r -> !r.ended && r.startedAt > 0 && r.startedAt < settledBefore).count();
    vertx.eventBus().<JsonObject>request(Addresses.NODE_HEARTBEAT, new JsonObject().put("nodeId", nodeId).put("member", member.get())
        .put("runsOlderThan", new JsonObject().put("ms", reconcileAfterMs).put("count", oldRuns)),
        new DeliveryOptions().setSendTimeout(HEARTBEAT_MS)).onSuccess(m -> {
          boolean known = m.body().getBoolean("known", true);
          if (!known || m.body().getBoolean("resync", false)) {
            mine.runOnContext(v -> {
              LOG.info("node " + nodeId + (known ? ": the scheduler holds runs here that this node does not have:"
                  : ": the scheduler does not know this node (any more):") + " registering again");
              registerAgain();
            });
          }
        }); // no answer: no scheduler now; the next one says hello
  }

  /** Where the current scheduler takes registrations: the address its hello named (ADR 19), at first the public one. */
  private volatile String registerAt = Addresses.NODE_REGISTER;

  /** This node's devices, runs and quarantines, told again to the scheduler. */
  private void registerAgain() {
    vertx.eventBus().send(registerAt, registration());
    quarantineReasons.forEach(this::tellQuarantined);
  }

  /**
   * Every {@link #OUTBOX_RETRY_MS} while this node has quarantined GPUs: drops those the store no longer
   * holds, lifted while this node was not told (the lift is published once), so that its registrations
   * stop telling them to a scheduler that takes over. Only quarantines stored before the read began are
   * judged by it.
   */
  private void forgetLiftedQuarantines() {
    if (checkingLifts) return;
    List<Integer> stored = quarantined.stream().filter(d -> !unrecorded.containsKey(d)).toList();
    if (stored.isEmpty()) return;
    checkingLifts = true;
    Future.fromCompletionStage(store.read(c -> io.anneal.store.Quarantines.of(c, nodeId)), context).onComplete(ar -> {
      checkingLifts = false;
      if (ar.failed()) return; // the store is out of reach: nothing is known, the next look tries again
      for (Integer device : stored) {
        if (ar.result().containsKey(device) || !quarantined.contains(device) || unrecorded.containsKey(device)) continue;
        quarantined.remove(device);
        quarantineReasons.remove(device);
        consecutiveFailures.remove(device);
        failingJobs.remove(device);
        LOG.info("GPU " + nodeId + "/" + device + " back in service (its quarantine was lifted in the store)");
      }
    });
  }

  private Future<Void> recoverOwnRuns() {
    if (!inCluster) return Future.succeededFuture();
    return vertx.executeBlocking(() -> store.onGpusOfBlocking(nodeId)).compose(lost -> {
      List<Future<?>> done = new ArrayList<>();
      for (io.anneal.store.JobRecord j : lost) {
        JsonObject job = io.anneal.sched.JobMessages.fromRecord(j);
        String reason = "node " + nodeId + " started again while the job was on its GPUs";
        done.add(Future.fromCompletionStage(store.requeue(j.id(), reason), vertx.getOrCreateContext()).onSuccess(moved -> {
          if (!moved) return;
          LOG.info(j.id() + " was on this node's GPUs when it stopped: re-queued");
          released(j.id(), j.devices() == null ? new JsonArray() : new JsonArray(j.devices()));
          vertx.eventBus().publish(Addresses.JOB_EVENTS, JobMessages.event(job, JobState.QUEUED).put("reason", reason));
          vertx.eventBus().send(Addresses.JOB_SUBMITTED, job.put("attempt", j.attempt() + 1));
        }));
      }
      return Future.all(done).mapEmpty();
    });
  }

  /** How often free device memory is reported to the scheduler (shown in /api/v1/gpus). */
  static final long MEMORY_REPORT_MS = 5_000;

  /** Free memory per device, measured off the event loop; backends that do not measure it send nothing. */
  private void reportMemory() {
    vertx.executeBlocking(() -> {
      JsonObject free = new JsonObject();
      for (GpuDevice d : backend.devices()) {
        long b = backend.freeMemoryBytes(d.index());
        if (b >= 0) free.put(String.valueOf(d.index()), b >> 20);
      }
      return free;
    }, false).onSuccess(free -> {
      if (!free.isEmpty()) {
        vertx.eventBus().send(Addresses.NODE_MEMORY, new JsonObject().put("nodeId", nodeId).put("freeMemoryMiB", free));
      }
    });
  }

  private JsonObject registration() {
    JsonArray devices = new JsonArray();
    for (GpuDevice d : backend.devices()) {
      devices.add(new JsonObject().put("index", d.index()).put("gpuClass", d.gpuClass()).put("name", d.name())
          .put("uuid", d.uuid()).put("memoryMiB", d.memoryMiB()).put("smCount", d.smCount())
          .put("computeCapability", d.computeCapability()).put("driverVersion", d.driverVersion())
          .put("simulated", d.simulated())
          // simulated GPUs form virtual machines of 8, like real 8-GPU nodes; a gang stays within one
          .put("host", d.simulated() ? nodeId + "/h" + (d.index() / SIMULATED_GPUS_PER_HOST) : nodeId));
    }
    JsonArray kinds = new JsonArray(new ArrayList<>(backend.kinds()));
    JsonObject limits = new JsonObject();
    backend.paramLimits().forEach(limits::put);
    // its quarantined devices ride along: told separately, to the public address, they could reach a scheduler
    // that is gone while the one this registration goes to never hears of them
    JsonObject out = new JsonObject();
    quarantineReasons.forEach((device, reason) -> out.put(String.valueOf(device), reason));
    return new JsonObject().put("nodeId", nodeId).put("backend", backend.name()).put("devices", devices).put("kinds", kinds)
        .put("limits", limits).put("running", runningClaims()).put("member", member.get()).put("quarantined", out);
  }

  /** The runs this node has, for a scheduler that takes over (ADR 19). */
  private JsonArray runningClaims() {
    JsonArray out = new JsonArray();
    runs.forEach((jobId, st) -> {
      if (!st.ended && st.devices != null) out.add(new JsonObject().put("jobId", jobId).put("devices", st.devices.copy()));
    });
    return out;
  }

  private void run(JsonObject job) {
    String jobId = job.getString("id");
    if (draining) {
      requeue(job, "node is shutting down");
      return;
    }
    if (runs.containsKey(jobId)) {
      // a stale run of the same job is still stopping here (ADR 19): never two runs of one job on a node
      released(jobId, job.getJsonArray("devices"));
      requeue(job, "node " + nodeId + " was still stopping an earlier run of the job");
      return;
    }
    RunState state = new RunState();
    state.devices = job.getJsonArray("devices");
    runs.put(jobId, state);
    List<Integer> devices = job.getJsonArray("devices").getList();
    int device = devices.get(0);
    int gpus = devices.size();
    long memoryBytes = job.getLong("memoryMiB", 0L) << 20;
    long startedAt = System.currentTimeMillis();
    state.startedAt = startedAt;
    Workload w = new Workload(jobId, job.getString("tenantId"), job.getString("kind"),
        plain(job.getJsonObject("params", new JsonObject())),
        Duration.ofSeconds(job.getLong("maxSeconds")));
    // RUNNING is written once the job has run RUNNING_WRITE_DELAY_MS: a job that ends sooner goes from
    // PLACED to its outcome in one write (its start recorded with it). The state is informational for
    // recovery (PLACED and RUNNING jobs are both re-queued at start); subscribers see RUNNING at once.
    vertx.setTimer(RUNNING_WRITE_DELAY_MS, t -> {
      if (state.ended) return;
      state.runningWritten = true;
      store.running(jobId, startedAt);
    });
    vertx.eventBus().publish(Addresses.JOB_EVENTS, JobMessages.event(job, JobState.RUNNING).put("nodeId", nodeId));
    var ctx = vertx.getOrCreateContext();
    RunControl control = new RunControl() {
      @Override
      public void progress(Map<String, Object> event) {
        JsonObject ev = JobMessages.event(job, JobState.RUNNING).put("progress", new JsonObject(event));
        ctx.runOnContext(v -> vertx.eventBus().publish(Addresses.JOB_EVENTS, ev));
      }

      @Override
      public boolean cancelled() {
        return state.cancelled || state.shutdown;
      }
    };
    deviceThreads.get(device).execute(() -> {
      WorkloadResult result = null;
      WorkloadException failure = null;
      try {
        if (memoryBytes > 0) backend.reserve(device, memoryBytes); // out of memory fails the job before it runs
        result = backend.run(device, w, control);
      } catch (WorkloadException e) {
        failure = e;
      } catch (RuntimeException e) {
        failure = new WorkloadException(WorkloadException.Reason.DEVICE_FAILURE, "backend error: " + e, 0);
      } catch (OutOfMemoryError e) {
        // the job's own allocations (the CPU backend's estimate let it through): it fails, the node goes on
        failure = new WorkloadException(WorkloadException.Reason.OUT_OF_MEMORY, "the host ran out of memory for this job", 0);
      }
      long endedAt = System.currentTimeMillis();
      WorkloadResult r = result;
      WorkloadException f = failure;
      ctx.runOnContext(v -> {
        state.ended = true;
        try {
          onRunEnd(job, gpus, startedAt, endedAt, r, f, state);
        } catch (RuntimeException e) {
          // never leave a job RUNNING in the store because recording its end failed here
          LOG.log(java.util.logging.Level.SEVERE, "recording the end of job " + jobId + " failed; re-queuing it", e);
          requeue(job, "worker error while recording the run: " + e);
        }
      });
    });
  }

  /**
   * Counts device failures per device; a success clears the count (other failures say nothing about
   * the device). At {@link #QUARANTINE_AFTER} in a row from {@link #QUARANTINE_DISTINCT_JOBS} jobs the
   * device is quarantined: the scheduler stops placing on it and the fleet view shows it, across
   * restarts, until an operator lifts it ({@code DELETE /api/v1/gpus/{node}/{device}/quarantine}).
   */
  private void trackDeviceHealth(int device, String jobId, WorkloadException f) {
    if (quarantined.contains(device)) return;
    if (f == null) {
      consecutiveFailures.remove(device);
      failingJobs.remove(device);
      return;
    }
    if (f.reason() != WorkloadException.Reason.DEVICE_FAILURE) return;
    int n = consecutiveFailures.merge(device, 1, Integer::sum);
    java.util.Set<String> jobs = failingJobs.computeIfAbsent(device, d -> new java.util.HashSet<>());
    jobs.add(jobId);
    if (n >= QUARANTINE_AFTER && jobs.size() >= QUARANTINE_DISTINCT_JOBS) {
      quarantined.add(device);
      String reason = n + " device failures in a row from " + jobs.size() + " jobs, the last: " + f.getMessage();
      LOG.warning("quarantining GPU " + nodeId + "/" + device + ": " + reason);
      tellQuarantined(device, reason);
      unrecorded.put(device, Map.entry(reason, System.currentTimeMillis()));
      recordQuarantines();
    }
  }

  /**
   * Quarantines not yet in the store, with their reason and time. The store is what a quarantine outlives a
   * restart by, and what a scheduler in cluster mode checks its own list against (it lifts a quarantine the
   * store does not hold): one that could not be written is written again until it is.
   */
  private final Map<Integer, Map.Entry<String, Long>> unrecorded = new java.util.TreeMap<>();
  /** Quarantines whose first write the store refused. */
  private final java.util.Set<Integer> refusedOnce = new java.util.HashSet<>();
  private boolean recording;
  private boolean checkingLifts;

  private void recordQuarantines() {
    if (recording || unrecorded.isEmpty()) return;
    recording = true;
    Map<Integer, Map.Entry<String, Long>> batch = new java.util.TreeMap<>(unrecorded);
    store.writer().submit(c -> {
      for (var q : batch.entrySet()) {
        io.anneal.store.Quarantines.add(c, nodeId, q.getKey(), q.getValue().getKey(), q.getValue().getValue());
      }
      return null;
    }).whenComplete((v, e) -> context.runOnContext(x -> {
      recording = false;
      if (e != null) {
        LOG.warning("quarantine of GPU(s) " + batch.keySet() + " on " + nodeId + " not recorded yet (tried again): "
            + e.getMessage());
        refusedOnce.addAll(batch.keySet());
        return;
      }
      batch.forEach((device, q) -> {
        unrecorded.remove(device, q);
        // told again now that the store holds it: a scheduler may have lifted it meanwhile, finding it not there
        if (refusedOnce.remove(device) && quarantined.contains(device)) tellQuarantined(device, q.getKey());
      });
    }));
  }

  private void restoreQuarantines(Map<Integer, String> known) {
    known.forEach((device, reason) -> {
      if (device >= backend.devices().size()) return;
      quarantined.add(device);
      quarantineReasons.put(device, reason);
      LOG.warning("GPU " + nodeId + "/" + device + " stays quarantined: " + reason);
    });
  }

  /** Where the current scheduler takes releases of GPUs: the address its hello named (ADR 19), at first the public one. */
  private volatile String releaseAt = Addresses.GPUS_RELEASED;

  /** Tells the scheduler that a job's GPUs on this node are free. */
  private void released(String jobId, JsonArray devices) {
    vertx.eventBus().send(releaseAt, new JsonObject().put("jobId", jobId).put("nodeId", nodeId).put("devices", devices));
  }

  /** The scheduler stops placing on the device and the fleet view shows why. */
  private void tellQuarantined(int device, String reason) {
    quarantineReasons.put(device, reason);
    vertx.eventBus().send(Addresses.DEVICE_QUARANTINED, new JsonObject().put("nodeId", nodeId).put("device", device)
        .put("reason", reason));
  }

  /** Params as plain maps and lists (the backend knows no Vert.x types). */
  @SuppressWarnings("unchecked")
  private static Map<String, Object> plain(JsonObject params) {
    return io.vertx.core.json.Json.decodeValue(params.encode(), Map.class);
  }

  private void onRunEnd(JsonObject job, int gpus, long startedAt, long endedAt, WorkloadResult r, WorkloadException f,
      RunState state) {
    String jobId = job.getString("id");
    runs.remove(jobId);
    // a device quarantined by this end is told before its release, so that nothing is placed on it between
    if (!state.stale) trackDeviceHealth(job.getJsonArray("devices").getInteger(0), jobId, f);
    released(jobId, job.getJsonArray("devices"));
    if (state.stale) {
      // the job was queued again (and may run elsewhere) while this node did not answer: this run is not its
      LOG.info("stopped a run of " + jobId + " that the scheduler had given up on this node: not recorded, not billed");
      return;
    }
    boolean retriesLeft = job.getInteger("attempt", 0) < MAX_INFRASTRUCTURE_RETRIES;
    if (f != null && (state.shutdown || (f.reason().infrastructure() && retriesLeft))) {
      // not the job's fault: run it again elsewhere or after restart; the lost run is not billed
      requeue(job, state.shutdown ? "node shut down while running" : f.getMessage());
      return;
    }
    JobState outcome;
    String error = null;
    JsonObject result = new JsonObject();
    long deviceNanos;
    long wallNanos;
    long peak = 0;
    String digest = "";
    if (f == null) {
      outcome = JobState.SUCCEEDED;
      deviceNanos = r.deviceNanos();
      wallNanos = r.wallNanos();
      peak = r.peakMemoryBytes();
      digest = r.digest();
      result = new JsonObject(new java.util.LinkedHashMap<>(r.summary()));
      if (!digest.isEmpty()) result.put("digest", digest);
    } else {
      outcome = f.reason() != WorkloadException.Reason.CANCELLED ? JobState.FAILED
          : state.preempted ? JobState.PREEMPTED : JobState.CANCELLED;
      error = f.reason().name() + ": " + f.getMessage()
          + (f.reason().infrastructure() ? " (after " + MAX_INFRASTRUCTURE_RETRIES + " retries)" : "");
      deviceNanos = f.deviceNanosUsed();
      wallNanos = (endedAt - startedAt) * 1_000_000L;
    }
    Receipt receipt = new Receipt(jobId + "/" + job.getInteger("attempt", 0), jobId, job.getString("tenantId"), nodeId,
        job.getString("gpuClass"), gpus, backend.name().equals("simulated"), Math.multiplyExact(deviceNanos, (long) gpus),
        wallNanos, peak, startedAt, Math.max(endedAt, startedAt), outcome.name(), digest);
    toSign.add(new Finished(job, outcome, error, result, receipt, state.runningWritten));
    if (!flushScheduled) {
      flushScheduled = true;
      vertx.setTimer(5, id -> flush());
    }
  }

  /** Signs everything finished since the last flush with one signature, then persists and sends. */
  private void flush() {
    flushScheduled = false;
    List<Finished> batch = new ArrayList<>(toSign);
    toSign.clear();
    if (batch.isEmpty()) return;
    persisting += batch.size();
    List<Receipt> receipts = new ArrayList<>(batch.size());
    for (Finished f : batch) receipts.add(f.receipt());
    vertx.executeBlocking(() -> signer.sign(receipts)).onSuccess(signed -> {
      for (int i = 0; i < batch.size(); i++) persistAndSend(batch.get(i), signed.get(i));
    }).onFailure(e -> {
      persisting -= batch.size();
      LOG.severe("signing receipts failed: " + e);
    });
  }

  private void persistAndSend(Finished f, SignedReceipt sr) {
    persistAndSend(f, sr, 1);
  }

  /**
   * The store could not record a finished run: try again, after 1, 2, 4 … 30 s, while this node runs
   * (the run's signed receipt is kept here meanwhile). Stopping, once the drain's time is up, it gives
   * up: the job is still RUNNING in the store, and runs again after restart, so nothing is billed for
   * the run that was not recorded.
   */
  private void retryPersist(Finished f, SignedReceipt sr, int attempt, String what, Throwable e) {
    String jobId = f.job().getString("id");
    if (attempt == 1) metrics.runsUnrecorded.incrementAndGet();
    if (draining && System.currentTimeMillis() > drainDeadlineMs) {
      persisting--;
      metrics.runsUnrecorded.decrementAndGet();
      LOG.severe("could not record the " + what + " of job " + jobId + " before stopping: " + e.getMessage()
          + "; it stays RUNNING in the store and runs again after restart");
      return;
    }
    long delay = Math.min(30_000, 1_000L << Math.min(attempt - 1, 5));
    LOG.warning("could not record the " + what + " of job " + jobId + " (attempt " + attempt + "): " + e.getMessage()
        + "; trying again in " + delay + " ms");
    vertx.setTimer(delay, id -> persistAndSend(f, sr, attempt + 1));
  }

  private void persistAndSend(Finished f, SignedReceipt sr, int attempt) {
    String jobId = f.job().getString("id");
    JsonObject body = ReceiptJson.encode(sr);
    if (f.outcome() == JobState.PREEMPTED) {
      String reason = "preempted by a higher-priority job";
      Future.fromCompletionStage(store.preempted(jobId, reason, f.receipt().endedAtMs(), sr.receipt().receiptId(),
          body.encode()), vertx.getOrCreateContext())
          .onSuccess(ok -> {
            persisting--;
            if (attempt > 1) metrics.runsUnrecorded.decrementAndGet();
            if (!ok) return;
            vertx.eventBus().publish(Addresses.JOB_EVENTS, JobMessages.event(f.job(), JobState.PREEMPTED)
                .put("deviceMs", sr.receipt().deviceNanos() / 1_000_000.0));
            vertx.eventBus().publish(Addresses.JOB_EVENTS, JobMessages.event(f.job(), JobState.QUEUED).put("reason", reason));
            vertx.eventBus().send(Addresses.JOB_SUBMITTED, f.job().copy().put("attempt", f.job().getInteger("attempt", 0) + 1)
                .put("preemptions", f.job().getInteger("preemptions", 0) + 1));
            sendToBilling(f.job(), body);
          }).onFailure(e -> retryPersist(f, sr, attempt, "preemption", e));
      return;
    }
    Future.fromCompletionStage(store.finished(jobId, f.outcome(), f.error(), f.result().encode(), f.receipt().startedAtMs(),
        f.receipt().endedAtMs(), sr.receipt().receiptId(), body.encode(), f.runningWritten()), vertx.getOrCreateContext())
        .onSuccess(ok -> {
          persisting--;
          if (attempt > 1) metrics.runsUnrecorded.decrementAndGet();
          // the job was moved by someone else (e.g. re-queued): no receipt then; or an earlier attempt of this
          // write committed after all and its answer was lost: the receipt is in the outbox, which is re-sent
          if (!ok) return;
          JsonObject ev = JobMessages.event(f.job(), f.outcome()).put("outcome", f.outcome().name())
              .put("result", f.result()).put("deviceMs", sr.receipt().deviceNanos() / 1_000_000.0);
          if (f.error() != null) ev.put("error", f.error());
          vertx.eventBus().publish(Addresses.JOB_EVENTS, ev);
          sendToBilling(f.job(), body);
        }).onFailure(e -> retryPersist(f, sr, attempt, "end", e));
  }

  private void sendToBilling(JsonObject job, JsonObject receipt) {
    String receiptId = receipt.getString("receiptId");
    if (!inFlight.add(receiptId)) return;
    metrics.receiptsPublished.increment();
    vertx.eventBus().<JsonObject>request(BillingAddresses.RECEIPT, receipt, new DeliveryOptions().setSendTimeout(30_000))
        .onComplete(ar -> {
          if (ar.failed()) {
            inFlight.remove(receiptId);
            LOG.fine("receipt " + receiptId + " not acknowledged yet: " + ar.cause().getMessage());
            return; // stays in the outbox; resent by resendOutbox
          }
          JsonObject ack = ar.result().body();
          if (!ack.getBoolean("settled")) {
            inFlight.remove(receiptId);
            LOG.warning("billing refused receipt " + receiptId + ": " + ack.getString("refusal"));
            // signed with a key revoked since (a rotation that revoked it, ADR 18): signed again with the current one
            if ("BAD_SIGNATURE".equals(ack.getString("refusal")) && !signedByCurrentKey(receipt)) resignOutbox();
            return;
          }
          long now = System.currentTimeMillis();
          boolean finalReceipt = !"PREEMPTED".equals(receipt.getString("outcome"));
          Future.fromCompletionStage(store.settled(receipt.getString("jobId"), receiptId, ack.getLong("chargeUact"), now,
              finalReceipt), vertx.getOrCreateContext()).onComplete(done -> {
                inFlight.remove(receiptId);
                if (done.succeeded() && done.result() && finalReceipt) {
                  JsonObject jobRef = job != null ? job
                      : new JsonObject().put("id", receipt.getString("jobId")).put("tenantId", receipt.getString("tenantId"));
                  vertx.eventBus().publish(Addresses.JOB_EVENTS, JobMessages.event(jobRef, JobState.SETTLED)
                      .put("receiptId", receiptId).put("outcome", receipt.getString("outcome"))
                      .put("chargeUact", ack.getLong("chargeUact")).put("refundUact", ack.getLong("refundUact")));
                }
              });
        });
  }

  // ---------------------------------------------------------------- key rotation (ADR 18)

  /**
   * Gives this node a new signing key: the new pair is written beside the current one, the ledger
   * takes it as the node's key (the old one retired, or revoked), the files are swapped, and the
   * receipts waiting in the outbox are signed again with it. A crash midway is finished at the next
   * start ({@link NodeKeys#finishRotation}).
   */
  private void rotateKey(Message<JsonObject> m) {
    if (keyDir == null) {
      m.fail(409, "node " + nodeId + " does not keep its key on disk: it cannot be rotated");
      return;
    }
    if (rotating) {
      m.fail(409, "a key rotation of node " + nodeId + " is under way");
      return;
    }
    rotating = true;
    boolean revoke = m.body() != null && m.body().getBoolean("revokePrevious", false);
    String oldKey = NodeKeys.encodePublic(key.getPublic());
    boolean[] promoted = {false};
    boolean[] holding = {false};
    // unordered: a backup holding the key files must not hold up this context's receipt signing
    vertx.executeBlocking(() -> {
      NodeKeys.FILES_IN_USE.acquire(); // no backup between the ledger write and the files' swap
      holding[0] = true;
      KeyPair next = NodeKeys.generate();
      NodeKeys.writeNext(keyDir, next);
      return next;
    }, false).compose(next -> Future.fromCompletionStage(store.writer().submitAlone(c -> SqlLedger.rotateNodeKey(c, nodeId, oldKey,
        NodeKeys.encodePublic(next.getPublic()), revoke, System::currentTimeMillis)), vertx.getOrCreateContext())
        .compose(r -> r == NodeKey.Rotation.DONE ? Future.succeededFuture(next)
            : Future.failedFuture(new IllegalStateException("the ledger refused the rotation: " + r))))
        .compose(next -> {
          promoted[0] = true;
          // the ledger has the new key now: sign with it whether or not the files can be swapped (a
          // failed swap is finished at the next start, the new pair being still on disk)
          key = next;
          signer = new ReceiptSigner(next.getPrivate());
          vertx.eventBus().publish(BillingAddresses.NODE_KEYS_CHANGED, new JsonObject().put("nodeId", nodeId));
          return vertx.executeBlocking(() -> {
            NodeKeys.promoteNext(keyDir);
            return next;
          }, false).recover(e -> {
            LOG.severe("node " + nodeId + ": the new key is in the ledger but its files could not replace the old ones ("
                + e.getMessage() + "); they are kept as " + NodeKeys.NEXT_PRIVATE_FILE + " and put in place at the next start");
            return Future.succeededFuture(next);
          });
        })
        // the rotation is done; the outbox not signed again (the store out of reach) is signed again
        // when billing refuses its first receipt
        .compose(next -> resignAll().recover(e -> {
          LOG.warning("node " + nodeId + ": the outbox could not be signed again with the new key yet: " + e.getMessage());
          return Future.succeededFuture(-1);
        }).map(n -> {
          String pub = NodeKeys.encodePublic(next.getPublic());
          LOG.info("node " + nodeId + " signs receipts with a new Ed25519 key " + pub + " ("
              + ReceiptCheck.fingerprint(pub) + "); the previous one "
              + ReceiptCheck.fingerprint(oldKey) + " is " + (revoke ? "revoked" : "retired")
              + "; " + n + " receipt(s) in the outbox signed again");
          return new JsonObject().put("nodeId", nodeId).put("publicKey", pub)
              .put("fingerprint", ReceiptCheck.fingerprint(pub))
              .put("previous", new JsonObject().put("publicKey", oldKey)
                  .put("fingerprint", ReceiptCheck.fingerprint(oldKey))
                  .put("state", revoke ? "revoked" : "retired"))
              .put("outboxResigned", n < 0 ? null : n);
        }))
        .onComplete(ar -> {
          rotating = false;
          if (holding[0]) NodeKeys.FILES_IN_USE.release();
        })
        .onSuccess(reply -> {
          m.reply(reply);
          resendOutbox();
        })
        .onFailure(e -> {
          if (!promoted[0]) {
            vertx.executeBlocking(() -> {
              NodeKeys.discardNext(keyDir);
              return null;
            }, false);
          }
          LOG.warning("node " + nodeId + ": key rotation failed: " + e.getMessage());
          m.fail(e.getMessage() != null && e.getMessage().startsWith("the ledger refused") ? 409 : 500,
              "key rotation failed: " + e.getMessage());
        });
  }

  /** Whether a receipt's batch signature (its JSON form) is by the key this node signs with now. */
  private boolean signedByCurrentKey(JsonObject receipt) {
    return signedBy(receipt, key);
  }

  private static boolean signedBy(JsonObject receipt, KeyPair key) {
    return ReceiptVerifier.rootSigned(receipt.getString("batchRoot"), receipt.getString("signature"),
        NodeKeys.encodePublic(key.getPublic()));
  }

  /** Signs the outbox again with the current key, once at a time; then resends it. */
  private void resignOutbox() {
    if (resigning) return;
    resigning = true;
    resignAll().onComplete(ar -> resigning = false).onSuccess(n -> {
      if (n > 0) {
        LOG.info("node " + nodeId + ": " + n + " receipt(s) in the outbox signed again with the current key");
        resendOutbox();
      }
    }).onFailure(e -> LOG.warning("could not sign the outbox again: " + e.getMessage()));
  }

  /**
   * This node's receipts in the outbox whose batch is not signed by the current key get a signature by
   * it over the same root (each root signed once): the body, root and proof stay as they were.
   */
  private Future<Integer> resignAll() {
    KeyPair current = key;
    ReceiptSigner now = signer;
    Map<String, String> resigned = new java.util.HashMap<>(); // root → new signature
    Map<String, Boolean> good = new java.util.HashMap<>(); // root + signature → signed by the current key
    return Future.fromCompletionStage(store.rewriteOutbox(body -> {
      JsonObject j = new JsonObject(body);
      if (!nodeId.equals(j.getString("nodeId"))) return null; // another node's (one store, several nodes)
      String root = j.getString("batchRoot");
      String sig = j.getString("signature");
      if (good.computeIfAbsent(root + "/" + sig, k -> signedBy(j, current))) return null;
      String fresh = resigned.computeIfAbsent(root, r -> Base64.getEncoder()
          .encodeToString(now.signRoot(HexFormat.of().parseHex(r))));
      return j.put("signature", fresh).encode();
    }), vertx.getOrCreateContext());
  }

  private void resendOutbox() {
    if (resending) return; // the last read is not answered yet (a slow or unreachable store): no pile of them
    resending = true;
    Future.fromCompletionStage(store.outbox(500), vertx.getOrCreateContext()).onComplete(ar -> resending = false)
        .onSuccess(rows -> {
          for (String[] row : rows) {
            if (!inFlight.contains(row[0])) sendToBilling(null, new JsonObject(row[2]));
          }
        });
  }

  private void requeue(JsonObject job, String reason) {
    String jobId = job.getString("id");
    Future.fromCompletionStage(store.requeue(jobId, reason), vertx.getOrCreateContext()).onSuccess(ok -> {
      if (ok && !draining) {
        vertx.eventBus().publish(Addresses.JOB_EVENTS, JobMessages.event(job, JobState.QUEUED).put("reason", reason));
        vertx.eventBus().send(Addresses.JOB_SUBMITTED, job.copy().put("attempt", job.getInteger("attempt", 0) + 1));
      }
    });
  }

  /**
   * Graceful stop: no new runs; running ones get {@code drainSeconds} to finish; the rest are
   * stopped and re-queued in the store (they run again after restart). Completes when every run
   * has been recorded.
   */
  public Future<Void> drain(int drainSeconds) {
    draining = true;
    Promise<Void> done = Promise.promise();
    long deadline = System.currentTimeMillis() + drainSeconds * 1000L;
    drainDeadlineMs = deadline;
    vertx.setPeriodic(50, id -> {
      if (System.currentTimeMillis() > deadline) runs.values().forEach(s -> s.shutdown = true);
      if (runs.isEmpty() && toSign.isEmpty() && !flushScheduled && persisting == 0) {
        vertx.cancelTimer(id);
        done.tryComplete();
      }
    });
    return done.future();
  }

  @Override
  public Future<?> stop() {
    deviceThreads.forEach(ExecutorService::shutdownNow);
    return Future.succeededFuture();
  }
}
