package io.anneal.sched;

import io.anneal.bus.Addresses;
import io.anneal.job.JobState;
import io.anneal.metrics.Metrics;
import io.anneal.placement.Demand;
import io.anneal.placement.Device;
import io.anneal.placement.Fleet;
import io.anneal.placement.Placement;
import io.anneal.store.JobRecord;
import io.anneal.store.JobStore;
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
import java.util.PriorityQueue;
import java.util.Set;
import java.util.TreeSet;
import java.util.logging.Logger;

/**
 * Matches queued jobs to free GPUs. Owns the in-memory queue and the fleet; the store is the
 * source of truth, so a restart rebuilds both. Placement runs on change (job arrives, GPUs free,
 * node joins), never blocks the event loop, and writes PLACED through the group-commit store
 * before the worker is told.
 */
public final class SchedulerVerticle extends VerticleBase {
  private static final Logger LOG = Logger.getLogger(SchedulerVerticle.class.getName());
  /** Most queued jobs looked at in one placement pass, so one pass stays short under load. */
  private static final int SCAN_LIMIT = 2048;

  private record Queued(JsonObject job, int priority, long seq, long enqueuedNanos) {}

  private final JobStore store;
  private final Metrics metrics;
  private final Fleet fleet = new Fleet();
  private final Set<String> kinds = new TreeSet<>();
  private final PriorityQueue<Queued> queue = new PriorityQueue<>((a, b) -> a.priority != b.priority
      ? Integer.compare(b.priority, a.priority) : Long.compare(a.seq, b.seq));
  private final Map<String, Queued> queuedById = new HashMap<>();
  private final Set<String> cancelled = new HashSet<>();
  /** jobId → placement, for jobs PLACED or RUNNING. */
  private final Map<String, Placement> running = new HashMap<>();
  private long seq;
  private boolean passScheduled;
  private boolean stopping;

  public SchedulerVerticle(JobStore store, Metrics metrics) {
    this.store = store;
    this.metrics = metrics;
  }

  @Override
  public Future<?> start() throws Exception {
    var bus = vertx.eventBus();
    bus.<JsonObject>consumer(Addresses.NODE_REGISTER, m -> onNode(m.body()));
    bus.<JsonObject>consumer(Addresses.JOB_SUBMITTED, m -> enqueue(m.body()));
    bus.<JsonObject>consumer(Addresses.GPUS_RELEASED, m -> onReleased(m.body()));
    bus.<JsonObject>consumer(Addresses.JOB_CANCEL, this::onCancel);
    bus.<JsonObject>consumer(Addresses.FLEET, m -> m.reply(fleetView()));
    vertx.setPeriodic(1000, id -> publishShape());
    return vertx.executeBlocking(store::activeJobsBlocking).map(jobs -> {
      for (JobRecord j : jobs) {
        if (j.state() != JobState.QUEUED) {
          // it was on a GPU when this node stopped: the run is lost, the job is not
          store.requeue(j.id(), "re-queued after restart");
        }
        enqueue(JobMessages.fromRecord(j));
      }
      if (!jobs.isEmpty()) LOG.info("recovered " + jobs.size() + " queued job(s) from the store");
      return null;
    });
  }

  /** Stops placing new jobs (shutdown drains what runs). */
  public void stopPlacing() {
    stopping = true;
  }

  private void onNode(JsonObject body) {
    String nodeId = body.getString("nodeId");
    List<Device> devices = new ArrayList<>();
    for (Object o : body.getJsonArray("devices")) {
      JsonObject d = (JsonObject) o;
      devices.add(new Device(nodeId, d.getInteger("index"), d.getString("gpuClass"), d.getLong("memoryMiB"),
          d.getBoolean("simulated", false)));
    }
    fleet.addNode(nodeId, devices);
    body.getJsonArray("kinds").forEach(k -> kinds.add((String) k));
    LOG.info("node " + nodeId + " joined with " + devices.size() + " device(s)");
    publishShape();
    schedulePass();
  }

  private void enqueue(JsonObject job) {
    String id = job.getString("id");
    if (queuedById.containsKey(id) || running.containsKey(id)) return;
    Queued q = new Queued(job, job.getInteger("priority", 0), seq++, System.nanoTime());
    queue.add(q);
    queuedById.put(id, q);
    schedulePass();
  }

  private void onReleased(JsonObject body) {
    String jobId = body.getString("jobId");
    Placement p = running.remove(jobId);
    if (p != null) fleet.release(p);
    schedulePass();
  }

