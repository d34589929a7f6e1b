package io.anneal.store;

import io.anneal.billing.ledger.EscrowHold;
import io.anneal.billing.ledger.LedgerAudit;
import io.anneal.billing.ledger.LedgerRefusal;
import io.anneal.billing.ledger.SqlLedger;
import io.anneal.billing.sql.Database;
import io.anneal.billing.sql.GroupCommitWriter;
import io.anneal.job.JobState;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BiConsumer;
import java.util.logging.Logger;

/**
 * Durable jobs, tenants and the receipt outbox. Writes go through one group-commit writer (many
 * jobs per transaction); reads run on a small reader pool. No method blocks its caller.
 */
public final class JobStore implements AutoCloseable {
  private static final String COLUMNS = "id, tenant_id, kind, spec, gpus, gpu_class, priority, max_seconds, state,"
      + " outcome, error, node_id, placed_class, devices, attempt, result, escrow_uact, price_uact_gpu_hour, charge_uact, receipt_id,"
      + " submitted_at, started_at, ended_at, settled_at, preemptions";

  private final Database db;
  private final GroupCommitWriter writer;
  private final ExecutorService readers;
  private final ExecutorService auditor;
  private final AtomicBoolean auditing = new AtomicBoolean();
  private volatile BiConsumer<LedgerAudit.Report, Long> auditListener =
      (r, nanos) -> {};

  public JobStore(Database db) {
    this.db = db;
    this.writer = new GroupCommitWriter(db, "anneal-store-writer", 2000);
    this.readers = Executors.newFixedThreadPool(2, r -> {
      Thread t = new Thread(r, "anneal-store-reader");
      t.setDaemon(true);
      return t;
    });
    this.auditor = Executors.newSingleThreadExecutor(r -> {
      Thread t = new Thread(r, "anneal-ledger-audit");
      t.setDaemon(true);
      return t;
    });
  }

  /** Told of every audit's report and how long it took (ns): for metrics and the log. */
  public void onAudit(BiConsumer<LedgerAudit.Report, Long> listener) {
    this.auditListener = listener;
  }

  /**
   * Audits the ledger ({@link LedgerAudit}, one snapshot) on a thread and a
   * connection of its own, so that reads and writes go on meanwhile; empty while an audit is running.
   */
  public Optional<CompletableFuture<LedgerAudit.Report>> audit(int maxFindings) {
    if (!auditing.compareAndSet(false, true)) return Optional.empty();
    try {
      return Optional.of(CompletableFuture.supplyAsync(() -> {
        long t0 = System.nanoTime();
        try (Connection c = db.connection()) {
          var report = LedgerAudit.run(c, maxFindings);
          try {
            auditListener.accept(report, System.nanoTime() - t0);
          } catch (RuntimeException e) {
            // metrics or the log failing must not lose the report
            Logger.getLogger(JobStore.class.getName()).warning("ledger audit listener failed: " + e);
          }
          return report;
        } catch (SQLException e) {
          throw new StoreException(e);
        } finally {
          auditing.set(false);
        }
      }, auditor));
    } catch (RejectedExecutionException e) {
      auditing.set(false);
      throw e;
    }
  }

  public Database database() {
    return db;
  }

  public GroupCommitWriter writer() {
    return writer;
  }

  /** Runs a read on the reader pool. */
  public <T> CompletableFuture<T> read(GroupCommitWriter.Op<T> op) {
    return CompletableFuture.supplyAsync(() -> {
      try (Connection c = db.connection()) {
        return op.apply(c);
      } catch (SQLException e) {
        throw new StoreException(e);
      }
    }, readers);
  }

