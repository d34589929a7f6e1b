package io.anneal.billing.ledger;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.bme.BmeParams;
import io.anneal.billing.bme.OracleSnapshot;
import io.anneal.billing.merkle.MerkleTree;
import io.anneal.billing.receipt.NodeKeys;
import io.anneal.billing.receipt.ReceiptCheck;
import io.anneal.billing.receipt.Receipt;
import io.anneal.billing.receipt.ReceiptSigner;
import io.anneal.billing.receipt.SignedReceipt;
import io.anneal.billing.sql.Database;
import java.nio.charset.StandardCharsets;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link LedgerAudit} on a small ledger with everything the audit reads: two nodes' signed batches,
 * a preempted job's two runs, two settlement entries, two closed epochs. Untouched it finds nothing;
 * each way of changing it after the fact is found, by the check that should find it.
 */
abstract class LedgerAuditContract {
  private static final OracleSnapshot ORACLE = OracleSnapshot.healthy("0.5");
  private static final Map<String, Long> PRICES = Map.of("H100", 3_600_000L); // 1,000 uact per GPU-second
  private static final long EPOCH_MS = 3_600_000L;
  private static final long T0 = 500 * EPOCH_MS; // the start of epoch 500
  private static final HexFormat HEX = HexFormat.of();

  private Database db;

  protected abstract Database openDatabase();

  @BeforeEach
  void buildLedger() throws Exception {
    db = openDatabase();
    KeyPair k1 = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    KeyPair k2 = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    inTx(c -> {
      SqlLedger.fundVault(c, "seed", 1_000_000_000_000L);
      SqlLedger.updateBreaker(c, ORACLE, BmeParams.defaults());
      for (String t : List.of("t1", "t2")) {
        SqlLedger.openTenantAccounts(c, t);
        SqlLedger.depositAndMint(c, t, "d-" + t, 1_000_000_000L, ORACLE, BmeParams.defaults());
      }
      SqlLedger.registerNode(c, "n1", NodeKeys.encodePublic(k1.getPublic()));
      SqlLedger.registerNode(c, "n2", NodeKeys.encodePublic(k2.getPublic()));
      List<String> jobs = List.of("a", "b", "c", "d", "e");
      SqlLedger.holdAll(c, jobs.stream().map(j -> new EscrowHold(j, j.equals("c") ? "t2" : "t1", 1_000_000L, 3_600_000L,
          "H100", 1)).toList());
      SqlLedger.placedOn(c, jobs, List.of("n1", "n1", "n2", "n2", "n1"), 0);
    });
    List<SignedReceipt> n1 = new ReceiptSigner(k1.getPrivate()).sign(List.of(
        receipt("a/0", "t1", "n1", 2_000_000_000L, "SUCCEEDED"),
        receipt("b/0", "t1", "n1", 100_000_000_000L, "PREEMPTED"),
        receipt("b/1", "t1", "n1", 300_000_000_000L, "SUCCEEDED"),
        receipt("e/0", "t1", "n1", 5_000_000_000L, "SUCCEEDED")));
    List<SignedReceipt> n2 = new ReceiptSigner(k2.getPrivate()).sign(List.of(
        receipt("c/0", "t2", "n2", 7_000_000_000L, "SUCCEEDED"),
        receipt("d/0", "t1", "n2", 1_000_000_000L, "SUCCEEDED")));
    // two settlement entries in epoch 500, one in epoch 501; both epochs closed
    inTx(c -> SqlLedger.settleAll(c, List.of(n1.get(0), n1.get(1), n2.get(0)), PRICES, T0 + 1_000, 3600));
    inTx(c -> SqlLedger.settleAll(c, List.of(n1.get(2), n2.get(1)), PRICES, T0 + 2_000, 3600));
    inTx(c -> SqlLedger.settleAll(c, List.of(n1.get(3)), PRICES, T0 + EPOCH_MS + 1_000, 3600));
    inTx(c -> assertThat(SqlLedger.closeEpochs(c, T0 + 2 * EPOCH_MS + 1, 3600)).hasSize(2));
  }

