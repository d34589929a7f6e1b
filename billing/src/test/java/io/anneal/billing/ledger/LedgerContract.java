package io.anneal.billing.ledger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.anneal.billing.bme.BmeParams;
import io.anneal.billing.bme.Dec;
import io.anneal.billing.bme.OracleSnapshot;
import io.anneal.billing.merkle.MerkleTree;
import io.anneal.billing.receipt.Receipt;
import io.anneal.billing.receipt.ReceiptSigner;
import io.anneal.billing.receipt.SignedReceipt;
import io.anneal.billing.sql.Database;
import io.anneal.billing.sql.GroupCommitWriter;
import java.security.KeyPairGenerator;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The ledger's contract, run unchanged on every SQL store (H2 and PostgreSQL), in the manner of
 * JobRunr's StorageProviderTest. Each test checks the double-entry invariant at the end.
 */
public abstract class LedgerContract {
  protected Database db;
  protected GroupCommitWriter writer;
  private static final OracleSnapshot ORACLE = OracleSnapshot.healthy("0.5");
  private static final Map<String, Long> PRICES = Map.of("H100", 3_600_000L);

  protected abstract Database open();

  @BeforeEach
  void setUp() throws Exception {
    db = open();
    writer = new GroupCommitWriter(db, "test-writer", 500);
    tx(c -> {
      SqlLedger.fundVault(c, "seed", 1_000_000_000L);
      SqlLedger.updateBreaker(c, ORACLE, BmeParams.defaults());
      SqlLedger.openTenantAccounts(c, "t1");
      return null;
    });
  }

  @AfterEach
  void tearDown() throws Exception {
    assertBalancedAndConsistent();
    writer.close();
    db.dropSchema();
    db.close();
  }

  protected <T> T tx(GroupCommitWriter.Op<T> op) throws Exception {
    return writer.submit(op).get();
  }

  private long bal(String account) throws Exception {
    return tx(c -> SqlLedger.balance(c, account, "uact"));
  }

  /** Every denom's postings sum to zero, and each balance equals the sum of its postings. */
  private void assertBalancedAndConsistent() throws SQLException {
    try (Connection c = db.connection(); var st = c.createStatement()) {
      try (var rs = st.executeQuery("SELECT tx_id, denom, SUM(amount) FROM posting GROUP BY tx_id, denom HAVING SUM(amount) <> 0")) {
        assertThat(rs.next()).as("an unbalanced ledger transaction").isFalse();
      }
      try (var rs = st.executeQuery("SELECT b.account, b.denom, b.amount, COALESCE(SUM(p.amount), 0) FROM balance b"
          + " LEFT JOIN posting p ON p.account = b.account AND p.denom = b.denom GROUP BY b.account, b.denom, b.amount")) {
        while (rs.next()) {
          assertThat(rs.getLong(3)).as("balance of %s %s", rs.getString(1), rs.getString(2)).isEqualTo(rs.getLong(4));
        }
      }
    }
  }

  private void deposit(long uakt) throws Exception {
    MintResult r = tx(c -> SqlLedger.depositAndMint(c, "t1", "dep-" + uakt, uakt, ORACLE, BmeParams.defaults()));
    assertThat(r.refusal()).isNull();
  }

  /**
   * As the scheduler does before a job runs: each receipt's job placed on the receipt's node, when
   * the earliest of them started (the receipts here describe runs of the past).
   */
  private static void place(Connection c, List<SignedReceipt> receipts) throws java.sql.SQLException {
    List<String> jobs = new java.util.ArrayList<>();
    List<String> nodes = new java.util.ArrayList<>();
    long at = Long.MAX_VALUE;
    for (SignedReceipt sr : receipts) {
      jobs.add(sr.receipt().jobId());
      nodes.add(sr.receipt().nodeId());
      at = Math.min(at, sr.receipt().startedAtMs());
    }
    SqlLedger.placedOn(c, jobs, nodes, at);
  }

  private static Settlement placeAndSettle(Connection c, SignedReceipt r, Map<String, Long> prices)
      throws java.sql.SQLException {
    place(c, List.of(r));
    return SqlLedger.settle(c, r, prices);
  }

  private static List<Settlement> placeAndSettleAll(Connection c, List<SignedReceipt> receipts, Map<String, Long> prices,
      long nowMs, long epochSeconds) throws java.sql.SQLException {
    place(c, receipts);
    return SqlLedger.settleAll(c, receipts, prices, nowMs, epochSeconds);
  }

  private static SignedReceipt receipt(String jobId, long deviceNanos) {
    return receiptOf(jobId, "t1", deviceNanos, "SUCCEEDED", 0);
  }


  @Test
  void depositMintsActAtTheOraclePriceMinusTheSpread() throws Exception {
    deposit(100_000_000L); // 100 AKT at 0.5 = 50 ACT gross, 0.25 % spread
    assertThat(bal(Accounts.tenant("t1"))).isEqualTo(50_000_000L - 125_000L);
    assertThat(bal(Accounts.ENGINE)).isEqualTo(125_000L);
    SupplyView s = tx(SqlLedger::supply);
    assertThat(s.actSupply()).isEqualTo(50_000_000L);
    assertThat(s.vaultAkt()).isEqualTo(1_100_000_000L);
    assertThat(s.remintCredits()).isEqualTo(100_000_000L);
    assertThat(s.totalMintedUact()).isEqualTo(50_000_000L);
  }

  @Test
  void aDepositBelowTheMinimumMintIsRefusedAndWritesNothing() throws Exception {
    MintResult r = tx(c -> SqlLedger.depositAndMint(c, "t1", "small", 19_999_999L, ORACLE, BmeParams.defaults()));
    assertThat(r.refusal()).isEqualTo(LedgerRefusal.BELOW_MINIMUM_MINT);
    assertThat(this.<java.util.Optional<Long>>tx(c -> SqlLedger.txIdByRef(c, "deposit:small"))).isEmpty();
    assertThat(bal(Accounts.tenant("t1"))).isZero();
  }

  @Test
  void aDepositIsRecordedOncePerReference() throws Exception {
    deposit(100_000_000L);
    MintResult again = tx(c -> SqlLedger.depositAndMint(c, "t1", "dep-100000000", 100_000_000L, ORACLE, BmeParams.defaults()));
    assertThat(again.duplicate()).isTrue();
    assertThat(bal(Accounts.tenant("t1"))).isEqualTo(50_000_000L - 125_000L);
  }

  @Test
  void holdMovesTheMaximumCostIntoEscrowAndRefusesWhatTheTenantLacks() throws Exception {
    deposit(100_000_000L);
    long have = bal(Accounts.tenant("t1"));
    tx(c -> {
      SqlLedger.hold(c, new EscrowHold("j1", "t1", 1_000_000L, 3_600_000L, "H100", 1));
      return null;
    });
    assertThat(bal(Accounts.tenant("t1"))).isEqualTo(have - 1_000_000L);
    assertThat(bal(Accounts.escrow("t1"))).isEqualTo(1_000_000L);
    assertThatThrownBy(() -> tx(c -> {
      SqlLedger.hold(c, new EscrowHold("j2", "t1", have, 3_600_000L, "H100", 1));
      return null;
    })).hasCauseInstanceOf(SqlLedger.Refused.class);
    assertThat(bal(Accounts.tenant("t1"))).isEqualTo(have - 1_000_000L);
    assertThat(this.<java.util.Optional<EscrowHold>>tx(c -> SqlLedger.openEscrow(c, "j2"))).isEmpty();
  }

  @Test
  void settlementChargesMeasuredTimePaysTheProviderAndReturnsTheRestOnce() throws Exception {
    deposit(100_000_000L);
    long have = bal(Accounts.tenant("t1"));
    tx(c -> {
      SqlLedger.hold(c, new EscrowHold("j1", "t1", 1_000_000L, 3_600_000L, "H100", 1));
      return null;
    });
    SignedReceipt r = receipt("j1", 250_000_000L); // 0.25 GPU-s at 1 ACT/GPU-hour (1,000 uact/GPU-s) = 250 uact
    Settlement first = tx(c -> placeAndSettle(c, r, PRICES));
    assertThat(first.settled()).isTrue();
    assertThat(first.duplicate()).isFalse();
    assertThat(first.chargeUact()).isEqualTo(250L);
    assertThat(first.refundUact()).isEqualTo(999_750L);
    Settlement second = tx(c -> placeAndSettle(c, r, PRICES));
    assertThat(second.duplicate()).isTrue();
    assertThat(second.chargeUact()).isEqualTo(250L);
    assertThat(bal(Accounts.provider("n1"))).isEqualTo(250L);
    assertThat(bal(Accounts.tenant("t1"))).isEqualTo(have - 250L);
    assertThat(bal(Accounts.escrow("t1"))).isZero();
  }

  @Test
  void concurrentDuplicateDeliveriesInOneBatchSettleOnce() throws Exception {
    deposit(100_000_000L);
    tx(c -> {
      SqlLedger.hold(c, new EscrowHold("j1", "t1", 1_000_000L, 3_600_000L, "H100", 1));
      return null;
    });
    SignedReceipt r = receipt("j1", 1_000_000_000L);
    List<CompletableFuture<Settlement>> all = new ArrayList<>();
    for (int i = 0; i < 20; i++) all.add(writer.submit(c -> placeAndSettle(c, r, PRICES)));
    long firsts = 0;
    for (var f : all) firsts += f.get().duplicate() ? 0 : 1;
    assertThat(firsts).isEqualTo(1);
    assertThat(bal(Accounts.provider("n1"))).isEqualTo(1_000L);
  }

  @Test
  void aBatchWithDuplicatesAndStrangersSettlesEachReceiptOnce() throws Exception {
    deposit(100_000_000L);
    long have = bal(Accounts.tenant("t1"));
    for (int i = 0; i < 30; i++) {
      String job = "b" + i;
      tx(c -> {
        SqlLedger.hold(c, new EscrowHold(job, "t1", 10_000L, 3_600_000L, "H100", 1));
        return null;
      });
    }
    GroupCommitWriter.BatchKind<SignedReceipt, Settlement> kind =
        (c, list) -> placeAndSettleAll(c, list, PRICES, System.currentTimeMillis(), 3600);
    List<CompletableFuture<Settlement>> all = new ArrayList<>();
    for (int round = 0; round < 3; round++) {
      for (int i = 0; i < 30; i++) all.add(writer.submit(kind, receipt("b" + i, 1_000_000_000L)));
    }
    all.add(writer.submit(kind, receipt("never-held", 1_000L)));
    long settled = 0;
    long duplicates = 0;
    for (var f : all.subList(0, 90)) {
      Settlement s = f.get();
      assertThat(s.settled()).isTrue();
      if (s.duplicate()) {
        duplicates++;
      } else {
        settled++;
      }
    }
    assertThat(settled).isEqualTo(30);
    assertThat(duplicates).isEqualTo(60);
    assertThat(all.get(90).get().refusal()).isEqualTo(LedgerRefusal.NO_OPEN_ESCROW);
    assertThat(bal(Accounts.provider("n1"))).isEqualTo(30 * 1_000L);
    assertThat(bal(Accounts.tenant("t1"))).isEqualTo(have - 30 * 1_000L);
    assertThat(bal(Accounts.escrow("t1"))).isZero();
  }

  @Test
  void aPreemptedRunAndTheFinalRunOfOneJobSettleInOneBatchAsOneBalancedJournalEntry() throws Exception {
    deposit(100_000_000L);
    long have = bal(Accounts.tenant("t1"));
    tx(c -> {
      SqlLedger.hold(c, new EscrowHold("p1", "t1", 10_000L, 3_600_000L, "H100", 1));
      SqlLedger.hold(c, new EscrowHold("p2", "t1", 10_000L, 3_600_000L, "H100", 1));
      return null;
    });
    java.security.KeyPair kp = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    Receipt preempted = new Receipt("p1/0", "p1", "t1", "n1", "H100", 1, false, 2_000_000_000L, 2_000_000_000L, 0, 1000,
        2000, "PREEMPTED", "");
    Receipt last = new Receipt("p1/1", "p1", "t1", "n2", "H100", 1, false, 3_000_000_000L, 3_000_000_000L, 0, 3000, 4000,
        "SUCCEEDED", "");
    Receipt other = new Receipt("p2/0", "p2", "t1", "n1", "H100", 1, false, 1_000_000_000L, 1_000_000_000L, 0, 1000, 2000,
        "SUCCEEDED", "");
    List<SignedReceipt> batch = new ReceiptSigner(kp.getPrivate()).sign(List.of(preempted, last, other));
    List<Settlement> out = tx(c -> placeAndSettleAll(c, batch, PRICES, System.currentTimeMillis(), 3600));
    assertThat(out).extracting(Settlement::chargeUact).containsExactly(2_000L, 3_000L, 1_000L);
    assertThat(out).extracting(Settlement::refundUact).containsExactly(0L, 5_000L, 9_000L);
    assertThat(out).extracting(Settlement::txId).containsOnly(out.get(0).txId());
    assertThat(bal(Accounts.provider("n1"))).isEqualTo(3_000L);
    assertThat(bal(Accounts.provider("n2"))).isEqualTo(3_000L);
    assertThat(bal(Accounts.tenant("t1"))).isEqualTo(have - 6_000L);
    assertThat(bal(Accounts.escrow("t1"))).isZero();
    // the entry's postings are the sum of its line items
    long posted = this.<Long>tx(c -> {
      try (var ps = c.prepareStatement("SELECT SUM(amount) FROM posting WHERE tx_id = ? AND account LIKE 'provider:%'")) {
        ps.setLong(1, out.get(0).txId());
        try (var rs = ps.executeQuery()) {
          rs.next();
          return rs.getLong(1);
        }
      }
    });
    long lineItems = this.<Long>tx(c -> {
      try (var ps = c.prepareStatement("SELECT SUM(charge_uact) FROM settlement WHERE tx_id = ?")) {
        ps.setLong(1, out.get(0).txId());
        try (var rs = ps.executeQuery()) {
          rs.next();
          return rs.getLong(1);
        }
      }
    });
    assertThat(posted).isEqualTo(6_000L).isEqualTo(lineItems);
    assertThat(this.<Boolean>tx(c -> SqlLedger.openEscrow(c, "p1").isPresent())).isFalse();
  }

