package io.anneal.store;

import io.anneal.billing.ledger.EscrowHold;
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
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Durable jobs, tenants and the receipt outbox. Writes go through one group-commit writer (many
 * jobs per transaction); reads run on a small reader pool. No method blocks its caller.
 */
public final class JobStore implements AutoCloseable {
  private static final String COLUMNS = "id, tenant_id, kind, spec, gpus, gpu_class, priority, max_seconds, state,"
      + " outcome, error, node_id, placed_class, devices, attempt, result, escrow_uact, price_uact_gpu_hour, charge_uact, receipt_id,"
      + " submitted_at, started_at, ended_at, settled_at";

  private final Database db;
  private final GroupCommitWriter writer;
  private final ExecutorService readers;

  public JobStore(Database db) {
    this.db = db;
    this.writer = new GroupCommitWriter(db, "anneal-store-writer", 2000);
    this.readers = Executors.newFixedThreadPool(2, r -> {
      Thread t = new Thread(r, "anneal-store-reader");
      t.setDaemon(true);
      return t;
    });
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
  public record SubmitResult(String jobId, boolean duplicate, JobState state, LedgerRefusal refusal, String detail) {
    public boolean accepted() {
      return refusal == null;
    }
  }

  /**
   * Writes a new QUEUED job and holds its maximum cost in escrow, in one transaction. An
   * idempotency key seen before returns the earlier job and writes nothing.
   */
  public CompletableFuture<SubmitResult> submit(JobRecord job, String idempotencyKey, EscrowHold hold) {
    return writer.submit(c -> {
      if (idempotencyKey != null) {
        try (PreparedStatement ps = c.prepareStatement("SELECT id, state FROM job WHERE tenant_id = ? AND idempotency_key = ?")) {
          ps.setString(1, job.tenantId());
          ps.setString(2, idempotencyKey);
          try (ResultSet rs = ps.executeQuery()) {
            if (rs.next()) return new SubmitResult(rs.getString(1), true, JobState.valueOf(rs.getString(2)), null, null);
          }
        }
      }
      try {
        SqlLedger.hold(c, hold);
      } catch (SqlLedger.Refused r) {
        return new SubmitResult(null, false, null, r.reason(), r.getMessage());
      }
      try (PreparedStatement ps = c.prepareStatement("INSERT INTO job (id, tenant_id, idempotency_key, kind, spec, gpus,"
          + " gpu_class, priority, max_seconds, state, attempt, escrow_uact, price_uact_gpu_hour, submitted_at)"
          + " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'QUEUED', 0, ?, ?, ?)")) {
        ps.setString(1, job.id());
        ps.setString(2, job.tenantId());
        ps.setString(3, idempotencyKey);
        ps.setString(4, job.kind());
        ps.setString(5, job.specJson());
        ps.setInt(6, job.gpus());
        ps.setString(7, job.gpuClass());
        ps.setInt(8, job.priority());
        ps.setLong(9, job.maxSeconds());
        ps.setLong(10, job.escrowUact());
        ps.setLong(11, job.priceUactPerGpuHour());
        ps.setLong(12, job.submittedAt());
        ps.executeUpdate();
      }
      return new SubmitResult(job.id(), false, JobState.QUEUED, null, null);
    });
  }

  // ------------------------------------------------------------------ transitions

  /** Moves a job to PLACED on the given node and devices, if it is still QUEUED. */
  /** {@code state IN (...)} of the states a job may move to {@code target} from (JobState owns the rules). */
  private static String from(JobState target) {
    StringBuilder sb = new StringBuilder("state IN (");
    for (JobState s : target.allowedFrom()) sb.append(sb.length() > 10 ? ", '" : "'").append(s.name()).append('\'');
    return sb.append(')').toString();
  }

  public CompletableFuture<Boolean> placed(String jobId, String nodeId, String gpuClass, String devices) {
    return writer.submit(c -> update(c, "UPDATE job SET state = 'PLACED', node_id = ?, placed_class = ?, devices = ?,"
        + " attempt = attempt + 1 WHERE id = ? AND " + from(JobState.PLACED), nodeId, gpuClass, devices, jobId) == 1);
  }

  public CompletableFuture<Boolean> running(String jobId, long startedAt) {
    return writer.submit(c -> update(c, "UPDATE job SET state = 'RUNNING', started_at = ? WHERE id = ? AND "
        + from(JobState.RUNNING), startedAt, jobId) == 1);
  }

  /** Puts a placed or running job back in the queue (shutdown, infrastructure failure). */
  public CompletableFuture<Boolean> requeue(String jobId, String reason) {
    return writer.submit(c -> update(c, "UPDATE job SET state = 'QUEUED', node_id = NULL, devices = NULL, error = ?,"
        + " started_at = NULL WHERE id = ? AND " + from(JobState.QUEUED), reason, jobId) == 1);
  }

  /**
   * Records that a job stopped on its GPUs (SUCCEEDED, FAILED or CANCELLED) and puts its signed
   * receipt in the outbox, in one transaction, so that the receipt cannot be lost.
   */
  public CompletableFuture<Boolean> finished(String jobId, JobState outcome, String error, String resultJson, long endedAt,
      String receiptId, String signedReceiptJson) {
    return writer.submit(c -> {
      if (!outcome.finished() || outcome == JobState.SETTLED) throw new IllegalArgumentException("not an outcome: " + outcome);
      int n = update(c, "UPDATE job SET state = ?, outcome = ?, error = ?, result = ?, ended_at = ?, receipt_id = ?"
          + " WHERE id = ? AND state IN ('PLACED', 'RUNNING')", outcome.name(), outcome.name(), error, resultJson, endedAt,
          receiptId, jobId);
      if (n == 1) {
        update(c, "INSERT INTO outbox (receipt_id, job_id, body, created_at) VALUES (?, ?, ?, ?)", receiptId, jobId,
            signedReceiptJson, endedAt);
      }
      return n == 1;
    });
  }

  /**
   * Billing acknowledged a receipt: the outbox entry goes and the charge is added to the job's; a
   * final receipt makes the job SETTLED, a preempted run's receipt leaves it where it is (queued or
   * running again).
   */
  public CompletableFuture<Boolean> settled(String jobId, String receiptId, long chargeUact, long settledAt,
      boolean finalReceipt) {
    return writer.submit(c -> {
      if (update(c, "DELETE FROM outbox WHERE receipt_id = ?", receiptId) == 0) return false; // acknowledged before
      if (!finalReceipt) {
        return update(c, "UPDATE job SET charge_uact = COALESCE(charge_uact, 0) + ? WHERE id = ?", chargeUact, jobId) == 1;
      }
      return update(c, "UPDATE job SET state = 'SETTLED', charge_uact = COALESCE(charge_uact, 0) + ?, settled_at = ?"
          + " WHERE id = ? AND " + from(JobState.SETTLED), chargeUact, settledAt, jobId) == 1;
    });
  }

  /**
   * A running job was preempted: it goes back to the queue (PREEMPTED, then QUEUED) and the receipt
   * of the time it used goes to the outbox, in one transaction.
   */
  public CompletableFuture<Boolean> preempted(String jobId, String reason, long endedAt, String receiptId,
      String signedReceiptJson) {
    return writer.submit(c -> {
      int n = update(c, "UPDATE job SET state = 'QUEUED', node_id = NULL, devices = NULL, started_at = NULL, error = ?"
          + " WHERE id = ? AND " + from(JobState.PREEMPTED), reason, jobId);
      if (n == 1) {
        update(c, "INSERT INTO outbox (receipt_id, job_id, body, created_at) VALUES (?, ?, ?, ?)", receiptId, jobId,
            signedReceiptJson, endedAt);
      }
      return n == 1;
    });
  }

  /** Cancels a job that never ran and returns its escrow, in one transaction. */
  public CompletableFuture<Boolean> cancelQueued(String jobId, long now) {
    return writer.submit(c -> {
      int n = update(c, "UPDATE job SET state = 'CANCELLED', outcome = 'CANCELLED', ended_at = ?"
          + " WHERE id = ? AND state = 'QUEUED'", now, jobId); // of CANCELLED's sources, only QUEUED releases escrow
      if (n == 1) SqlLedger.release(c, jobId);
      return n == 1;
    });
  }

  /** Fails a job that is still QUEUED (its start-by deadline passed) and releases its escrow; false if it moved on. */
  public CompletableFuture<Boolean> expireQueued(String jobId, String reason, long now) {
    return writer.submit(c -> {
      int n = update(c, "UPDATE job SET state = 'FAILED', outcome = 'FAILED', error = ?, ended_at = ?"
          + " WHERE id = ? AND state = 'QUEUED'", reason, now, jobId);
      if (n == 1) SqlLedger.release(c, jobId);
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
    return read(c -> {
      try (PreparedStatement ps = c.prepareStatement(
          "SELECT " + COLUMNS + " FROM job WHERE tenant_id = ? ORDER BY submitted_at DESC, id DESC LIMIT ?")) {
        ps.setString(1, tenantId);
        ps.setInt(2, limit);
        return rows(ps);
      }
    });
  }

  /** Jobs that must be resumed at start: queued, or placed/running when the node stopped. */
  public List<JobRecord> activeJobsBlocking() throws SQLException {
    try (Connection c = db.connection();
        PreparedStatement ps = c.prepareStatement("SELECT " + COLUMNS
            + " FROM job WHERE state IN ('QUEUED', 'PLACED', 'RUNNING', 'PREEMPTED') ORDER BY submitted_at, id")) {
      return rows(ps);
    }
  }

  /** Tenants with a non-default weight or a quota (read once by the scheduler at start). */
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

  public CompletableFuture<Map<JobState, Long>> countsByState() {
    return read(c -> {
      Map<JobState, Long> m = new EnumMap<>(JobState.class);
      for (JobState s : JobState.values()) m.put(s, 0L);
      try (PreparedStatement ps = c.prepareStatement("SELECT state, COUNT(*) FROM job GROUP BY state");
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
        rs.getString(20), rs.getLong(21), rs.getLong(22), rs.getLong(23), rs.getLong(24));
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
  }
}