  @AfterEach
  void drop() throws Exception {
    db.dropSchema();
    db.close();
  }

  private static Receipt receipt(String id, String tenant, String node, long deviceNanos, String outcome) {
    String job = id.substring(0, id.indexOf('/'));
    return new Receipt(id, job, tenant, node, "H100", 1, false, deviceNanos, deviceNanos, 0, T0 - 60_000, T0, outcome, "r");
  }

  private interface SqlWork {
    void run(Connection c) throws Exception;
  }

  private void inTx(SqlWork work) throws Exception {
    try (Connection c = db.connection()) {
      c.setAutoCommit(false);
      work.run(c);
      c.commit();
    }
  }

  private void sql(String... statements) throws Exception {
    inTx(c -> {
      try (Statement st = c.createStatement()) {
        for (String s : statements) st.executeUpdate(s);
      }
    });
  }

  private LedgerAudit.Report audit() throws Exception {
    try (Connection c = db.connection()) {
      return LedgerAudit.run(c, 100);
    }
  }

  private long settleEntryOf(String receiptId) throws Exception {
    try (Connection c = db.connection();
        PreparedStatement ps = c.prepareStatement("SELECT tx_id FROM settlement WHERE receipt_id = ?")) {
      ps.setString(1, receiptId);
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        return rs.getLong(1);
      }
    }
  }

  @Test
  void anUntouchedLedgerHasNothingWrong() throws Exception {
    LedgerAudit.Report r = audit();
    assertThat(r.findings()).isEmpty();
    assertThat(r.clean()).isTrue();
    assertThat(r.checked()).containsOnlyKeys("journal", "balance", "receipts", "entries", "epochs", "payouts", "supply");
    assertThat(r.checked().get("receipts")).startsWith("6 settled receipts in 2 signed batches:");
    assertThat(r.checked().get("entries")).startsWith("3 settlement entries:");
    assertThat(r.checked().get("epochs")).startsWith("2 closed epochs over 6 receipts:");
  }

  @Test
  void anAuditReadsOneSnapshotWhileSettlementsCommit() throws Exception {
    KeyPair k3 = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    inTx(c -> {
      SqlLedger.registerNode(c, "n3", NodeKeys.encodePublic(k3.getPublic()));
      SqlLedger.holdAll(c, List.of(new EscrowHold("f", "t1", 1_000_000L, 3_600_000L, "H100", 1),
          new EscrowHold("g", "t1", 1_000_000L, 3_600_000L, "H100", 1)));
      SqlLedger.placedOn(c, List.of("f", "g"), List.of("n3", "n3"), 0);
    });
    List<SignedReceipt> late = new ReceiptSigner(k3.getPrivate()).sign(List.of(
        receipt("f/0", "t1", "n3", 3_000_000_000L, "SUCCEEDED"), receipt("g/0", "t1", "n3", 4_000_000_000L, "SUCCEEDED")));
    java.util.Iterator<SignedReceipt> next = late.iterator();
    LedgerAudit.Report r;
    try (Connection c = db.connection()) {
      // a settlement entry committed after the audit's journal check, another after it read the settlements
      r = LedgerAudit.run(c, 100, () -> {
        try {
          inTx(w -> SqlLedger.settleAll(w, List.of(next.next()), PRICES, T0 + 2 * EPOCH_MS + 5_000, 3600));
        } catch (Exception e) {
          throw new IllegalStateException(e);
        }
      });
    }
    assertThat(next.hasNext()).isFalse();
    assertThat(r.findings()).isEmpty();
    assertThat(r.checked().get("entries")).startsWith("3 settlement entries:");
    // and the next audit sees it, whole
    LedgerAudit.Report after = audit();
    assertThat(after.findings()).isEmpty();
    assertThat(after.checked().get("entries")).startsWith("5 settlement entries:");
  }

  @Test
  void aReceiptChangedAfterItSettledIsFound() throws Exception {
    sql("UPDATE settlement SET receipt_body = REPLACE(receipt_body, '2000000000', '9000000000') WHERE receipt_id = 'a/0'");
    assertThat(audit().findings()).containsExactly(
        new LedgerAudit.Finding("receipt", "a/0", "the stored leaf hash is not the hash of the stored receipt"),
        new LedgerAudit.Finding("receipt", "a/0", "its proof does not lead from the receipt to its batch root "
            + batchRootOf("a/0")));
  }

  @Test
  void aReceiptChangedWithItsLeafHashFailsItsProofAndItsEpochsRoot() throws Exception {
    String body = bodyOf("a/0").replace("2000000000", "9000000000");
    String leaf = HEX.formatHex(MerkleTree.leafHash(body.getBytes(StandardCharsets.UTF_8)));
    sql("UPDATE settlement SET receipt_body = '" + body.replace("'", "''") + "', leaf_hash = '" + leaf + "' WHERE receipt_id = 'a/0'");
    List<LedgerAudit.Finding> found = audit().findings();
    assertThat(found).contains(new LedgerAudit.Finding("receipt", "a/0", "its proof does not lead from the receipt to its batch root "
        + batchRootOf("a/0")));
    assertThat(found).filteredOn(f -> f.subject().equals("epoch 500"))
        .extracting(LedgerAudit.Finding::detail)
        .anyMatch(d -> d.startsWith("stored chunk 0 is not the one its settlements make"))
        .anyMatch(d -> d.startsWith("its Merkle root "));
    assertThat(found).noneMatch(f -> f.subject().equals("epoch 501"));
  }

  @Test
  void aBatchSignatureThatDoesNotVerifyIsFoundOncePerBatch() throws Exception {
    String other = signatureOfBatchOf("a/0");
    sql("UPDATE receipt_batch SET signature = '" + other + "' WHERE batch_root = '" + batchRootOf("c/0") + "'");
    assertThat(audit().findings()).containsExactly(new LedgerAudit.Finding("signature", "batch " + batchRootOf("c/0"),
        "its signature does not verify under node n2's key (2 receipts)"));
  }

  @Test
  void aRotatedNodesBatchesVerifyUnderItsOldKeyUnlessSettledAfterItWasRevoked() throws Exception {
    String[] old = new String[1];
    String fresh = NodeKeys.encodePublic(KeyPairGenerator.getInstance("Ed25519").generateKeyPair().getPublic());
    inTx(c -> {
      old[0] = SqlLedger.nodeKey(c, "n1").orElseThrow();
      assertThat(SqlLedger.rotateNodeKey(c, "n1", old[0], fresh, false, System::currentTimeMillis)).isEqualTo(NodeKey.Rotation.DONE);
    });
    // retired, the key that signed n1's batch still vouches for it
    assertThat(audit().findings()).isEmpty();
    // revoked after the batch settled (T0 + 1 s), as the barrier orders it: still good
    sql("UPDATE node_key_history SET revoked_at_ms = " + (T0 + EPOCH_MS) + " WHERE public_key = '" + old[0] + "'");
    assertThat(audit().findings()).isEmpty();
    // revoked before it settled: no settlement may rest on it
    sql("UPDATE node_key_history SET revoked_at_ms = " + (T0 - 1) + " WHERE public_key = '" + old[0] + "'");
    String root = batchRootOf("a/0");
    assertThat(audit().findings()).singleElement().satisfies(f -> {
      assertThat(f.check()).isEqualTo("signature");
      assertThat(f.subject()).isEqualTo("batch " + root);
      assertThat(f.detail()).startsWith("signed with node n1's key " + ReceiptCheck.fingerprint(old[0]) + ", settled at ")
          .contains("after the key was revoked at " + java.time.Instant.ofEpochMilli(T0 - 1)).endsWith("(4 receipts)");
    });
    // a signature that none of its keys made
    sql("UPDATE node_key_history SET revoked_at_ms = NULL",
        "UPDATE receipt_batch SET signature = '" + signatureOfBatchOf("c/0") + "' WHERE batch_root = '" + root + "'");
    assertThat(audit().findings()).containsExactly(new LedgerAudit.Finding("signature", "batch " + root,
        "its signature does not verify under any of node n1's 2 keys (4 receipts)"));
  }

  @Test
  void settlementsFromBeforeV9CarryTheirBatchSignatureThemselves() throws Exception {
    String root = batchRootOf("c/0");
    String signature = signatureOfBatchOf("c/0");
    // as settled before V9: the signature on each row, no receipt_batch row
    sql("UPDATE settlement SET signature = '" + signature + "' WHERE batch_root = '" + root + "'",
        "DELETE FROM receipt_batch WHERE batch_root = '" + root + "'");
    assertThat(audit().findings()).isEmpty();
    sql("UPDATE settlement SET signature = '" + signatureOfBatchOf("a/0") + "' WHERE receipt_id = 'd/0'");
    assertThat(audit().findings()).containsExactly(
        new LedgerAudit.Finding("signature", "d/0", "its signature does not verify under node n2's key"));
    sql("UPDATE settlement SET signature = NULL WHERE batch_root = '" + root + "'");
    assertThat(audit().findings()).containsExactly(
        new LedgerAudit.Finding("signature", "c/0", "no signature is recorded for its batch " + root),
        new LedgerAudit.Finding("signature", "d/0", "no signature is recorded for its batch " + root));
  }

  @Test
  void aSettlementMovedToAnotherNodeIsFound() throws Exception {
    sql("UPDATE settlement SET node_id = 'n2' WHERE receipt_id = 'a/0'");
    List<LedgerAudit.Finding> found = audit().findings();
    assertThat(found).contains(new LedgerAudit.Finding("receipt", "a/0", "the stored receipt's node is n1, the settlement's n2"));
    // the settlement entry still pays n1 for it: its rows no longer say so
    assertThat(found).filteredOn(f -> f.check().equals("entry")).extracting(LedgerAudit.Finding::detail)
        .anyMatch(d -> d.startsWith("posts ") && d.contains(" to provider:n1 uact where its 3 settlement rows add up to "));
  }

  @Test
  void aPostingChangedAloneUnbalancesItsEntryAndItsAccount() throws Exception {
    long tx = settleEntryOf("a/0");
    sql("UPDATE posting SET amount = amount + 1 WHERE tx_id = " + tx + " AND account = 'provider:n1'");
    List<LedgerAudit.Finding> found = audit().findings();
    assertThat(found).contains(new LedgerAudit.Finding("journal", "entry " + tx, "its uact postings sum to 1, not 0"));
    assertThat(found).anyMatch(f -> f.check().equals("balance") && f.subject().equals("provider:n1 uact"));
    assertThat(found).anyMatch(f -> f.check().equals("entry") && f.subject().equals("entry " + tx));
  }

  @Test
  void aProviderPaidWithoutReceiptsIsFoundEvenWhenTheBooksBalance() throws Exception {
    long tx = settleEntryOf("a/0");
    // 100 uact of n1's pay redirected to n9 in the same entry, balances made to agree: balanced books
    sql("UPDATE posting SET amount = amount - 100 WHERE tx_id = " + tx + " AND account = 'provider:n1' AND denom = 'uact'",
        "INSERT INTO posting (tx_id, account, denom, amount) VALUES (" + tx + ", 'provider:n9', 'uact', 100)",
        "UPDATE balance SET amount = amount - 100 WHERE account = 'provider:n1' AND denom = 'uact'",
        "INSERT INTO balance (account, denom, amount) VALUES ('provider:n9', 'uact', 100)");
    List<LedgerAudit.Finding> found = audit().findings();
    assertThat(found).extracting(LedgerAudit.Finding::check).containsOnly("entry");
    assertThat(found).extracting(LedgerAudit.Finding::detail).containsExactlyInAnyOrder(
        "posts " + (charged("a/0") + charged("b/0") - 100) + " to provider:n1 uact where its 3 settlement rows add up to "
            + (charged("a/0") + charged("b/0")),
        "posts 100 to provider:n9 uact where its 3 settlement rows add up to 0");
  }

  @Test
  void rowsMovedOffTheirEntryOrOntoAnotherKindOfEntryAreFound() throws Exception {
    long first = settleEntryOf("a/0");
    long second = settleEntryOf("b/1");
    long third = settleEntryOf("e/0");
    sql("UPDATE settlement SET tx_id = " + first + " WHERE tx_id = " + second,
        "UPDATE ledger_tx SET kind = 'escrow.hold' WHERE id = " + third);
    List<LedgerAudit.Finding> found = audit().findings();
    assertThat(found).contains(
        new LedgerAudit.Finding("entry", "entry " + second, "a settlement entry without settlement rows"),
        new LedgerAudit.Finding("entry", "entry " + third, "settlement rows point to it, but it is not a settlement entry"));
    // the first entry now has the second's rows too: more than it paid n1 (b/1) and n2 (d/0)
    assertThat(found).filteredOn(f -> f.subject().equals("entry " + first)).extracting(LedgerAudit.Finding::detail)
        .anyMatch(d -> d.contains(" to provider:n1 uact where its 5 settlement rows add up to "))
        .anyMatch(d -> d.contains(" to provider:n2 uact where its 5 settlement rows add up to "));
  }

  @Test
  void aChangedEpochRootOrTotalIsFound() throws Exception {
    sql("UPDATE epoch_close SET merkle_root = '" + "0".repeat(64) + "', receipts = receipts + 1 WHERE epoch = 501");
    List<LedgerAudit.Finding> found = audit().findings();
    assertThat(found).extracting(LedgerAudit.Finding::subject).containsOnly("epoch 501");
    assertThat(found).extracting(LedgerAudit.Finding::detail)
        .anyMatch(d -> d.startsWith("its Merkle root " + "0".repeat(64) + " is not the root of its settlements"))
        .contains("it says 2 receipts settled; its settlements are 1");
  }

  @Test
  void settlementsOfAnEpochThatWasNeverClosedAreFound() throws Exception {
    sql("DELETE FROM epoch_chunk WHERE epoch = 500", "DELETE FROM epoch_close WHERE epoch = 500");
    assertThat(audit().findings()).containsExactly(new LedgerAudit.Finding("epoch", "epoch 500",
        "5 receipts settled in it, but it was never closed while later epochs were: they are in no Merkle root"));
  }

  @Test
  void aDeletedSettlementIsFoundInItsEntryAndItsEpoch() throws Exception {
    sql("DELETE FROM settlement WHERE receipt_id = 'c/0'");
    List<LedgerAudit.Finding> found = audit().findings();
    assertThat(found).anyMatch(f -> f.check().equals("entry") && f.detail().contains("provider:n2 uact"));
    assertThat(found).anyMatch(f -> f.subject().equals("epoch 500") && f.detail().equals("it says 5 receipts settled; its settlements are 4"));
  }

  @Test
  void bmeCountersThatDisagreeWithTheJournalAreFound() throws Exception {
    sql("UPDATE bme_state SET total_minted_uact = total_minted_uact + 10, total_minted_uakt = 5, remint_credits = -1 WHERE id = 1");
    List<LedgerAudit.Finding> found = audit().findings();
    assertThat(found).extracting(LedgerAudit.Finding::check).containsOnly("supply");
    assertThat(found).extracting(LedgerAudit.Finding::subject).containsExactly("uact", "uakt", "remint credits");
    assertThat(found.get(1).detail()).isEqualTo("AKT newly minted is 5 uakt, but the journal issued 0");
  }

  @Test
  void payoutRangesWithAGapOrAnOverlapAreFound() throws Exception {
    // the first payouts of n1 and n2 are cancelled (no price), the second ones execute
    OracleSnapshot down = new OracleSnapshot(false, io.anneal.billing.bme.Dec.ZERO);
    inTx(c -> assertThat(Redemptions.request(c, "n1", 100_000L, "p-n1-1", ORACLE, T0 + 3 * EPOCH_MS).refusal()).isNull());
    inTx(c -> assertThat(Redemptions.request(c, "n2", 4_000L, "p-n2-1", ORACLE, T0 + 3 * EPOCH_MS).refusal()).isNull());
    for (int i = 1; i <= 3; i++) {
      long at = T0 + 3 * EPOCH_MS + i;
      inTx(c -> Redemptions.runEpoch(c, down, BmeParams.defaults(), at));
    }
    inTx(c -> assertThat(Redemptions.request(c, "n1", 100_000L, "p-n1-2", ORACLE, T0 + 3 * EPOCH_MS + 10).refusal()).isNull());
    inTx(c -> assertThat(Redemptions.request(c, "n2", 4_000L, "p-n2-2", ORACLE, T0 + 3 * EPOCH_MS + 10).refusal()).isNull());
    inTx(c -> Redemptions.runEpoch(c, ORACLE, BmeParams.defaults(), T0 + 3 * EPOCH_MS + 20));
    LedgerAudit.Report clean = audit();
    assertThat(clean.findings()).isEmpty();
    assertThat(clean.checked().get("payouts")).isEqualTo("2 executed payouts of 2 nodes: each burns its node's oldest income not"
        + " burned before, by amount (by range before V19), none skipped, none twice");
    // n2's payout of 4,000 burned the first 4,000 of c/0's 7,000, nothing of d/0 (what its cancelled one would have)
    inTx(c -> {
      assertThat(Redemptions.payoutsOf(c, "c/0")).singleElement().satisfies(p -> assertThat(p.get("burnedUact")).isEqualTo(4_000L));
      assertThat(Redemptions.payoutsOf(c, "d/0")).isEmpty();
    });
    // made to start 1,000 into c/0: 1,000 of income traced to no payout
    sql("UPDATE bme_request SET fifo_start_used = 1000 WHERE ref = 'p-n2-2'");
    assertThat(audit().findings()).singleElement().satisfies(f -> {
      assertThat(f.check()).isEqualTo("payouts");
      assertThat(f.detail()).contains("it says it burned 4000 uact from Cursor[tx=", "item=c/0, used=1000]",
          "but provider:n2's income not burned before it gives 4000 uact from", "item=c/0, used=0]");
    });
    // put back: nothing wrong
    sql("UPDATE bme_request SET fifo_start_used = 0 WHERE ref = 'p-n2-2'");
    assertThat(audit().findings()).isEmpty();
  }

  @Test
  void findingsBeyondTheLimitAreCountedNotKept() throws Exception {
    sql("UPDATE balance SET amount = amount + 1 WHERE account LIKE 'tenant:%'");
    try (Connection c = db.connection()) {
      LedgerAudit.Report r = LedgerAudit.run(c, 1);
      assertThat(r.findings()).hasSize(1);
      assertThat(r.findingCount()).isGreaterThan(1);
      assertThat(r.clean()).isFalse();
    }
  }

  private String bodyOf(String receiptId) throws Exception {
    return column("receipt_body", receiptId);
  }

  private String batchRootOf(String receiptId) throws Exception {
    return column("batch_root", receiptId);
  }

  private long charged(String receiptId) throws Exception {
    return Long.parseLong(column("charge_uact", receiptId));
  }

  private String signatureOfBatchOf(String receiptId) throws Exception {
    try (Connection c = db.connection();
        PreparedStatement ps = c.prepareStatement("SELECT signature FROM receipt_batch WHERE batch_root = ?")) {
      ps.setString(1, batchRootOf(receiptId));
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        return rs.getString(1);
      }
    }
  }

  private String column(String column, String receiptId) throws Exception {
    try (Connection c = db.connection();
        PreparedStatement ps = c.prepareStatement("SELECT " + column + " FROM settlement WHERE receipt_id = ?")) {
      ps.setString(1, receiptId);
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        return rs.getString(1);
      }
    }
  }
}