  /** Gives provider {@code node} {@code uact} of ACT by settling a job of tenant t1 there (1,000 uact per GPU-second). */
  private void earn(String node, String job, long uact) throws Exception {
    earn(node, job, uact, System.currentTimeMillis(), 3600);
  }

  /** As above, settled at {@code nowMs} into epochs of {@code epochSeconds}. */
  private void earn(String node, String job, long uact, long nowMs, long epochSeconds) throws Exception {
    tx(c -> {
      SqlLedger.hold(c, new EscrowHold(job, "t1", uact, 3_600_000L, "H100", 1));
      return null;
    });
    java.security.KeyPair kp = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    long nanos = uact * 1_000_000L;
    Receipt r = new Receipt(job + "/0", job, "t1", node, "H100", 1, false, nanos, nanos, 0, 1000, 2000, "SUCCEEDED", "");
    Settlement s = tx(c -> placeAndSettleAll(c, List.of(new ReceiptSigner(kp.getPrivate()).sign(List.of(r)).get(0)), PRICES,
        nowMs, epochSeconds).get(0));
    assertThat(s.chargeUact()).isEqualTo(uact);
  }

  private long balAkt(String account) throws Exception {
    return tx(c -> SqlLedger.balance(c, account, "uakt"));
  }

  @Test
  void aPayoutBurnsTheProvidersActAndPaysAktFromRemintCreditsAtTheNextEpoch() throws Exception {
    deposit(100_000_000L); // 100 AKT in: remint credits 100 AKT
    earn("n1", "j1", 4_000_000L);
    earn("n1", "j2", 6_000_000L);
    SupplyView before = tx(SqlLedger::supply);
    Redemptions.Requested req = tx(c -> Redemptions.request(c, "n1", 10_000_000L, "p-1", ORACLE, 1_000L));
    assertThat(req.refusal()).isNull();
    assertThat(bal(Accounts.provider("n1"))).isZero();
    assertThat(tx(c -> Redemptions.request(c, "n1", 10_000_000L, "p-1", ORACLE, 1_000L)).duplicate()).isTrue();
    var outcomes = tx(c -> Redemptions.runEpoch(c, ORACLE, BmeParams.defaults(), 2_000L));
    // 10 ACT at 0.5 USD/AKT = 20 AKT, all covered by remint credits
    assertThat(outcomes).singleElement().satisfies(o -> {
      assertThat(o.state()).isEqualTo("EXECUTED");
      assertThat(o.paidUakt()).isEqualTo(20_000_000L);
      assertThat(o.remintIssuedUakt()).isEqualTo(20_000_000L);
      assertThat(o.freshUakt()).isZero();
    });
    SupplyView after = tx(SqlLedger::supply);
    assertThat(balAkt(Accounts.provider("n1"))).isEqualTo(20_000_000L);
    assertThat(after.vaultAkt()).isEqualTo(before.vaultAkt() - 20_000_000L);
    assertThat(after.actSupply()).isEqualTo(before.actSupply() - 10_000_000L);
    assertThat(after.remintCredits()).isEqualTo(before.remintCredits() - 20_000_000L);
    assertThat(after.totalBurnedUact()).isEqualTo(before.totalBurnedUact() + 10_000_000L);
    assertThat(after.engineAct()).isEqualTo(before.engineAct());
    // the AKT paid traces back to the receipts whose ACT it redeemed
    assertThat(this.<List<String>>tx(c -> Redemptions.receiptsOf(c, req.id()))).containsExactly("j1/0", "j2/0");
    assertThat(this.<List<java.util.Map<String, Object>>>tx(c -> Redemptions.ofProvider(c, "n1", 10)))
        .singleElement().satisfies(m -> assertThat(m).containsEntry("receipts", 2L).containsEntry("state", "EXECUTED")
            .containsEntry("receiptsUact", 10_000_000L));
    // the epoch's burned-vs-minted ratio is now defined: 100 AKT in by the mint, 20 AKT out
    var closed = tx(c -> SqlLedger.closeEpochs(c, System.currentTimeMillis() + 7_200_000L, 3600));
    assertThat(closed).isNotEmpty();
    assertThat(closed.stream().mapToLong(SqlLedger.EpochClose::aktOutUakt).sum()).isEqualTo(20_000_000L);
    assertThat(closed.stream().filter(e -> e.aktOutUakt() > 0).findFirst().orElseThrow().burnMintRatio())
        .isEqualTo("5.000000000000000000");
  }

  @Test
  void whenRemintCreditsRunOutARedemptionMintsFreshAkt() throws Exception {
    deposit(100_000_000L);
    earn("n1", "j1", 10_000_000L);
    tx(c -> Redemptions.request(c, "n1", 10_000_000L, "p-1", ORACLE, 1_000L));
    SupplyView before = tx(SqlLedger::supply);
    // the AKT price fell to 0.05: 10 ACT = 200 AKT gross, 100 from credits, 100 newly minted
    var outcomes = tx(c -> Redemptions.runEpoch(c, OracleSnapshot.healthy("0.05"), BmeParams.defaults(), 2_000L));
    assertThat(outcomes).singleElement().satisfies(o -> {
      assertThat(o.paidUakt()).isEqualTo(200_000_000L);
      assertThat(o.remintIssuedUakt()).isEqualTo(100_000_000L);
      assertThat(o.freshUakt()).isEqualTo(100_000_000L);
    });
    SupplyView after = tx(SqlLedger::supply);
    assertThat(after.remintCredits()).isZero();
    assertThat(after.vaultAkt()).isEqualTo(before.vaultAkt() - 100_000_000L);
    assertThat(after.totalMintedUakt()).isEqualTo(before.totalMintedUakt() + 100_000_000L);
    assertThat(balAkt(Accounts.AKT_ISSUANCE)).isEqualTo(-100_000_000L);
  }

  @Test
  void aPayoutBeyondTheBalanceOrWhileTheOracleIsDownIsRefusedAndWritesNothing() throws Exception {
    deposit(100_000_000L);
    earn("n1", "j1", 1_000_000L);
    var tooMuch = tx(c -> Redemptions.request(c, "n1", 1_000_001L, "p-1", ORACLE, 1_000L));
    assertThat(tooMuch.refusal()).isEqualTo(LedgerRefusal.INSUFFICIENT_FUNDS);
    assertThat(tx(c -> Redemptions.request(c, "n1", 0, "p-2", ORACLE, 1_000L)).refusal())
        .isEqualTo(LedgerRefusal.INVALID_AMOUNT);
    OracleSnapshot down = new OracleSnapshot(false, io.anneal.billing.bme.Dec.ZERO);
    tx(c -> SqlLedger.updateBreaker(c, down, BmeParams.defaults()));
    assertThat(tx(c -> Redemptions.request(c, "n1", 1_000_000L, "p-3", down, 1_000L)).refusal())
        .isEqualTo(LedgerRefusal.ORACLE_UNHEALTHY);
    assertThat(bal(Accounts.provider("n1"))).isEqualTo(1_000_000L);
    assertThat(this.<Long>tx(Redemptions::pendingCount)).isZero();
    assertThat(this.<Integer>tx(c -> Redemptions.requestAll(c, 1, down, 1_000L))).isZero();
  }

  @Test
  void aPayoutThatCannotExecuteIsRetriedThenCancelledWithItsActReturned() throws Exception {
    deposit(100_000_000L);
    earn("n1", "j1", 1_000_000L);
    tx(c -> Redemptions.request(c, "n1", 1_000_000L, "p-1", ORACLE, 1_000L));
    OracleSnapshot down = new OracleSnapshot(false, io.anneal.billing.bme.Dec.ZERO);
    assertThat(this.<List<Redemptions.Outcome>>tx(c -> Redemptions.runEpoch(c, down, BmeParams.defaults(), 2_000L))).isEmpty();
    assertThat(this.<List<Redemptions.Outcome>>tx(c -> Redemptions.runEpoch(c, down, BmeParams.defaults(), 3_000L))).isEmpty();
    var third = tx(c -> Redemptions.runEpoch(c, down, BmeParams.defaults(), 4_000L));
    assertThat(third).singleElement().satisfies(o -> {
      assertThat(o.state()).isEqualTo("CANCELED");
      assertThat(o.reason()).isEqualTo("MAX_ATTEMPTS");
    });
    assertThat(bal(Accounts.provider("n1"))).isEqualTo(1_000_000L);
    assertThat(this.<Long>tx(Redemptions::pendingCount)).isZero();
  }

  @Test
  void twoClosersOfTheSameEndedEpochsCloseEachOnceAndTheSecondQuietly() throws Exception {
    deposit(100_000_000L);
    earn("n1", "j1", 1_000_000L);
    long later = System.currentTimeMillis() + 7_200_000L;
    // the first closer has closed the ended epochs but not committed when the second starts
    try (Connection first = db.connection(); Connection second = db.connection()) {
      first.setAutoCommit(false);
      second.setAutoCommit(false);
      List<SqlLedger.EpochClose> byFirst = SqlLedger.closeEndedEpochs(first, later, 3600);
      assertThat(byFirst).isNotEmpty();
      java.util.concurrent.CompletableFuture<List<SqlLedger.EpochClose>> bySecond = java.util.concurrent.CompletableFuture
          .supplyAsync(() -> {
            try {
              List<SqlLedger.EpochClose> closed = SqlLedger.closeEndedEpochs(second, later, 3600);
              second.commit();
              return closed;
            } catch (SQLException e) {
              throw new java.util.concurrent.CompletionException(e);
            }
          });
      TestDatabases.awaitLockWaiter(db); // the second is waiting for the first
      assertThat(bySecond).isNotDone();
      first.commit();
      assertThat(bySecond.get(30, java.util.concurrent.TimeUnit.SECONDS)).as("nothing left to close").isEmpty();
    }
    try (Connection c = db.connection(); var st = c.createStatement();
        var rs = st.executeQuery("SELECT epoch, COUNT(*) FROM epoch_close GROUP BY epoch HAVING COUNT(*) > 1")) {
      assertThat(rs.next()).as("an epoch closed twice").isFalse();
    }
  }

  @Test
  void theReceiptsOfACancelledPayoutAreRedeemedByTheNextOne() throws Exception {
    deposit(100_000_000L);
    earn("n1", "j1", 1_000_000L);
    Redemptions.Requested first = tx(c -> Redemptions.request(c, "n1", 1_000_000L, "p-1", ORACLE, 1_000L));
    OracleSnapshot down = new OracleSnapshot(false, io.anneal.billing.bme.Dec.ZERO);
    for (long t = 2_000L; t <= 4_000L; t += 1_000L) {
      long at = t;
      tx(c -> Redemptions.runEpoch(c, down, BmeParams.defaults(), at));
    }
    assertThat(this.<List<java.util.Map<String, Object>>>tx(c -> Redemptions.ofProvider(c, "n1", 10)))
        .singleElement().satisfies(m -> assertThat(m).containsEntry("state", "CANCELED"));
    // the cancelled payout's ACT is the provider's again: the next payout redeems it, and names its receipt
    earn("n1", "j2", 2_000_000L);
    Redemptions.Requested next = tx(c -> Redemptions.request(c, "n1", 3_000_000L, "p-2", ORACLE, 5_000L));
    assertThat(next.refusal()).isNull();
    assertThat(this.<List<Redemptions.Outcome>>tx(c -> Redemptions.runEpoch(c, ORACLE, BmeParams.defaults(), 6_000L)))
        .singleElement().satisfies(o -> assertThat(o.state()).isEqualTo("EXECUTED"));
    assertThat(this.<List<String>>tx(c -> Redemptions.receiptsOf(c, next.id()))).containsExactly("j1/0", "j2/0");
    assertThat(this.<List<String>>tx(c -> Redemptions.receiptsOf(c, first.id()))).as("it redeemed nothing").isEmpty();
    // each settlement names the payout that redeemed it
    for (String receipt : List.of("j1/0", "j2/0")) {
      assertThat(this.<java.util.Optional<java.util.Map<String, Object>>>tx(c -> Redemptions.payoutOf(c, receipt)))
          .hasValueSatisfying(m -> assertThat(m).containsEntry("id", next.id()).containsEntry("state", "EXECUTED"));
    }
  }

