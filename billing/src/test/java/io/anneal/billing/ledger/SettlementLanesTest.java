package io.anneal.billing.ledger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.anneal.billing.SettlementLanes;
import io.anneal.billing.bme.BmeParams;
import io.anneal.billing.bme.OracleSnapshot;
import io.anneal.billing.receipt.Receipt;
import io.anneal.billing.receipt.ReceiptSigner;
import io.anneal.billing.receipt.SignedReceipt;
import io.anneal.billing.sql.Database;
import io.anneal.billing.sql.GroupCommitWriter;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.sql.Connection;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Settlement lanes (ADR 0011) on the local PostgreSQL: several transactions settle at once while the
 * store's writer releases escrows and closes epochs, and still every receipt is settled exactly
 * once, no escrow is spent twice, and no epoch closes while a settlement filed in it is in flight.
 */
class SettlementLanesTest {
  private static final OracleSnapshot ORACLE = OracleSnapshot.healthy("0.5");
  private static final Map<String, Long> PRICES = Map.of("H100", 3_600_000L);
  private static final int TENANTS = 4;

  private Database db;
  private GroupCommitWriter writer;
  private SettlementLanes lanes;
  private PrivateKey nodeKey;

  @BeforeAll
  static void requirePostgres() {
    TestDatabases.requirePostgres();
  }

  @BeforeEach
  void setUp() throws Exception {
    db = TestDatabases.freshPostgres(TestDatabases.localPostgresUrl());
    writer = new GroupCommitWriter(db, "test-writer", 500);
    lanes = SettlementLanes.own(db, 3, 200);
    nodeKey = KeyPairGenerator.getInstance("Ed25519").generateKeyPair().getPrivate();
    writer.submit(c -> {
      SqlLedger.fundVault(c, "seed", 1_000_000_000_000L);
      SqlLedger.updateBreaker(c, ORACLE, BmeParams.defaults());
      for (int t = 0; t < TENANTS; t++) {
        SqlLedger.openTenantAccounts(c, "t" + t);
        MintResult minted =
            SqlLedger.depositAndMint(c, "t" + t, "d" + t, 100_000_000_000L, ORACLE, BmeParams.defaults());
        assertThat(minted.refusal()).isNull();
      }
      return null;
    }).get();
  }

  @AfterEach
  void tearDown() throws Exception {
    lanes.close();
    writer.close();
    db.dropSchema();
    db.close();
  }

  /** As BillingVerticle settles: the clock read once the settlement barrier is held. */
  private static GroupCommitWriter.BatchKind<SignedReceipt, Settlement> settleKind(long epochSeconds) {
    return (c, receipts) -> SqlLedger.settleAll(c, receipts, (cls, at) -> PRICES.get(cls), System::currentTimeMillis,
        epochSeconds);
  }

  private static String job(int i) {
    return String.format("job-%05d", i);
  }

  private void hold(int jobs) throws Exception {
    List<CompletableFuture<Void>> done = new ArrayList<>();
    for (int i = 0; i < jobs; i++) {
      EscrowHold h = new EscrowHold(job(i), "t" + (i % TENANTS), 100_000L, 3_600_000L, "H100", 1);
      String node = "n" + (i % 5); // where receipt(i, ...) says it ran
      done.add(writer.submit(c -> {
        SqlLedger.hold(c, h);
        SqlLedger.placedOn(c, List.of(h.jobId()), List.of(node));
        return null;
      }));
    }
    for (var f : done) f.get();
  }

  /** Receipts signed by batches of 50 (a batch's receipts go to different lanes), on five nodes new to the ledger. */
  private List<SignedReceipt> sign(List<Receipt> receipts) {
    List<SignedReceipt> out = new ArrayList<>();
    ReceiptSigner signer = new ReceiptSigner(nodeKey);
    for (int b = 0; b < receipts.size(); b += 50) {
      out.addAll(signer.sign(receipts.subList(b, Math.min(receipts.size(), b + 50))));
    }
    return out;
  }

  private static Receipt receipt(int i, int attempt, String outcome, long deviceNanos) {
    return new Receipt(job(i) + "/" + attempt, job(i), "t" + (i % TENANTS), "n" + (i % 5), "H100", 1, false, deviceNanos,
        deviceNanos, 0, 1000, 2000, outcome, "");
  }

