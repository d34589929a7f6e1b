package io.anneal.bus;

/**
 * Every event-bus address of the service, declared once. Bodies are JSON objects whose fields are
 * documented here; {@code v} is the message version where a body may change shape.
 */
public final class Addresses {
  /**
   * send: a node's devices and kinds, {@code {nodeId, backend, kinds[], devices[{index,gpuClass,memoryMiB,simulated,...}],
   * running[{jobId, devices[]}]}} (the runs it has: a scheduler that took over adopts them, ADR 19).
   */
  public static final String NODE_REGISTER = "anneal.scheduler.node-register";
  /**
   * publish {@code {registerAt, releaseAt}}: a scheduler took over (cluster mode, ADR 19); every worker
   * answers with its registration, with {@code running} (job id and devices of each run it has), and its
   * quarantined devices again. From then on it sends registrations and releases of GPUs to the two
   * addresses named, this scheduler's own ({@link #NODE_REGISTER} and {@link #GPUS_RELEASED} followed by
   * its id): the public ones may route to a scheduler that died for a while after it did.
   */
  public static final String SCHEDULER_HELLO = "anneal.scheduler.hello";
  /**
   * request {@code {nodeId, member, runsOlderThan}} → {@code {known, resync}}: whether the scheduler knows a
   * worker in a cluster (asked every 2 s, ADR 19), and which cluster member the worker is now; {@code known}
   * false: register again.
   */
  public static final String NODE_HEARTBEAT = "anneal.scheduler.node-heartbeat";
  /**
   * Not an address: the cluster-wide map (a Hazelcast IMap, through Vert.x shared data) where every worker
   * in a cluster keeps {@code nodeId → last beat (ms)} with a TTL of {@code cluster.nodeTimeoutSeconds},
   * refreshed every 2 s; a node whose entry has been missing for twice that TTL after it expired, or whose
   * cluster member has left, is taken out of the fleet and its jobs queued again (ADR 19). Hazelcast's own
   * connections carry it, not the event bus's.
   */
  public static final String FLEET_ALIVE = "anneal.fleet.alive";
  /**
   * send: a new durable QUEUED job, {@code {id, tenantId, kind, spec, gpus, gpuClass, memoryMiB, priority, maxSeconds,
   * submittedAt}}; from the API also {@code api} (its instance) and {@code apiSeq} (its admissions sent so far).
   */
  public static final String JOB_SUBMITTED = "anneal.scheduler.job-submitted";
  /** request: {@code {jobId, tenantId}} → {@code {result: cancelled|cancelling|not-found|finished}}. */
  public static final String JOB_CANCEL = "anneal.scheduler.job-cancel";
  /** send: GPUs of a job are free again, {@code {jobId, nodeId, devices[]}}. */
  public static final String GPUS_RELEASED = "anneal.scheduler.gpus-released";
  /**
   * publish: an operator gave a node labels (stored already; ADR 29), {@code {nodeId, labels{name: value}}}
   * (every label the node has now; none: an empty object).
   */
  public static final String NODE_LABELS = "anneal.scheduler.node-labels";
  /** A tenant's fair-share weight or GPU quota changed: {tenantId, weight, gpuQuota (null = none)}. */
  public static final String TENANT_POLICY = "anneal.scheduler.tenant-policy";
  /**
   * publish: a tenant's API key was replaced, {@code {tenantId, keyHash}} (the new key's SHA-256): every
   * API instance forgets the old key and closes the WebSocket sessions opened with it.
   */
  public static final String TENANT_KEY = "anneal.api.tenant-key";
  /**
   * publish: a tenant's read-only key was revoked, {@code {tenantId, keyHash}}: every API instance forgets it
   * and closes the WebSocket sessions opened with it (ADR 30).
   */
  public static final String TENANT_READ_KEY_REVOKED = "anneal.api.tenant-read-key-revoked";
  /** request: {@code {}} → the fleet view (nodes, devices with free/used, per-class totals, queue depth). */
  public static final String FLEET = "anneal.scheduler.fleet";
  /** A node's free device memory: {nodeId, freeMemoryMiB: {"0": MiB, ...}} (backends that measure it). */
  public static final String NODE_MEMORY = "anneal.scheduler.node-memory";
  /** send: a device failed repeatedly and is taken out of service, {@code {nodeId, device, reason}}. */
  public static final String DEVICE_QUARANTINED = "anneal.scheduler.device-quarantined";
  /** publish: an operator lifted a device's quarantine, {@code {nodeId, device}} (scheduler and that node's worker). */
  public static final String DEVICE_RESTORED = "anneal.fleet.device-restored";
  /**
   * publish: the fleet's shape for admission checks,
   * {@code {classes: {CLASS: {maxPerNode, memoryMiB, installedPerNode}}, kinds[], limits: {"kind.param": max}}}
   * ({@code maxPerNode} counts GPUs in service; {@code installedPerNode} every GPU, quarantined or not).
   */
  public static final String FLEET_SHAPE = "anneal.fleet.shape";
  /**
   * request: {@code {}} → the fleet's shape now, as {@link #FLEET_SHAPE} publishes it; asked by the API
   * before it refuses a job on the shape it holds, which may predate a node that just joined.
   */
  public static final String FLEET_SHAPE_NOW = "anneal.fleet.shape-now";
  /**
   * The scheduler's queue, published after each placement pass that placed jobs and every second:
   * {queued, scheduler, seen: {apiId: apiSeq}} (the scheduler instance, and per API instance the sequence
   * number of the last admission it received), for each API's queue bound.
   */
  public static final String QUEUE_STATE = "anneal.queue.state";
  /** publish: a job event for subscribers, {@code {type: "job", jobId, tenantId, state, ...}}. */
  public static final String JOB_EVENTS = "anneal.job.events";

  private Addresses() {}

  /** send: run a placed job on this node, {@code {job..., nodeId, devices[], attempt}}. */
  public static String workerRun(String nodeId) {
    return "anneal.worker." + nodeId + ".run";
  }

  /** send: cancel a running job on this node, {@code {jobId}}. */
  /** An operator quarantined one of the node's GPUs: {@code {device, reason}} (already stored). */
  public static String workerQuarantine(String nodeId) {
    return "anneal.worker." + nodeId + ".quarantine";
  }

  public static String workerCancel(String nodeId) {
    return "anneal.worker." + nodeId + ".cancel";
  }

  /**
   * request: give this node a new signing key (ADR 18), {@code {revokePrevious}} → {@code {nodeId, publicKey,
   * fingerprint, previous: {publicKey, fingerprint, state}, outboxResigned}}; answered by the worker that holds the key.
   */
  public static String workerRotateKey(String nodeId) {
    return "anneal.worker." + nodeId + ".rotate-key";
  }
}