  @Test
  void aPayoutAskedWhileAnEarlierOneWaitsTakesItsReceiptsWhenTheEarlierOneIsCancelled() throws Exception {
    deposit(100_000_000L);
    earn("n1", "j1", 1_000_000L);
    OracleSnapshot down = new OracleSnapshot(false, io.anneal.billing.bme.Dec.ZERO);
    Redemptions.Requested first = tx(c -> Redemptions.request(c, "n1", 1_000_000L, "p-1", ORACLE, 1_000L));
    tx(c -> Redemptions.runEpoch(c, down, BmeParams.defaults(), 2_000L));
    earn("n1", "j2", 2_000_000L);
    Redemptions.Requested second = tx(c -> Redemptions.request(c, "n1", 2_000_000L, "p-2", ORACLE, 2_500L));
    tx(c -> Redemptions.runEpoch(c, down, BmeParams.defaults(), 3_000L));
    // the first runs out of attempts; the second executes at the next epoch with a price
    assertThat(this.<List<Redemptions.Outcome>>tx(c -> Redemptions.runEpoch(c, down, BmeParams.defaults(), 4_000L)))
        .singleElement().satisfies(o -> assertThat(o.state()).isEqualTo("CANCELED"));
    assertThat(this.<List<Redemptions.Outcome>>tx(c -> Redemptions.runEpoch(c, ORACLE, BmeParams.defaults(), 5_000L)))
        .singleElement().satisfies(o -> assertThat(o.id()).isEqualTo(second.id()));
    assertThat(this.<List<String>>tx(c -> Redemptions.receiptsOf(c, second.id()))).containsExactly("j1/0", "j2/0");
    assertThat(this.<List<String>>tx(c -> Redemptions.receiptsOf(c, first.id()))).isEmpty();
  }

  @Test
  void automaticPayoutsQueueEachProviderOnceAndAnEpochRespectsTheBudget() throws Exception {
    deposit(100_000_000L);
    earn("n1", "j1", 1_000_000L);
    earn("n2", "j2", 2_000_000L);
    earn("n3", "j3", 500_000L);
    assertThat(this.<Integer>tx(c -> Redemptions.requestAll(c, 1_000_000L, ORACLE, 1_000L))).isEqualTo(2);
    assertThat(this.<Integer>tx(c -> Redemptions.requestAll(c, 1_000_000L, ORACLE, 1_001L))).isZero();
    earn("n3", "j4", 600_000L);
    assertThat(this.<Integer>tx(c -> Redemptions.requestAll(c, 1_000_000L, ORACLE, 1_002L))).isEqualTo(1);
    BmeParams two = new BmeParams(9500, 9000, 10, 10, 25, 0, 2, Map.of("uact", java.math.BigInteger.valueOf(10_000_000)), 3);
    var first = tx(c -> Redemptions.runEpoch(c, ORACLE, two, 2_000L));
    assertThat(first).extracting(Redemptions.Outcome::owner).containsExactly("provider:n1", "provider:n2");
    assertThat(this.<Long>tx(Redemptions::pendingCount)).isEqualTo(1);
    var second = tx(c -> Redemptions.runEpoch(c, ORACLE, two, 3_000L));
    assertThat(second).extracting(Redemptions.Outcome::owner).containsExactly("provider:n3");
    assertThat(balAkt(Accounts.provider("n3"))).isEqualTo(2_200_000L);
  }

  @Test
  void overlappingBootstrapWindowsOfTwoSchedulersPayEachSecondOnce() throws Exception {
    deposit(100_000_000L); // 125,000 uact of spread for the fund
    var fund = io.anneal.billing.pricing.BootstrapFund.defaults();
    var nodes = List.of(new BootstrapPayouts.NodeWindow("small", 2, "H100", io.anneal.billing.bme.Dec.ONE));
    Map<String, Long> floor = Map.of("H100", 3_600_000L); // 1,000 uact per GPU-second
    long t0 = System.currentTimeMillis() - 120_000; // no settlement of "small" in any of these spans
    // the deposed scheduler's last window, then the new one's first, which began 6 s before that ended
    var first = tx(c -> BootstrapPayouts.closeWindow(c, fund, nodes, floor, t0, t0 + 10_000, io.anneal.billing.bme.Dec.ZERO, 3600));
    assertThat(first.payouts()).singleElement().satisfies(p -> assertThat(p.uact()).isEqualTo(2L * 10 * 1_000));
    var overlapping = tx(c -> BootstrapPayouts.closeWindow(c, fund, nodes, floor, t0 + 4_000, t0 + 14_000,
        io.anneal.billing.bme.Dec.ZERO, 3600));
    assertThat(overlapping.covered()).isFalse();
    assertThat(overlapping.paidFromMs()).isEqualTo(t0 + 10_000);
    assertThat(overlapping.payouts()).singleElement().satisfies(p -> assertThat(p.uact()).isEqualTo(2L * 4 * 1_000));
    // a window inside what was paid (a late one of the deposed scheduler), and the first one again: nothing
    var inside = tx(c -> BootstrapPayouts.closeWindow(c, fund, nodes, floor, t0 + 2_000, t0 + 8_000,
        io.anneal.billing.bme.Dec.ZERO, 3600));
    var again = tx(c -> BootstrapPayouts.closeWindow(c, fund, nodes, floor, t0, t0 + 10_000, io.anneal.billing.bme.Dec.ZERO, 3600));
    assertThat(List.of(inside, again)).allSatisfy(r -> {
      assertThat(r.covered()).isTrue();
      assertThat(r.payouts()).isEmpty();
      assertThat(r.movedToFundUact()).isZero();
    });
    assertThat(bal(Accounts.provider("small"))).isEqualTo(28_000L);
    assertThat(bal(BootstrapPayouts.FUND)).isEqualTo(125_000L - 28_000L);
    List<Map<String, Object>> windows = tx(c -> BootstrapPayouts.windows(c, 10));
    assertThat(windows).extracting(w -> w.get("endMs")).containsExactly(t0 + 14_000, t0 + 10_000);
    assertThat(windows).extracting(w -> w.get("paidFromMs")).containsExactly(t0 + 10_000, t0);
    assertThat(windows).extracting(w -> w.get("paidUact")).containsExactly(8_000L, 20_000L);
  }

  private java.util.Optional<String> epochMismatch(long epochSeconds) throws Exception {
    return tx(c -> EpochLength.mismatch(c, epochSeconds));
  }

  /**
   * A ledger tells whether its epochs are of a given length: from its latest settlement's epoch and time,
   * and from its latest closed epoch; an empty ledger takes any.
   */
  @Test
  void aLedgerKnowsTheLengthOfItsEpochs() throws Exception {
    assertThat(epochMismatch(60)).isEmpty();
    deposit(100_000_000L);
    long now = System.currentTimeMillis();
    earn("n1", "j1", 10L, now, 3600);
    assertThat(epochMismatch(3600)).isEmpty();
    assertThat(epochMismatch(60)).hasValueSatisfying(m -> assertThat(m)
        .contains("its latest settlement", "start with --epoch-seconds 3600"));
    assertThat(epochMismatch(3601)).hasValueSatisfying(m -> assertThat(m)
        .contains("start with --epoch-seconds 3600"));
    // written before settlements read their time after the barrier: the transaction's start, a moment
    // before the epoch it was filed in
    long epochStart = Math.floorDiv(now, 3_600_000L) * 3_600_000L;
    tx(c -> {
      try (var ps = c.prepareStatement("UPDATE settlement SET settled_at = ?")) {
        ps.setTimestamp(1, new java.sql.Timestamp(epochStart - 2_000));
        return ps.executeUpdate();
      }
    });
    assertThat(epochMismatch(3600)).isEmpty();
    assertThat(epochMismatch(60)).isPresent();
    tx(c -> SqlLedger.closeEpochs(c, now + 7_200_000L, 3600));
    assertThat(epochMismatch(3600)).isEmpty();
    assertThat(epochMismatch(86_400)).hasValueSatisfying(m -> assertThat(m)
        .contains("its latest closed epoch", "is 3600 s long", "start with --epoch-seconds 3600"));
  }

  /**
   * A window's revenue is read from the epochs its span falls in (a settlement is filed in the epoch of its
   * settlement time): one across an epoch's end counts what was settled on both sides, and nothing outside
   * its span.
   */
  @Test
  void aBootstrapWindowAcrossAnEpochsEndCountsTheRevenueOnBothSides() throws Exception {
    deposit(100_000_000L); // 125,000 uact of spread for the fund
    long epochSeconds = 10;
    long end = (Math.floorDiv(System.currentTimeMillis(), 10_000L) - 6) * 10_000L; // an epoch's end a minute ago
    earn("n2", "before", 30L, end - 1_500, epochSeconds); // outside the window, in the epoch it ends
    earn("n2", "last", 10L, end - 500, epochSeconds);
    earn("n2", "first", 20L, end, epochSeconds); // the next epoch's first millisecond
    earn("n2", "after", 40L, end + 1_000, epochSeconds); // the window's end: outside
    var nodes = List.of(new BootstrapPayouts.NodeWindow("n2", 2, "H100", io.anneal.billing.bme.Dec.ONE));
    var r = tx(c -> BootstrapPayouts.closeWindow(c, io.anneal.billing.pricing.BootstrapFund.defaults(), nodes,
        Map.of("H100", 3_600_000L), end - 1_000, end + 1_000, io.anneal.billing.bme.Dec.ZERO, epochSeconds));
    // floor: 2 GPUs x 2 s x 1,000 uact; revenue in the span: 10 + 20
    assertThat(r.payouts()).singleElement().satisfies(p -> assertThat(p.uact()).isEqualTo(4_000L - 30L));
  }

  @Test
  void aBootstrapWindowMovesTheSpreadNotPendingPayoutsAndTopsUpOnlyWhatSmallProvidersLack() throws Exception {
    deposit(100_000_000L); // 100 AKT at 0.5: 125,000 uact of spread with the engine
    long windowStart = System.currentTimeMillis() - 1_000;
    earn("n1", "j1", 3_000_000L); // n1 earned 3 ACT in the window: above its floor
    earn("n2", "j2", 10L);
    tx(c -> Redemptions.request(c, "n2", 10L, "p-n2", ORACLE, 1_000L)); // 10 uact now pending with the engine
    long windowEnd = System.currentTimeMillis() + 1_000;
    var fund = io.anneal.billing.pricing.BootstrapFund.defaults();
    var nodes = List.of(
        new BootstrapPayouts.NodeWindow("n1", 4, "H100", io.anneal.billing.bme.Dec.ONE),
        new BootstrapPayouts.NodeWindow("n2", 2, "H100", io.anneal.billing.bme.Dec.ONE),
        new BootstrapPayouts.NodeWindow("big", 64, "H100", io.anneal.billing.bme.Dec.ONE),
        new BootstrapPayouts.NodeWindow("flaky", 2, "H100", io.anneal.billing.bme.Dec.parse("0.5")));
    // floor 3.6 ACT per GPU-hour; the window is 2 s: n2's floor is 2 GPUs x 2 s x 1,000 uact = 4,000 uact
    var r = tx(c -> BootstrapPayouts.closeWindow(c, fund, nodes, Map.of("H100", 3_600_000L), windowStart, windowEnd,
        io.anneal.billing.bme.Dec.ZERO, 3600));
    assertThat(r.movedToFundUact()).isEqualTo(125_000L);
    long floor = 2L * ((windowEnd - windowStart) / 1000) * 1_000L;
    assertThat(r.payouts()).singleElement().satisfies(p -> {
      assertThat(p.provider()).isEqualTo("n2");
      assertThat(p.uact()).isEqualTo(floor - 10L); // what n2 lacked of its floor, after its 10 uact of revenue
    });
    assertThat(r.fundUact()).isEqualTo(125_000L - (floor - 10L));
    assertThat(bal(Accounts.ENGINE)).isEqualTo(10L); // the pending payout's ACT stayed with the engine
    assertThat(bal(Accounts.provider("n2"))).isEqualTo(floor - 10L);
    // the same window again writes nothing twice
    var again = tx(c -> BootstrapPayouts.closeWindow(c, fund, nodes, Map.of("H100", 3_600_000L), windowStart, windowEnd,
        io.anneal.billing.bme.Dec.ZERO, 3600));
    assertThat(again.movedToFundUact()).isZero();
    assertThat(again.payouts()).isEmpty();
    // above the sunset (utilization 0.7) nothing is paid
    var busy = tx(c -> BootstrapPayouts.closeWindow(c, fund, nodes, Map.of("H100", 3_600_000L), windowEnd, windowEnd + 2_000,
        io.anneal.billing.bme.Dec.parse("0.7"), 3600));
    assertThat(busy.payouts()).isEmpty();

    // n2's income is its receipt's 10 uact, then its top-up: its payouts burn them in that order, by amount
    tx(c -> Redemptions.runEpoch(c, ORACLE, BmeParams.defaults(), 2_000L));
    Redemptions.Requested topUp = tx(c -> Redemptions.request(c, "n2", floor - 10L, "p-n2-top-up", ORACLE, 2_500L));
    assertThat(topUp.refusal()).isNull();
    tx(c -> Redemptions.runEpoch(c, ORACLE, BmeParams.defaults(), 3_000L));
    List<Map<String, Object>> paid = tx(c -> Redemptions.ofProvider(c, "n2", 10));
    assertThat(paid).extracting(m -> m.get("state")).containsExactly("EXECUTED", "EXECUTED");
    assertThat(paid.get(0)).containsEntry("id", topUp.id()).containsEntry("receipts", 0L).containsEntry("receiptsUact", 0L)
        .containsEntry("attribution", "amount");
    assertThat(paid.get(1)).containsEntry("receipts", 1L).containsEntry("receiptsUact", 10L);
    assertThat(this.<List<Map<String, Object>>>tx(c -> Redemptions.payoutsOf(c, "j2/0"))).singleElement()
        .satisfies(m -> assertThat(m).containsEntry("id", paid.get(1).get("id")).containsEntry("burnedUact", 10L));
    assertThat(this.<List<String>>tx(c -> Redemptions.receiptsOf(c, topUp.id()))).isEmpty();
  }