  private void onCancel(Message<JsonObject> m) {
    String jobId = m.body().getString("jobId");
    Queued q = queuedById.remove(jobId);
    if (q != null) {
      queue.remove(q);
      Future.fromCompletionStage(store.cancelQueued(jobId, System.currentTimeMillis()), vertx.getOrCreateContext())
          .onSuccess(ok -> {
            if (ok) {
              vertx.eventBus().publish(Addresses.JOB_EVENTS, JobMessages.event(q.job(), JobState.CANCELLED)
                  .put("outcome", "CANCELLED"));
            }
            m.reply(new JsonObject().put("result", ok ? "cancelled" : "finished"));
          })
          .onFailure(e -> m.fail(500, e.getMessage()));
      return;
    }
    Placement p = running.get(jobId);
    if (p != null) {
      cancelled.add(jobId);
      vertx.eventBus().send(Addresses.workerCancel(p.nodeId()), new JsonObject().put("jobId", jobId));
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

  /** One placement pass over the head of the queue, in priority then arrival order. */
  private void placePass() {
    if (stopping || queue.isEmpty() || fleet.freeGpus() == 0) {
      updateMetrics();
      return;
    }
    List<Queued> skipped = new ArrayList<>();
    int scanned = 0;
    while (!queue.isEmpty() && scanned < SCAN_LIMIT && fleet.freeGpus() > 0) {
      Queued q = queue.poll();
      scanned++;
      JsonObject job = q.job();
      Demand d = new Demand(job.getInteger("gpus"), job.getString("gpuClass"), job.getLong("memoryMiB", 0L));
      var placement = fleet.place(d);
      if (placement.isEmpty()) {
        skipped.add(q);
        continue;
      }
      queuedById.remove(job.getString("id"));
      Placement p = placement.get();
      running.put(job.getString("id"), p);
      metrics.placementLatency.record(System.nanoTime() - q.enqueuedNanos(), java.util.concurrent.TimeUnit.NANOSECONDS);
      dispatch(job, p);
    }
    queue.addAll(skipped);
    updateMetrics();
  }

  private void dispatch(JsonObject job, Placement p) {
    String jobId = job.getString("id");
    JsonArray devices = new JsonArray(p.devices());
    Future.fromCompletionStage(store.placed(jobId, p.nodeId(), p.gpuClass(), devices.encode()), vertx.getOrCreateContext())
        .onComplete(ar -> {
          if (ar.succeeded() && ar.result()) {
            JsonObject run = job.copy().put("nodeId", p.nodeId()).put("gpuClass", p.gpuClass()).put("devices", devices);
            vertx.eventBus().publish(Addresses.JOB_EVENTS, JobMessages.event(job, JobState.PLACED)
                .put("nodeId", p.nodeId()).put("devices", devices));
            vertx.eventBus().send(Addresses.workerRun(p.nodeId()), run);
          } else {
            // cancelled meanwhile, or the store failed: give the GPUs back; a store failure re-queues
            running.remove(jobId);
            fleet.release(p);
            if (ar.failed()) {
              LOG.warning("could not record placement of " + jobId + ": " + ar.cause().getMessage() + "; re-queued");
              enqueue(job);
            }
            schedulePass();
          }
        });
  }

  private void updateMetrics() {
    metrics.fleet(fleet.freeGpus(), fleet.totalGpus(), queue.size());
  }

  private void publishShape() {
    vertx.eventBus().publish(Addresses.FLEET_SHAPE, shape());
    updateMetrics();
  }

  private JsonObject shape() {
    Map<String, Map<String, Integer>> perNodeClass = new HashMap<>();
    JsonObject classes = new JsonObject();
    for (Device d : fleet.devices()) {
      int n = perNodeClass.computeIfAbsent(d.nodeId(), k -> new HashMap<>()).merge(d.gpuClass(), 1, Integer::sum);
      JsonObject c = classes.getJsonObject(d.gpuClass());
      if (c == null) {
        classes.put(d.gpuClass(), new JsonObject().put("maxPerNode", n).put("memoryMiB", d.memoryMiB()));
      } else {
        c.put("maxPerNode", Math.max(c.getInteger("maxPerNode"), n)).put("memoryMiB", Math.max(c.getLong("memoryMiB"), d.memoryMiB()));
      }
    }
    return new JsonObject().put("classes", classes).put("kinds", new JsonArray(new ArrayList<>(kinds)))
        .put("queued", queue.size());
  }

  private JsonObject fleetView() {
    JsonArray gpus = new JsonArray();
    Map<String, String> jobOn = new HashMap<>();
    running.forEach((jobId, p) -> p.devices().forEach(i -> jobOn.put(p.nodeId() + "/" + i, jobId)));
    for (Device d : fleet.devices()) {
      gpus.add(new JsonObject().put("nodeId", d.nodeId()).put("index", d.index()).put("gpuClass", d.gpuClass())
          .put("memoryMiB", d.memoryMiB()).put("simulated", d.simulated())
          .put("free", fleet.isFree(d.nodeId(), d.index())).put("jobId", jobOn.get(d.nodeId() + "/" + d.index())));
    }
    JsonObject byClass = new JsonObject();
    fleet.byClass().forEach((c, ft) -> byClass.put(c, new JsonObject().put("free", ft[0]).put("total", ft[1])));
    return new JsonObject().put("gpus", gpus).put("byClass", byClass).put("free", fleet.freeGpus())
        .put("total", fleet.totalGpus()).put("queued", queue.size()).put("running", running.size());
  }
}
