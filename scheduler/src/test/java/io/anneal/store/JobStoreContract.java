package io.anneal.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.bme.BmeParams;
import io.anneal.billing.bme.OracleSnapshot;
import io.anneal.billing.ledger.Accounts;
import io.anneal.billing.ledger.EscrowHold;
import io.anneal.billing.ledger.LedgerRefusal;
import io.anneal.billing.ledger.SqlLedger;
import io.anneal.billing.sql.Database;
import io.anneal.job.Ids;
import io.anneal.job.JobState;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The job store's contract, run unchanged on H2 and on PostgreSQL. */
public abstract class JobStoreContract {
  protected Database db;
  protected JobStore store;
  protected TenantStore tenants;
  private String tenantId;

  /** A database with the ledger schema migrated (the jobs schema is migrated here). */
  protected abstract Database open();

  @BeforeEach
  void setUp() throws Exception {
    db = open();
    db.migrate("db/jobs", "flyway_jobs_history");
    store = new JobStore(db);
    tenants = new TenantStore(store);
    tenantId = tenants.create("acme", "acme-key-0123456789").get().orElseThrow().id();
    OracleSnapshot o = OracleSnapshot.healthy("0.5");
    store.writer().submit(c -> {
      SqlLedger.fundVault(c, "seed", 1_000_000_000L);
      SqlLedger.updateBreaker(c, o, BmeParams.defaults());
      return SqlLedger.depositAndMint(c, tenantId, "d1", 100_000_000L, o, BmeParams.defaults());
    }).get();
  }

  @AfterEach
  void tearDown() throws Exception {
    store.close();
    db.dropSchema();
    db.close();
  }

  protected JobRecord job(String id, long escrow) {
    return jobAt(id, escrow, System.currentTimeMillis());
  }

  protected JobRecord jobAt(String id, long escrow, long submittedAt) {
    return new JobRecord(id, tenantId, "sleep", "{\"kind\":\"sleep\",\"params\":{\"ms\":1}}", 1, null, 0, 60,
        JobState.QUEUED, null, null, null, null, null, 0, null, escrow, 100_000, null, null, submittedAt, 0, 0, 0, 0);
  }

  /** Preemptions are counted with the job (V10): a scheduler that starts again reads them with the active jobs. */
  @Test
  void preemptionsAreCountedWithTheJob() throws Exception {
    for (String id : List.of("p1", "p2")) assertThat(store.submit(job(id, 100), null, hold(id, 100)).get().accepted()).isTrue();
    assertThat(store.activeJobsBlocking()).extracting(JobRecord::preemptions).containsExactly(0, 0);
    for (int i = 0; i < 2; i++) {
      assertThat(store.placed("p1", "n1", "cpu", "[0]").get()).isTrue();
      assertThat(store.running("p1", 1000).get()).isTrue();
      assertThat(store.preempted("p1", "preempted", 2000, "p1/" + i, "{}").get()).isTrue();
    }
    assertThat(store.preempted("p2", "preempted", 2000, "p2/0", "{}").get()).as("never on a GPU").isFalse();
    assertThat(store.activeJobsBlocking()).filteredOn(j -> j.id().equals("p1")).extracting(JobRecord::preemptions)
        .containsExactly(2);
    assertThat(store.jobsBlocking(List.of("p2"))).extracting(JobRecord::preemptions).containsExactly(0);
  }

  /**
   * Cluster mode (ADR 19): the scheduler's look for jobs it was not told of reads queued jobs by the time they
   * entered the queue: their submission, or their re-queue (a preemption, a lost node), whose message can be
   * lost as well.
   */
  @Test
  void queuedJobsAreFoundByTheTimeTheyEnteredTheQueue() throws Exception {
    for (String id : List.of("q1", "q2", "q3", "q4", "q5")) {
      long at = 1_000_000L * (id.charAt(1) - '0');
      assertThat(store.submit(jobAt(id, 100, at), null, hold(id, 100)).get().accepted()).isTrue();
    }
    assertThat(store.placed("q3", "n1", "cpu", "[0]").get()).isTrue();
    assertThat(store.queuedIdsBlocking(2_000_000L, 3_000_000L)).containsExactly("q2");
    assertThat(store.queuedIdsBlocking(0, 2_999_999L)).containsExactlyInAnyOrder("q1", "q2");
    assertThat(store.queuedIdsBlocking(0, 1_999_999L)).containsExactly("q1");
    // q4 preempted, q5 re-queued by a scheduler: both enter the queue now, long after their submission
    long before = System.currentTimeMillis();
    assertThat(store.placed("q4", "n1", "cpu", "[0]").get()).isTrue();
    assertThat(store.running("q4", 5_000_000L).get()).isTrue();
    assertThat(store.preempted("q4", "preempted", 5_000_100L, "q4/0", "{}").get()).isTrue();
    assertThat(store.placed("q5", "n1", "cpu", "[1]").get()).isTrue();
    assertThat(store.requeueByScheduler("q5", "node n1 stopped answering").get()).isTrue();
    long after = System.currentTimeMillis();
    assertThat(store.queuedIdsBlocking(before, after)).containsExactlyInAnyOrder("q4", "q5");
    assertThat(store.queuedIdsBlocking(0, 5_999_999L)).as("not by their submission").containsExactlyInAnyOrder("q1", "q2");
    assertThat(store.jobsBlocking(List.of("q2", "gone", "q1"))).extracting(JobRecord::id).containsExactly("q2", "q1");
  }