  @Test
  void payoutsExecutedBeforeAttributionByAmountKeepTheirRangesAndTheNextStartsAfterThem() throws Exception {
    deposit(100_000_000L);
    earn("n1", "j1", 1_000_000L);
    Redemptions.Requested old = tx(c -> Redemptions.request(c, "n1", 1_000_000L, "p-old", ORACLE, 1_000L));
    tx(c -> Redemptions.runEpoch(c, ORACLE, BmeParams.defaults(), 2_000L));
    // as a payout executed before V19 is stored: its range only
    tx(c -> {
      try (var st = c.createStatement()) {
        st.executeUpdate("UPDATE bme_request SET fifo_start_tx = NULL, fifo_start_item = NULL, fifo_start_used = NULL,"
            + " fifo_end_tx = NULL, fifo_end_item = NULL, fifo_end_used = NULL, fifo_income_uact = NULL, fifo_receipts = NULL,"
            + " fifo_receipts_uact = NULL, covers_tx_after = 0 WHERE ref = 'p-old'");
      }
      return null;
    });
    earn("n1", "j2", 2_000_000L);
    Redemptions.Requested next = tx(c -> Redemptions.request(c, "n1", 2_000_000L, "p-next", ORACLE, 3_000L));
    tx(c -> Redemptions.runEpoch(c, ORACLE, BmeParams.defaults(), 4_000L));
    assertThat(this.<List<Map<String, Object>>>tx(c -> Redemptions.payoutsOf(c, "j1/0"))).singleElement()
        .satisfies(m -> assertThat(m).containsEntry("id", old.id()).containsEntry("burnedUact", 1_000_000L));
    assertThat(this.<List<Map<String, Object>>>tx(c -> Redemptions.payoutsOf(c, "j2/0"))).singleElement()
        .satisfies(m -> assertThat(m).containsEntry("id", next.id()).containsEntry("burnedUact", 2_000_000L));
    assertThat(this.<List<Map<String, Object>>>tx(c -> Redemptions.ofProvider(c, "n1", 10)))
        .extracting(m -> m.get("attribution")).containsExactly("amount", "range");
    try (Connection c = db.connection()) {
      assertThat(LedgerAudit.run(c, 10).findings()).filteredOn(f -> f.check().equals("payouts")).isEmpty();
    }
  }

  @Test
  void aPayoutOverMoreReceiptsThanAPageReadsThemAll() throws Exception {
    deposit(100_000_000L);
    for (int i = 0; i < 150; i++) earn("n1", String.format("m%03d", i), 1_000L); // pages of 64, then 256
    Redemptions.Requested p = tx(c -> Redemptions.request(c, "n1", 149_500L, "p-many", ORACLE, 1_000L));
    tx(c -> Redemptions.runEpoch(c, ORACLE, BmeParams.defaults(), 2_000L));
    assertThat(this.<List<Map<String, Object>>>tx(c -> Redemptions.ofProvider(c, "n1", 10))).singleElement()
        .satisfies(m -> assertThat(m).containsEntry("receipts", 150L).containsEntry("receiptsUact", 149_500L));
    assertThat(this.<List<Map<String, Object>>>tx(c -> Redemptions.payoutsOf(c, "m149/0"))).singleElement()
        .satisfies(m -> assertThat(m).containsEntry("id", p.id()).containsEntry("burnedUact", 500L));
    assertThat(this.<List<String>>tx(c -> Redemptions.receiptsOf(c, p.id()))).hasSize(150);
    assertThat(bal(Accounts.provider("n1"))).isEqualTo(500L);
  }

  @Test
  void aPayoutOfPartOfTheBalanceBurnsTheOldestChargesAndSplitsTheReceiptAtItsEnd() throws Exception {
    deposit(100_000_000L);
    earn("n1", "j1", 1_000_000L);
    earn("n1", "j2", 2_000_000L);
    Redemptions.Requested first = tx(c -> Redemptions.request(c, "n1", 1_500_000L, "p-1", ORACLE, 1_000L));
    assertThat(this.<List<Redemptions.Outcome>>tx(c -> Redemptions.runEpoch(c, ORACLE, BmeParams.defaults(), 2_000L)))
        .singleElement().satisfies(o -> assertThat(o.state()).isEqualTo("EXECUTED"));
    // all of j1's 1,000,000 and half of j2's 2,000,000
    assertThat(this.<List<Map<String, Object>>>tx(c -> Redemptions.payoutsOf(c, "j1/0"))).singleElement()
        .satisfies(m -> assertThat(m).containsEntry("id", first.id()).containsEntry("burnedUact", 1_000_000L));
    assertThat(this.<List<Map<String, Object>>>tx(c -> Redemptions.payoutsOf(c, "j2/0"))).singleElement()
        .satisfies(m -> assertThat(m).containsEntry("id", first.id()).containsEntry("burnedUact", 500_000L));
    assertThat(this.<List<String>>tx(c -> Redemptions.receiptsOf(c, first.id()))).containsExactly("j1/0", "j2/0");

    earn("n1", "j3", 1_000_000L);
    Redemptions.Requested second = tx(c -> Redemptions.request(c, "n1", 2_500_000L, "p-2", ORACLE, 3_000L));
    assertThat(second.refusal()).isNull();
    tx(c -> Redemptions.runEpoch(c, ORACLE, BmeParams.defaults(), 4_000L));
    // j2's charge is burned by both, each its part; j3's by the second only
    assertThat(this.<List<Map<String, Object>>>tx(c -> Redemptions.payoutsOf(c, "j2/0")))
        .extracting(m -> m.get("id"), m -> m.get("burnedUact"))
        .containsExactly(org.assertj.core.groups.Tuple.tuple(first.id(), 500_000L),
            org.assertj.core.groups.Tuple.tuple(second.id(), 1_500_000L));
    assertThat(this.<List<Map<String, Object>>>tx(c -> Redemptions.payoutsOf(c, "j3/0"))).singleElement()
        .satisfies(m -> assertThat(m).containsEntry("id", second.id()).containsEntry("burnedUact", 1_000_000L));
    assertThat(this.<List<String>>tx(c -> Redemptions.receiptsOf(c, second.id()))).containsExactly("j2/0", "j3/0");
    List<Map<String, Object>> paid = tx(c -> Redemptions.ofProvider(c, "n1", 10));
    assertThat(paid).extracting(m -> m.get("receipts"), m -> m.get("receiptsUact"))
        .containsExactly(org.assertj.core.groups.Tuple.tuple(2L, 2_500_000L), org.assertj.core.groups.Tuple.tuple(2L, 1_500_000L));
    assertThat(bal(Accounts.provider("n1"))).isZero();
    try (Connection c = db.connection()) {
      // the audit's replay of first in, first out agrees (earn() signs with keys it does not register: those findings aside)
      LedgerAudit.Report audit = LedgerAudit.run(c, 10);
      assertThat(audit.findings()).filteredOn(f -> f.check().equals("payouts")).isEmpty();
      assertThat(audit.checked().get("payouts")).startsWith("2 executed payouts of 1 node: each burns its node's oldest income");
    }
  }

  @Test
  void aDepositIsQueuedAndItsActArrivesAtTheMintEpochWhileTheAktIsPendingNotCollateral() throws Exception {
    SupplyView before = tx(SqlLedger::supply);
    var r = tx(c -> Mints.request(c, "t1", "chain-1", 100_000_000L, ORACLE, BmeParams.defaults(), 1_000L));
    assertThat(r.refusal()).isNull();
    assertThat(r.estimateUact()).isEqualTo("49875000");
    SupplyView queued = tx(SqlLedger::supply);
    assertThat(queued.vaultAkt()).isEqualTo(before.vaultAkt() + 100_000_000L);
    assertThat(queued.pendingAkt()).isEqualTo(100_000_000L);
    assertThat(bal(Accounts.tenant("t1"))).isZero();
    assertThat(tx(c -> Mints.request(c, "t1", "chain-1", 100_000_000L, ORACLE, BmeParams.defaults(), 1_001L)).duplicate())
        .isTrue();
    // refused at the door, nothing written: below the minimum mint, or while the oracle is down
    assertThat(tx(c -> Mints.request(c, "t1", "small", 1_000_000L, ORACLE, BmeParams.defaults(), 1_002L)).refusal())
        .isEqualTo(LedgerRefusal.BELOW_MINIMUM_MINT);
    var outcomes = tx(c -> Mints.runEpoch(c, ORACLE, BmeParams.defaults(), 2_000L, 50));
    assertThat(outcomes).singleElement().satisfies(o -> {
      assertThat(o.state()).isEqualTo("EXECUTED");
      assertThat(o.mintedUact()).isEqualTo(50_000_000L);
      assertThat(o.spreadUact()).isEqualTo(125_000L);
      assertThat(o.creditedUact()).isEqualTo(49_875_000L);
    });
    SupplyView after = tx(SqlLedger::supply);
    assertThat(bal(Accounts.tenant("t1"))).isEqualTo(49_875_000L);
    assertThat(after.pendingAkt()).isZero();
    assertThat(after.remintCredits()).isEqualTo(before.remintCredits() + 100_000_000L);
    assertThat(after.actSupply()).isEqualTo(before.actSupply() + 50_000_000L);
    assertThat(this.<java.util.Optional<java.util.Map<String, Object>>>tx(c -> Mints.status(c, "t1", "chain-1")).orElseThrow())
        .containsEntry("state", "EXECUTED").containsEntry("creditedUact", 49_875_000L);
  }

  @Test
  void aQueuedDepositThatCanNoLongerMintIsCancelledWithItsAktReturned() throws Exception {
    tx(c -> Mints.request(c, "t1", "chain-2", 25_000_000L, ORACLE, BmeParams.defaults(), 1_000L)); // 12.5 ACT at 0.5
    // by the epoch AKT is worth less: 25 AKT at 0.3 = 7.5 ACT, below the 10 ACT minimum: fatal, refunded
    var outcomes = tx(c -> Mints.runEpoch(c, OracleSnapshot.healthy("0.3"), BmeParams.defaults(), 2_000L, 50));
    assertThat(outcomes).singleElement().satisfies(o -> {
      assertThat(o.state()).isEqualTo("CANCELED");
      assertThat(o.reason()).isEqualTo("MINIMUM_MINT");
    });
    assertThat(this.<Long>tx(c -> SqlLedger.balance(c, Accounts.tenant("t1"), "uakt"))).isEqualTo(25_000_000L);
    assertThat(tx(SqlLedger::supply).pendingAkt()).isZero();
  }

  @Test
  void aChargeNeverExceedsTheEscrow() throws Exception {
    deposit(100_000_000L);
    tx(c -> {
      SqlLedger.hold(c, new EscrowHold("j1", "t1", 1_000L, 3_600_000L, "H100", 1));
      return null;
    });
    Settlement s = tx(c -> placeAndSettle(c, receipt("j1", 10_000_000_000_000L), PRICES));
    assertThat(s.chargeUact()).isEqualTo(1_000L);
    assertThat(s.refundUact()).isZero();
  }

  @Test
  void aReceiptWithoutAnOpenEscrowIsRefused() throws Exception {
    Settlement s = tx(c -> placeAndSettle(c, receipt("nope", 1_000L), PRICES));
    assertThat(s.refusal()).isEqualTo(LedgerRefusal.NO_OPEN_ESCROW);
    assertThat(this.<java.util.Optional<Settlement>>tx(c -> SqlLedger.settlementOf(c, "nope/0"))).isEmpty();
  }

  @Test
  void releaseReturnsTheWholeEscrowOnce() throws Exception {
    deposit(100_000_000L);
    long have = bal(Accounts.tenant("t1"));
    tx(c -> {
      SqlLedger.hold(c, new EscrowHold("j1", "t1", 5_000L, 3_600_000L, "H100", 1));
      return null;
    });
    assertThat(this.<Boolean>tx(c -> SqlLedger.release(c, "j1"))).isTrue();
    assertThat(this.<Boolean>tx(c -> SqlLedger.release(c, "j1"))).isFalse();
    assertThat(bal(Accounts.tenant("t1"))).isEqualTo(have);
  }

  // ---------------------------------------------------------------- a tenant's statement

  private AccountStatement.Page statement(String tenant, Long before, int limit) throws Exception {
    return tx(c -> AccountStatement.read(c, tenant, before, limit));
  }

  /** Each line's balance is the next (older) line's balance plus its own change, from nothing to the balance now. */
  private static void assertLinesAddUp(AccountStatement.Amounts now, List<AccountStatement.Entry> newestFirst) {
    AccountStatement.Amounts after = now;
    long previousId = Long.MAX_VALUE;
    for (AccountStatement.Entry e : newestFirst) {
      assertThat(e.txId()).isLessThan(previousId);
      assertThat(e.balanceAfter()).as("balance after entry %d", e.txId()).isEqualTo(after);
      after = after.minus(e.change());
      previousId = e.txId();
    }
    assertThat(after).as("balance before the first entry").isEqualTo(AccountStatement.Amounts.ZERO);
  }

