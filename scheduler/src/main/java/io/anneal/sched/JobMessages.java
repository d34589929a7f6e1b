package io.anneal.sched;

import io.anneal.job.JobState;
import io.anneal.store.JobRecord;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;

/** Bus and API JSON forms of jobs. */
public final class JobMessages {
  private JobMessages() {}

  /** The job as the scheduler and worker carry it (Addresses.JOB_SUBMITTED), from a stored row. */
  public static JsonObject fromRecord(JobRecord j) {
    JsonObject spec = new JsonObject(j.specJson());
    return message(j, spec.getLong("memoryMiB", 0L), spec.getLong("deadlineSeconds", 0L),
        spec.getJsonObject("params", new JsonObject()), spec.getJsonObject("nodeLabels"));
  }

  /** The same for a job just admitted, from its validated spec (no JSON round trip). */
  public static JsonObject fromSpec(JobRecord j, io.anneal.job.JobSpec spec) {
    return message(j, spec.memoryMiB(), spec.deadlineSeconds(), new JsonObject(spec.params()),
        spec.nodeLabels().isEmpty() ? null : io.anneal.store.NodeLabels.toJson(spec.nodeLabels()));
  }

  private static JsonObject message(JobRecord j, long memoryMiB, long deadlineSeconds, JsonObject params,
      JsonObject nodeLabels) {
    JsonObject m = new JsonObject()
        .put("id", j.id())
        .put("tenantId", j.tenantId())
        .put("kind", j.kind())
        .put("gpus", j.gpus())
        .put("gpuClass", j.gpuClass())
        .put("memoryMiB", memoryMiB)
        .put("priority", j.priority())
        .put("maxSeconds", j.maxSeconds())
        .put("params", params)
        .put("submittedAt", j.submittedAt())
        .put("attempt", j.attempt());
    // a preempted job's count goes with it (the scheduler preempts a job at most twice, ADR 5)
    if (j.preemptions() > 0) m.put("preemptions", j.preemptions());
    // start-by deadline, absolute (ms): the scheduler fails the job if it is still queued then
    if (deadlineSeconds > 0) m.put("deadlineAt", j.submittedAt() + deadlineSeconds * 1000);
    // placed only on nodes carrying every one of these labels (ADR 29)
    if (nodeLabels != null && !nodeLabels.isEmpty()) m.put("nodeLabels", nodeLabels);
    return m;
  }

  /** A job event for subscribers (CONTRACT: {@code {"type":"job","jobId":..,"state":..}}). */
  public static JsonObject event(JsonObject job, JobState state) {
    return new JsonObject().put("type", "job").put("jobId", job.getString("id")).put("tenantId", job.getString("tenantId"))
        .put("state", state.name()).put("at", System.currentTimeMillis());
  }

  /** The job as the REST API returns it. */
  public static JsonObject toApi(JobRecord j) {
    JsonObject spec = new JsonObject(j.specJson());
    JsonObject o = new JsonObject()
        .put("id", j.id())
        .put("state", j.state().name())
        .put("kind", j.kind())
        .put("gpus", j.gpus())
        .put("gpuClass", j.gpuClass())
        .put("priority", j.priority())
        .put("maxSeconds", j.maxSeconds())
        .put("params", spec.getJsonObject("params", new JsonObject()))
        .put("submittedAt", j.submittedAt())
        .put("escrowUact", j.escrowUact())
        .put("priceUactPerGpuHour", j.priceUactPerGpuHour())
        .put("attempt", j.attempt());
    if (j.preemptions() > 0) o.put("preemptions", j.preemptions());
    if (spec.containsKey("deadlineSeconds")) o.put("deadlineSeconds", spec.getLong("deadlineSeconds"));
    if (spec.containsKey("nodeLabels")) o.put("nodeLabels", spec.getJsonObject("nodeLabels"));
    if (j.outcome() != null) o.put("outcome", j.outcome());
    if (j.error() != null) o.put("error", j.error());
    if (j.nodeId() != null) o.put("nodeId", j.nodeId());
    if (j.placedClass() != null) o.put("placedGpuClass", j.placedClass());
    if (j.devices() != null) o.put("devices", new JsonArray(j.devices()));
    if (j.resultJson() != null) o.put("result", new JsonObject(j.resultJson()));
    if (j.chargeUact() != null) o.put("chargeUact", j.chargeUact());
    if (j.receiptId() != null) o.put("receiptId", j.receiptId());
    if (j.startedAt() > 0) o.put("startedAt", j.startedAt());
    if (j.endedAt() > 0) o.put("endedAt", j.endedAt());
    if (j.settledAt() > 0) o.put("settledAt", j.settledAt());
    return o;
  }
}