  /** A database failure surfaced to the caller. */
  public static final class StoreException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public StoreException(Throwable cause) {
      super(cause.getMessage(), cause);
    }
  }

  // ------------------------------------------------------------------ submit

  /** Outcome of a submit: the job's id (new or the earlier one for the same idempotency key) or a refusal. */
  /** {@code heldUakt} > 0: the job's escrow was taken from the tenant's AKT-direct deposit (bme-spec 16.5). */
  public record SubmitResult(String jobId, boolean duplicate, JobState state, LedgerRefusal refusal, String detail,
      long heldUakt) {
    public SubmitResult(String jobId, boolean duplicate, JobState state, LedgerRefusal refusal, String detail) {
      this(jobId, duplicate, state, refusal, detail, 0);
    }

    public boolean accepted() {
      return refusal == null;
    }
  }

  /** One submission: the job row to write, its idempotency key (may be null), its escrow. */
  record Submission(JobRecord job, String idempotencyKey, EscrowHold hold) {}

  /** Submissions that reach the writer together are admitted with set-based SQL (see {@link #submitAll}). */
  private final GroupCommitWriter.BatchKind<Submission, SubmitResult> submitKind = GroupCommitWriter.ranked(10, (c, in) -> {
    List<SubmitResult> out = submitAll(c, in);
    if (this.listener.active()) {
      List<Transition> t = new ArrayList<>();
      for (int i = 0; i < in.size(); i++) {
        SubmitResult r = out.get(i);
        if (!r.accepted() || r.duplicate()) continue;
        JobRecord j = in.get(i).job();
        t.add(new Transition(r.jobId(), JobState.QUEUED, j.submittedAt(), data("kind", j.kind(), "gpus", j.gpus())));
      }
      tell(c, t);
    }
    return out;
  });

  /**
   * Writes a new QUEUED job and holds its maximum cost in escrow, in one transaction. An
   * idempotency key seen before returns the earlier job and writes nothing.
   */
  public CompletableFuture<SubmitResult> submit(JobRecord job, String idempotencyKey, EscrowHold hold) {
    return writer.submit(submitKind, new Submission(job, idempotencyKey, hold));
  }

  /**
   * Admits many submissions in the caller's transaction: one read of earlier idempotency keys, the
   * escrow holds decided and written set-based ({@link SqlLedger#holdAll}), the job rows in one
   * statement. A key repeated within the batch answers with the first job, as a duplicate.
   */
  static List<SubmitResult> submitAll(Connection c, List<Submission> subs) throws SQLException {
    SubmitResult[] out = new SubmitResult[subs.size()];
    Map<String, String[]> known = new HashMap<>(); // tenant, NUL, key → {id, state}
    List<String> keys = new ArrayList<>();
    for (Submission s : subs) if (s.idempotencyKey() != null) keys.add(s.idempotencyKey());
    if (!keys.isEmpty()) {
      try (PreparedStatement ps = c.prepareStatement(
          Database.keyed(c, "t.tenant_id, t.idempotency_key, t.id, t.state", "job", "idempotency_key", null))) {
        ps.setArray(1, c.createArrayOf("varchar", new java.util.LinkedHashSet<>(keys).toArray(new String[0])));
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) known.put(rs.getString(1) + '\u0000' + rs.getString(2), new String[] {rs.getString(3), rs.getString(4)});
        }
      }
    }
    List<Integer> fresh = new ArrayList<>();
    List<EscrowHold> holds = new ArrayList<>();
    Map<String, Integer> firstOfKey = new HashMap<>();
    for (int i = 0; i < subs.size(); i++) {
      Submission s = subs.get(i);
      String k = s.idempotencyKey() == null ? null : s.job().tenantId() + '\u0000' + s.idempotencyKey();
      if (k != null && known.containsKey(k)) {
        String[] e = known.get(k);
        out[i] = new SubmitResult(e[0], true, JobState.valueOf(e[1]), null, null);
      } else if (k != null && firstOfKey.containsKey(k)) {
        continue; // answered below from the first submission with this key
      } else {
        if (k != null) firstOfKey.put(k, i);
        fresh.add(i);
        holds.add(s.hold());
      }
    }
    long[] heldUakt = new long[holds.size()];
    List<SqlLedger.Refused> refusals = holds.isEmpty() ? List.of() : SqlLedger.holdAll(c, holds, heldUakt);
    List<JobRecord> rows = new ArrayList<>();
    List<String> rowKeys = new ArrayList<>();
    for (int f = 0; f < fresh.size(); f++) {
      Submission s = subs.get(fresh.get(f));
      SqlLedger.Refused r = refusals.get(f);
      if (r != null) {
        out[fresh.get(f)] = new SubmitResult(null, false, null, r.reason(), r.getMessage());
      } else {
        rows.add(s.job());
        rowKeys.add(s.idempotencyKey());
        out[fresh.get(f)] = new SubmitResult(s.job().id(), false, JobState.QUEUED, null, null, heldUakt[f]);
      }
    }
    if (!rows.isEmpty()) insertJobs(c, rows, rowKeys);
    for (int i = 0; i < subs.size(); i++) {
      if (out[i] != null) continue;
      Submission s = subs.get(i);
      SubmitResult first = out[firstOfKey.get(s.job().tenantId() + '\u0000' + s.idempotencyKey())];
      out[i] = first.accepted() ? new SubmitResult(first.jobId(), true, first.state(), null, null) : first;
    }
    return List.of(out);
  }

  /** New QUEUED job rows in one statement (column arrays, unnested by the database). */
  private static void insertJobs(Connection c, List<JobRecord> jobs, List<String> keys) throws SQLException {
    int n = jobs.size();
    String[][] text = new String[6][n]; // id, tenant_id, idempotency_key, kind, spec, gpu_class
    Long[][] nums = new Long[7][n]; // gpus, priority, max_seconds, escrow, price, submitted_at, queued_at
    for (int i = 0; i < n; i++) {
      JobRecord j = jobs.get(i);
      text[0][i] = j.id();
      text[1][i] = j.tenantId();
      text[2][i] = keys.get(i);
      text[3][i] = j.kind();
      text[4][i] = j.specJson();
      text[5][i] = j.gpuClass();
      nums[0][i] = (long) j.gpus();
      nums[1][i] = (long) j.priority();
      nums[2][i] = j.maxSeconds();
      nums[3][i] = j.escrowUact();
      nums[4][i] = j.priceUactPerGpuHour();
      nums[5][i] = j.submittedAt();
      nums[6][i] = j.submittedAt();
    }
    try (PreparedStatement ps = c.prepareStatement("INSERT INTO job (id, tenant_id, idempotency_key, kind, spec, gpu_class,"
        + " gpus, priority, max_seconds, escrow_uact, price_uact_gpu_hour, submitted_at, queued_at, state, attempt)"
        + " SELECT v.*, 'QUEUED', 0 FROM unnest(" + "CAST(? AS VARCHAR ARRAY), ".repeat(6)
        + "CAST(? AS BIGINT ARRAY), ".repeat(6) + "CAST(? AS BIGINT ARRAY)) AS v")) {
      int p = 1;
      for (String[] col : text) ps.setArray(p++, c.createArrayOf("varchar", col));
      for (Long[] col : nums) ps.setArray(p++, c.createArrayOf("bigint", col));
      ps.executeUpdate();
    }
  }

  // ------------------------------------------------------------------ transitions

  /** {@code state IN (...)} of the states a job may move to {@code target} from (JobState owns the rules). */
  private static String from(JobState target) {
    StringBuilder sb = new StringBuilder("state IN (");
    for (JobState s : target.allowedFrom()) sb.append(sb.length() > 10 ? ", '" : "'").append(s.name()).append('\'');
    return sb.append(')').toString();
  }

  /*
   * The hot transitions (PLACED, RUNNING, finished, settled) are batch kinds: the writer hands over
   * every consecutive one of a kind together, and each batch is a few set-based statements — which
   * jobs may move (one read), the moves (one MERGE from column arrays), the outbox rows — instead of
   * statements per job. The store has one writer, so the read and the writes see the same state.
   */
  /** A placement; {@code fence} is the scheduler lease's epoch it was decided under (cluster mode), or null. */
  record Placed(String jobId, String nodeId, String gpuClass, String devices, Long fence) {
    Placed(String jobId, String nodeId, String gpuClass, String devices) {
      this(jobId, nodeId, gpuClass, devices, null);
    }
  }

  /** {@code node}: the node that runs it, checked against the job's (cluster mode), or null. */
  record Running(String jobId, long startedAt, String node) {
    Running(String jobId, long startedAt) {
      this(jobId, startedAt, null);
    }
  }

  /** {@code runningWritten}: false when the job ended before its RUNNING write was due (it then went from PLACED). */
  record Finished(String jobId, JobState outcome, String error, String resultJson, long startedAt, long endedAt,
      String receiptId, String body, boolean runningWritten, String node) {
    Finished(String jobId, JobState outcome, String error, String resultJson, long startedAt, long endedAt,
        String receiptId, String body) {
      this(jobId, outcome, error, resultJson, startedAt, endedAt, receiptId, body, true, null);
    }
  }

  record Settled(String jobId, String receiptId, long chargeUact, long settledAt, boolean finalReceipt) {}

  /**
   * A job state change as it is written, with what subscribers are told about it: listeners record
   * what follows from it (webhook deliveries) in the same transaction, so a crash cannot separate them.
   */
  public record Transition(String jobId, JobState state, long at, Map<String, Object> data) {}

  /** Called on the writer thread inside the transaction that writes the transitions. */
  public interface TransitionListener {
    TransitionListener NONE = new TransitionListener() {
      @Override
      public boolean active() {
        return false;
      }

      @Override
      public void written(Connection c, List<Transition> transitions) {}
    };

    /** False when nothing would be recorded now: the store then does not even build the transitions. */
    default boolean active() {
      return true;
    }

    void written(Connection c, List<Transition> transitions) throws SQLException;
  }

  private volatile TransitionListener listener = TransitionListener.NONE;

  /** Sets the one listener of state changes (e.g. webhook deliveries). */
  public void onTransitions(TransitionListener l) {
    this.listener = l == null ? TransitionListener.NONE : l;
  }

  private void tell(Connection c, List<Transition> t) throws SQLException {
    if (!t.isEmpty()) listener.written(c, t);
  }

  /** Tells the listener of the applied inputs' transitions, if it listens now. */
  private <T> void tell(Connection c, List<T> in, List<Boolean> out, java.util.function.Function<T, Transition> f)
      throws SQLException {
    if (listener.active()) tell(c, applied(in, out, f));
  }

  private final GroupCommitWriter.BatchKind<Placed, Boolean> placedKind = GroupCommitWriter.ranked(20, (c, in) -> {
    List<Boolean> out = placedAll(c, in);
    tell(c, in, out, p -> new Transition(p.jobId(), JobState.PLACED, System.currentTimeMillis(), data("nodeId", p.nodeId(),
        "gpuClass", p.gpuClass(), "devices", new io.vertx.core.json.JsonArray(p.devices()).getList())));
    return out;
  });
  private final GroupCommitWriter.BatchKind<Running, Boolean> runningKind = GroupCommitWriter.ranked(30, (c, in) -> {
    List<Boolean> out = runningAll(c, in);
    tell(c, in, out, r -> new Transition(r.jobId(), JobState.RUNNING, r.startedAt(), data("startedAt", r.startedAt())));
    return out;
  });
  private final GroupCommitWriter.BatchKind<Finished, Boolean> finishedKind = GroupCommitWriter.ranked(40, (c, in) -> {
    List<Boolean> out = finishedAll(c, in);
    // a job that went from PLACED to its outcome still ran: subscribers are told RUNNING first
    tell(c, in, out, f -> f.runningWritten() ? null
        : new Transition(f.jobId(), JobState.RUNNING, f.startedAt(), data("startedAt", f.startedAt())));
    tell(c, in, out, f -> {
      Map<String, Object> d = new java.util.LinkedHashMap<>();
      d.put("outcome", f.outcome().name());
      if (f.error() != null) d.put("error", f.error());
      if (f.resultJson() != null) d.put("result", new io.vertx.core.json.JsonObject(f.resultJson()).getMap());
      d.put("receiptId", f.receiptId());
      d.put("startedAt", f.startedAt());
      d.put("endedAt", f.endedAt());
      return new Transition(f.jobId(), f.outcome(), f.endedAt(), d);
    });
    return out;
  });
  private final GroupCommitWriter.BatchKind<Settled, Boolean> settledKind = GroupCommitWriter.ranked(60, (c, in) -> {
    List<Boolean> out = settledAll(c, in);
    tell(c, in, out, st -> st.finalReceipt() ? new Transition(st.jobId(), JobState.SETTLED, st.settledAt(),
        data("receiptId", st.receiptId(), "chargeUact", st.chargeUact())) : null);
    return out;
  });

  /** A transition's data from key/value pairs; null values are left out. */
  private static Map<String, Object> data(Object... kv) {
    Map<String, Object> m = new java.util.LinkedHashMap<>();
    for (int i = 0; i < kv.length; i += 2) {
      if (kv[i + 1] != null) m.put((String) kv[i], kv[i + 1]);
    }
    return m;
  }

  /** The transitions of the inputs that were applied ({@code out} true), in input order; null = none. */
  private static <T> List<Transition> applied(List<T> in, List<Boolean> out, java.util.function.Function<T, Transition> f) {
    List<Transition> t = new ArrayList<>();
    for (int i = 0; i < in.size(); i++) {
      if (!Boolean.TRUE.equals(out.get(i))) continue;
      Transition x = f.apply(in.get(i));
      if (x != null) t.add(x);
    }
    return t;
  }

  /** Moves a job to PLACED on the given node and devices, if it is still QUEUED. */
  public CompletableFuture<Boolean> placed(String jobId, String nodeId, String gpuClass, String devices) {
    return writer.submit(placedKind, new Placed(jobId, nodeId, gpuClass, devices, schedulerFence));
  }

  /** The node whose runs this store records (cluster mode), or null. */
  private volatile String runsOf;

  /**
   * Cluster mode (ADR 19): the starts and ends of runs written from now on are this node's, and are
   * written only while the job is still placed on it. A node the scheduler gave up on (it stopped
   * answering, and its jobs went elsewhere) cannot end a job that now runs on another.
   */
  public void recordRunsOf(String nodeId) {
    runsOf = nodeId;
  }

  /** The scheduler lease's epoch (ADR 19), or null on a single instance: placements are checked against it. */
  private volatile Long schedulerFence;

  /**
   * From now on, placements and the scheduler's re-queues are written only while the scheduler lease
   * is still at {@code epoch} (cluster mode, ADR 19); a stale leader's are refused as not placed.
   */
  public void fenceScheduler(long epoch) {
    schedulerFence = epoch;
  }

  public CompletableFuture<Boolean> running(String jobId, long startedAt) {
    return writer.submit(runningKind, new Running(jobId, startedAt, runsOf));
  }

  /** Ids among {@code ids} whose row matches {@code condition} (a WHERE fragment on job). */
  private static java.util.Set<String> jobsWhere(Connection c, List<String> ids, String condition) throws SQLException {
    java.util.Set<String> out = new java.util.HashSet<>();
    // PostgreSQL: the rows admitted are locked (in id order) until the transaction ends, so that what this
    // transaction writes next (the move, the receipt in the outbox) holds for them. In cluster mode other
    // instances write jobs too: a run's end admitted here while the new scheduler re-queued the job would
    // otherwise put its receipt in the outbox without moving the job (ADR 19). H2 has one writer.
    String sql = Database.keyed(c, "t.id", "job", "id", condition) + (Database.isH2(c) ? "" : " ORDER BY t.id FOR UPDATE");
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      ps.setArray(1, c.createArrayOf("varchar", new java.util.LinkedHashSet<>(ids).toArray(new String[0])));
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) out.add(rs.getString(1));
      }
    }
    return out;
  }

  /**
   * Which inputs may apply: the job matches {@code condition} and it is the job's first input in the
   * batch (a row is moved once per statement). {@code chosen} receives those inputs.
   */
  private static <T> List<Boolean> admit(Connection c, List<T> in, java.util.function.Function<T, String> id,
      String condition, List<T> chosen) throws SQLException {
    java.util.Set<String> ok = jobsWhere(c, in.stream().map(id).toList(), condition);
    List<Boolean> out = new ArrayList<>(in.size());
    for (T t : in) {
      boolean first = ok.remove(id.apply(t));
      out.add(first);
      if (first) chosen.add(t);
    }
    return out;
  }

  /**
   * As {@link #admit}, where an item that names a node is admitted only while its job is placed on that
   * node (cluster mode); the chosen keep the input's order.
   */
  private static <T> List<Boolean> admitOnNode(Connection c, List<T> in, java.util.function.Function<T, String> id,
      java.util.function.Function<T, String> node, String condition, List<T> chosen) throws SQLException {
    Map<String, List<Integer>> byNode = new java.util.LinkedHashMap<>();
    for (int i = 0; i < in.size(); i++) {
      String n = node.apply(in.get(i));
      byNode.computeIfAbsent(n == null ? "" : n, k -> new ArrayList<>()).add(i);
    }
    if (byNode.size() == 1 && byNode.containsKey("")) return admit(c, in, id, condition, chosen);
    Boolean[] out = new Boolean[in.size()];
    for (Map.Entry<String, List<Integer>> g : byNode.entrySet()) {
      List<T> part = new ArrayList<>();
      g.getValue().forEach(i -> part.add(in.get(i)));
      String cond = g.getKey().isEmpty() ? condition : condition + " AND t.node_id = '" + g.getKey().replace("'", "''") + "'";
      List<Boolean> r = admit(c, part, id, cond, new ArrayList<>());
      for (int k = 0; k < r.size(); k++) out[g.getValue().get(k)] = r.get(k);
    }
    for (int i = 0; i < out.length; i++) {
      if (out[i]) chosen.add(in.get(i));
    }
    return java.util.Arrays.asList(out);
  }

  /** {@code MERGE INTO job} from column arrays: {@code cols} name the source columns, the first is the job id. */
  private static void mergeJobs(Connection c, String[] cols, String[] types, Object[][] values, String set, String condition)
      throws SQLException {
    StringBuilder src = new StringBuilder("SELECT * FROM unnest(");
    for (int i = 0; i < cols.length; i++) src.append(i == 0 ? "" : ", ").append("CAST(? AS ").append(types[i]).append(" ARRAY)");
    src.append(") AS v(").append(String.join(", ", cols)).append(')');
    try (PreparedStatement ps = c.prepareStatement("MERGE INTO job j USING (" + src + ") s ON j.id = s." + cols[0]
        + (condition == null ? "" : " AND j." + condition) + " WHEN MATCHED THEN UPDATE SET " + set)) {
      for (int i = 0; i < cols.length; i++) {
        ps.setArray(i + 1, c.createArrayOf(types[i].equals("BIGINT") ? "bigint" : "varchar", values[i]));
      }
      ps.executeUpdate();
    }
  }

  static List<Boolean> placedAll(Connection c, List<Placed> in) throws SQLException {
    List<Placed> live = in;
    Long epoch = null;
    for (Placed p : in) {
      if (p.fence() == null) continue;
      // cluster mode: a placement decided under an older scheduler lease is not written (ADR 19)
      if (live == in) {
        epoch = RoleLease.epochForShare(c, SCHEDULER_ROLE);
        live = new ArrayList<>();
        for (Placed q : in) {
          if (q.fence() == null || q.fence().equals(epoch)) live.add(q);
        }
      }
    }
    if (live == in) return placedLive(c, in);
    List<Boolean> liveOut = placedLive(c, live);
    List<Boolean> out = new ArrayList<>(in.size());
    int k = 0;
    for (Placed p : in) {
      boolean current = p.fence() == null || p.fence().equals(epoch);
      out.add(current ? liveOut.get(k++) : false);
    }
    return out;
  }

  /** The lease name of the scheduler role (ADR 19). */
  public static final String SCHEDULER_ROLE = "scheduler";

  private static List<Boolean> placedLive(Connection c, List<Placed> in) throws SQLException {
    if (in.isEmpty()) return List.of();
    List<Placed> go = new ArrayList<>();
    List<Boolean> out = admit(c, in, Placed::jobId, from(JobState.PLACED), go);
    if (go.isEmpty()) return out;
    int n = go.size();
    String[][] v = new String[4][n]; // id, node, class, devices
    for (int i = 0; i < n; i++) {
      Placed p = go.get(i);
      v[0][i] = p.jobId();
      v[1][i] = p.nodeId();
      v[2][i] = p.gpuClass();
      v[3][i] = p.devices();
    }
    mergeJobs(c, new String[] {"id", "node", "cls", "devs"}, new String[] {"VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR"}, v,
        "state = 'PLACED', node_id = s.node, placed_class = s.cls, devices = s.devs, attempt = j.attempt + 1",
        from(JobState.PLACED));
    // billing settles a job's receipts only from the nodes it was placed on
    SqlLedger.placedOn(c, java.util.Arrays.asList(v[0]), java.util.Arrays.asList(v[1]));
    return out;
  }

  static List<Boolean> runningAll(Connection c, List<Running> in) throws SQLException {
    List<Running> go = new ArrayList<>();
    List<Boolean> out = admitOnNode(c, in, Running::jobId, Running::node, from(JobState.RUNNING), go);
    if (go.isEmpty()) return out;
    int n = go.size();
    String[] ids = new String[n];
    Long[] at = new Long[n];
    for (int i = 0; i < n; i++) {
      ids[i] = go.get(i).jobId();
      at[i] = go.get(i).startedAt();
    }
    mergeJobs(c, new String[] {"id", "t"}, new String[] {"VARCHAR", "BIGINT"}, new Object[][] {ids, at},
        "state = 'RUNNING', started_at = s.t", from(JobState.RUNNING));
    return out;
  }

  static List<Boolean> finishedAll(Connection c, List<Finished> in) throws SQLException {
    for (Finished f : in) {
      if (!f.outcome().finished() || f.outcome() == JobState.SETTLED) {
        throw new IllegalArgumentException("not an outcome: " + f.outcome());
      }
    }
    List<Finished> go = new ArrayList<>();
    List<Boolean> out = admitOnNode(c, in, Finished::jobId, Finished::node, "state IN ('PLACED', 'RUNNING')", go);
    if (go.isEmpty()) return out;
    int n = go.size();
    String[][] t = new String[6][n]; // id, outcome, error, result, receipt id, body
    Long[] started = new Long[n];
    Long[] ended = new Long[n];
    for (int i = 0; i < n; i++) {
      Finished f = go.get(i);
      t[0][i] = f.jobId();
      t[1][i] = f.outcome().name();
      t[2][i] = f.error();
      t[3][i] = f.resultJson();
      t[4][i] = f.receiptId();
      t[5][i] = f.body();
      started[i] = f.startedAt();
      ended[i] = f.endedAt();
    }
    // a job that ended before its RUNNING write was due goes from PLACED to its outcome: its start is set here
    mergeJobs(c, new String[] {"id", "outcome", "err", "res", "rid", "started", "ended"},
        new String[] {"VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "BIGINT", "BIGINT"},
        new Object[][] {t[0], t[1], t[2], t[3], t[4], started, ended},
        "state = s.outcome, outcome = s.outcome, error = s.err, result = s.res, ended_at = s.ended, receipt_id = s.rid,"
            + " started_at = CASE WHEN j.state = 'PLACED' THEN s.started ELSE j.started_at END",
        "state IN ('PLACED', 'RUNNING')");
    insertOutbox(c, t[4], t[0], t[5], ended);
    return out;
  }

  private static void insertOutbox(Connection c, String[] receiptIds, String[] jobIds, String[] bodies, Long[] at)
      throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("INSERT INTO outbox (receipt_id, job_id, body, created_at)"
        + " SELECT * FROM unnest(CAST(? AS VARCHAR ARRAY), CAST(? AS VARCHAR ARRAY), CAST(? AS VARCHAR ARRAY),"
        + " CAST(? AS BIGINT ARRAY))")) {
      ps.setArray(1, c.createArrayOf("varchar", receiptIds));
      ps.setArray(2, c.createArrayOf("varchar", jobIds));
      ps.setArray(3, c.createArrayOf("varchar", bodies));
      ps.setArray(4, c.createArrayOf("bigint", at));
      ps.executeUpdate();
    }
  }

  static List<Boolean> settledAll(Connection c, List<Settled> in) throws SQLException {
    // an acknowledgement counts once: its outbox entry must still be there (and is removed)
    java.util.Set<String> pending = new java.util.HashSet<>();
    try (PreparedStatement ps = c.prepareStatement(Database.keyed(c, "t.receipt_id", "outbox", "receipt_id", null))) {
      ps.setArray(1, c.createArrayOf("varchar", in.stream().map(Settled::receiptId).distinct().toArray(String[]::new)));
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) pending.add(rs.getString(1));
      }
    }
    List<Settled> acked = new ArrayList<>();
    boolean[] ackedAt = new boolean[in.size()];
    for (int i = 0; i < in.size(); i++) {
      if (pending.remove(in.get(i).receiptId())) {
        acked.add(in.get(i));
        ackedAt[i] = true;
      }
    }
    List<Boolean> out = new ArrayList<>(java.util.Collections.nCopies(in.size(), false));
    if (acked.isEmpty()) return out;
    try (PreparedStatement ps = c.prepareStatement(Database.keyedDelete(c, "outbox", "receipt_id"))) {
      ps.setArray(1, c.createArrayOf("varchar", acked.stream().map(Settled::receiptId).toArray(String[]::new)));
      ps.executeUpdate();
    }
    // partial (preempted-run) charges are summed per job; final ones settle the job
    Map<String, Long> partial = new java.util.LinkedHashMap<>();
    List<Settled> finals = new ArrayList<>();
    for (Settled st : acked) {
      if (st.finalReceipt()) {
        finals.add(st);
      } else {
        partial.merge(st.jobId(), st.chargeUact(), Long::sum);
      }
    }
    java.util.Set<String> jobsExist = jobsWhere(c, acked.stream().map(Settled::jobId).toList(), "1 = 1");
    if (!partial.isEmpty()) {
      mergeJobs(c, new String[] {"id", "ch"}, new String[] {"VARCHAR", "BIGINT"},
          new Object[][] {partial.keySet().toArray(new String[0]), partial.values().toArray(new Long[0])},
          "charge_uact = COALESCE(j.charge_uact, 0) + s.ch", null);
    }
    List<Settled> settling = new ArrayList<>();
    List<Boolean> finalOk = admit(c, finals, Settled::jobId, from(JobState.SETTLED), settling);
    if (!settling.isEmpty()) {
      int n = settling.size();
      String[] ids = new String[n];
      Long[] ch = new Long[n];
      Long[] at = new Long[n];
      for (int i = 0; i < n; i++) {
        ids[i] = settling.get(i).jobId();
        ch[i] = settling.get(i).chargeUact();
        at[i] = settling.get(i).settledAt();
      }
      mergeJobs(c, new String[] {"id", "ch", "t"}, new String[] {"VARCHAR", "BIGINT", "BIGINT"}, new Object[][] {ids, ch, at},
          "state = 'SETTLED', charge_uact = COALESCE(j.charge_uact, 0) + s.ch, settled_at = s.t", from(JobState.SETTLED));
    }
    int f = 0;
    for (int i = 0; i < in.size(); i++) {
      if (!ackedAt[i]) continue;
      Settled st = in.get(i);
      out.set(i, st.finalReceipt() ? finalOk.get(f++) : jobsExist.contains(st.jobId()));
    }
    return out;
  }

  /** Puts a placed or running job back in the queue (shutdown, infrastructure failure). */
  public CompletableFuture<Boolean> requeue(String jobId, String reason) {
    // a node's own re-queue (cluster mode): only while the job is still on that node
    return requeue(jobId, reason, null, runsOf, false);
  }

  /**
   * Cluster mode (ADR 19): the scheduler's re-queue of a job it held on a node that does not run it (its
   * run message was lost): fenced like a placement, and only while the job is still PLACED on that node
   * (a job whose run started or ended there keeps its state).
   */
  public CompletableFuture<Boolean> requeueNeverStarted(String jobId, String nodeId, String reason) {
    return requeue(jobId, reason, schedulerFence, nodeId, true);
  }

  /**
   * The scheduler's re-queue of a job it found on GPUs and no node claims (recovery): in cluster mode
   * checked against its lease like a placement, so a stale leader cannot take a job from a run the new
   * leader adopted (ADR 19).
   */
  public CompletableFuture<Boolean> requeueByScheduler(String jobId, String reason) {
    return requeue(jobId, reason, schedulerFence, null, false);
  }

  private CompletableFuture<Boolean> requeue(String jobId, String reason, Long fence, String node, boolean placedOnly) {
    return writer.submit(c -> {
      if (fence != null && !fence.equals(RoleLease.epochForShare(c, SCHEDULER_ROLE))) return false;
      long now = System.currentTimeMillis();
      String sql = "UPDATE job SET state = 'QUEUED', node_id = NULL, devices = NULL, error = ?, started_at = NULL,"
          + " queued_at = ? WHERE id = ? AND " + (placedOnly ? "state = 'PLACED'" : from(JobState.QUEUED));
      boolean moved = (node == null ? update(c, sql, reason, now, jobId) : update(c, sql + " AND node_id = ?", reason, now, jobId, node)) == 1;
      if (moved) {
        tell(c, List.of(new Transition(jobId, JobState.QUEUED, now, data("reason", reason))));
      }
      return moved;
    });
  }

  /**
   * Records that a job stopped on its GPUs (SUCCEEDED, FAILED or CANCELLED) and puts its signed
   * receipt in the outbox, in one transaction, so that the receipt cannot be lost.
   */
  public CompletableFuture<Boolean> finished(String jobId, JobState outcome, String error, String resultJson,
      long startedAt, long endedAt, String receiptId, String signedReceiptJson) {
    return finished(jobId, outcome, error, resultJson, startedAt, endedAt, receiptId, signedReceiptJson, true);
  }

  /** As above; {@code runningWritten} false: the job ended before its RUNNING write was due (see WorkerVerticle). */
  public CompletableFuture<Boolean> finished(String jobId, JobState outcome, String error, String resultJson,
      long startedAt, long endedAt, String receiptId, String signedReceiptJson, boolean runningWritten) {
    if (!outcome.finished() || outcome == JobState.SETTLED) throw new IllegalArgumentException("not an outcome: " + outcome);
    return writer.submit(finishedKind, new Finished(jobId, outcome, error, resultJson, startedAt, endedAt, receiptId,
        signedReceiptJson, runningWritten, runsOf));
  }

  /**
   * Billing acknowledged a receipt: the outbox entry goes and the charge is added to the job's; a
   * final receipt makes the job SETTLED, a preempted run's receipt leaves it where it is (queued or
   * running again). False when the receipt was acknowledged before.
   */
  public CompletableFuture<Boolean> settled(String jobId, String receiptId, long chargeUact, long settledAt,
      boolean finalReceipt) {
    return writer.submit(settledKind, new Settled(jobId, receiptId, chargeUact, settledAt, finalReceipt));
  }

  /**
   * A running job was preempted: it goes back to the queue (PREEMPTED, then QUEUED) and the receipt
   * of the time it used goes to the outbox, in one transaction.
   */
  public CompletableFuture<Boolean> preempted(String jobId, String reason, long endedAt, String receiptId,
      String signedReceiptJson) {
    return writer.submit(c -> {
      // queued_at: when the row is written, not when the run ended (this write may be retried for a while)
      int n = update(c, "UPDATE job SET state = 'QUEUED', node_id = NULL, devices = NULL, started_at = NULL, error = ?,"
          + " preemptions = preemptions + 1, queued_at = ? WHERE id = ? AND " + from(JobState.PREEMPTED), reason,
          System.currentTimeMillis(), jobId);
      if (n == 1) {
        update(c, "INSERT INTO outbox (receipt_id, job_id, body, created_at) VALUES (?, ?, ?, ?)", receiptId, jobId,
            signedReceiptJson, endedAt);
        tell(c, List.of(new Transition(jobId, JobState.PREEMPTED, endedAt, data("reason", reason, "receiptId", receiptId)),
            new Transition(jobId, JobState.QUEUED, endedAt, data("reason", reason))));
      }
      return n == 1;
    });
  }

  /**
   * Removes up to {@code limit} webhook deliveries made before {@code cutoffMs} that have ended (retention,
   * with the jobs they told of). Returns how many it removed.
   */
  public CompletableFuture<Integer> removeEndedDeliveriesBefore(long cutoffMs, int limit) {
    return writer.submit(c -> io.anneal.webhook.WebhookStore.removeEndedBefore(c, cutoffMs, limit));
  }

  /**
   * Removes up to {@code limit} finished jobs that ended before {@code cutoffMs} (retention): settled ones,
   * whose receipts and settlements stay in the ledger, and those that ended in the queue (cancelled or past
   * their deadline: no receipt, their escrow returned when they ended). Returns how many it removed.
   */
  public CompletableFuture<Integer> removeFinishedBefore(long cutoffMs, int limit) {
    return writer.submit(c -> {
      int n = update(c, "DELETE FROM job WHERE id IN (SELECT id FROM job WHERE state = 'SETTLED' AND settled_at < ?"
          + " FETCH FIRST " + limit + " ROWS ONLY)", cutoffMs);
      if (n < limit) {
        n += update(c, "DELETE FROM job WHERE id IN (SELECT id FROM job WHERE state IN ('CANCELLED', 'FAILED')"
            + " AND receipt_id IS NULL AND ended_at < ? FETCH FIRST " + (limit - n) + " ROWS ONLY)", cutoffMs);
      }
      return n;
    });
  }

  /** Cancels a job that never ran and returns its escrow, in one transaction. */
  public CompletableFuture<Boolean> cancelQueued(String jobId, long now) {
    return writer.submit(c -> {
      int n = update(c, "UPDATE job SET state = 'CANCELLED', outcome = 'CANCELLED', ended_at = ?"
          + " WHERE id = ? AND state = 'QUEUED'", now, jobId); // of CANCELLED's sources, only QUEUED releases escrow
      if (n == 1) {
        SqlLedger.release(c, jobId);
        tell(c, List.of(new Transition(jobId, JobState.CANCELLED, now, data("outcome", "CANCELLED"))));
      }
      return n == 1;
    });
  }

  /** Fails a job that is still QUEUED (its start-by deadline passed) and releases its escrow; false if it moved on. */
  public CompletableFuture<Boolean> expireQueued(String jobId, String reason, long now) {
    return writer.submit(c -> {
      int n = update(c, "UPDATE job SET state = 'FAILED', outcome = 'FAILED', error = ?, ended_at = ?"
          + " WHERE id = ? AND state = 'QUEUED'", reason, now, jobId);
      if (n == 1) {
        SqlLedger.release(c, jobId);
        tell(c, List.of(new Transition(jobId, JobState.FAILED, now, data("outcome", "FAILED", "error", reason))));
      }
      return n == 1;
    });
  }

  // ------------------------------------------------------------------ reads

  public CompletableFuture<Optional<JobRecord>> job(String jobId) {
    return read(c -> {
      try (PreparedStatement ps = c.prepareStatement("SELECT " + COLUMNS + " FROM job WHERE id = ?")) {
        ps.setString(1, jobId);
        try (ResultSet rs = ps.executeQuery()) {
          return rs.next() ? Optional.of(row(rs)) : Optional.<JobRecord>empty();
        }
      }
    });
  }

  public CompletableFuture<List<JobRecord>> jobsOfTenant(String tenantId, int limit) {
    return jobsOfTenant(tenantId, limit, null, null).thenApply(p -> p.jobs());
  }

  /** A page of a tenant's jobs, newest first, and the job to continue after (null on the last page). */
  public record JobPage(List<JobRecord> jobs, String next) {}

  /**
   * A tenant's jobs, newest first: {@code limit} of them submitted before job {@code before} (from the
   * newest when null; none when it is not the tenant's), only those in {@code state} when given.
   */
  public CompletableFuture<JobPage> jobsOfTenant(String tenantId, int limit, String before, JobState state) {
    return read(c -> {
      Long beforeAt = null;
      if (before != null) {
        try (PreparedStatement ps = c.prepareStatement("SELECT submitted_at FROM job WHERE id = ? AND tenant_id = ?")) {
          ps.setString(1, before);
          ps.setString(2, tenantId);
          try (ResultSet rs = ps.executeQuery()) {
            if (!rs.next()) return new JobPage(List.of(), null);
            beforeAt = rs.getLong(1);
          }
        }
      }
      // by the (tenant_id, submitted_at) index, newest first; ties on the time ordered by id
      try (PreparedStatement ps = c.prepareStatement("SELECT " + COLUMNS + " FROM job WHERE tenant_id = ?"
          + (beforeAt == null ? "" : " AND (submitted_at < ? OR (submitted_at = ? AND id < ?))")
          + (state == null ? "" : " AND state = ?") + " ORDER BY submitted_at DESC, id DESC LIMIT ?")) {
        int i = 1;
        ps.setString(i++, tenantId);
        if (beforeAt != null) {
          ps.setLong(i++, beforeAt);
          ps.setLong(i++, beforeAt);
          ps.setString(i++, before);
        }
        if (state != null) ps.setString(i++, state.name());
        ps.setInt(i, limit + 1); // one more: whether there is a next page
        List<JobRecord> rows = rows(ps);
        if (rows.size() <= limit) return new JobPage(rows, null);
        List<JobRecord> page = new ArrayList<>(rows.subList(0, limit));
        return new JobPage(page, page.get(limit - 1).id());
      }
    });
  }

  /**
   * Ids of the jobs QUEUED in the store that entered the queue (were submitted, or re-queued) from
   * {@code fromMs} to {@code toMs}, both included (cluster mode: a scheduler looks for jobs whose message
   * went to another one or was lost, ADR 19). A range of the state index.
   */
  public List<String> queuedIdsBlocking(long fromMs, long toMs) throws SQLException {
    try (Connection c = db.connection(); PreparedStatement ps = c.prepareStatement(
        "SELECT id FROM job WHERE state = 'QUEUED' AND queued_at >= ? AND queued_at <= ?")) {
      ps.setLong(1, fromMs);
      ps.setLong(2, toMs);
      List<String> out = new ArrayList<>();
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) out.add(rs.getString(1));
      }
      return out;
    }
  }

  /** The jobs with these ids that still exist, in the order given. */
  public List<JobRecord> jobsBlocking(List<String> ids) throws SQLException {
    List<JobRecord> out = new ArrayList<>();
    try (Connection c = db.connection(); PreparedStatement ps = c.prepareStatement("SELECT " + COLUMNS + " FROM job WHERE id = ?")) {
      for (String id : ids) {
        ps.setString(1, id);
        out.addAll(rows(ps));
      }
    }
    return out;
  }

  /** Jobs that must be resumed at start: queued, or placed/running when the node stopped. */
  public List<JobRecord> activeJobsBlocking() throws SQLException {
    try (Connection c = db.connection();
        PreparedStatement ps = c.prepareStatement("SELECT " + COLUMNS
            + " FROM job WHERE state IN ('QUEUED', 'PLACED', 'RUNNING', 'PREEMPTED') ORDER BY submitted_at, id")) {
      return rows(ps);
    }
  }

  /** Jobs the store shows on the GPUs of one node (a worker that starts again finds its runs lost, ADR 19). */
  public List<JobRecord> onGpusOfBlocking(String nodeId) throws SQLException {
    try (Connection c = db.connection();
        PreparedStatement ps = c.prepareStatement("SELECT " + COLUMNS
            + " FROM job WHERE node_id = ? AND state IN ('PLACED', 'RUNNING', 'PREEMPTED') ORDER BY submitted_at, id")) {
      ps.setString(1, nodeId);
      return rows(ps);
    }
  }

  /** Tenants with a non-default weight or a quota (read once by the scheduler at start). */
  /** Every quarantined device (node → device → why), read now. */
  public Map<String, Map<Integer, String>> quarantinesBlocking() throws SQLException {
    try (Connection c = db.connection()) {
      return Quarantines.all(c);
    }
  }

  /** Every labelled node's labels (node → name → value), read now (ADR 29). */
  public Map<String, Map<String, String>> nodeLabelsBlocking() throws SQLException {
    try (Connection c = db.connection()) {
      return NodeLabels.all(c);
    }
  }

  /** The most a scheduler's saved pending windows may take (characters of JSON): the column's size. */
  public static final int MAX_PENDING_WINDOWS_CHARS = 1_000_000;

  /**
   * Saves the pricing windows a scheduler has sampled and billing has not stored yet (a JSON array,
   * ADR 22) in place of what it saved before; an empty array ({@code []}) removes its row.
   */
  public CompletableFuture<Void> savePendingWindows(String schedulerId, String windowsJson, long nowMs) {
    if (windowsJson.length() > MAX_PENDING_WINDOWS_CHARS) {
      throw new IllegalArgumentException("pending windows of " + windowsJson.length() + " characters, at most "
          + MAX_PENDING_WINDOWS_CHARS);
    }
    return writer.submit(c -> {
      try (PreparedStatement del = c.prepareStatement("DELETE FROM pricing_window_pending WHERE scheduler_id = ?")) {
        del.setString(1, schedulerId);
        del.executeUpdate();
      }
      if (!windowsJson.equals("[]")) {
        try (PreparedStatement ins = c.prepareStatement(
            "INSERT INTO pricing_window_pending (scheduler_id, saved_at_ms, windows) VALUES (?, ?, ?)")) {
          ins.setString(1, schedulerId);
          ins.setLong(2, nowMs);
          ins.setString(3, windowsJson);
          ins.executeUpdate();
        }
      }
      return null;
    });
  }

  /**
   * Takes the pending windows other schedulers saved before {@code savedBeforeMs} (ADR 22): returns
   * their JSON arrays, oldest save first, and removes the rows read, in one transaction (a row saved
   * again meanwhile stays).
   */
  public CompletableFuture<List<String>> takePendingWindows(String schedulerId, long savedBeforeMs) {
    return writer.submit(c -> {
      List<String> out = new ArrayList<>();
      List<Object[]> read = new ArrayList<>();
      try (PreparedStatement ps = c.prepareStatement("SELECT scheduler_id, saved_at_ms, windows FROM pricing_window_pending"
          + " WHERE scheduler_id <> ? AND saved_at_ms < ? ORDER BY saved_at_ms")) {
        ps.setString(1, schedulerId);
        ps.setLong(2, savedBeforeMs);
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            read.add(new Object[] {rs.getString(1), rs.getLong(2)});
            out.add(rs.getString(3));
          }
        }
      }
      try (PreparedStatement del = c.prepareStatement(
          "DELETE FROM pricing_window_pending WHERE scheduler_id = ? AND saved_at_ms = ?")) {
        for (Object[] r : read) {
          del.setString(1, (String) r[0]);
          del.setLong(2, (Long) r[1]);
          del.addBatch();
        }
        if (!read.isEmpty()) del.executeBatch();
      }
      return out;
    });
  }

  public List<TenantStore.Tenant> tenantPoliciesBlocking() throws SQLException {
    try (Connection c = db.connection()) {
      return TenantStore.policiesBlocking(c);
    }
  }

  /** Outbox entries (receipt id → signed receipt JSON) waiting for billing. */
  public CompletableFuture<List<String[]>> outbox(int limit) {
    return read(c -> {
      List<String[]> out = new ArrayList<>();
      try (PreparedStatement ps = c.prepareStatement("SELECT receipt_id, job_id, body FROM outbox ORDER BY created_at LIMIT ?")) {
        ps.setInt(1, limit);
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) out.add(new String[] {rs.getString(1), rs.getString(2), rs.getString(3)});
        }
      }
      return out;
    });
  }

  /**
   * Rewrites receipts waiting in the outbox in one transaction: {@code rewrite} gets each body and
   * answers the new one, or null to leave it (a key rotation signs again what the old key signed,
   * ADR 18). Returns how many were rewritten.
   */
  public CompletableFuture<Integer> rewriteOutbox(java.util.function.UnaryOperator<String> rewrite) {
    return writer.submitAlone(c -> {
      List<String[]> changed = new ArrayList<>();
      try (PreparedStatement ps = c.prepareStatement("SELECT receipt_id, body FROM outbox ORDER BY created_at");
          ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          String body = rewrite.apply(rs.getString(2));
          if (body != null) changed.add(new String[] {rs.getString(1), body});
        }
      }
      if (!changed.isEmpty()) {
        try (PreparedStatement ps = c.prepareStatement("UPDATE outbox SET body = ? WHERE receipt_id = ?")) {
          for (String[] row : changed) {
            ps.setString(1, row[1]);
            ps.setString(2, row[0]);
            ps.addBatch();
          }
          ps.executeBatch();
        }
      }
      return changed.size();
    });
  }

  /** States a job passes through; the others (SUCCEEDED, FAILED, CANCELLED, SETTLED) only grow. */
  static final java.util.Set<JobState> ACTIVE = java.util.EnumSet.of(JobState.QUEUED, JobState.PLACED, JobState.RUNNING,
      JobState.PREEMPTED);

  /**
   * Jobs per state. With {@code all} false, only the active states: a range of the {@code job_state}
   * index holding the jobs in flight, cheap however many finished jobs the table holds; the
   * finished states need a pass over their index ranges, so callers ask for them rarely.
   */
  public CompletableFuture<Map<JobState, Long>> countsByState(boolean all) {
    return read(c -> {
      Map<JobState, Long> m = new EnumMap<>(JobState.class);
      for (JobState s : JobState.values()) {
        if (all || ACTIVE.contains(s)) m.put(s, 0L);
      }
      StringBuilder in = new StringBuilder();
      for (JobState s : m.keySet()) in.append(in.length() == 0 ? "'" : ", '").append(s.name()).append('\'');
      try (PreparedStatement ps = c.prepareStatement("SELECT state, COUNT(*) FROM job WHERE state IN (" + in + ") GROUP BY state");
          ResultSet rs = ps.executeQuery()) {
        while (rs.next()) m.put(JobState.valueOf(rs.getString(1)), rs.getLong(2));
      }
      return m;
    });
  }

  private static List<JobRecord> rows(PreparedStatement ps) throws SQLException {
    List<JobRecord> out = new ArrayList<>();
    try (ResultSet rs = ps.executeQuery()) {
      while (rs.next()) out.add(row(rs));
    }
    return out;
  }

  private static JobRecord row(ResultSet rs) throws SQLException {
    long charge = rs.getLong(19);
    Long chargeUact = rs.wasNull() ? null : charge;
    return new JobRecord(rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4), rs.getInt(5), rs.getString(6),
        rs.getInt(7), rs.getLong(8), JobState.valueOf(rs.getString(9)), rs.getString(10), rs.getString(11), rs.getString(12),
        rs.getString(13), rs.getString(14), rs.getInt(15), rs.getString(16), rs.getLong(17), rs.getLong(18), chargeUact,
        rs.getString(20), rs.getLong(21), rs.getLong(22), rs.getLong(23), rs.getLong(24), rs.getInt(25));
  }

  static int update(Connection c, String sql, Object... args) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      for (int i = 0; i < args.length; i++) ps.setObject(i + 1, args[i]);
      return ps.executeUpdate();
    }
  }

  @Override
  public void close() {
    writer.close();
    readers.shutdown();
    auditor.shutdownNow();
  }
}