  @Test
  void aTenantsStatementListsWhatMovedItsBalancesNewestFirstAndAddsUpToTheBalancesNow() throws Exception {
    deposit(100_000_000L);
    tx(c -> {
      SqlLedger.openTenantAccounts(c, "t2");
      SqlLedger.depositAndMint(c, "t2", "dep-t2", 50_000_000L, ORACLE, BmeParams.defaults());
      // admitted together: one journal entry holds both tenants' escrows
      assertThat(SqlLedger.holdAll(c, List.of(new EscrowHold("j1", "t1", 1_000_000L, 3_600_000L, "H100", 1),
          new EscrowHold("x1", "t2", 2_000_000L, 3_600_000L, "H100", 1)))).containsOnlyNulls();
      return null;
    });
    tx(c -> placeAndSettle(c, receipt("j1", 250_000_000L), PRICES)); // 250 uact charged, 999,750 back
    tx(c -> {
      SqlLedger.hold(c, new EscrowHold("j2", "t1", 5_000L, 3_600_000L, "H100", 1));
      SqlLedger.release(c, "j2");
      return null;
    });
    AccountStatement.Page all = statement("t1", null, AccountStatement.MAX_LIMIT);
    assertThat(all.entries()).extracting(AccountStatement.Entry::kind)
        .containsExactly("escrow.release", "escrow.hold", "settle", "escrow.hold", "bme.mint", "deposit");
    assertThat(all.nextBefore()).isNull();
    assertThat(all.balance()).isEqualTo(new AccountStatement.Amounts(bal(Accounts.tenant("t1")), 0, 0, 0));
    assertLinesAddUp(all.balance(), all.entries());
    var e = all.entries();
    assertThat(e.get(0).ref()).isEqualTo("release:j2");
    assertThat(e.get(0).change()).isEqualTo(new AccountStatement.Amounts(5_000L, -5_000L, 0, 0));
    assertThat(e.get(2).ref()).as("a settlement entry names a batch, possibly of other tenants").isNull();
    assertThat(e.get(2).change()).isEqualTo(new AccountStatement.Amounts(999_750L, -1_000_000L, 0, 0));
    assertThat(e.get(3).ref()).isNull();
    assertThat(e.get(3).change()).as("t2's hold in the same entry is not t1's")
        .isEqualTo(new AccountStatement.Amounts(-1_000_000L, 1_000_000L, 0, 0));
    assertThat(e.get(5).ref()).isEqualTo("deposit:dep-100000000");
    assertThat(e.get(5).change()).isEqualTo(new AccountStatement.Amounts(0, 0, 100_000_000L, 0));
    assertThat(e.get(4).change().uakt()).isEqualTo(-100_000_000L);

    // t2 sees its own deposit, mint and hold, not t1's entries
    AccountStatement.Page other = statement("t2", null, 10);
    assertThat(other.entries()).extracting(AccountStatement.Entry::kind).containsExactly("escrow.hold", "bme.mint", "deposit");
    assertLinesAddUp(other.balance(), other.entries());

    // pages of two continue each other, balances included, and end at the first entry
    List<AccountStatement.Entry> paged = new ArrayList<>();
    Long before = null;
    int pages = 0;
    do {
      AccountStatement.Page p = statement("t1", before, 2);
      assertThat(p.entries()).hasSizeLessThanOrEqualTo(2);
      paged.addAll(p.entries());
      before = p.nextBefore();
      pages++;
    } while (before != null);
    assertThat(pages).isEqualTo(3);
    assertThat(paged).isEqualTo(all.entries());
    assertThat(statement("t1", e.get(5).txId(), 5).entries()).isEmpty();
    assertThatThrownBy(() -> AccountStatement.read(null, "t1", null, 0)).isInstanceOf(IllegalArgumentException.class);

    // a hold line lists the tenant's own jobs it held: the batch entry of two tenants, and a single hold
    long batchHold = e.get(3).txId();
    assertThat(this.<Optional<AccountStatement.Detail>>tx(c -> AccountStatement.entry(c, "t1", batchHold)).orElseThrow().holds())
        .containsExactly(new AccountStatement.HeldJob("j1", 1_000_000L, 0));
    assertThat(this.<Optional<AccountStatement.Detail>>tx(c -> AccountStatement.entry(c, "t2", batchHold)).orElseThrow().holds())
        .containsExactly(new AccountStatement.HeldJob("x1", 2_000_000L, 0));
    assertThat(this.<Optional<AccountStatement.Detail>>tx(c -> AccountStatement.entry(c, "t1", e.get(1).txId())).orElseThrow()
        .holds()).containsExactly(new AccountStatement.HeldJob("j2", 5_000L, 0));
    assertThat(this.<Optional<AccountStatement.Detail>>tx(c -> AccountStatement.entry(c, "t1", e.get(2).txId())).orElseThrow()
        .holds()).as("a settlement holds nothing").isEmpty();
  }