  @Test
  void lanesSettleEveryReceiptOnceAndNeverSpendAnEscrowTwice() throws Exception {
    int jobs = 1_500;
    hold(jobs);
    // every 10th job was preempted once: a partial receipt (attempt 0) then its final one (attempt 1)
    List<Receipt> plain = new ArrayList<>();
    for (int i = 0; i < jobs; i++) {
      if (i % 10 == 0) plain.add(receipt(i, 0, "PREEMPTED", 10_000_000L));
      plain.add(receipt(i, i % 10 == 0 ? 1 : 0, "SUCCEEDED", 20_000_000L + i));
    }
    List<SignedReceipt> signed = sign(plain);
    Map<String, SignedReceipt> finals = new HashMap<>();
    for (SignedReceipt sr : signed) {
      if (!sr.receipt().outcome().equals("PREEMPTED")) finals.put(sr.receipt().jobId(), sr);
    }
    // 25 % redeliveries, in random order; a job's partial receipt still arrives before its final one
    Random rnd = new Random(7);
    List<SignedReceipt> deliveries = new ArrayList<>(signed);
    for (int i = 0; i < signed.size() / 4; i++) deliveries.add(signed.get(rnd.nextInt(signed.size())));
    Collections.shuffle(deliveries, rnd);
    List<SignedReceipt> ordered = new ArrayList<>();
    Set<String> partialSeen = new HashSet<>();
    List<SignedReceipt> heldBack = new ArrayList<>();
    for (SignedReceipt sr : deliveries) {
      var r = sr.receipt();
      if (r.outcome().equals("PREEMPTED")) {
        partialSeen.add(r.jobId());
        ordered.add(sr);
      } else if (Integer.parseInt(r.jobId().substring(4)) % 10 == 0 && !partialSeen.contains(r.jobId())) {
        heldBack.add(sr);
      } else {
        ordered.add(sr);
      }
    }
    ordered.addAll(heldBack);
    // meanwhile the store's writer releases the escrows of 100 jobs (as if cancelled while queued), each
    // in a transaction of its own: each of those jobs ends either settled or released, never both
    var kind = settleKind(3600);
    List<CompletableFuture<Settlement>> results = new ArrayList<>();
    List<CompletableFuture<Boolean>> releases = new ArrayList<>();
    for (int k = 0; k < ordered.size(); k++) {
      SignedReceipt sr = ordered.get(k);
      results.add(lanes.laneOf(sr.receipt().jobId()).submit(kind, sr));
      if (k % 40 == 0 && releases.size() < 100) {
        String racing = job(1 + 10 * releases.size() + 1); // never a preempted job (i % 10 == 0)
        releases.add(writer.submitAlone(c -> SqlLedger.release(c, racing)));
      }
    }
    Map<String, Integer> firsts = new HashMap<>();
    long charged = 0;
    Set<String> refused = new HashSet<>();
    for (var f : results) {
      Settlement s = f.get();
      if (!s.settled()) {
        assertThat(s.refusal()).isEqualTo(LedgerRefusal.NO_OPEN_ESCROW);
        refused.add(s.jobId());
      } else if (!s.duplicate()) {
        firsts.merge(s.receiptId(), 1, Integer::sum);
        charged += s.chargeUact();
      }
    }
    int released = 0;
    for (var f : releases) released += f.get() ? 1 : 0;
    // exactly once: no receipt settled twice; each released job's final receipt refused, every other one settled
    assertThat(firsts.values()).allMatch(n -> n == 1);
    assertThat(refused).hasSize(released);
    assertThat(firsts).hasSize(signed.size() - released);
    try (Connection c = db.connection(); var st = c.createStatement()) {
      try (ResultSet rs = st.executeQuery("SELECT COUNT(*), COALESCE(SUM(charge_uact), 0) FROM settlement")) {
        rs.next();
        assertThat(rs.getLong(1)).isEqualTo(firsts.size());
        assertThat(rs.getLong(2)).isEqualTo(charged);
      }
      try (ResultSet rs = st.executeQuery("SELECT COALESCE(SUM(amount), 0) FROM balance WHERE account LIKE 'provider:%'"
          + " AND denom = 'uact'")) {
        rs.next();
        assertThat(rs.getLong(1)).as("providers were paid each charge once").isEqualTo(charged);
      }
      try (ResultSet rs = st.executeQuery("SELECT state, COUNT(*) FROM escrow GROUP BY state ORDER BY state")) {
        Map<String, Long> states = new HashMap<>();
        while (rs.next()) states.put(rs.getString(1), rs.getLong(2));
        assertThat(states.keySet()).isSubsetOf("RELEASED", "SETTLED");
        assertThat(states.getOrDefault("RELEASED", 0L)).isEqualTo(released);
        assertThat(states.getOrDefault("SETTLED", 0L)).isEqualTo(jobs - released);
      }
      try (ResultSet rs = st.executeQuery("SELECT COALESCE(SUM(amount), 0) FROM balance WHERE account LIKE 'escrow:%'"
          + " AND denom = 'uact'")) {
        rs.next();
        assertThat(rs.getLong(1)).as("nothing left in escrow, nothing spent twice").isZero();
      }
      assertBalanced(st);
    }
    assertThat(finals).hasSize(jobs);
  }