  /**
   * Retention: finished jobs that ended before the cutoff leave the store — settled ones, and those that
   * ended in the queue (cancelled, past their deadline) — a limited batch at a time; nothing else does.
   */
  @Test
  void finishedJobsThatEndedBeforeTheCutoffAreRemovedABatchAtATime() throws Exception {
    for (String id : List.of("settled", "settled2", "cancelled", "expired", "queued", "running", "unsettled")) {
      assertThat(store.submit(job(id, 500), null, hold(id, 500)).get().accepted()).isTrue();
    }
    for (String id : List.of("settled", "settled2", "running", "unsettled")) {
      assertThat(store.placed(id, "n1", "cpu", "[0]").get()).isTrue();
      assertThat(store.running(id, 1000).get()).isTrue();
    }
    for (String id : List.of("settled", "settled2", "unsettled")) {
      assertThat(store.finished(id, JobState.SUCCEEDED, null, "{}", 1000, 2000, id + "/1", "{}").get()).isTrue();
    }
    assertThat(store.settled("settled", "settled/1", 7, 3000, true).get()).isTrue();
    assertThat(store.settled("settled2", "settled2/1", 7, 5000, true).get()).isTrue();
    assertThat(store.cancelQueued("cancelled", 3000).get()).isTrue();
    assertThat(store.expireQueued("expired", "deadline", 3000).get()).isTrue();

    assertThat(store.removeFinishedBefore(3000, 1000).get()).as("nothing ended before 3000").isZero();
    assertThat(store.removeFinishedBefore(3001, 2).get()).as("a batch of 2").isEqualTo(2);
    assertThat(store.removeFinishedBefore(3001, 1000).get()).isEqualTo(1);
    assertThat(store.removeFinishedBefore(3001, 1000).get()).isZero();
    assertThat(store.jobsBlocking(List.of("settled", "settled2", "cancelled", "expired", "queued", "running", "unsettled")))
        .extracting(JobRecord::id).containsExactly("settled2", "queued", "running", "unsettled");
    assertThat(store.removeFinishedBefore(Long.MAX_VALUE, 1000).get()).as("settled2; the rest has not ended for good")
        .isEqualTo(1);
    assertThat(store.jobsBlocking(List.of("settled2", "queued", "running", "unsettled"))).extracting(JobRecord::id)
        .containsExactly("queued", "running", "unsettled");
  }

  /**
   * A store of the schema before this one's changes (jobs V10) migrates with its rows: a queued job gets
   * the time it entered the queue (V11) and is found by it, a settled one can leave by retention, and a
   * tenant starts with no key in its grace (V12).
   */
  @Test
  void aStoreOfAnEarlierSchemaMigratesWithItsRows() throws Exception {
    Database old = open();
    try {
      old.migrate("db/jobs", "flyway_jobs_history", "10");
      try (java.sql.Connection c = old.connection(); var st = c.createStatement()) {
        st.executeUpdate("INSERT INTO tenant (id, name, api_key_hash, created_at) VALUES ('t1', 'old', 'h1', 1)");
        String cols = "INSERT INTO job (id, tenant_id, kind, spec, gpus, priority, max_seconds, state, attempt, escrow_uact,"
            + " price_uact_gpu_hour, submitted_at, ended_at, settled_at, receipt_id) VALUES ";
        st.executeUpdate(cols + "('q1', 't1', 'sleep', '{}', 1, 0, 60, 'QUEUED', 0, 10, 100, 1000, NULL, NULL, NULL)");
        st.executeUpdate(cols + "('s1', 't1', 'sleep', '{}', 1, 0, 60, 'SETTLED', 1, 10, 100, 500, 800, 900, 's1/1')");
        if (!c.getAutoCommit()) c.commit();
      }
      old.migrate("db/jobs", "flyway_jobs_history");
      JobStore upgraded = new JobStore(old);
      try {
        assertThat(upgraded.queuedIdsBlocking(1000, 1000)).as("by the time it entered the queue").containsExactly("q1");
        assertThat(upgraded.jobsBlocking(List.of("q1", "s1"))).extracting(JobRecord::preemptions).containsExactly(0, 0);
        assertThat(upgraded.removeFinishedBefore(901, 10).get()).isEqualTo(1);
        assertThat(upgraded.jobsBlocking(List.of("q1", "s1"))).extracting(JobRecord::id).containsExactly("q1");
        TenantStore.Keys keys = new TenantStore(upgraded).withKeyHashes(List.of("t1")).get().get("t1");
        assertThat(keys.currentHash()).isEqualTo("h1");
        assertThat(keys.previousHash()).isNull();
      } finally {
        upgraded.close();
      }
    } finally {
      old.dropSchema();
      old.close();
    }
  }

  protected EscrowHold hold(String id, long escrow) {
    return new EscrowHold(id, tenantId, escrow, 100_000, "cpu", 1);
  }

  private long balance(String account) throws Exception {
    return store.read(c -> SqlLedger.balance(c, account, "uact")).get();
  }