  @Test
  void aStatementForAPeriodListsItsEntriesAndOpensWhereThePreviousPeriodClosed() throws Exception {
    deposit(100_000_000L); // deposit, bme.mint
    tx(c -> {
      SqlLedger.hold(c, new EscrowHold("j1", "t1", 1_000_000L, 3_600_000L, "H100", 1));
      return null;
    });
    tx(c -> placeAndSettle(c, receipt("j1", 250_000_000L), PRICES));
    tx(c -> {
      SqlLedger.hold(c, new EscrowHold("j2", "t1", 5_000L, 3_600_000L, "H100", 1));
      return null;
    });
    tx(c -> SqlLedger.release(c, "j2"));
    tx(c -> {
      SqlLedger.hold(c, new EscrowHold("j3", "t1", 7_000L, 3_600_000L, "H100", 1));
      return null;
    });
    List<AccountStatement.Entry> all = new ArrayList<>(statement("t1", null, AccountStatement.MAX_LIMIT).entries());
    java.util.Collections.reverse(all);
    assertThat(all).extracting(AccountStatement.Entry::kind)
        .containsExactly("deposit", "bme.mint", "escrow.hold", "settle", "escrow.hold", "escrow.release", "escrow.hold");
    // date the entries, oldest first; one exactly at November's start, one at December's, one a millisecond before it
    Instant nov = Instant.parse("2026-11-01T00:00:00Z");
    Instant dec = Instant.parse("2026-12-01T00:00:00Z");
    Instant[] at = {Instant.parse("2026-10-20T10:00:00Z"), Instant.parse("2026-10-20T10:00:01Z"), nov,
        Instant.parse("2026-11-15T12:00:00Z"), dec.minusMillis(1), dec, Instant.parse("2026-12-05T08:00:00Z")};
    tx(c -> {
      // every entry of the journal (other tenants' too) gets the time of the next entry of t1's at or after it
      List<Long> ids = new ArrayList<>();
      try (var ps = c.prepareStatement("SELECT id FROM ledger_tx ORDER BY id"); var rs = ps.executeQuery()) {
        while (rs.next()) ids.add(rs.getLong(1));
      }
      try (var ps = c.prepareStatement("UPDATE ledger_tx SET created_at = ? WHERE id = ?")) {
        int k = 0;
        for (long id : ids) {
          while (k < all.size() - 1 && all.get(k).txId() < id) k++;
          ps.setObject(1, java.time.OffsetDateTime.ofInstant(at[k], java.time.ZoneOffset.UTC));
          ps.setLong(2, id);
          ps.executeUpdate();
        }
      }
      return null;
    });
    AccountStatement.Amounts now = statement("t1", null, 1).balance();

    AccountStatement.Page november = tx(c -> AccountStatement.read(c, "t1", null, AccountStatement.MAX_LIMIT,
        new AccountStatement.Period(nov, dec)));
    assertThat(november.entries()).extracting(AccountStatement.Entry::txId)
        .containsExactly(all.get(4).txId(), all.get(3).txId(), all.get(2).txId());
    assertThat(november.entries()).extracting(AccountStatement.Entry::balanceAfter)
        .containsExactly(all.get(4).balanceAfter(), all.get(3).balanceAfter(), all.get(2).balanceAfter());
    assertThat(november.nextBefore()).isNull();
    assertThat(november.balance()).isEqualTo(now);
    AccountStatement.Summary s = november.summary();
    assertThat(s.opening()).as("the balance after October's last entry").isEqualTo(all.get(1).balanceAfter());
    assertThat(s.closing()).as("the balance after November's last entry").isEqualTo(all.get(4).balanceAfter());
    assertThat(s.entries()).isEqualTo(3);
    assertThat(s.totals()).extracting(AccountStatement.KindTotal::kind).containsExactly("escrow.hold", "settle");
    assertThat(s.totals().get(0).entries()).isEqualTo(2);
    assertThat(s.totals().get(0).change()).isEqualTo(all.get(2).change().plus(all.get(4).change()));
    assertThat(s.totals().get(1)).isEqualTo(new AccountStatement.KindTotal("settle", 1, all.get(3).change()));

    // October closes where November opens; December, open towards now, closes at the balances now
    AccountStatement.Summary october = this.<AccountStatement.Page>tx(c -> AccountStatement.read(c, "t1", null, 10,
        new AccountStatement.Period(Instant.parse("2026-10-01T00:00:00Z"), nov))).summary();
    assertThat(october.opening()).isEqualTo(AccountStatement.Amounts.ZERO);
    assertThat(october.closing()).isEqualTo(s.opening());
    assertThat(october.totals()).extracting(AccountStatement.KindTotal::kind).containsExactly("bme.mint", "deposit");
    AccountStatement.Page december = tx(c -> AccountStatement.read(c, "t1", null, 10, new AccountStatement.Period(dec, null)));
    assertThat(december.entries()).extracting(AccountStatement.Entry::kind).containsExactly("escrow.hold", "escrow.release");
    assertThat(december.summary().opening()).isEqualTo(s.closing());
    assertThat(december.summary().closing()).isEqualTo(now);
    AccountStatement.Page untilNovember = tx(c -> AccountStatement.read(c, "t1", null, 10, new AccountStatement.Period(null, nov)));
    assertThat(untilNovember.entries()).extracting(AccountStatement.Entry::kind).containsExactly("bme.mint", "deposit");
    assertThat(untilNovember.summary().closing()).isEqualTo(s.opening());

    // pages of one entry within November continue each other and stop at its first entry
    List<AccountStatement.Entry> paged = new ArrayList<>();
    Long before = null;
    do {
      Long b = before;
      AccountStatement.Page p = tx(c -> AccountStatement.read(c, "t1", b, 1, new AccountStatement.Period(nov, dec)));
      paged.addAll(p.entries());
      assertThat(p.summary()).isEqualTo(s);
      before = p.nextBefore();
    } while (before != null);
    assertThat(paged).isEqualTo(november.entries());

    // periods without entries: before the first, and after the last
    AccountStatement.Summary empty = this.<AccountStatement.Page>tx(c -> AccountStatement.read(c, "t1", null, 10,
        new AccountStatement.Period(Instant.parse("2026-01-01T00:00:00Z"), Instant.parse("2026-02-01T00:00:00Z")))).summary();
    assertThat(empty).isEqualTo(new AccountStatement.Summary(empty.period(), AccountStatement.Amounts.ZERO,
        AccountStatement.Amounts.ZERO, 0, List.of()));
    AccountStatement.Page later = tx(c -> AccountStatement.read(c, "t1", null, 10,
        new AccountStatement.Period(Instant.parse("2027-01-01T00:00:00Z"), null)));
    assertThat(later.entries()).isEmpty();
    assertThat(later.summary().opening()).isEqualTo(now);
    assertThat(later.summary().closing()).isEqualTo(now);
    assertThatThrownBy(() -> new AccountStatement.Period(dec, nov)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> new AccountStatement.Period(dec, dec)).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void aProvidersStatementShowsWhatItsNodeEarnedAndWasPaid() throws Exception {
    deposit(100_000_000L);
    earn("n1", "j1", 4_000_000L);
    earn("n2", "k1", 1_000_000L);
    earn("n1", "j2", 6_000_000L);
    assertThat(tx(c -> Redemptions.request(c, "n1", 10_000_000L, "p-1", ORACLE, 1_000L)).refusal()).isNull();
    List<Redemptions.Outcome> paid = tx(c -> Redemptions.runEpoch(c, ORACLE, BmeParams.defaults(), 2_000L));
    assertThat(paid).singleElement().satisfies(o -> assertThat(o.state()).isEqualTo("EXECUTED"));

    AccountStatement.Page n1 = tx(c -> AccountStatement.readProvider(c, "n1", null, AccountStatement.MAX_LIMIT, null));
    assertThat(n1.entries()).extracting(AccountStatement.Entry::kind)
        .containsExactly("bme.redeem", "bme.redeem-request", "settle", "settle");
    assertThat(n1.entries()).extracting(AccountStatement.Entry::change).containsExactly(
        new AccountStatement.Amounts(0, 0, 20_000_000L, 0), new AccountStatement.Amounts(-10_000_000L, 0, 0, 0),
        new AccountStatement.Amounts(6_000_000L, 0, 0, 0), new AccountStatement.Amounts(4_000_000L, 0, 0, 0));
    assertThat(n1.balance()).isEqualTo(new AccountStatement.Amounts(bal(Accounts.provider("n1")), 0, balAkt(Accounts.provider("n1")), 0));
    assertLinesAddUp(n1.balance(), n1.entries());
    assertThat(n1.entries().get(1).ref()).isEqualTo("redeem-request:p-1");
    assertThat(n1.entries().get(2).ref()).as("a settlement is a batch across providers").isNull();

    // a settlement entry lists the node's own runs in it; another node's statement has neither its entries nor its runs
    long settledJ1 = n1.entries().get(3).txId();
    AccountStatement.Detail d = this.<Optional<AccountStatement.Detail>>tx(c -> AccountStatement.providerEntry(c, "n1", settledJ1))
        .orElseThrow();
    assertThat(d.settlements()).extracting(AccountStatement.SettledRun::receiptId).containsExactly("j1/0");
    assertThat(d.settlements().get(0).chargeUact()).isEqualTo(4_000_000L);
    AccountStatement.Page n2 = tx(c -> AccountStatement.readProvider(c, "n2", null, 10, null));
    assertThat(n2.entries()).extracting(AccountStatement.Entry::kind).containsExactly("settle");
    assertThat(n2.entries().get(0).change().uact()).isEqualTo(1_000_000L);
    assertThat(this.<Optional<AccountStatement.Detail>>tx(c -> AccountStatement.providerEntry(c, "n2", settledJ1))).isEmpty();
    // the tenant who paid does not see the provider's redemption, nor the provider the tenant's deposit
    assertThat(statement("t1", null, AccountStatement.MAX_LIMIT).entries()).extracting(AccountStatement.Entry::kind)
        .doesNotContain("bme.redeem", "bme.redeem-request");

    // a period: what the node earned and was paid in it, by kind
    AccountStatement.Summary all = this.<AccountStatement.Page>tx(c -> AccountStatement.readProvider(c, "n1", null, 1,
        new AccountStatement.Period(Instant.parse("2020-01-01T00:00:00Z"), null))).summary();
    assertThat(all.opening()).isEqualTo(AccountStatement.Amounts.ZERO);
    assertThat(all.closing()).isEqualTo(n1.balance());
    assertThat(all.totals()).containsExactly(
        new AccountStatement.KindTotal("bme.redeem", 1, new AccountStatement.Amounts(0, 0, 20_000_000L, 0)),
        new AccountStatement.KindTotal("bme.redeem-request", 1, new AccountStatement.Amounts(-10_000_000L, 0, 0, 0)),
        new AccountStatement.KindTotal("settle", 2, new AccountStatement.Amounts(10_000_000L, 0, 0, 0)));
  }

  @Test
  void aSettlementEntryOfTwoTenantsShowsEachOnlyItsOwnRuns() throws Exception {
    deposit(100_000_000L);
    tx(c -> {
      SqlLedger.openTenantAccounts(c, "t2");
      SqlLedger.depositAndMint(c, "t2", "dep-t2", 50_000_000L, ORACLE, BmeParams.defaults());
      SqlLedger.hold(c, new EscrowHold("a1", "t1", 1_000_000L, 3_600_000L, "H100", 1));
      SqlLedger.hold(c, new EscrowHold("a2", "t1", 1_000_000L, 3_600_000L, "H100", 1));
      SqlLedger.hold(c, new EscrowHold("b1", "t2", 1_000_000L, 3_600_000L, "H100", 1));
      return null;
    });
    List<Settlement> settled = tx(c -> placeAndSettleAll(c, List.of(receipt("a1", 100_000_000L), receipt("a2", 0L),
        receiptOf("b1", "t2", 300_000_000L, "SUCCEEDED", 0)), PRICES, System.currentTimeMillis(), 3600));
    assertThat(settled).allMatch(Settlement::settled);
    long settleTx = statement("t1", null, 1).entries().get(0).txId();
    AccountStatement.Detail mine = this.<Optional<AccountStatement.Detail>>tx(c -> AccountStatement.entry(c, "t1", settleTx)).orElseThrow();
    assertThat(mine.entry().kind()).isEqualTo("settle");
    assertThat(mine.settlements()).extracting(AccountStatement.SettledRun::jobId).containsExactly("a1", "a2");
    assertThat(mine.settlements()).extracting(AccountStatement.SettledRun::chargeUact).containsExactly(100L, 0L);
    assertThat(mine.entry().change()).isEqualTo(new AccountStatement.Amounts(2_000_000L - 100L, -2_000_000L, 0, 0));
    assertThat(mine.entry().balanceAfter()).isEqualTo(statement("t1", null, 1).entries().get(0).balanceAfter());
    AccountStatement.Detail theirs = this.<Optional<AccountStatement.Detail>>tx(c -> AccountStatement.entry(c, "t2", settleTx)).orElseThrow();
    assertThat(theirs.settlements()).extracting(AccountStatement.SettledRun::receiptId).containsExactly("b1/0");
    assertThat(theirs.entry().change().uact()).isEqualTo(1_000_000L - 300L);
    // an entry that did not move a tenant's balances is not on its statement
    tx(c -> {
      SqlLedger.openTenantAccounts(c, "t3");
      return null;
    });
    assertThat(this.<Optional<AccountStatement.Detail>>tx(c -> AccountStatement.entry(c, "t3", settleTx))).isEmpty();
    assertThat(this.<Optional<AccountStatement.Detail>>tx(c -> AccountStatement.entry(c, "t1", Long.MAX_VALUE))).isEmpty();
  }

  @Test
  void aNodeKeepsItsFirstKey() throws Exception {
    assertThat(this.<Boolean>tx(c -> SqlLedger.registerNode(c, "n1", "KEY-A"))).isTrue();
    assertThat(this.<Boolean>tx(c -> SqlLedger.registerNode(c, "n1", "KEY-A"))).isTrue();
    assertThat(this.<Boolean>tx(c -> SqlLedger.registerNode(c, "n1", "KEY-B"))).isFalse();
  }

  @Test
  void aRotatedKeyStaysValidAndARevokedOneIsRefusedFromThenOn() throws Exception {
    deposit(100_000_000);
    java.security.KeyPair a = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    java.security.KeyPair b = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    String keyA = io.anneal.billing.receipt.NodeKeys.encodePublic(a.getPublic());
    String keyB = io.anneal.billing.receipt.NodeKeys.encodePublic(b.getPublic());
    tx(c -> {
      SqlLedger.registerNode(c, "n1", keyA);
      for (String j : List.of("k1", "k2", "k3", "k4")) SqlLedger.hold(c, new EscrowHold(j, "t1", 10_000L, 3_600_000L, "H100", 1));
      return null;
    });
    SignedReceipt first = signed(a, "k1");
    assertThat(tx(c -> placeAndSettle(c, first, PRICES)).settled()).isTrue();

    // rotated: B signs from now on, A is retired and what it signed still settles
    assertThat(this.<NodeKey.Rotation>tx(c -> SqlLedger.rotateNodeKey(c, "n1", keyA, keyB, false, System::currentTimeMillis)))
        .isEqualTo(NodeKey.Rotation.DONE);
    assertThat(this.<java.util.Optional<String>>tx(c -> SqlLedger.nodeKey(c, "n1"))).contains(keyB);
    List<NodeKey> keys = tx(c -> SqlLedger.nodeKeys(c, "n1"));
    assertThat(keys).extracting(NodeKey::publicKey).containsExactly(keyB, keyA);
    assertThat(keys).extracting(NodeKey::state).containsExactly("current", "retired");
    assertThat(keys.get(1).retiredAtMs()).isNotNull();
    assertThat(tx(c -> placeAndSettle(c, signed(a, "k2"), PRICES)).settled()).isTrue();
    assertThat(tx(c -> placeAndSettle(c, signed(b, "k3"), PRICES)).settled()).isTrue();
    // the same rotation asked again is done already; one from a key no longer current, or back to an old key, is not
    assertThat(this.<NodeKey.Rotation>tx(c -> SqlLedger.rotateNodeKey(c, "n1", keyA, keyB, false, System::currentTimeMillis)))
        .isEqualTo(NodeKey.Rotation.DONE);
    String keyC = io.anneal.billing.receipt.NodeKeys.encodePublic(KeyPairGenerator.getInstance("Ed25519").generateKeyPair().getPublic());
    assertThat(this.<NodeKey.Rotation>tx(c -> SqlLedger.rotateNodeKey(c, "n1", keyA, keyC, false, System::currentTimeMillis)))
        .isEqualTo(NodeKey.Rotation.NOT_CURRENT);
    assertThat(this.<NodeKey.Rotation>tx(c -> SqlLedger.rotateNodeKey(c, "n1", keyB, keyA, false, System::currentTimeMillis)))
        .isEqualTo(NodeKey.Rotation.KEY_REUSED);
    assertThat(this.<NodeKey.Rotation>tx(c -> SqlLedger.rotateNodeKey(c, "n9", keyA, keyC, false, System::currentTimeMillis)))
        .isEqualTo(NodeKey.Rotation.UNKNOWN_NODE);

    // revoked: the current key cannot be; the retired A can, once, and nothing it signs settles after
    assertThat(this.<NodeKey.Revocation>tx(c -> SqlLedger.revokeNodeKey(c, "n1", keyB, System::currentTimeMillis)))
        .isEqualTo(NodeKey.Revocation.CURRENT);
    assertThat(this.<NodeKey.Revocation>tx(c -> SqlLedger.revokeNodeKey(c, "n1", keyC, System::currentTimeMillis)))
        .isEqualTo(NodeKey.Revocation.UNKNOWN_KEY);
    assertThat(this.<NodeKey.Revocation>tx(c -> SqlLedger.revokeNodeKey(c, "n1", keyA, System::currentTimeMillis)))
        .isEqualTo(NodeKey.Revocation.REVOKED);
    assertThat(this.<NodeKey.Revocation>tx(c -> SqlLedger.revokeNodeKey(c, "n1", keyA, System::currentTimeMillis)))
        .isEqualTo(NodeKey.Revocation.ALREADY);
    assertThat(this.<List<NodeKey>>tx(c -> SqlLedger.nodeKeys(c, "n1"))).extracting(NodeKey::state)
        .containsExactly("current", "revoked");
    long tenantBefore = bal(Accounts.tenant("t1"));
    long providerBefore = bal(Accounts.provider("n1"));
    Settlement refused = tx(c -> placeAndSettle(c, signed(a, "k4"), PRICES));
    assertThat(refused.settled()).isFalse();
    assertThat(refused.refusal()).isEqualTo(LedgerRefusal.BAD_SIGNATURE);
    assertThat(bal(Accounts.tenant("t1"))).isEqualTo(tenantBefore);
    assertThat(bal(Accounts.provider("n1"))).isEqualTo(providerBefore);
    assertThat(this.<java.util.Optional<EscrowHold>>tx(c -> SqlLedger.openEscrow(c, "k4"))).as("k4's escrow stays open").isPresent();
    // what A signed before it was revoked stays settled: delivered again, it is a duplicate, not a refusal
    Settlement again = tx(c -> placeAndSettle(c, first, PRICES));
    assertThat(again.settled()).isTrue();
    assertThat(again.duplicate()).isTrue();
    // the current key's receipts go on settling
    assertThat(tx(c -> placeAndSettle(c, signed(b, "k4"), PRICES)).settled()).isTrue();
  }

  private static SignedReceipt signed(java.security.KeyPair key, String job) {
    Receipt r = new Receipt(job + "/0", job, "t1", "n1", "H100", 1, false, 1_000_000_000L, 1_000_000_000L, 0, 1000, 2000,
        "SUCCEEDED", "");
    return new ReceiptSigner(key.getPrivate()).sign(List.of(r)).get(0);
  }

  @Test
  void anUnbalancedTransactionIsRejectedBeforeAnythingIsWritten() {
    assertThatThrownBy(() -> tx(c -> SqlLedger.post(c, "bad", "bad-1",
        List.of(new Posting(Accounts.tenant("t1"), "uact", 5), new Posting(Accounts.ENGINE, "uact", -4)))))
        .hasCauseInstanceOf(IllegalArgumentException.class);
  }

  // ---------------------------------------------------------------- AKT-direct fallback (bme-spec 16.5)

  private long balIn(String account, String denom) throws Exception {
    return tx(c -> SqlLedger.balance(c, account, denom));
  }

  /** ACT outstanding (t1's deposit), then an AKT price at which the vault covers < 90 % of it: HALT_CR. */
  private void halt() throws Exception {
    deposit(100_000_000L); // 50 ACT minted against 1,100 AKT in the vault
    tx(c -> SqlLedger.updateBreaker(c, OracleSnapshot.healthy("0.04"), BmeParams.defaults())); // CR = 44 / 50 = 0.88
    assertThat(this.<String>tx(SqlLedger::storedStatus)).isEqualTo("HALT_CR");
    tx(c -> {
      SqlLedger.openTenantAccounts(c, "t2");
      return null;
    });
  }

  @Test
  void everyReceiptOfAClosedEpochProvesInclusionInItsRoot() throws Exception {
    deposit(100_000_000L);
    String[] jobs = {"e5", "e1", "e4", "e2", "e3"}; // settled in this order, in two journal entries
    for (String job : jobs) {
      tx(c -> {
        SqlLedger.hold(c, new EscrowHold(job, "t1", 10_000L, 3_600_000L, "H100", 1));
        return null;
      });
    }
    long now = System.currentTimeMillis();
    List<SignedReceipt> first =
        List.of(receipt("e5", 1_000_000L), receipt("e1", 2_000_000L), receipt("e4", 3_000_000L));
    List<SignedReceipt> second = List.of(receipt("e2", 4_000_000L), receipt("e3", 5_000_000L));
    tx(c -> placeAndSettleAll(c, first, PRICES, now, 3600));
    tx(c -> placeAndSettleAll(c, second, PRICES, now, 3600));
    var closed = tx(c -> SqlLedger.closeEpochs(c, now + 7_200_000L, 3600));
    // (the deposit's epoch closes too, and may be an earlier one if the test crossed an epoch's end)
    SqlLedger.EpochClose epoch = closed.stream().filter(e -> e.receipts() > 0).findFirst().orElseThrow();
    assertThat(epoch.receipts()).isEqualTo(5);
    // the root is over the leaves in receipt-id order, whatever order and batches they were settled in
    List<byte[]> byReceipt = new ArrayList<>();
    for (SignedReceipt sr : List.of(first.get(1), second.get(0), second.get(1), first.get(2), first.get(0))) {
      byReceipt.add(sr.leafHash());
    }
    String root = epoch.merkleRoot();
    assertThat(root).isEqualTo(java.util.HexFormat.of().formatHex(MerkleTree.ofLeafHashes(byReceipt).root()));
    assertProofsVerify(jobs, root);
  }

  private void assertProofsVerify(String[] jobs, String root) throws Exception {
    for (String job : jobs) {
      Map<String, Object> p = tx(c -> SqlLedger.epochProof(c, job + "/0")).orElseThrow();
      assertThat(p).containsEntry("closed", true).containsEntry("merkleRoot", root);
      byte[] leaf = java.util.HexFormat.of().parseHex((String) p.get("leafHash"));
      assertThat(MerkleTree.verify(leaf, SqlLedger.decodeProof((String) p.get("proof")),
          java.util.HexFormat.of().parseHex(root))).as("proof of %s", job).isTrue();
    }
  }

  @Test
  void onlyANodeTheJobWasPlacedOnCanBillIt() throws Exception {
    deposit(100_000_000L);
    tx(c -> {
      SqlLedger.hold(c, new EscrowHold("j1", "t1", 1_000_000L, 3_600_000L, "H100", 1));
      SqlLedger.placedOn(c, List.of("j1"), List.of("n1"));
      return null;
    });
    // n9 signs a receipt for a job it was never given, with the id the real receipt will have
    Settlement stranger = tx(c -> SqlLedger.settle(c, receiptOn("n9", "j1", "t1", 500_000_000L, "SUCCEEDED", 0), PRICES));
    assertThat(stranger.settled()).isFalse();
    assertThat(stranger.refusal()).isEqualTo(LedgerRefusal.NOT_PLACED_ON_NODE);
    assertThat(bal(Accounts.provider("n9"))).isZero();
    assertThat(this.<java.util.Optional<EscrowHold>>tx(c -> SqlLedger.openEscrow(c, "j1"))).isPresent();
    assertThat(this.<java.util.Optional<Settlement>>tx(c -> SqlLedger.settlementOf(c, "j1/0"))).isEmpty();
    // the node it was placed on is paid for its receipt: the stranger's took nothing from it
    Settlement real = tx(c -> SqlLedger.settle(c, receiptOn("n1", "j1", "t1", 250_000_000L, "SUCCEEDED", 0), PRICES));
    assertThat(real.settled()).isTrue();
    assertThat(real.duplicate()).isFalse();
    assertThat(bal(Accounts.provider("n1"))).isEqualTo(real.chargeUact()).isEqualTo(250L);
  }

  @Test
  void aJobPlacedAgainAfterPreemptionIsBilledByEachNodeItRanOnAndNoOther() throws Exception {
    deposit(100_000_000L);
    tx(c -> {
      SqlLedger.hold(c, new EscrowHold("p1", "t1", 1_000_000L, 3_600_000L, "H100", 1));
      SqlLedger.placedOn(c, List.of("p1"), List.of("n1"));
      SqlLedger.placedOn(c, List.of("p1", "p1"), List.of("n2", "n1")); // preempted, placed on n2; n1 again is no news
      return null;
    });
    assertThat(this.<String>tx(c -> {
      try (var st = c.createStatement(); var rs = st.executeQuery("SELECT nodes FROM escrow WHERE job_id = 'p1'")) {
        rs.next();
        return rs.getString(1);
      }
    })).isEqualTo("n1\nn2\n");
    // the first run's partial receipt arrives after the job was placed on n2: n1 still ran it
    Settlement part = tx(c -> SqlLedger.settle(c, receiptOn("n1", "p1", "t1", 100_000_000L, "PREEMPTED", 0), PRICES));
    Settlement other = tx(c -> SqlLedger.settle(c, receiptOn("n3", "p1", "t1", 100_000_000L, "SUCCEEDED", 1), PRICES));
    Settlement fin = tx(c -> SqlLedger.settle(c, receiptOn("n2", "p1", "t1", 200_000_000L, "SUCCEEDED", 1), PRICES));
    assertThat(part.settled()).isTrue();
    assertThat(other.refusal()).isEqualTo(LedgerRefusal.NOT_PLACED_ON_NODE);
    assertThat(fin.settled()).isTrue();
    assertThat(bal(Accounts.provider("n1"))).isEqualTo(100L);
    assertThat(bal(Accounts.provider("n2"))).isEqualTo(200L);
    assertThat(bal(Accounts.provider("n3"))).isZero();
    assertThat(bal(Accounts.escrow("t1"))).isZero();
  }

  @Test
  void anEscrowHeldBeforePlacementsWereRecordedIsSettledAsBefore() throws Exception {
    deposit(100_000_000L);
    tx(c -> {
      SqlLedger.hold(c, new EscrowHold("old", "t1", 1_000_000L, 3_600_000L, "H100", 1));
      try (var st = c.createStatement()) {
        st.executeUpdate("UPDATE escrow SET nodes = NULL WHERE job_id = 'old'"); // as a row from before V10
      }
      SqlLedger.placedOn(c, List.of("old"), List.of("n1")); // nothing to add to
      return null;
    });
    Settlement s = tx(c -> SqlLedger.settle(c, receiptOn("n5", "old", "t1", 300_000_000L, "SUCCEEDED", 0), PRICES));
    assertThat(s.settled()).isTrue();
    assertThat(bal(Accounts.provider("n5"))).isEqualTo(300L);
  }

  @Test
  void aReceiptClaimingMoreGpuTimeThanTheJobHadSincePlacementIsBilledOnlyThat() throws Exception {
    deposit(100_000_000L);
    long now = 1_800_000_000_000L;
    tx(c -> {
      SqlLedger.hold(c, new EscrowHold("g2", "t1", 10_000_000L, 3_600_000L, "H100", 2));
      SqlLedger.hold(c, new EscrowHold("ok", "t1", 10_000_000L, 3_600_000L, "H100", 2));
      SqlLedger.placedOn(c, List.of("g2", "ok"), List.of("n1", "n1"), now - 10_000L); // placed 10 s ago
      return null;
    });
    // 2 GPUs for 10 s, plus the 5 s slack for clocks: at most 30 GPU-s; the receipt claims an hour
    Settlement s = tx(c -> SqlLedger.settle(c, receiptOf("g2", "t1", 3_600_000_000_000L, "SUCCEEDED", 0), PRICES, now, 3600));
    assertThat(s.settled()).isTrue();
    assertThat(s.billedGpuNanos()).isEqualTo(30_000_000_000L);
    assertThat(s.chargeUact()).isEqualTo(30_000L); // 30 GPU-s at 1,000 uact per GPU-s
    assertThat(s.refundUact()).isEqualTo(10_000_000L - 30_000L);
    assertThat(bal(Accounts.provider("n1"))).isEqualTo(30_000L);
    // a redelivery answers the same, the receipts API shows both what was claimed and what was billed
    Settlement again = tx(c -> SqlLedger.settle(c, receiptOf("g2", "t1", 3_600_000_000_000L, "SUCCEEDED", 0), PRICES, now, 3600));
    assertThat(again.duplicate()).isTrue();
    assertThat(again.billedGpuNanos()).isEqualTo(30_000_000_000L);
    assertThat(this.<java.util.Optional<Settlement>>tx(c -> SqlLedger.settlementOf(c, "g2/0")).orElseThrow().billedGpuNanos())
        .isEqualTo(30_000_000_000L);
    var rows = tx(c -> SqlLedger.settlementsOfJob(c, "g2"));
    assertThat(rows).singleElement().satisfies(r -> {
      assertThat(r.get("billedDeviceNanos")).isEqualTo(30_000_000_000L);
      assertThat((String) r.get("receiptBody")).contains("3600000000000");
    });
    // within the bound: billed as claimed, nothing marked
    Settlement fine = tx(c -> SqlLedger.settle(c, receiptOf("ok", "t1", 20_000_000_000L, "SUCCEEDED", 0), PRICES, now, 3600));
    assertThat(fine.billedGpuNanos()).isNull();
    assertThat(fine.chargeUact()).isEqualTo(20_000L);
    assertThat(tx(c -> SqlLedger.settlementsOfJob(c, "ok")).get(0)).doesNotContainKey("billedDeviceNanos");
  }

  @Test
  void aJobPlacedAgainKeepsItsFirstPlacementTimeAndARunIsNotPricedBeforeIt() throws Exception {
    deposit(100_000_000L);
    long now = 1_800_000_000_000L;
    tx(c -> {
      SqlLedger.hold(c, new EscrowHold("p1", "t1", 10_000_000L, 7_200_000L, "H100", 1));
      SqlLedger.placedOn(c, List.of("p1"), List.of("n1"), now - 60_000L);
      SqlLedger.placedOn(c, List.of("p1"), List.of("n2"), now - 1_000L); // preempted, placed again a second ago
      return null;
    });
    // the class cost 7,200,000 uact per GPU-hour until a minute ago and 3,600,000 since; the node says
    // its run started an hour ago, before the job was placed: the run is priced from its placement on
    SqlLedger.PriceLookup history = (cls, atMs) -> atMs < now - 60_000L - SqlLedger.USAGE_SLACK_MS ? 7_200_000L : 3_600_000L;
    Receipt early = new Receipt("p1/0", "p1", "t1", "n1", "H100", 1, false, 50_000_000_000L, 50_000_000_000L, 0,
        now - 3_600_000L, now - 2_000L, "PREEMPTED", "");
    SignedReceipt signed = new ReceiptSigner(KeyPairGenerator.getInstance("Ed25519").generateKeyPair().getPrivate())
        .sign(List.of(early)).get(0);
    Settlement part = tx(c -> SqlLedger.settleAll(c, List.of(signed), history, () -> now, 3600).get(0));
    // 50 GPU-s claimed, within a minute and 5 s of the first placement: billed as claimed, at 1,000 uact/GPU-s
    assertThat(part.billedGpuNanos()).isNull();
    assertThat(part.chargeUact()).isEqualTo(50_000L);
  }

  @Test
  void jobsPlacedBeforeUsageWasBoundedAreBilledAsClaimed() throws Exception {
    deposit(100_000_000L);
    long now = 1_800_000_000_000L;
    tx(c -> {
      SqlLedger.hold(c, new EscrowHold("v10", "t1", 10_000_000L, 3_600_000L, "H100", 1));
      SqlLedger.placedOn(c, List.of("v10"), List.of("n1"), now - 1_000L);
      try (var st = c.createStatement()) { // as migration V11 leaves a job placed before it
        st.executeUpdate("UPDATE escrow SET placed_at_ms = 0 WHERE job_id = 'v10'");
      }
      SqlLedger.placedOn(c, List.of("v10"), List.of("n2"), now - 500L); // placed again after the upgrade
      return null;
    });
    Settlement s = tx(c -> SqlLedger.settle(c, receiptOf("v10", "t1", 3_000_000_000_000L, "SUCCEEDED", 0), PRICES, now, 3600));
    assertThat(s.billedGpuNanos()).isNull();
    assertThat(s.chargeUact()).isEqualTo(3_000_000L);
  }

  @Test
  void aNodeIdWithANewlineCannotBeRecorded() {
    assertThatThrownBy(() -> tx(c -> {
      SqlLedger.placedOn(c, List.of("j1"), List.of("n1\nn9"));
      return null;
    })).hasRootCauseInstanceOf(IllegalArgumentException.class).rootCause().hasMessageContaining("newline");
  }

  private static SignedReceipt receiptOf(String jobId, String tenant, long deviceNanos, String outcome, int attempt) {
    return receiptOn("n1", jobId, tenant, deviceNanos, outcome, attempt);
  }

  private static SignedReceipt receiptOn(String node, String jobId, String tenant, long deviceNanos, String outcome,
      int attempt) {
    try {
      var kp = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
      Receipt r = new Receipt(jobId + "/" + attempt, jobId, tenant, node, "H100", 1, false, deviceNanos, deviceNanos, 0, 1000,
          2000, outcome, "");
      return new ReceiptSigner(kp.getPrivate()).sign(List.of(r)).get(0);
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private List<SqlLedger.Refused> holdAll(EscrowHold... holds) throws Exception {
    return tx(c -> SqlLedger.holdAll(c, List.of(holds)));
  }

  @Test
  void anAktDirectDepositIsTakenOnlyWhileHaltedWithAHealthyOracleAndOncePerReference() throws Exception {
    Mints.Requested early = tx(c -> Mints.depositDirect(c, "t1", "d0", 5_000_000L, ORACLE));
    assertThat(early.refusal()).isEqualTo(LedgerRefusal.AKT_DIRECT_UNAVAILABLE);
    halt();
    Mints.Requested down = tx(c -> Mints.depositDirect(c, "t2", "d1", 5_000_000L, new OracleSnapshot(false, Dec.ZERO)));
    assertThat(down.refusal()).isEqualTo(LedgerRefusal.AKT_DIRECT_UNAVAILABLE);
    assertThat(balIn(Accounts.tenant("t2"), "uakt")).isZero();
    Mints.Requested ok = tx(c -> Mints.depositDirect(c, "t2", "d1", 5_000_000L, OracleSnapshot.healthy("0.04")));
    Mints.Requested again = tx(c -> Mints.depositDirect(c, "t2", "d1", 5_000_000L, OracleSnapshot.healthy("0.04")));
    assertThat(ok.refusal()).isNull();
    assertThat(again.duplicate()).isTrue();
    assertThat(balIn(Accounts.tenant("t2"), "uakt")).isEqualTo(5_000_000L);
  }

  @Test
  void afterTheHaltLeftoverDirectAktIsQueuedForConversionUnlessBelowTheMinimum() throws Exception {
    halt();
    OracleSnapshot low = OracleSnapshot.healthy("0.04");
    tx(c -> {
      SqlLedger.openTenantAccounts(c, "t3");
      return null;
    });
    tx(c -> Mints.depositDirect(c, "t2", "big", 500_000_000L, low));
    tx(c -> Mints.depositDirect(c, "t3", "small", 5_000_000L, low));
    long provider = balIn(Accounts.provider("n1"), "uakt");
    assertThat(this.<Integer>tx(c -> Mints.convertDirectDeposits(c, low, BmeParams.defaults(), 1L)))
        .as("still halted: nothing converts").isZero();

    OracleSnapshot recovered = OracleSnapshot.healthy("1.00");
    tx(c -> SqlLedger.updateBreaker(c, recovered, BmeParams.defaults()));
    assertThat(this.<String>tx(SqlLedger::storedStatus)).isEqualTo("HEALTHY");
    long vault = tx(c -> SqlLedger.supply(c).vaultAkt());
    assertThat(this.<Integer>tx(c -> Mints.convertDirectDeposits(c, recovered, BmeParams.defaults(), 2L))).isEqualTo(1);
    // 500 AKT at $1 is queued like a deposit (into the vault, pending); 5 AKT would mint 5 ACT < 10: it stays
    assertThat(balIn(Accounts.tenant("t2"), "uakt")).isZero();
    assertThat(balIn(Accounts.tenant("t3"), "uakt")).isEqualTo(5_000_000L);
    assertThat(this.<Long>tx(c -> SqlLedger.supply(c).vaultAkt())).isEqualTo(vault + 500_000_000L);
    assertThat(this.<Long>tx(c -> SqlLedger.supply(c).pendingAkt())).isEqualTo(500_000_000L);
    assertThat(balIn(Accounts.provider("n1"), "uakt")).as("providers' AKT is theirs, never converted").isEqualTo(provider);
    assertThat(this.<Integer>tx(c -> Mints.convertDirectDeposits(c, recovered, BmeParams.defaults(), 3L)))
        .as("queued once").isZero();
  }

  @Test
  void whileHaltedAJobTheTenantsActCannotCoverIsPaidFromItsAktDepositAtTheAdmissionPrice() throws Exception {
    halt();
    tx(c -> Mints.depositDirect(c, "t2", "d1", 10_000_000L, OracleSnapshot.healthy("0.04")));
    // ceiling 100,000 uact at 0.04 USD/AKT: quo = 2,500,000 uakt held
    assertThat(holdAll(new EscrowHold("a1", "t2", 100_000L, 3_600_000L, "H100", 1).offeringAkt("0.04"))).containsOnlyNulls();
    assertThat(balIn(Accounts.tenant("t2"), "uakt")).isEqualTo(7_500_000L);
    assertThat(balIn(Accounts.escrow("t2"), "uakt")).isEqualTo(2_500_000L);
    assertThat(balIn(Accounts.escrow("t2"), "uact")).isZero();

    // 36 GPU-s at 1,000 uact/GPU-s = 36,000 uact; quo(36,000, 0.04) = 900,000 uakt to the provider, the rest back
    SignedReceipt r = receiptOf("a1", "t2", 36_000_000_000L, "SUCCEEDED", 1);
    Settlement s = tx(c -> placeAndSettle(c, r, PRICES));
    assertThat(s.settled()).isTrue();
    assertThat(s.paidUakt()).isEqualTo(900_000L);
    assertThat(s.chargeUact()).isZero();
    assertThat(AktDirect.clearedUact(s.paidUakt(), "0.04")).isEqualTo(36_000L);
    Settlement dup = tx(c -> placeAndSettle(c, r, PRICES));
    assertThat(dup.duplicate()).isTrue();
    assertThat(dup.paidUakt()).isEqualTo(900_000L);
    assertThat(balIn(Accounts.provider("n1"), "uakt")).isEqualTo(900_000L);
    assertThat(balIn(Accounts.provider("n1"), "uact")).isZero();
    assertThat(balIn(Accounts.tenant("t2"), "uakt")).isEqualTo(10_000_000L - 900_000L);
    assertThat(balIn(Accounts.escrow("t2"), "uakt")).isZero();
  }

  @Test
  void theAktOfferIsNotTakenWhenActCoversTheJobOrOutsideAHaltOrWithoutAnOffer() throws Exception {
    halt();
    tx(c -> Mints.depositDirect(c, "t2", "d1", 10_000_000L, OracleSnapshot.healthy("0.04")));
    // no offer (oracle down at admission, or the option off): refused, nothing moves
    List<SqlLedger.Refused> noOffer = holdAll(new EscrowHold("x1", "t2", 100_000L, 3_600_000L, "H100", 1));
    assertThat(noOffer.get(0).reason()).isEqualTo(LedgerRefusal.INSUFFICIENT_FUNDS);
    // a tenant with ACT pays in ACT even while halted
    assertThat(holdAll(new EscrowHold("x2", "t1", 100_000L, 3_600_000L, "H100", 1).offeringAkt("0.04"))).containsOnlyNulls();
    assertThat(balIn(Accounts.escrow("t1"), "uact")).isEqualTo(100_000L);
    assertThat(balIn(Accounts.escrow("t1"), "uakt")).isZero();
    // the breaker recovers: the offer is no longer taken
    tx(c -> SqlLedger.updateBreaker(c, ORACLE, BmeParams.defaults()));
    List<SqlLedger.Refused> healthy = holdAll(new EscrowHold("x3", "t2", 100_000L, 3_600_000L, "H100", 1).offeringAkt("0.5"));
    assertThat(healthy.get(0).reason()).isEqualTo(LedgerRefusal.INSUFFICIENT_FUNDS);
    assertThat(balIn(Accounts.tenant("t2"), "uakt")).isEqualTo(10_000_000L);
    assertThat(balIn(Accounts.escrow("t2"), "uakt")).isZero();
  }

  @Test
  void anAktEscrowIsChargedPerRunWhenPreemptedAndReleasedInAktWhenCancelled() throws Exception {
    halt();
    tx(c -> Mints.depositDirect(c, "t2", "d1", 10_000_000L, OracleSnapshot.healthy("0.04")));
    assertThat(holdAll(new EscrowHold("p1", "t2", 100_000L, 3_600_000L, "H100", 1).offeringAkt("0.04"),
        new EscrowHold("c1", "t2", 40_000L, 3_600_000L, "H100", 1).offeringAkt("0.04"))).containsOnlyNulls();
    assertThat(balIn(Accounts.escrow("t2"), "uakt")).isEqualTo(2_500_000L + 1_000_000L);
    // a preempted run (10 GPU-s = 10,000 uact = 250,000 uakt), then the final run (20 GPU-s = 500,000 uakt)
    Settlement part = tx(c -> placeAndSettle(c, receiptOf("p1", "t2", 10_000_000_000L, "PREEMPTED", 1), PRICES));
    assertThat(part.paidUakt()).isEqualTo(250_000L);
    assertThat(this.<java.util.Optional<EscrowHold>>tx(c -> SqlLedger.openEscrow(c, "p1")).orElseThrow().heldUakt())
        .isEqualTo(2_250_000L);
    Settlement fin = tx(c -> placeAndSettle(c, receiptOf("p1", "t2", 20_000_000_000L, "SUCCEEDED", 2), PRICES));
    assertThat(fin.paidUakt()).isEqualTo(500_000L);
    assertThat(balIn(Accounts.provider("n1"), "uakt")).isEqualTo(750_000L);
    // the other job never runs: its AKT goes back
    assertThat(this.<Boolean>tx(c -> SqlLedger.release(c, "c1"))).isTrue();
    assertThat(this.<Boolean>tx(c -> SqlLedger.release(c, "c1"))).isFalse();
    assertThat(balIn(Accounts.escrow("t2"), "uakt")).isZero();
    assertThat(balIn(Accounts.tenant("t2"), "uakt")).isEqualTo(10_000_000L - 750_000L);
  }

  @Test
  void aMintEpochTakesItsQueueInTheSpecsOwnerKeyOrderNotStringOrder() throws Exception {
    // bme-spec 9.3: owners order by UTF-8 byte length first, so "tenant:t9" (9 bytes) precedes
    // "tenant:t10" (10 bytes), although "tenant:t10" sorts first as a string
    tx(c -> {
      SqlLedger.openTenantAccounts(c, "t10");
      SqlLedger.openTenantAccounts(c, "t9");
      return null;
    });
    assertThat(tx(c -> Mints.request(c, "t10", "a", 40_000_000L, ORACLE, BmeParams.defaults(), 1_000L)).refusal()).isNull();
    assertThat(tx(c -> Mints.request(c, "t9", "b", 40_000_000L, ORACLE, BmeParams.defaults(), 1_001L)).refusal()).isNull();
    var first = tx(c -> Mints.runEpoch(c, ORACLE, BmeParams.defaults(), 2_000L, 1));
    assertThat(first).singleElement().satisfies(o -> assertThat(o.owner()).isEqualTo(Accounts.tenant("t9")));
    var second = tx(c -> Mints.runEpoch(c, ORACLE, BmeParams.defaults(), 3_000L, 1));
    assertThat(second).singleElement().satisfies(o -> assertThat(o.owner()).isEqualTo(Accounts.tenant("t10")));
  }

  @Test
  void aTreasuryGrantMintsIntoTheBootstrapFundAtTheNextMintEpoch() throws Exception {
    long before = bal(BootstrapPayouts.FUND);
    var r = tx(c -> Mints.grantToFund(c, "treasury-1", 100_000_000L, ORACLE, BmeParams.defaults(), 1_000L));
    assertThat(r.refusal()).isNull();
    assertThat(tx(c -> Mints.grantToFund(c, "treasury-1", 100_000_000L, ORACLE, BmeParams.defaults(), 1_001L)).duplicate())
        .isTrue();
    assertThat(bal(BootstrapPayouts.FUND)).isEqualTo(before);
    tx(c -> Mints.runEpoch(c, ORACLE, BmeParams.defaults(), 2_000L, 50));
    // 100 AKT at 0.5 = 50 ACT, less the 0.25 % spread the engine keeps
    assertThat(bal(BootstrapPayouts.FUND)).isEqualTo(before + 49_875_000L);
    assertThat(this.<java.util.Optional<java.util.Map<String, Object>>>tx(c -> Mints.grantStatus(c, "treasury-1")).orElseThrow())
        .containsEntry("state", "EXECUTED").containsEntry("creditedUact", 49_875_000L).containsEntry("reference", "treasury-1");
    // a grant and a tenant deposit with the same reference are different requests
    assertThat(tx(c -> Mints.request(c, "t1", "treasury-1", 40_000_000L, ORACLE, BmeParams.defaults(), 3_000L)).duplicate())
        .isFalse();
  }

  /**
   * Cluster mode (ADR 20): a pricing window's changes are stored only if the store still holds the prices
   * they were worked out from; a book that missed a window stores nothing and catches up from the store.
   */
  @Test
  void priceChangesAreStoredOnlyOnThePricesTheyWereWorkedOutFrom() throws Exception {
    var base = Map.of("H100", 3_600_000L, "L4", 360_000L);
    var holder = io.anneal.billing.pricing.PriceBook.withDefaults(base);
    var stale = io.anneal.billing.pricing.PriceBook.withDefaults(base);
    var busy = Map.of("H100", new long[] {10, 10});

    var first = holder.nextWindow(busy, 1_000);
    assertThat(this.<Boolean>tx(c -> SqlLedger.recordPrices(c, first, holder.latestFromMs()))).isTrue();
    holder.restore(first);
    // the stale book still steps from the base price: refused, nothing stored
    var fromBase = stale.nextWindow(busy, 2_000);
    assertThat(fromBase.get(0).perGpuHour()).isEqualTo(first.get(0).perGpuHour());
    assertThat(this.<Boolean>tx(c -> SqlLedger.recordPrices(c, fromBase, stale.latestFromMs()))).isFalse();
    assertThat(this.<List<io.anneal.billing.pricing.PriceBook.Change>>tx(SqlLedger::loadPrices)).extracting(io.anneal.billing.pricing.PriceBook.Change::fromMs).containsExactly(1_000L);

    // it reads what it missed, and only that
    List<io.anneal.billing.pricing.PriceBook.Change> missed = tx(c -> SqlLedger.loadPricesAfter(c, stale));
    assertThat(missed).extracting(io.anneal.billing.pricing.PriceBook.Change::fromMs).containsExactly(1_000L);
    stale.restore(missed);
    assertThat(this.<List<io.anneal.billing.pricing.PriceBook.Change>>tx(c -> SqlLedger.loadPricesAfter(c, stale))).isEmpty();
    var second = stale.nextWindow(busy, 2_000);
    assertThat(second.get(0).perGpuHour()).isGreaterThan(first.get(0).perGpuHour());
    assertThat(this.<Boolean>tx(c -> SqlLedger.recordPrices(c, second, stale.latestFromMs()))).isTrue();
    stale.restore(second);
    // now the first holder is the one behind
    assertThat(this.<Boolean>tx(c -> SqlLedger.recordPrices(c, holder.nextWindow(busy, 3_000), holder.latestFromMs()))).isFalse();
    holder.restore(this.<List<io.anneal.billing.pricing.PriceBook.Change>>tx(c -> SqlLedger.loadPricesAfter(c, holder)));
    assertThat(holder.current()).isEqualTo(stale.current());
    assertThat(holder.priceAt("H100", 1_500)).isEqualTo(first.get(0).perGpuHour());
    assertThat(holder.priceAt("L4", 2_500)).isEqualTo(360_000L);
  }
}
