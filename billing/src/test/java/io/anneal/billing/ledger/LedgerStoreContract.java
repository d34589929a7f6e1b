package io.anneal.billing.ledger;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.bme.BmeParams;
import io.anneal.billing.bme.OracleSnapshot;
import io.anneal.billing.merkle.MerkleTree;
import io.anneal.billing.receipt.Receipt;
import io.anneal.billing.receipt.ReceiptSigner;
import io.anneal.billing.receipt.SignedReceipt;
import io.anneal.billing.sql.Database;
import io.anneal.billing.sql.GroupCommitWriter;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.sql.Connection;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The ledger port's contract ({@link LedgerStore}), run unchanged on each adapter and engine: the
 * JDBC adapter and the Vert.x SQL client adapter, each on H2 and on PostgreSQL. What it sets up
 * (deposits, escrows, placements) and what it checks the ledger as a whole by (balances, journal,
 * epochs, proofs) goes through the store's JDBC writer, as the service does; what billing writes per
 * receipt goes through the port.
 */
public abstract class LedgerStoreContract {
  protected static final long EPOCH_SECONDS = 3600;

  /**
   * Tags the tests whose settlements, and the mints of {@link #setUp}, must land in one epoch (the stores
   * stamp them with the wall clock): their set-up first waits out an epoch edge less than two minutes away.
   * Without it such a test run across the top of an hour saw two epochs; waiting in the test itself, after
   * the set-up's mints, put those in the epoch before.
   */
  static final String ONE_EPOCH = "one-epoch";

  private static void clearOfEpochEdge() throws InterruptedException {
    long epochMs = EPOCH_SECONDS * 1000;
    long left = epochMs - System.currentTimeMillis() % epochMs;
    if (left < 120_000) Thread.sleep(left + 200);
  }
  private static final OracleSnapshot ORACLE = OracleSnapshot.healthy("0.5");
  private static final Map<String, Long> PRICES = Map.of("H100", 3_600_000L); // 1,000 uact per GPU-second

  protected Vertx vertx;
  protected Database db;
  protected GroupCommitWriter writer;
  protected LedgerStore store;
  private KeyPair nodeKey;

  /** A migrated, empty database. */
  protected abstract Database openDatabase();

  /** The adapter under test, on {@code db}, filing into epochs of {@code epochSeconds}; {@code writer} is the store's writer. */
  protected abstract LedgerStore openStore(Vertx vertx, Database db, GroupCommitWriter writer, SqlLedger.PriceLookup prices,
      long epochSeconds);

  @BeforeEach
  void setUp(org.junit.jupiter.api.TestInfo test) throws Exception {
    if (test.getTags().contains(ONE_EPOCH)) clearOfEpochEdge();
    db = openDatabase();
    writer = new GroupCommitWriter(db, "test-writer", 500);
    vertx = Vertx.vertx();
    store = openStore(vertx, db, writer, (cls, atMs) -> PRICES.get(cls), EPOCH_SECONDS);
    nodeKey = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    tx(c -> {
      SqlLedger.fundVault(c, "seed", 1_000_000_000_000L);
      SqlLedger.updateBreaker(c, ORACLE, BmeParams.defaults());
      for (String t : List.of("t1", "t2", "t3")) {
        SqlLedger.openTenantAccounts(c, t);
        SqlLedger.depositAndMint(c, t, "d-" + t, 1_000_000_000_000L, ORACLE, BmeParams.defaults());
      }
      return null;
    });
  }

  @AfterEach
  void tearDown() throws Exception {
    try {
      store.close();
      assertBalanced();
      // whatever a test settled, the ledger it leaves holds up to the audit (its nodes' keys registered as billing does)
      tx(c -> {
        List<String> nodes = new ArrayList<>();
        try (var st = c.createStatement(); var rs = st.executeQuery("SELECT DISTINCT node_id FROM settlement")) {
          while (rs.next()) nodes.add(rs.getString(1));
        }
        for (String n : nodes) SqlLedger.registerNode(c, n, io.anneal.billing.receipt.NodeKeys.encodePublic(nodeKey.getPublic()));
        return null;
      });
      LedgerAudit.Report audit;
      try (Connection c = db.connection()) {
        audit = LedgerAudit.run(c, 20);
      }
      assertThat(audit.findings()).as("ledger audit").isEmpty();
    } finally {
      // a failed check above still releases the test's schema, writer and Vert.x
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
      writer.close();
      db.dropSchema();
      db.close();
    }
  }

  private <T> T tx(GroupCommitWriter.Op<T> op) throws Exception {
    return writer.submit(op).get(30, TimeUnit.SECONDS);
  }

  private static <T> T await(Future<T> f) throws Exception {
    return f.toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
  }

  private long bal(String account, String denom) throws Exception {
    return tx(c -> SqlLedger.balance(c, account, denom));
  }

  /** Every journal entry balances per denomination, and each balance is the sum of its postings. */
  private void assertBalanced() throws Exception {
    try (Connection c = db.connection(); var st = c.createStatement()) {
      try (var rs = st.executeQuery("SELECT tx_id, denom, SUM(amount) FROM posting GROUP BY tx_id, denom HAVING SUM(amount) <> 0")) {
        assertThat(rs.next()).as("an unbalanced journal entry").isFalse();
      }
      try (var rs = st.executeQuery("SELECT b.account, b.denom, b.amount, COALESCE(SUM(p.amount), 0) FROM balance b"
          + " LEFT JOIN posting p ON p.account = b.account AND p.denom = b.denom GROUP BY b.account, b.denom, b.amount")) {
        while (rs.next()) {
          assertThat(rs.getLong(3)).as("balance of %s %s", rs.getString(1), rs.getString(2)).isEqualTo(rs.getLong(4));
        }
      }
    }
  }