  @Test
  void aBatchOfSubmissionsAdmitsEachOnceHoldsEscrowInOrderAndRefusesWhatTheTenantCannotCover() throws Exception {
    long have = balance(Accounts.tenant(tenantId));
    assertThat(store.submit(job("old", 100), "k-old", hold("old", 100)).get().accepted()).isTrue();
    List<JobStore.Submission> batch = List.of(
        new JobStore.Submission(job("b1", 1_000), "k1", hold("b1", 1_000)),
        new JobStore.Submission(job("b2", 1_000), "k1", hold("b2", 1_000)), // same key in the batch: duplicate of b1
        new JobStore.Submission(job("b3", 2_000), "k-old", hold("b3", 2_000)), // key seen before: the earlier job
        new JobStore.Submission(job("b4", have), null, hold("b4", have)), // more than what is left: refused
        new JobStore.Submission(job("b5", 3_000), null, hold("b5", 3_000)));
    List<JobStore.SubmitResult> out = store.writer().submit(c -> JobStore.submitAll(c, batch)).get();
    assertThat(out.get(0).jobId()).isEqualTo("b1");
    assertThat(out.get(0).duplicate()).isFalse();
    assertThat(out.get(1).jobId()).isEqualTo("b1");
    assertThat(out.get(1).duplicate()).isTrue();
    assertThat(out.get(2).jobId()).isEqualTo("old");
    assertThat(out.get(2).duplicate()).isTrue();
    assertThat(out.get(3).accepted()).isFalse();
    assertThat(out.get(3).refusal()).isEqualTo(LedgerRefusal.INSUFFICIENT_FUNDS);
    assertThat(out.get(4).jobId()).isEqualTo("b5");
    assertThat(store.job("b2").get()).isEmpty();
    assertThat(store.job("b3").get()).isEmpty();
    assertThat(store.job("b4").get()).isEmpty();
    assertThat(store.job("b5").get().orElseThrow().state()).isEqualTo(JobState.QUEUED);
    assertThat(balance(Accounts.tenant(tenantId))).isEqualTo(have - 100 - 1_000 - 3_000);
    assertThat(balance(Accounts.escrow(tenantId))).isEqualTo(100 + 1_000 + 3_000);
    assertThat(store.read(c -> SqlLedger.openEscrow(c, "b5").orElseThrow().amountUact()).get()).isEqualTo(3_000L);
    assertThat(store.read(c -> SqlLedger.openEscrow(c, "b4").isPresent()).get()).isFalse();
  }