  @Test
  void anEpochDoesNotCloseWhileASettlementFiledInItIsInFlight() throws Exception {
    hold(2);
    List<SignedReceipt> signed =
        sign(List.of(receipt(0, 0, "SUCCEEDED", 30_000_000L), receipt(1, 0, "SUCCEEDED", 30_000_000L)));
    // one-second epochs at a fixed time: both receipts are filed in epoch 1000
    lanes.laneOf(job(0)).submit((c, in) -> SqlLedger.settleAll(c, in, PRICES, 1_000_200L, 1), signed.get(0)).get();
    java.util.concurrent.CountDownLatch inFlight = new java.util.concurrent.CountDownLatch(1);
    java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
    CompletableFuture<Settlement> slow = lanes.laneOf(job(1)).submit((c, in) -> {
      List<Settlement> out = SqlLedger.settleAll(c, in, PRICES, 1_000_700L, 1);
      inFlight.countDown();
      try {
        release.await(); // written, not committed yet
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      return out;
    }, signed.get(1));
    CompletableFuture<List<SqlLedger.EpochClose>> close;
    try {
      assertThat(inFlight.await(10, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
      // the epoch has ended; closing it must wait for the settlement still in flight
      close = writer.submitAlone(c -> SqlLedger.closeEpochs(c, 1_001_500L, 1));
      assertThat(awaitAdvisoryLockWait()).as("closing waits at the settlement barrier").isTrue();
      assertThat(close).isNotDone();
    } finally {
      release.countDown();
    }
    assertThat(slow.get().settled()).isTrue();
    assertThat(close.get()).singleElement().satisfies(e -> {
      assertThat(e.epoch()).isEqualTo(1000);
      assertThat(e.receipts()).as("both settlements filed in the epoch").isEqualTo(2);
    });
  }

  /**
   * The lock cycle ADR 0011 names: the store's writer commits a hold (locking the tenant's balance
   * rows) and a release of a job in one transaction, while a lane settles that job's partial receipt
   * (its escrow row locked, then the same balance rows wanted). PostgreSQL aborts one of the two; that
   * one is retried whole and both complete, and the job's escrow is either charged then released or
   * released then refused, never both spent.
   */
  @Test
  void aDeadlockBetweenTheStoresWriterAndALaneIsRetriedWholeAndBothComplete() throws Exception {
    hold(2);
    SignedReceipt partial = sign(List.of(receipt(0, 0, "PREEMPTED", 10_000_000L))).get(0);
    GroupCommitWriter lane = lanes.laneOf(job(0));
    var storeHasBalances = new java.util.concurrent.CountDownLatch(1);
    var laneHasEscrow = new java.util.concurrent.CountDownLatch(1);
    var gates = new java.util.concurrent.CountDownLatch(1);
    var holding = new java.util.concurrent.CountDownLatch(2);
    // both writers held, each in a batch of its own already taken, until everything below is queued:
    // then each writer takes its two operations as one batch, one transaction
    GroupCommitWriter.Op<Void> gate = c -> {
      holding.countDown();
      awaitOrFail(gates);
      return null;
    };
    writer.submit(gate);
    lane.submit(gate);
    awaitOrFail(holding);
    CompletableFuture<Void> heldMore;
    CompletableFuture<Boolean> released;
    CompletableFuture<Void> lockedOnLane;
    CompletableFuture<Settlement> settled;
    try {
      heldMore = writer.submit(c -> {
        SqlLedger.hold(c, new EscrowHold(job(2), "t0", 100_000L, 3_600_000L, "H100", 1)); // t0's balance rows
        storeHasBalances.countDown();
        return null;
      });
      released = writer.submit(c -> {
        awaitOrFail(laneHasEscrow);
        return SqlLedger.release(c, job(0)); // waits for the lane's escrow row lock
      });
      lockedOnLane = lane.submit(c -> {
        awaitOrFail(storeHasBalances);
        try (var ps = c.prepareStatement("SELECT 1 FROM escrow WHERE job_id = ? FOR UPDATE")) {
          ps.setString(1, job(0));
          ps.executeQuery().close();
        }
        laneHasEscrow.countDown();
        return null;
      });
      settled = lane.submit(settleKind(3600), partial); // then waits for t0's balance rows
    } finally {
      gates.countDown();
    }
    heldMore.get(30, java.util.concurrent.TimeUnit.SECONDS);
    lockedOnLane.get(30, java.util.concurrent.TimeUnit.SECONDS);
    Settlement s = settled.get(30, java.util.concurrent.TimeUnit.SECONDS);
    boolean wasReleased = released.get(30, java.util.concurrent.TimeUnit.SECONDS);
    assertThat(writer.transientRetries() + lane.transientRetries()).as("the deadlock's victim, retried whole")
        .isGreaterThanOrEqualTo(1);
    assertThat(writer.splits() + lane.splits()).isZero();
    assertThat(writer.failedOps() + lane.failedOps()).isZero();
    assertThat(wasReleased).as("the escrow was open when the release ran, whichever went first").isTrue();
    try (Connection c = db.connection(); var st = c.createStatement()) {
      long charged = s.settled() ? s.chargeUact() : 0;
      if (!s.settled()) assertThat(s.refusal()).isEqualTo(LedgerRefusal.NO_OPEN_ESCROW); // released first
      try (ResultSet rs = st.executeQuery("SELECT COALESCE(SUM(amount), 0) FROM balance WHERE account LIKE 'provider:%'"
          + " AND denom = 'uact'")) {
        rs.next();
        assertThat(rs.getLong(1)).isEqualTo(charged);
      }
      try (ResultSet rs = st.executeQuery("SELECT COALESCE(SUM(amount), 0) FROM balance WHERE account LIKE 'escrow:%'"
          + " AND denom = 'uact'")) {
        rs.next();
        assertThat(rs.getLong(1)).as("job 1 and job 2 still held, job 0 released").isEqualTo(2 * 100_000L);
      }
      assertBalanced(st);
    }
  }

  private static void awaitOrFail(java.util.concurrent.CountDownLatch latch) {
    try {
      if (!latch.await(20, java.util.concurrent.TimeUnit.SECONDS)) throw new IllegalStateException("latch timed out");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  @Test
  void lanesOfTheirOwnNeedPostgres() {
    Database h2 = TestDatabases.freshH2();
    try {
      assertThatThrownBy(() -> SettlementLanes.own(h2, 2, 100)).isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("need PostgreSQL");
    } finally {
      h2.close();
    }
  }

  /** Waits (up to 10 s) until a session of this database waits for an advisory lock. */
  private boolean awaitAdvisoryLockWait() throws Exception {
    long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(10);
    try (Connection c = db.connection(); var ps = c.prepareStatement("SELECT COUNT(*) FROM pg_stat_activity"
        + " WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'")) {
      while (System.nanoTime() < deadline) {
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          if (rs.getLong(1) > 0) return true;
        }
        Thread.onSpinWait();
      }
    }
    return false;
  }

  private static void assertBalanced(java.sql.Statement st) throws Exception {
    try (ResultSet rs = st.executeQuery(
        "SELECT tx_id, denom FROM posting GROUP BY tx_id, denom HAVING SUM(amount) <> 0")) {
      assertThat(rs.next()).as("an unbalanced ledger transaction").isFalse();
    }
    try (ResultSet rs = st.executeQuery("SELECT b.account, b.denom, b.amount, COALESCE(SUM(p.amount), 0) FROM balance b"
        + " LEFT JOIN posting p ON p.account = b.account AND p.denom = b.denom GROUP BY b.account, b.denom, b.amount")) {
      while (rs.next()) {
        assertThat(rs.getLong(3)).as("balance of %s %s", rs.getString(1), rs.getString(2)).isEqualTo(rs.getLong(4));
      }
    }
  }
}