  /** Escrows held for the jobs (one GPU each, 1,000,000 uact), placed on {@code node} at {@code placedAtMs}. */
  private void holdAndPlace(String tenant, String node, long placedAtMs, String... jobs) throws Exception {
    tx(c -> {
      List<EscrowHold> holds = new ArrayList<>();
      for (String j : jobs) holds.add(new EscrowHold(j, tenant, 1_000_000L, 3_600_000L, "H100", 1));
      assertThat(SqlLedger.holdAll(c, holds)).containsOnlyNulls();
      SqlLedger.placedOn(c, List.of(jobs), Collections.nCopies(jobs.length, node), placedAtMs);
      return null;
    });
  }

  private SignedReceipt receipt(String node, String job, String tenant, long deviceNanos, String outcome, int run) {
    Receipt r = new Receipt(job + "/" + run, job, tenant, node, "H100", 1, false, deviceNanos, deviceNanos, 0, 1000, 2000,
        outcome, "");
    return new ReceiptSigner(nodeKey.getPrivate()).sign(List.of(r)).get(0);
  }

  @Test
  void aReceiptDeliveredManyTimesAtOnceAndAgainLaterSettlesOnce() throws Exception {
    holdAndPlace("t1", "n1", 0, "j1");
    SignedReceipt r = receipt("n1", "j1", "t1", 250_000_000L, "SUCCEEDED", 0); // 0.25 GPU-s = 250 uact
    List<Future<Settlement>> at = new ArrayList<>();
    for (int i = 0; i < 5; i++) at.add(store.settle(r));
    List<Settlement> all = new ArrayList<>();
    for (Future<Settlement> f : at) all.add(await(f));
    all.add(await(store.settle(r)));
    assertThat(all).allSatisfy(s -> {
      assertThat(s.settled()).isTrue();
      assertThat(s.chargeUact()).isEqualTo(250L);
      assertThat(s.txId()).isEqualTo(all.get(0).txId());
    });
    assertThat(all).filteredOn(s -> !s.duplicate()).hasSize(1);
    assertThat(bal(Accounts.provider("n1"), "uact")).isEqualTo(250L);
    assertThat(bal(Accounts.escrow("t1"), "uact")).isZero();
    assertThat(await(store.settlementOf("j1/0"))).hasValueSatisfying(s -> assertThat(s.chargeUact()).isEqualTo(250L));
    assertThat(await(store.settlementOf("j1/9"))).isEmpty();
  }

  @Test
  void manyReceiptsWithRedeliveriesInAnyOrderSettleExactlyOnceEach() throws Exception {
    int n = 600;
    String[] jobs = new String[n];
    for (int i = 0; i < n; i++) jobs[i] = "m" + i;
    for (int t = 0; t < 3; t++) {
      List<String> mine = new ArrayList<>();
      for (int i = t; i < n; i += 3) mine.add(jobs[i]);
      holdAndPlace("t" + (t + 1), "n" + (t % 2), 0, mine.toArray(new String[0]));
    }
    List<SignedReceipt> deliveries = new ArrayList<>();
    Random rnd = new Random(7);
    long expected = 0;
    for (int i = 0; i < n; i++) {
      long nanos = 1_000_000L * (1 + rnd.nextInt(5_000));
      expected += nanos / 1_000_000L;
      SignedReceipt r = receipt("n" + (i % 3 % 2), jobs[i], "t" + (i % 3 + 1), nanos, "SUCCEEDED", 0);
      for (int k = 0; k <= rnd.nextInt(3); k++) deliveries.add(r);
    }
    Collections.shuffle(deliveries, rnd);
    List<Future<Settlement>> out = new ArrayList<>();
    for (SignedReceipt r : deliveries) out.add(store.settle(r));
    long charged = 0;
    int first = 0;
    for (Future<Settlement> f : out) {
      Settlement s = await(f);
      assertThat(s.settled()).as("%s", s).isTrue();
      if (!s.duplicate()) {
        first++;
        charged += s.chargeUact();
      }
    }
    assertThat(first).isEqualTo(n);
    assertThat(charged).isEqualTo(expected);
    assertThat(bal(Accounts.provider("n0"), "uact") + bal(Accounts.provider("n1"), "uact")).isEqualTo(expected);
    for (String t : List.of("t1", "t2", "t3")) assertThat(bal(Accounts.escrow(t), "uact")).isZero();
    assertThat(this.<Long>tx(c -> {
      try (var st = c.createStatement(); var rs = st.executeQuery("SELECT COUNT(*) FROM escrow WHERE state = 'OPEN'")) {
        rs.next();
        return rs.getLong(1);
      }
    })).isZero();
  }

