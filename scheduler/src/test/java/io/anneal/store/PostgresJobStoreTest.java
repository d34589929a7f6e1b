package io.anneal.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.ledger.TestDatabases;
import io.anneal.billing.sql.Database;
import io.anneal.job.JobState;
import java.sql.Connection;
import java.sql.PreparedStatement;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The job store contract on the local PostgreSQL server (required under CI=true). */
class PostgresJobStoreTest extends JobStoreContract {
  @BeforeAll
  static void requirePostgres() {
    TestDatabases.requirePostgres();
  }

  @Override
  protected Database open() {
    return TestDatabases.freshPostgres(TestDatabases.localPostgresUrl());
  }

  /**
   * Cluster mode (ADR 19): another instance (a new scheduler) re-queues a job while a worker records its
   * run's end. The end is admitted only on a row locked until it is written: once the re-queue commits,
   * the end is refused and its receipt is not put in the outbox (found in a load run with the leader
   * killed: the receipt of a run whose end was never recorded was settled, and the job's next run could
   * never be).
   */
  @Test
  void aRunsEndRacingAnotherInstancesRequeueIsEitherRecordedWholeOrNotAtAll() throws Exception {
    store.submit(job("r1", 500), null, hold("r1", 500)).get();
    assertThat(store.placed("r1", "n1", "cpu", "[0]").get()).isTrue();
    store.recordRunsOf("n1");
    try (Connection other = db.connection()) {
      other.setAutoCommit(false);
      try (PreparedStatement ps = other.prepareStatement(
          "UPDATE job SET state = 'QUEUED', node_id = NULL, devices = NULL WHERE id = 'r1' AND state = 'PLACED'")) {
        assertThat(ps.executeUpdate()).isEqualTo(1); // the row is now locked by the other instance's transaction
      }
      var end = store.finished("r1", JobState.SUCCEEDED, null, "{}", 1L, 2L, "r1/0", "{\"receiptId\":\"r1/0\"}");
      // the end's transaction waits on the other's row lock
      long deadline = System.nanoTime() + 10_000_000_000L;
      while (!waitingOnALock(other)) {
        assertThat(System.nanoTime()).as("the end's write never waited on the lock").isLessThan(deadline);
        Thread.onSpinWait();
      }
      other.commit();
      assertThat(end.get()).as("the job was re-queued first").isFalse();
    }
    assertThat(store.job("r1").get().orElseThrow().state()).isEqualTo(JobState.QUEUED);
    assertThat(store.outbox(10).get()).as("no receipt of an end that was not recorded").isEmpty();
  }

  /** Whether a session other than {@code c}'s waits on a lock in this database now. */
  private static boolean waitingOnALock(Connection c) throws java.sql.SQLException {
    try (var st = c.createStatement(); var rs = st.executeQuery("SELECT COUNT(*) FROM pg_stat_activity"
        + " WHERE wait_event_type = 'Lock' AND datname = current_database() AND pid <> pg_backend_pid()")) {
      rs.next();
      return rs.getLong(1) > 0;
    }
  }

  /**
   * Cluster mode (ADR 19): one holder of a role's lease at a time; a holder whose session the server
   * ended loses it, the next holder bumps the fencing epoch, and what the old holder still decides is
   * not written.
   */
  @Test
  void aRoleLeaseHasOneHolderAndAStaleHoldersPlacementsAreNotWritten() throws Exception {
    try (RoleLease a = new RoleLease(db, JobStore.SCHEDULER_ROLE, "inst-a");
        RoleLease b = new RoleLease(db, JobStore.SCHEDULER_ROLE, "inst-b")) {
      assertThat(a.tryAcquire()).isTrue();
      assertThat(b.tryAcquire()).as("held by a").isFalse();
      assertThat(a.stillHeld(2_000)).isTrue();
      long first = a.epoch();
      store.submit(job("j1", 500), null, hold("j1", 500)).get();
      store.submit(job("j2", 500), null, hold("j2", 500)).get();
      store.fenceScheduler(first);
      assertThat(store.placed("j1", "n1", "cpu", "[0]").get()).isTrue();

      // a's session ends without a knowing (the server ended it): b takes the lease, a's decisions are refused
      assertThat(terminate("anneal lease scheduler inst-a")).isEqualTo(1);
      boolean took = false;
      for (int i = 0; i < 100 && !took; i++) {
        took = b.tryAcquire();
        if (!took) Thread.sleep(50);
      }
      assertThat(took).isTrue();
      assertThat(b.epoch()).isEqualTo(first + 1);
      assertThat(store.placed("j2", "n1", "cpu", "[1]").get()).as("decided under the old lease").isFalse();
      assertThat(store.job("j2").get().orElseThrow().state()).isEqualTo(JobState.QUEUED);
      assertThat(store.requeueByScheduler("j1", "stale").get()).as("a stale re-queue").isFalse();
      assertThat(store.job("j1").get().orElseThrow().state()).isEqualTo(JobState.PLACED);
      assertThat(a.stillHeld(2_000)).as("a finds out on its next check").isFalse();
      assertThat(a.epoch()).isEqualTo(-1);

      store.fenceScheduler(b.epoch());
      assertThat(store.placed("j2", "n1", "cpu", "[1]").get()).isTrue();
      // a holder that stops lets the lease go at once
      b.release();
      assertThat(a.tryAcquire()).isTrue();
      assertThat(a.epoch()).isEqualTo(first + 2);
    }
  }

  /** Another schema's lease of the same role is another lease (tests and tenants of one server). */
  @Test
  void leasesOfOtherSchemasDoNotCollide() throws Exception {
    Database other = TestDatabases.freshPostgres(TestDatabases.localPostgresUrl());
    try (RoleLease a = new RoleLease(db, JobStore.SCHEDULER_ROLE, "x"); RoleLease b = new RoleLease(other, JobStore.SCHEDULER_ROLE, "y")) {
      other.migrate("db/jobs", "flyway_jobs_history");
      assertThat(a.tryAcquire()).isTrue();
      assertThat(b.tryAcquire()).isTrue();
    } finally {
      other.dropSchema();
      other.close();
    }
  }

  private int terminate(String applicationName) throws Exception {
    try (Connection c = db.connection();
        PreparedStatement ps = c.prepareStatement("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ?")) {
      ps.setString(1, applicationName);
      int n = 0;
      try (var rs = ps.executeQuery()) {
        while (rs.next()) n++;
      }
      return n;
    }
  }
}