  /**
   * One ledger audit at a time (the API answers 409 {@code audit-running} to the empty answer): the
   * first is held inside, after its report is made, until the test lets it end.
   */
  @Test
  void oneLedgerAuditRunsAtATimeAndTheNextMayStartOnceItHasEnded() throws Exception {
    CountDownLatch inside = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    store.onAudit((report, ns) -> {
      inside.countDown();
      try {
        release.await(30, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    });
    var first = store.audit(10).orElseThrow();
    assertThat(inside.await(30, TimeUnit.SECONDS)).as("the first audit reached its end").isTrue();
    assertThat(store.audit(10)).as("a second audit while the first runs").isEmpty();
    assertThat(store.audit(10)).isEmpty();
    release.countDown();
    assertThat(first.get(30, TimeUnit.SECONDS).clean()).isTrue();
    store.onAudit((report, ns) -> { });
    var next = store.audit(10);
    assertThat(next).as("an audit once the first has ended").isPresent();
    assertThat(next.get().get(30, TimeUnit.SECONDS).clean()).isTrue();
  }

  @Test
  void batchedTransitionsMoveEachJobOnceAndOnlyFromTheStatesTheyAllow() throws Exception {
    for (String id : List.of("t1", "t2", "t3")) assertThat(store.submit(job(id, 100), null, hold(id, 100)).get().accepted()).isTrue();
    List<Boolean> placed = store.writer().submit(c -> JobStore.placedAll(c, List.of(
        new JobStore.Placed("t1", "n1", "cpu", "[0]"), new JobStore.Placed("t1", "n2", "cpu", "[1]"),
        new JobStore.Placed("t2", "n1", "cpu", "[1]"), new JobStore.Placed("nope", "n1", "cpu", "[2]")))).get();
    assertThat(placed).containsExactly(true, false, true, false);
    JobRecord t1 = store.job("t1").get().orElseThrow();
    assertThat(t1.state()).isEqualTo(JobState.PLACED);
    assertThat(t1.nodeId()).isEqualTo("n1");
    assertThat(t1.attempt()).isEqualTo(1);
    // t3 was never placed: it cannot start running nor finish
    List<Boolean> running = store.writer().submit(c -> JobStore.runningAll(c, List.of(
        new JobStore.Running("t1", 10), new JobStore.Running("t3", 10)))).get();
    assertThat(running).containsExactly(true, false);
    List<Boolean> finished = store.writer().submit(c -> JobStore.finishedAll(c, List.of(
        new JobStore.Finished("t1", JobState.SUCCEEDED, null, "{}", 10, 20, "t1/1", "{\"r\":1}"),
        new JobStore.Finished("t1", JobState.FAILED, "x", null, 10, 21, "t1/2", "{\"r\":2}"),
        new JobStore.Finished("t2", JobState.FAILED, "boom", null, 12, 22, "t2/1", "{\"r\":3}"),
        new JobStore.Finished("t3", JobState.SUCCEEDED, null, "{}", 13, 23, "t3/1", "{\"r\":4}")))).get();
    assertThat(finished).containsExactly(true, false, true, false);
    assertThat(store.job("t1").get().orElseThrow().state()).isEqualTo(JobState.SUCCEEDED);
    assertThat(store.job("t2").get().orElseThrow().error()).isEqualTo("boom");
    assertThat(store.outbox(10).get()).extracting(e -> e[0]).containsExactlyInAnyOrder("t1/1", "t2/1");
    List<Boolean> settled = store.writer().submit(c -> JobStore.settledAll(c, List.of(
        new JobStore.Settled("t1", "t1/1", 7, 30, true), new JobStore.Settled("t1", "t1/1", 7, 31, true),
        new JobStore.Settled("t2", "t2/1", 0, 32, true), new JobStore.Settled("t3", "t3/9", 5, 33, true)))).get();
    assertThat(settled).containsExactly(true, false, true, false);
    assertThat(store.job("t1").get().orElseThrow().state()).isEqualTo(JobState.SETTLED);
    assertThat(store.job("t1").get().orElseThrow().chargeUact()).isEqualTo(7L);
    assertThat(store.outbox(10).get()).isEmpty();
  }

  @Test
  void aSubmittedJobIsQueuedWithItsEscrowInOneTransaction() throws Exception {
    long before = balance(Accounts.tenant(tenantId));
    var r = store.submit(job("j1", 500), null, hold("j1", 500)).get();
    assertThat(r.accepted()).isTrue();
    assertThat(store.job("j1").get().orElseThrow().state()).isEqualTo(JobState.QUEUED);
    assertThat(balance(Accounts.tenant(tenantId))).isEqualTo(before - 500);
    assertThat(balance(Accounts.escrow(tenantId))).isEqualTo(500);
  }

  @Test
  void aJobTheTenantCannotPayForWritesNothing() throws Exception {
    long before = balance(Accounts.tenant(tenantId));
    var r = store.submit(job("j1", before + 1), null, hold("j1", before + 1)).get();
    assertThat(r.refusal()).isEqualTo(LedgerRefusal.INSUFFICIENT_FUNDS);
    assertThat(store.job("j1").get()).isEmpty();
    assertThat(balance(Accounts.tenant(tenantId))).isEqualTo(before);
  }

  @Test
  void anIdempotencyKeyReturnsTheFirstJobAndHoldsEscrowOnce() throws Exception {
    long before = balance(Accounts.tenant(tenantId));
    var first = store.submit(job("j1", 500), "k", hold("j1", 500)).get();
    var second = store.submit(job("j2", 500), "k", hold("j2", 500)).get();
    assertThat(second.duplicate()).isTrue();
    assertThat(second.jobId()).isEqualTo(first.jobId());
    assertThat(store.job("j2").get()).isEmpty();
    assertThat(balance(Accounts.tenant(tenantId))).isEqualTo(before - 500);
  }

  /** Cluster mode (ADR 19): a node records a run's start and end only while the job is placed on it. */
  @Test
  void aNodeRecordsRunsOnlyOfJobsPlacedOnIt() throws Exception {
    store.submit(job("j1", 500), null, hold("j1", 500)).get();
    assertThat(store.placed("j1", "n1", "cpu", "[0]").get()).isTrue();
    store.recordRunsOf("n2"); // a node the job was taken from (it stopped answering) and placed elsewhere
    assertThat(store.running("j1", 1000).get()).isFalse();
    assertThat(store.finished("j1", JobState.SUCCEEDED, null, "{}", 1000, 2000, "j1/0", "{\"v\":1}").get()).isFalse();
    assertThat(store.job("j1").get().orElseThrow().state()).isEqualTo(JobState.PLACED);
    assertThat(store.outbox(10).get()).as("no receipt from n2").isEmpty();
    assertThat(store.requeue("j1", "n2 shutting down").get()).as("n2 cannot take it off n1").isFalse();
    assertThat(store.job("j1").get().orElseThrow().state()).isEqualTo(JobState.PLACED);
    store.recordRunsOf("n1");
    assertThat(store.running("j1", 1000).get()).isTrue();
    assertThat(store.finished("j1", JobState.SUCCEEDED, null, "{}", 1000, 2000, "j1/1", "{\"v\":1}").get()).isTrue();
    assertThat(store.outbox(10).get()).hasSize(1);
  }

  @Test
  void aJobMovesThroughItsLifecycleAndItsReceiptWaitsInTheOutboxUntilSettled() throws Exception {
    store.submit(job("j1", 500), null, hold("j1", 500)).get();
    assertThat(store.placed("j1", "n1", "cpu", "[0]").get()).isTrue();
    assertThat(store.placed("j1", "n1", "cpu", "[0]").get()).as("placed twice").isFalse();
    assertThat(store.running("j1", 1000).get()).isTrue();
    assertThat(store.finished("j1", JobState.SUCCEEDED, null, "{}", 1500, 2000, "j1/1", "{\"v\":1}").get()).isTrue();
    assertThat(store.outbox(10).get()).extracting(row -> row[0]).containsExactly("j1/1");
    assertThat(store.settled("j1", "j1/1", 7, 3000, true).get()).isTrue();
    assertThat(store.settled("j1", "j1/1", 7, 3000, true).get()).as("acknowledged twice").isFalse();
    assertThat(store.outbox(10).get()).isEmpty();
    JobRecord j = store.job("j1").get().orElseThrow();
    assertThat(j.state()).isEqualTo(JobState.SETTLED);
    assertThat(j.outcome()).isEqualTo("SUCCEEDED");
    assertThat(j.chargeUact()).isEqualTo(7L);
    assertThat(j.attempt()).isEqualTo(1);
    assertThat(j.startedAt()).as("the RUNNING write's start is kept").isEqualTo(1000);
  }

  @Test
  void webhookDeliveriesAreWrittenWithTheStateChangesThatOweThemAndOnlyForChangesThatHappened() throws Exception {
    var hook = new io.anneal.webhook.WebhookStore.Webhook("wh_1", tenantId, "http://127.0.0.1:9/h", java.util.Set.of("*"),
        "secret-0123456789abcdef", 1, null);
    store.writer().submit(c -> {
      io.anneal.webhook.WebhookStore.insert(c, hook);
      return null;
    }).get();
    store.onTransitions((c, t) -> io.anneal.webhook.WebhookStore.enqueueFor(c, java.util.Map.of(tenantId, List.of(hook)), t));
    store.submit(job("j1", 500), null, hold("j1", 500)).get();
    assertThat(store.placed("j1", "n1", "cpu", "[0]").get()).isTrue();
    assertThat(store.placed("j1", "n1", "cpu", "[0]").get()).as("not applied: owes nothing").isFalse();
    // ended before its RUNNING write was due: RUNNING is still told, before the outcome
    assertThat(store.finished("j1", JobState.SUCCEEDED, null, "{\"v\":1}", 1500, 2000, "j1/1", "{}", false).get()).isTrue();
    assertThat(store.settled("j1", "j1/1", 7, 3000, true).get()).isTrue();
    List<String> types = new ArrayList<>();
    List<io.vertx.core.json.JsonObject> bodies = new ArrayList<>();
    store.read(c -> {
      try (var ps = c.prepareStatement("SELECT event_type, body FROM webhook_delivery ORDER BY id"); var rs = ps.executeQuery()) {
        while (rs.next()) {
          types.add(rs.getString(1));
          bodies.add(new io.vertx.core.json.JsonObject(rs.getString(2)));
        }
      }
      return null;
    }).get();
    assertThat(types).containsExactly("job.queued", "job.placed", "job.running", "job.succeeded", "job.settled");
    assertThat(bodies).allSatisfy(b -> assertThat(b.getJsonObject("data").getString("jobId")).isEqualTo("j1"));
    assertThat(bodies.get(1).getJsonObject("data").getString("nodeId")).isEqualTo("n1");
    assertThat(bodies.get(3).getJsonObject("data").getJsonObject("result").getInteger("v")).isEqualTo(1);
    assertThat(bodies.get(4).getJsonObject("data").getLong("chargeUact")).isEqualTo(7L);
  }

  @Test
  void aQuarantineIsKeptOnceWithItsFirstReasonUntilLifted() throws Exception {
    store.writer().submit(c -> {
      Quarantines.add(c, "n1", 0, "3 device failures", 10);
      Quarantines.add(c, "n1", 0, "again", 20);
      Quarantines.add(c, "n1", 2, "x".repeat(1500), 30);
      Quarantines.add(c, "n2", 0, "other node", 40);
      return null;
    }).get();
    var n1 = store.read(c -> Quarantines.of(c, "n1")).get();
    assertThat(n1).containsOnlyKeys(0, 2);
    assertThat(n1.get(0)).isEqualTo("3 device failures");
    assertThat(n1.get(2)).hasSize(1000);
    assertThat(store.writer().submit(c -> Quarantines.lift(c, "n1", 0)).get()).isTrue();
    assertThat(store.writer().submit(c -> Quarantines.lift(c, "n1", 0)).get()).isFalse();
    assertThat(store.read(c -> Quarantines.of(c, "n1")).get()).containsOnlyKeys(2);
    assertThat(store.read(c -> Quarantines.of(c, "n2")).get()).containsOnlyKeys(0);
  }

  @Test
  void aNodesLabelsAreReplacedWholeAndReadBackPerNode() throws Exception {
    assertThat(store.writer().submit(c -> NodeLabels.replace(c, "n1", Map.of("tier", "certified", "region", "eu"))).get()).isTrue();
    assertThat(store.writer().submit(c -> NodeLabels.replace(c, "n2", Map.of("tier", "gold"))).get()).isTrue();
    assertThat(store.writer().submit(c -> NodeLabels.replace(c, "n1", Map.of("region", "eu", "tier", "certified"))).get())
        .as("the same labels again").isFalse();
    assertThat(store.writer().submit(c -> NodeLabels.replace(c, "n1", Map.of("region", "us"))).get()).isTrue();
    assertThat(store.read(c -> NodeLabels.of(c, "n1")).get()).isEqualTo(Map.of("region", "us"));
    assertThat(store.read(NodeLabels::all).get()).isEqualTo(Map.of("n1", Map.of("region", "us"), "n2", Map.of("tier", "gold")));
    assertThat(store.writer().submit(c -> NodeLabels.replace(c, "n2", Map.of())).get()).isTrue();
    assertThat(store.read(NodeLabels::all).get()).containsOnlyKeys("n1");
    assertThat(store.read(c -> NodeLabels.of(c, "n2")).get()).isEmpty();
  }

  @Test
  void aStateChangeWhoseListenerFailsIsNotWrittenEither() throws Exception {
    store.submit(job("ok", 1), null, hold("ok", 1)).get();
    store.submit(job("bad", 1), null, hold("bad", 1)).get();
    store.onTransitions((c, t) -> {
      if (t.stream().anyMatch(x -> x.jobId().equals("bad"))) throw new java.sql.SQLException("listener refused");
    });
    CompletableFuture<Boolean> ok = store.placed("ok", "n1", "cpu", "[0]");
    CompletableFuture<Boolean> bad = store.placed("bad", "n1", "cpu", "[1]");
    assertThat(ok.get()).isTrue();
    assertThat(bad).failsWithin(java.time.Duration.ofSeconds(10));
    assertThat(store.job("bad").get().orElseThrow().state()).as("one transaction: no event, no change").isEqualTo(JobState.QUEUED);
    assertThat(store.job("ok").get().orElseThrow().state()).isEqualTo(JobState.PLACED);
  }

  @Test
  void aJobThatEndsBeforeItsRunningWriteGoesFromPlacedToItsOutcomeWithItsStart() throws Exception {
    store.submit(job("j1", 500), null, hold("j1", 500)).get();
    assertThat(store.placed("j1", "n1", "cpu", "[0]").get()).isTrue();
    assertThat(store.finished("j1", JobState.SUCCEEDED, null, "{}", 1500, 2000, "j1/1", "{\"v\":1}").get()).isTrue();
    assertThat(store.running("j1", 1500).get()).as("a late RUNNING write does not move a finished job").isFalse();
    JobRecord j = store.job("j1").get().orElseThrow();
    assertThat(j.state()).isEqualTo(JobState.SUCCEEDED);
    assertThat(j.startedAt()).isEqualTo(1500);
    assertThat(j.endedAt()).isEqualTo(2000);
  }

  @Test
  void placedAndRunningJobsAreRecoveredAndRequeued() throws Exception {
    store.submit(job("a", 1), null, hold("a", 1)).get();
    store.submit(job("b", 1), null, hold("b", 1)).get();
    store.submit(job("c", 1), null, hold("c", 1)).get();
    store.placed("b", "n1", "cpu", "[0]").get();
    store.placed("c", "n1", "cpu", "[1]").get();
    store.running("c", 5).get();
    assertThat(store.activeJobsBlocking()).extracting(JobRecord::id).containsExactlyInAnyOrder("a", "b", "c");
    assertThat(store.requeue("c", "restart").get()).isTrue();
    assertThat(store.job("c").get().orElseThrow().state()).isEqualTo(JobState.QUEUED);
    assertThat(store.requeue("a", "restart").get()).as("a queued job is not re-queued").isFalse();
  }

  @Test
  void cancellingAQueuedJobReturnsItsEscrowOnce() throws Exception {
    long before = balance(Accounts.tenant(tenantId));
    store.submit(job("j1", 500), null, hold("j1", 500)).get();
    assertThat(store.cancelQueued("j1", 1).get()).isTrue();
    assertThat(store.cancelQueued("j1", 2).get()).isFalse();
    assertThat(store.job("j1").get().orElseThrow().state()).isEqualTo(JobState.CANCELLED);
    assertThat(balance(Accounts.tenant(tenantId))).isEqualTo(before);
    assertThat(balance(Accounts.escrow(tenantId))).isZero();
  }

  @Test
  void manyConcurrentSubmitsAreAllDurableAndEscrowedExactly() throws Exception {
    long before = balance(Accounts.tenant(tenantId));
    List<CompletableFuture<JobStore.SubmitResult>> all = new ArrayList<>();
    for (int i = 0; i < 2000; i++) {
      String id = Ids.next("j_");
      all.add(store.submit(job(id, 3), null, hold(id, 3)));
    }
    for (var f : all) assertThat(f.get().accepted()).isTrue();
    assertThat(store.countsByState(false).get()).containsEntry(JobState.QUEUED, 2000L).containsEntry(JobState.RUNNING, 0L)
        .doesNotContainKey(JobState.SUCCEEDED);
    assertThat(store.countsByState(true).get()).containsEntry(JobState.QUEUED, 2000L).containsEntry(JobState.SUCCEEDED, 0L)
        .hasSize(JobState.values().length);
    assertThat(balance(Accounts.tenant(tenantId))).isEqualTo(before - 6000);
    assertThat(store.writer().commits()).as("group commit batches the writes").isLessThan(2000);
  }

  /**
   * A rotation with a grace (ADR 23 addendum): the replaced key authenticates until the grace ends and is
   * nobody else's meanwhile; the tenant may go back to it; once the grace ended another tenant may take it,
   * and going back to it is then refused like any key in use.
   */
  @Test
  void aReplacedKeyInItsGraceIsStillTheTenantsAndNobodyElses() throws Exception {
    String acme = tenants.byKey("acme-key-0123456789").get().orElseThrow().id();
    long before = System.currentTimeMillis();
    TenantStore.Rotation r = tenants.rotateKey(acme, "acme-key-second-0123", 60_000).get();
    assertThat(r.change()).isEqualTo(TenantStore.KeyChange.ROTATED);
    assertThat(r.previousHash()).isEqualTo(TenantStore.hashKey("acme-key-0123456789"));
    assertThat(r.previousUntilMs()).isBetween(before + 60_000, System.currentTimeMillis() + 60_000);
    assertThat(tenants.ownerOf("acme-key-0123456789").get().orElseThrow().validUntilMs()).isEqualTo(r.previousUntilMs());
    assertThat(tenants.ownerOf("acme-key-second-0123").get().orElseThrow().validUntilMs()).isEqualTo(Long.MAX_VALUE);
    assertThat(tenants.create("other", "acme-key-0123456789").get()).as("in its grace: taken").isEmpty();
    assertThat(tenants.addAdminKey("acme-key-0123456789").get()).isEqualTo(TenantStore.AdminKeyAdded.TENANT_KEY);
    TenantStore.Keys keys = tenants.withKeyHashes(List.of(acme)).get().get(acme);
    assertThat(keys.previousHash()).isEqualTo(r.previousHash());

    // back to the key in its grace: allowed, its own
    assertThat(tenants.rotateKey(acme, "acme-key-0123456789", 0).get().change()).isEqualTo(TenantStore.KeyChange.ROTATED);
    assertThat(tenants.ownerOf("acme-key-second-0123").get()).as("no grace asked: refused at once").isEmpty();

    // a grace that ends: the key is free for another tenant, and no longer the first one's to go back to
    assertThat(tenants.rotateKey(acme, "acme-key-third-01234", 1).get().change()).isEqualTo(TenantStore.KeyChange.ROTATED);
    long deadline = System.nanoTime() + 5_000_000_000L;
    while (tenants.ownerOf("acme-key-0123456789").get().isPresent()) { // until its 1-ms grace has ended
      assertThat(System.nanoTime()).as("the grace never ended").isLessThan(deadline);
      TimeUnit.MILLISECONDS.sleep(1);
    }
    assertThat(tenants.create("other", "acme-key-0123456789").get()).isPresent();
    assertThat(tenants.rotateKey(acme, "acme-key-0123456789", 0).get().change()).isEqualTo(TenantStore.KeyChange.KEY_TAKEN);
    assertThat(tenants.byKey("acme-key-third-01234").get().orElseThrow().id()).isEqualTo(acme);
  }

  /** A tenant's policy (weight, GPU quota, queue bound) is stored; the scheduler reads those that differ from the default. */
  @Test
  void tenantPoliciesAreStoredAndThoseNotDefaultAreRead() throws Exception {
    String acme = tenants.byKey("acme-key-0123456789").get().orElseThrow().id();
    assertThat(store.tenantPoliciesBlocking()).isEmpty();
    assertThat(tenants.setPolicy(acme, 1.0, null, 500, Map.of()).get()).isTrue();
    assertThat(store.tenantPoliciesBlocking()).extracting(TenantStore.Tenant::maxQueuedJobs).containsExactly(500);
    assertThat(tenants.setPolicy(acme, 2.0, 8, null, Map.of("tier", "certified", "region", "eu")).get()).isTrue();
    TenantStore.Tenant t = tenants.byId(acme).get().orElseThrow();
    assertThat(t.weight()).isEqualTo(2.0);
    assertThat(t.gpuQuota()).isEqualTo(8);
    assertThat(t.maxQueuedJobs()).isNull();
    assertThat(t.nodeLabels()).isEqualTo(Map.of("tier", "certified", "region", "eu"));
    // the same policy, read as a key's owner and with the keys' hashes (the columns after it are read by place)
    var owner = tenants.ownerOf("acme-key-0123456789").get().orElseThrow();
    assertThat(owner.tenant()).isEqualTo(t);
    assertThat(owner.validUntilMs()).isEqualTo(Long.MAX_VALUE);
    var keys = tenants.withKeyHashes(List.of(acme)).get().get(acme);
    assertThat(keys.tenant()).isEqualTo(t);
    assertThat(keys.currentHash()).isEqualTo(TenantStore.hashKey("acme-key-0123456789"));
    assertThat(tenants.setPolicy("t_nope", 1.0, null, null, Map.of()).get()).isFalse();
    assertThat(tenants.setPolicy(acme, 1.0, null, null, Map.of()).get()).isTrue();
    assertThat(tenants.byId(acme).get().orElseThrow().nodeLabels()).isEmpty();
    assertThat(store.tenantPoliciesBlocking()).isEmpty();
  }

  /** Read-only keys (ADR 30): found as their tenant's, read-only, until revoked or expired; one value, one key. */
  @Test
  void readOnlyKeysAuthenticateTheirTenantUntilRevokedOrExpired() throws Exception {
    String acme = tenants.byKey("acme-key-0123456789").get().orElseThrow().id();
    // with a policy whose column comes last in the tenant's row: the key's own columns are read apart from it
    assertThat(tenants.setPolicy(acme, 1.0, null, null, Map.of("tier", "certified")).get()).isTrue();
    var forever = tenants.addReadKey(acme, "read-key-forever-0123", "board", null).get().orElseThrow();
    long at = System.currentTimeMillis() + 86_400_000L;
    tenants.addReadKey(acme, "read-key-expiring-0123", "audit", at).get().orElseThrow();
    tenants.addReadKey(acme, "read-key-expired-01234", "old", System.currentTimeMillis() - 1).get().orElseThrow();
    var owner = tenants.ownerOf("read-key-forever-0123").get().orElseThrow();
    assertThat(owner.readOnly()).isTrue();
    assertThat(owner.validUntilMs()).isEqualTo(Long.MAX_VALUE);
    assertThat(owner.tenant().id()).isEqualTo(acme);
    assertThat(owner.tenant().nodeLabels()).isEqualTo(Map.of("tier", "certified"));
    assertThat(tenants.ownerOf("read-key-expiring-0123").get().orElseThrow().validUntilMs()).isEqualTo(at);
    assertThat(tenants.ownerOf("read-key-expired-01234").get()).isEmpty();
    assertThat(tenants.ownerOf("acme-key-0123456789").get().orElseThrow().readOnly()).isFalse();
    assertThat(tenants.addReadKey("t_nope", "read-key-nobody-01234", "x", null).get()).isEmpty();
    assertThat(tenants.addReadKey(acme, "acme-key-0123456789", "x", null)).failsWithin(java.time.Duration.ofSeconds(10));
    assertThat(tenants.rotateKey(acme, "read-key-forever-0123").get()).isEqualTo(TenantStore.KeyChange.KEY_TAKEN);
    assertThat(tenants.readKeys(acme).get()).extracting(TenantStore.ReadKey::name).containsExactlyInAnyOrder("board", "audit", "old");
    String h = TenantStore.hashKey("read-key-forever-0123");
    assertThat(tenants.validReadKeys(List.of(h, TenantStore.hashKey("read-key-expired-01234"))).get()).containsExactly(h);
    assertThat(tenants.revokeReadKey(acme, forever.fingerprint()).get()).hasValue(h);
    assertThat(tenants.revokeReadKey(acme, "sha256:1234").get()).as("too short a fingerprint").isEmpty();
    assertThat(tenants.ownerOf("read-key-forever-0123").get()).isEmpty();
    assertThat(tenants.validReadKeys(List.of(h)).get()).isEmpty();
  }

  @Test
  void tenantsAreFoundByKeyOnlyThroughTheKeysHash() throws Exception {
    assertThat(tenants.byKey("acme-key-0123456789").get()).map(TenantStore.Tenant::name).hasValue("acme");
    assertThat(tenants.byKey("acme-key-01234567890").get()).isEmpty();
    assertThat(tenants.create("acme", "other-key-0123456789").get()).as("same name, other key").isEmpty();
    assertThat(tenants.create("acme", "acme-key-0123456789").get()).as("same name and key").isPresent();
    try (var c = db.connection(); var st = c.createStatement(); var rs = st.executeQuery("SELECT api_key_hash FROM tenant")) {
      rs.next();
      assertThat(rs.getString(1)).hasSize(64).doesNotContain("acme-key");
    }
  }
  /**
   * Two instances record the same key's uses: each writes what it saw, and the store keeps the latest
   * whichever wrote last; an instance that saw nothing new writes nothing.
   */
  @Test
  void aKeysLastUseIsTheLatestAnyInstanceWrote() throws Exception {
    String hash = TenantStore.hashKey("acme-key-0123456789");
    TenantStore other = new TenantStore(store);
    tenants.keyUsed(hash, 2_000L);
    tenants.keyUsed(hash, 1_500L);
    assertThat(tenants.writeKeyUses().get()).isEqualTo(1);
    assertThat(tenants.writeKeyUses().get()).as("nothing new").isZero();
    other.keyUsed(hash, 1_000L); // seen earlier on the other instance, written later
    assertThat(other.writeKeyUses().get()).isEqualTo(1);
    TenantStore third = new TenantStore(store); // an instance that saw nothing: only the store's time
    assertThat(third.listed(tenantId).get().orElseThrow().keyLastUsedAtMs()).isEqualTo(2_000L);
    other.keyUsed(hash, 3_000L);
    other.writeKeyUses().get();
    assertThat(third.listed(tenantId).get().orElseThrow().keyLastUsedAtMs()).isEqualTo(3_000L);
    assertThat(third.list(null, 10).get().tenants().get(0).keyLastUsedAtMs()).isEqualTo(3_000L);
    // seen here but not yet written: this instance shows it, the others do not yet
    tenants.keyUsed(hash, 4_000L);
    assertThat(tenants.listed(tenantId).get().orElseThrow().keyLastUsedAtMs()).isEqualTo(4_000L);
    assertThat(third.listed(tenantId).get().orElseThrow().keyLastUsedAtMs()).isEqualTo(3_000L);
  }
  /**
   * Provider accounts: made with their nodes, found by their key only, a node at most one account's, a
   * replaced key refused; a refused change leaves nothing behind.
   */
  @Test
  void aProviderAccountOwnsItsNodesAndIsFoundByItsKey() throws Exception {
    ProviderStore providers = new ProviderStore(store, tenants);
    ProviderStore.Account a = providers.create("acme-gpu", "provider-key-0123456789", List.of("n2", "n1")).get();
    assertThat(a.nodes()).containsExactly("n1", "n2");
    assertThat(providers.byKey("provider-key-0123456789").get()).hasValueSatisfying(x -> assertThat(x.id()).isEqualTo(a.id()));
    assertThat(providers.byKey("acme-key-0123456789").get()).as("a tenant's key").isEmpty();
    assertThat(providers.create("other", "other-provider-key-0123", List.of("n3", "n1")))
        .failsWithin(java.time.Duration.ofSeconds(10)).withThrowableOfType(java.util.concurrent.ExecutionException.class)
        .withMessageContaining("NODE_TAKEN");
    assertThat(providers.byKey("other-provider-key-0123").get()).as("nothing of the refused account").isEmpty();
    assertThat(providers.create("other", "acme-key-0123456789", List.of()))
        .failsWithin(java.time.Duration.ofSeconds(10)).withThrowableOfType(java.util.concurrent.ExecutionException.class)
        .withMessageContaining("KEY_TAKEN");
    assertThat(tenants.addReadKey(tenantId, "provider-key-0123456789", "x", null))
        .as("a provider's key is no one else's").failsWithin(java.time.Duration.ofSeconds(10));
    ProviderStore.Account b = providers.create("other", "other-provider-key-0123", List.of("n3")).get();
    assertThat(providers.setNodes(a.id(), List.of("n2", "n3")))
        .failsWithin(java.time.Duration.ofSeconds(10)).withThrowableOfType(java.util.concurrent.ExecutionException.class)
        .withMessageContaining("NODE_TAKEN");
    assertThat(providers.byId(a.id()).get().orElseThrow().nodes()).as("unchanged").containsExactly("n1", "n2");
    assertThat(providers.setNodes(a.id(), List.of("n4")).get().orElseThrow().nodes()).containsExactly("n4");
    assertThat(providers.setNodes("pa_nope", List.of()).get()).isEmpty();
    assertThat(providers.replaceKey(a.id(), "provider-key-replaced-01").get()).isPresent();
    assertThat(providers.byKey("provider-key-0123456789").get()).isEmpty();
    assertThat(providers.byKey("provider-key-replaced-01").get()).isPresent();
    assertThat(providers.list().get()).extracting(ProviderStore.Account::name).containsExactly("acme-gpu", "other");
    assertThat(b.nodes()).containsExactly("n3");
  }
}