  @Test
  void anEscrowReleasedWhileItsReceiptSettlesIsSpentOnce() throws Exception {
    int n = 200;
    String[] jobs = new String[n];
    for (int i = 0; i < n; i++) jobs[i] = "r" + i;
    holdAndPlace("t1", "n1", 0, jobs);
    long tenantBefore = bal(Accounts.tenant("t1"), "uact");
    // each job's receipt and its cancellation (on the store's writer) race
    List<Future<Settlement>> settled = new ArrayList<>();
    List<java.util.concurrent.CompletableFuture<Boolean>> released = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      String j = jobs[i];
      if (i % 2 == 0) released.add(writer.submit(c -> SqlLedger.release(c, j)));
      settled.add(store.settle(receipt("n1", j, "t1", 10_000_000_000L, "SUCCEEDED", 0)));
      if (i % 2 == 1) released.add(writer.submit(c -> SqlLedger.release(c, j)));
    }
    long charged = 0;
    long refunded = 0;
    for (int i = 0; i < n; i++) {
      Settlement s = await(settled.get(i));
      boolean r = released.get(i).get(30, TimeUnit.SECONDS);
      assertThat(s.settled() ^ r).as("job %s settled %s, released %s", jobs[i], s, r).isTrue();
      if (s.settled()) {
        charged += s.chargeUact();
        refunded += s.refundUact();
      } else {
        assertThat(s.refusal()).isEqualTo(LedgerRefusal.NO_OPEN_ESCROW);
        refunded += 1_000_000L;
      }
    }
    assertThat(bal(Accounts.provider("n1"), "uact")).isEqualTo(charged);
    assertThat(bal(Accounts.tenant("t1"), "uact")).isEqualTo(tenantBefore + refunded);
    assertThat(bal(Accounts.escrow("t1"), "uact")).isZero();
  }

  @Test
  void holdsAndReleasesInOneTransactionRacingSettlementsOfTheReleasedJobsLoseNothing() throws Exception {
    // the store's writer locks the tenant's balances (a hold), then the escrow of a job it releases;
    // a settlement of that job locks the escrow, then the balances: a lock cycle, which the database
    // breaks by aborting one side, and which that side retries whole
    int n = 40;
    String[] jobs = new String[n];
    for (int i = 0; i < n; i++) jobs[i] = "x" + i;
    holdAndPlace("t1", "n1", 0, jobs);
    List<Future<Settlement>> settled = new ArrayList<>();
    List<java.util.concurrent.CompletableFuture<Boolean>> released = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      String j = jobs[i];
      settled.add(store.settle(receipt("n1", j, "t1", 10_000_000_000L, "SUCCEEDED", 0)));
      released.add(writer.submit(c -> {
        assertThat(SqlLedger.holdAll(c, List.of(new EscrowHold("new-" + j, "t1", 1_000L, 3_600_000L, "H100", 1))))
            .containsOnlyNulls();
        return SqlLedger.release(c, j);
      }));
    }
    long charged = 0;
    for (int i = 0; i < n; i++) {
      Settlement s = await(settled.get(i));
      boolean r = released.get(i).get(60, TimeUnit.SECONDS);
      assertThat(s.settled() ^ r).as("job %s settled %s, released %s", jobs[i], s, r).isTrue();
      if (s.settled()) charged += s.chargeUact();
    }
    assertThat(bal(Accounts.provider("n1"), "uact")).isEqualTo(charged);
    assertThat(bal(Accounts.escrow("t1"), "uact")).as("the new holds, and nothing else").isEqualTo(n * 1_000L);
  }

  @Test
  void receiptsWithoutAnOpenEscrowOfTheirTenantOrFromAnotherNodeAreRefusedAndChangeNothing() throws Exception {
    holdAndPlace("t1", "n1", 0, "j1");
    Settlement none = await(store.settle(receipt("n1", "nobody", "t1", 1_000_000L, "SUCCEEDED", 0)));
    Settlement otherTenant = await(store.settle(receipt("n1", "j1", "t2", 1_000_000L, "SUCCEEDED", 0)));
    Settlement stranger = await(store.settle(receipt("n9", "j1", "t1", 1_000_000L, "SUCCEEDED", 0)));
    assertThat(none.refusal()).isEqualTo(LedgerRefusal.NO_OPEN_ESCROW);
    assertThat(otherTenant.refusal()).isEqualTo(LedgerRefusal.NO_OPEN_ESCROW);
    assertThat(stranger.refusal()).isEqualTo(LedgerRefusal.NOT_PLACED_ON_NODE);
    assertThat(await(store.settlementOf("j1/0"))).isEmpty();
    assertThat(bal(Accounts.provider("n9"), "uact")).isZero();
    assertThat(bal(Accounts.escrow("t1"), "uact")).isEqualTo(1_000_000L);
    // the node it was placed on is then paid
    Settlement real = await(store.settle(receipt("n1", "j1", "t1", 2_000_000L, "SUCCEEDED", 0)));
    assertThat(real.settled()).isTrue();
    assertThat(real.duplicate()).isFalse();
    assertThat(bal(Accounts.provider("n1"), "uact")).isEqualTo(2L);
  }

  @Test
  void aPreemptedRunIsChargedAndTheEscrowStaysForTheFinalOne() throws Exception {
    holdAndPlace("t1", "n1", 0, "p1");
    Settlement part = await(store.settle(receipt("n1", "p1", "t1", 100_000_000_000L, "PREEMPTED", 0)));
    assertThat(part.chargeUact()).isEqualTo(100_000L);
    assertThat(part.refundUact()).isZero();
    assertThat(this.<Optional<EscrowHold>>tx(c -> SqlLedger.openEscrow(c, "p1"))).hasValueSatisfying(h -> assertThat(h.amountUact()).isEqualTo(900_000L));
    Settlement fin = await(store.settle(receipt("n1", "p1", "t1", 300_000_000_000L, "SUCCEEDED", 1)));
    assertThat(fin.chargeUact()).isEqualTo(300_000L);
    assertThat(fin.refundUact()).isEqualTo(600_000L);
    assertThat(this.<Optional<EscrowHold>>tx(c -> SqlLedger.openEscrow(c, "p1"))).isEmpty();
    assertThat(bal(Accounts.provider("n1"), "uact")).isEqualTo(400_000L);
    assertThat(bal(Accounts.escrow("t1"), "uact")).isZero();
  }

  @Test
  void aPartialReceiptDeliveredAgainWhileItsEscrowStaysOpenIsADuplicate() throws Exception {
    holdAndPlace("t1", "n1", 0, "p4");
    SignedReceipt run0 = receipt("n1", "p4", "t1", 100_000_000_000L, "PREEMPTED", 0);
    Settlement part = await(store.settle(run0));
    assertThat(part.duplicate()).isFalse();
    // the escrow is still open: only its count of partial receipts (V15) says that run 0 was settled
    Settlement again = await(store.settle(run0));
    assertThat(again.duplicate()).isTrue();
    assertThat(again.txId()).isEqualTo(part.txId());
    assertThat(again.chargeUact()).isEqualTo(100_000L);
    // the second run, delivered with a redelivery of the first in one batch
    SignedReceipt run1 = receipt("n1", "p4", "t1", 200_000_000_000L, "PREEMPTED", 1);
    List<Future<Settlement>> batch = List.of(store.settle(run1), store.settle(run0), store.settle(run1));
    List<Settlement> answers = new ArrayList<>();
    for (Future<Settlement> f : batch) answers.add(await(f));
    assertThat(answers).extracting(Settlement::duplicate).containsExactly(false, true, true);
    assertThat(answers.get(1).txId()).isEqualTo(part.txId());
    assertThat(this.<Integer>tx(c -> {
      try (var st = c.createStatement(); var rs = st.executeQuery("SELECT partial_runs FROM escrow WHERE job_id = 'p4'")) {
        rs.next();
        return rs.getInt(1);
      }
    })).isEqualTo(2);
    Settlement fin = await(store.settle(receipt("n1", "p4", "t1", 300_000_000_000L, "SUCCEEDED", 2)));
    assertThat(fin.refundUact()).isEqualTo(400_000L);
    // once closed, every run of the job answers as settled before
    for (SignedReceipt r : List.of(run0, run1)) assertThat(await(store.settle(r)).duplicate()).isTrue();
    assertThat(bal(Accounts.provider("n1"), "uact")).isEqualTo(600_000L);
    assertBalanced();
  }

  @Test
  void aJobPaidFromAnAktDepositPaysTheProviderInAkt() throws Exception {
    tx(c -> {
      SqlLedger.updateBreaker(c, OracleSnapshot.healthy("0.04"), BmeParams.defaults()); // CR far below the halt line
      SqlLedger.openTenantAccounts(c, "t9");
      return null;
    });
    assertThat(this.<String>tx(SqlLedger::storedStatus)).isEqualTo("HALT_CR");
    tx(c -> Mints.depositDirect(c, "t9", "d9", 10_000_000L, OracleSnapshot.healthy("0.04")));
    tx(c -> {
      assertThat(SqlLedger.holdAll(c, List.of(new EscrowHold("a1", "t9", 100_000L, 3_600_000L, "H100", 1).offeringAkt("0.04"))))
          .containsOnlyNulls();
      SqlLedger.placedOn(c, List.of("a1"), List.of("n1"), 0);
      return null;
    });
    // 36 GPU-s = 36,000 uact at 0.04 USD/AKT: 900,000 uakt to the provider, the rest of the 2,500,000 held back
    Settlement s = await(store.settle(receipt("n1", "a1", "t9", 36_000_000_000L, "SUCCEEDED", 0)));
    assertThat(s.paidUakt()).isEqualTo(900_000L);
    assertThat(s.chargeUact()).isZero();
    assertThat(bal(Accounts.provider("n1"), "uakt")).isEqualTo(900_000L);
    assertThat(bal(Accounts.escrow("t9"), "uakt")).isZero();
    assertThat(bal(Accounts.tenant("t9"), "uakt")).isEqualTo(10_000_000L - 900_000L);
  }

  @Test
  void usageBeyondWhatTheJobsGpusHadSincePlacementIsBilledOnlyUpToIt() throws Exception {
    long placed = System.currentTimeMillis() - 10_000L;
    holdAndPlace("t1", "n1", placed, "g1");
    // one GPU, placed about 10 s ago, plus 5 s of slack: about 15 GPU-s, where the receipt claims 100 GPU-s
    Settlement s = await(store.settle(receipt("n1", "g1", "t1", 100_000_000_000L, "SUCCEEDED", 0)));
    assertThat(s.billedGpuNanos()).isBetween(15_000_000_000L, 40_000_000_000L);
    assertThat(s.chargeUact()).isEqualTo(s.billedGpuNanos() / 1_000_000L);
    assertThat(await(store.settlementOf("g1/0"))).hasValueSatisfying(x -> assertThat(x.billedGpuNanos()).isEqualTo(s.billedGpuNanos()));
  }

  @Test
  void theRunsOfAPreemptedJobTogetherAreBilledAtMostItsGpusTimeSincePlacement() throws Exception {
    long placed = System.currentTimeMillis() - 20_000L;
    holdAndPlace("t1", "n1", placed, "p2");
    // one GPU, first placed 20 s ago, plus 5 s of slack: about 25 GPU-s for all its runs together
    Settlement first = await(store.settle(receipt("n1", "p2", "t1", 15_000_000_000L, "PREEMPTED", 0)));
    assertThat(first.billedGpuNanos()).isNull();
    assertThat(first.chargeUact()).isEqualTo(15_000L);
    Settlement second = await(store.settle(receipt("n1", "p2", "t1", 15_000_000_000L, "SUCCEEDED", 1)));
    long usable = (System.currentTimeMillis() - placed + 5_000L) * 1_000_000L;
    assertThat(second.billedGpuNanos()).isBetween(10_000_000_000L, usable - 15_000_000_000L);
    assertThat(second.chargeUact()).isEqualTo(second.billedGpuNanos() / 1_000_000L);
    assertThat(bal(Accounts.provider("n1"), "uact")).isEqualTo(first.chargeUact() + second.chargeUact());
  }

  @Test
  void aBadReceiptFailsAloneAndTheRestOfItsBatchSettles() throws Exception {
    holdAndPlace("t1", "n1", 0, "b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7");
    // an escrow from before placements were recorded settles from any node; this node's id does not fit the table
    tx(c -> {
      try (var st = c.createStatement()) {
        st.executeUpdate("UPDATE escrow SET nodes = NULL WHERE job_id = 'b3'");
      }
      return null;
    });
    String longNode = "n".repeat(80);
    List<Future<Settlement>> out = new ArrayList<>();
    for (int i = 0; i < 8; i++) {
      out.add(store.settle(receipt(i == 3 ? longNode : "n1", "b" + i, "t1", 1_000_000_000L, "SUCCEEDED", 0)));
    }
    int settled = 0;
    for (int i = 0; i < 8; i++) {
      var f = out.get(i).toCompletionStage().toCompletableFuture();
      try {
        Settlement s = f.get(30, TimeUnit.SECONDS);
        assertThat(i).isNotEqualTo(3);
        assertThat(s.settled()).isTrue();
        settled++;
      } catch (java.util.concurrent.ExecutionException e) {
        assertThat(i).as("only the receipt that cannot be stored fails: %s", e.getCause()).isEqualTo(3);
      }
    }
    assertThat(settled).isEqualTo(7);
    assertThat(bal(Accounts.provider("n1"), "uact")).isEqualTo(7_000L);
    assertThat(this.<Optional<EscrowHold>>tx(c -> SqlLedger.openEscrow(c, "b3"))).isPresent();
  }

  @Test
  @org.junit.jupiter.api.Tag(ONE_EPOCH)
  void aCloseWhileAnotherCloserHoldsTheEpochsWaitsThenClosesNothing() throws Exception {
    holdAndPlace("t1", "n1", 0, "w0");
    assertThat(await(store.settle(receipt("n1", "w0", "t1", 1_000_000_000L, "SUCCEEDED", 0))).settled()).isTrue();
    long later = System.currentTimeMillis() + 2 * EPOCH_SECONDS * 1000;
    // another closer of the same ledger (another instance) has closed the ended epochs, not yet committed
    try (java.sql.Connection other = db.connection()) {
      other.setAutoCommit(false);
      assertThat(SqlLedger.closeEndedEpochs(other, later, EPOCH_SECONDS)).isNotEmpty();
      Future<List<SqlLedger.EpochClose>> ours = store.closeEpochs(later);
      TestDatabases.awaitLockWaiter(db);
      assertThat(ours.isComplete()).as("waits for the other closer").isFalse();
      other.commit();
      assertThat(await(ours)).as("finds them closed").isEmpty();
    }
    assertThat(this.<List<SqlLedger.EpochClose>>tx(c -> SqlLedger.closedEpochs(c, 10))).hasSize(1);
  }

  @Test
  @org.junit.jupiter.api.Tag(ONE_EPOCH)
  void settledReceiptsCloseIntoTheirEpochWithProofsThatVerifyAndATamperedReceiptFails() throws Exception {
    String[] jobs = {"e0", "e1", "e2", "e3", "e4"};
    holdAndPlace("t1", "n1", 0, jobs);
    for (String j : jobs) assertThat(await(store.settle(receipt("n1", j, "t1", 1_000_000_000L, "SUCCEEDED", 0))).settled()).isTrue();
    // closing every epoch before one that starts after now, behind the settlement barrier; the
    // deposits of setUp minted ACT in the same epoch: its flows count too
    var closed = await(store.closeEpochs(System.currentTimeMillis() + 2 * EPOCH_SECONDS * 1000));
    assertThat(closed).hasSize(1);
    assertThat(closed.get(0).receipts()).isEqualTo(5);
    assertThat(closed.get(0).chargedUact()).isEqualTo(5_000L);
    assertThat(closed.get(0).actMintedUact()).isEqualTo(3 * 500_000_000_000L); // 3 x 1,000,000 AKT at 0.5
    assertThat(closed.get(0).aktInUakt()).isEqualTo(3 * 1_000_000_000_000L);
    assertThat(closed.get(0).burnMintRatio()).as("no AKT paid out yet").isNull();
    assertThat(await(store.closeEpochs(System.currentTimeMillis() + 2 * EPOCH_SECONDS * 1000))).as("closed once").isEmpty();
    // the same totals as the JDBC ledger reads them back
    assertThat(this.<List<SqlLedger.EpochClose>>tx(c -> SqlLedger.closedEpochs(c, 10))).containsExactly(closed.get(0));
    byte[] root = HexFormat.of().parseHex(closed.get(0).merkleRoot());
    for (String j : jobs) {
      Map<String, Object> p = tx(c -> SqlLedger.epochProof(c, j + "/0")).orElseThrow();
      var proof = SqlLedger.decodeProof((String) p.get("proof"));
      String body = (String) tx(c -> SqlLedger.settlementsOfJob(c, j)).get(0).get("receiptBody");
      byte[] leaf = MerkleTree.leafHash(body.getBytes(java.nio.charset.StandardCharsets.UTF_8));
      assertThat(MerkleTree.verify(leaf, proof, root)).isTrue();
      byte[] tampered = MerkleTree.leafHash(body.replace("1000000000", "2000000000").getBytes(java.nio.charset.StandardCharsets.UTF_8));
      assertThat(MerkleTree.verify(tampered, proof, root)).isFalse();
    }
  }

  @Test
  @org.junit.jupiter.api.Tag(ONE_EPOCH)
  void anEpochOfManyChunksGivesTheProofsOfAllItsLeaves() throws Exception {
    // 9,668 settlements: nine full chunks of 1,024 leaves and a partial one (V14, EpochChunks), which
    // the close reads in two pages of up to 8,192
    int n = EpochChunks.PAGE + EpochChunks.SIZE + 452;
    String[] jobs = new String[n];
    for (int i = 0; i < n; i++) jobs[i] = String.format("c%05d", i);
    holdAndPlace("t2", "n1", 0, jobs);
    List<Future<Settlement>> all = new ArrayList<>();
    for (String j : jobs) all.add(store.settle(receipt("n1", j, "t2", 1_000_000_000L, "SUCCEEDED", 0)));
    for (Future<Settlement> f : all) assertThat(await(f).settled()).isTrue();
    var closed = await(store.closeEpochs(System.currentTimeMillis() + 2 * EPOCH_SECONDS * 1000));
    assertThat(closed).singleElement().extracting(SqlLedger.EpochClose::receipts).isEqualTo((long) n);
    long epoch = closed.get(0).epoch();
    assertThat(this.<Long>tx(c -> {
      try (var ps = c.prepareStatement("SELECT COUNT(*) FROM epoch_chunk WHERE epoch = ?")) {
        ps.setLong(1, epoch);
        try (var rs = ps.executeQuery()) {
          rs.next();
          return rs.getLong(1);
        }
      }
    })).isEqualTo(10L);
    byte[] root = HexFormat.of().parseHex(closed.get(0).merkleRoot());
    for (int i : new int[] {0, 1, 1023, 1024, 1025, 2047, 2048, 2049, 8191, 8192, 8193, 9215, 9216, n - 1}) {
      String id = jobs[i] + "/0";
      Map<String, Object> p = tx(c -> SqlLedger.epochProof(c, id)).orElseThrow();
      assertThat(p.get("index")).isEqualTo(i); // receipt ids in job order here
      // made from the chunks, and the same as from every leaf of the epoch (how proofs were made before V14)
      String leafHex = (String) p.get("leafHash");
      Map<String, Object> chunked = this.<Optional<Map<String, Object>>>tx(
          c -> SqlLedger.proofFromChunks(c, new java.util.LinkedHashMap<>(), epoch, id, leafHex)).orElseThrow();
      Map<String, Object> full = tx(c -> SqlLedger.proofFromAllLeaves(c, new java.util.LinkedHashMap<>(), epoch, id));
      assertThat(chunked).containsEntry("proof", full.get("proof")).containsEntry("index", full.get("index"));
      assertThat(p.get("proof")).isEqualTo(full.get("proof"));
      byte[] leaf = HexFormat.of().parseHex((String) p.get("leafHash"));
      assertThat(MerkleTree.verify(leaf, SqlLedger.decodeProof((String) p.get("proof")), root)).as("leaf %d", i).isTrue();
    }
    // an epoch closed before V14 has no chunks: its proofs come from every leaf, as before
    Map<String, Object> withChunks = tx(c -> SqlLedger.epochProof(c, jobs[8193] + "/0")).orElseThrow();
    tx(c -> {
      try (var ps = c.prepareStatement("DELETE FROM epoch_chunk WHERE epoch = ?")) {
        ps.setLong(1, epoch);
        return ps.executeUpdate();
      }
    });
    assertThat(tx(c -> SqlLedger.epochProof(c, jobs[8193] + "/0")).orElseThrow()).isEqualTo(withChunks);
  }

  @Test
  void epochsClosedWhileReceiptsStreamInHoldEverySettlementOfTheirsAndNoOther() throws Exception {
    // one-second epochs, closed every 50 ms while waves of receipts settle across several of them: an
    // epoch may close only once every settlement filed in it has committed (the settlement barrier)
    store.close();
    store = openStore(vertx, db, writer, (cls, atMs) -> PRICES.get(cls), 1);
    int waves = 12;
    int perWave = 150;
    String[] jobs = new String[waves * perWave];
    for (int i = 0; i < jobs.length; i++) jobs[i] = "s" + i;
    holdAndPlace("t1", "n1", 0, jobs);
    java.util.concurrent.atomic.AtomicBoolean streaming = new java.util.concurrent.atomic.AtomicBoolean(true);
    List<SqlLedger.EpochClose> closedWhileStreaming = java.util.Collections.synchronizedList(new ArrayList<>());
    java.util.concurrent.atomic.AtomicReference<Throwable> closerFailed = new java.util.concurrent.atomic.AtomicReference<>();
    Thread closer = new Thread(() -> {
      while (streaming.get()) {
        try {
          closedWhileStreaming.addAll(await(store.closeEpochs(System.currentTimeMillis())));
          Thread.sleep(50); // the closing pace, as the billing verticle's timer
        } catch (Exception e) {
          closerFailed.set(e);
          return;
        }
      }
    });
    closer.start();
    List<Future<Settlement>> all = new ArrayList<>();
    for (int w = 0; w < waves; w++) {
      for (int i = w * perWave; i < (w + 1) * perWave; i++) {
        all.add(store.settle(receipt("n1", jobs[i], "t1", 1_000_000_000L + i, "SUCCEEDED", 0)));
      }
      Thread.sleep(200); // the receipts' pace: waves spread over several one-second epochs
    }
    for (Future<Settlement> f : all) assertThat(await(f).settled()).isTrue();
    streaming.set(false);
    closer.join();
    assertThat(closerFailed.get()).as("closing epochs while receipts stream").isNull();
    // every receipt has settled and no other will: close up to a time past the last epoch filed in
    List<SqlLedger.EpochClose> closed = new ArrayList<>(closedWhileStreaming);
    closed.addAll(await(store.closeEpochs(System.currentTimeMillis() + 2_000)));
    assertThat(closed.size()).as("the stream spans several epochs").isGreaterThanOrEqualTo(2);
    // each closed epoch holds exactly the settlements filed in it, and its root is theirs
    long receipts = 0;
    for (SqlLedger.EpochClose e : closed) {
      List<byte[]> leaves = new ArrayList<>();
      long[] charged = {0};
      try (Connection c = db.connection(); var ps = c.prepareStatement(
          "SELECT leaf_hash, charge_uact FROM settlement WHERE epoch = ? ORDER BY receipt_id")) {
        ps.setLong(1, e.epoch());
        try (var rs = ps.executeQuery()) {
          while (rs.next()) {
            leaves.add(HexFormat.of().parseHex(rs.getString(1)));
            charged[0] += rs.getLong(2);
          }
        }
      }
      assertThat(e.receipts()).as("receipts of epoch %d", e.epoch()).isEqualTo(leaves.size());
      assertThat(e.chargedUact()).isEqualTo(charged[0]);
      if (!leaves.isEmpty()) {
        assertThat(e.merkleRoot()).isEqualTo(HexFormat.of().formatHex(MerkleTree.ofLeafHashes(leaves).root()));
      }
      receipts += e.receipts();
    }
    assertThat(receipts).as("every settlement in a closed epoch").isEqualTo(jobs.length);
    assertThat(closed).extracting(SqlLedger.EpochClose::epoch).doesNotHaveDuplicates();
  }

  @Test
  void aSettlementWaitsWhileTheSettlementBarrierIsHeld() throws Exception {
    holdAndPlace("t1", "n1", 0, "w1");
    try (Connection c = db.connection()) {
      c.setAutoCommit(false);
      SqlLedger.settlementBarrier(c); // as an epoch close does, in a transaction of its own
      Future<Settlement> s = store.settle(receipt("n1", "w1", "t1", 1_000_000_000L, "SUCCEEDED", 0));
      Thread.sleep(300);
      assertThat(s.isComplete()).as("settled while the barrier was held").isFalse();
      c.commit();
      assertThat(await(s).settled()).isTrue();
    }
  }

  @Test
  void aReceiptSignedWithAKeyRevokedSinceIsRefusedWhateverBillingCheckedBefore() throws Exception {
    String first = io.anneal.billing.receipt.NodeKeys.encodePublic(nodeKey.getPublic());
    assertThat(await(store.registerNode("n1", first))).isTrue();
    holdAndPlace("t1", "n1", 0, "rk1", "rk2");
    assertThat(await(store.settle(receipt("n1", "rk1", "t1", 1_000_000_000L, "SUCCEEDED", 0))).settled()).isTrue();
    KeyPair next = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    String second = io.anneal.billing.receipt.NodeKeys.encodePublic(next.getPublic());
    assertThat(this.<NodeKey.Rotation>tx(c -> SqlLedger.rotateNodeKey(c, "n1", first, second, true, System::currentTimeMillis)))
        .isEqualTo(NodeKey.Rotation.DONE);
    List<NodeKey> keys = await(store.nodeKeys("n1"));
    assertThat(keys).extracting(NodeKey::publicKey).containsExactly(second, first);
    assertThat(keys).extracting(NodeKey::state).containsExactly("current", "revoked");
    assertThat(await(store.nodeKeys("n9"))).isEmpty();
    // signed with the revoked key: the port settles only what its caller verified, yet refuses this one itself
    long tenant = bal(Accounts.tenant("t1"), "uact");
    Settlement s = await(store.settle(receipt("n1", "rk2", "t1", 1_000_000_000L, "SUCCEEDED", 0)));
    assertThat(s.settled()).isFalse();
    assertThat(s.refusal()).isEqualTo(LedgerRefusal.BAD_SIGNATURE);
    assertThat(bal(Accounts.tenant("t1"), "uact")).isEqualTo(tenant);
  }

  @Test
  void receiptsOfABatchSignedAgainUnderARotatedKeyKeepTheSignatureBillingChecked() throws Exception {
    String first = io.anneal.billing.receipt.NodeKeys.encodePublic(nodeKey.getPublic());
    assertThat(await(store.registerNode("n1", first))).isTrue();
    holdAndPlace("t1", "n1", 0, "rs1", "rs2", "rs3", "rs4");
    List<Receipt> batch = new ArrayList<>();
    for (String job : List.of("rs1", "rs2", "rs3", "rs4")) {
      batch.add(new Receipt(job + "/0", job, "t1", "n1", "H100", 1, false, 1_000_000_000L, 1_000_000_000L, 0, 1000, 2000,
          "SUCCEEDED", ""));
    }
    List<SignedReceipt> underFirst = new ReceiptSigner(nodeKey.getPrivate()).sign(batch);
    assertThat(await(store.settle(underFirst.get(0))).settled()).isTrue();
    // the node rotates, retiring its first key, and signs what it still holds again: same root, same proofs
    KeyPair next = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    String second = io.anneal.billing.receipt.NodeKeys.encodePublic(next.getPublic());
    assertThat(this.<NodeKey.Rotation>tx(c -> SqlLedger.rotateNodeKey(c, "n1", first, second, false, System::currentTimeMillis)))
        .isEqualTo(NodeKey.Rotation.DONE);
    List<SignedReceipt> underSecond = new ReceiptSigner(next.getPrivate()).sign(batch);
    assertThat(underSecond.get(1).batchRoot()).isEqualTo(underFirst.get(1).batchRoot());
    // copies signed under either key in flight together: each settles under the signature it carried
    Future<Settlement> two = store.settle(underSecond.get(1));
    Future<Settlement> three = store.settle(underFirst.get(2));
    Future<Settlement> four = store.settle(underSecond.get(3));
    assertThat(List.of(await(two), await(three), await(four))).allMatch(Settlement::settled);
    assertThat(this.<NodeKey.Revocation>tx(c -> SqlLedger.revokeNodeKey(c, "n1", first, System::currentTimeMillis)))
        .isEqualTo(NodeKey.Revocation.REVOKED);
    Map<String, String> keyOf = Map.of("rs1", first, "rs2", second, "rs3", first, "rs4", second);
    for (int i = 0; i < 4; i++) {
      String job = batch.get(i).jobId();
      Map<String, Object> run = this.<List<Map<String, Object>>>tx(c -> SqlLedger.settlementsOfJob(c, job)).get(0);
      String shown = (String) run.get("signature");
      SignedReceipt carried = (keyOf.get(job).equals(first) ? underFirst : underSecond).get(i);
      assertThat(shown).as("signature shown for %s", job).isEqualTo(java.util.Base64.getEncoder().encodeToString(carried.signature()));
      assertThat(io.anneal.billing.receipt.ReceiptVerifier.rootSigned((String) run.get("batchRoot"), shown, keyOf.get(job)))
          .as("%s verifies under the key that signed it", job).isTrue();
    }
  }

  @Test
  void nodeKeysAreRegisteredOnceAndRefusedReceiptsAreKeptNewestFirst() throws Exception {
    assertThat(await(store.nodeKey("n1"))).isEmpty();
    assertThat(await(store.registerNode("n1", "key-1"))).isTrue();
    assertThat(await(store.registerNode("n1", "key-1"))).isTrue();
    assertThat(await(store.registerNode("n1", "key-2"))).isFalse();
    assertThat(await(store.nodeKey("n1"))).contains("key-1");
    await(store.recordRefused("x/0", "n7", "bad signature from node n7"));
    await(store.recordRefused("y/0", "n8", "unknown node n8"));
    List<SqlLedger.RefusedReceipt> refused = await(store.refusedReceipts(10));
    assertThat(refused).extracting(SqlLedger.RefusedReceipt::receiptId).containsExactly("y/0", "x/0");
    assertThat(refused).extracting(SqlLedger.RefusedReceipt::settled).containsExactly(false, false);
    // x/0 sent again valid (as after a revoking rotation) and settled: the list says so
    holdAndPlace("t1", "n7", 0, "x");
    assertThat(await(store.settle(receipt("n7", "x", "t1", 1_000_000_000L, "SUCCEEDED", 0))).settled()).isTrue();
    assertThat(await(store.refusedReceipts(10))).extracting(SqlLedger.RefusedReceipt::settled).containsExactly(false, true);
    assertThat(refused.get(0).atMs()).isBetween(System.currentTimeMillis() - 60_000, System.currentTimeMillis() + 60_000);
    assertThat(await(store.refusedReceipts(1))).hasSize(1);
    assertThat(store.describe()).isNotBlank();
    assertThat(Optional.of(refused.get(1).reason())).contains("bad signature from node n7");
  }
}
