package io.anneal.billing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.anneal.billing.bme.BmeParams;
import io.anneal.billing.bme.OracleSnapshot;
import io.anneal.billing.ledger.Accounts;
import io.anneal.billing.ledger.EscrowHold;
import io.anneal.billing.ledger.SqlLedger;
import io.anneal.billing.ledger.TestDatabases;
import io.anneal.billing.receipt.NodeKeys;
import io.anneal.billing.receipt.Receipt;
import io.anneal.billing.receipt.ReceiptSigner;
import io.anneal.billing.receipt.SignedReceipt;
import io.anneal.billing.sql.Database;
import io.anneal.billing.sql.GroupCommitWriter;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Billing over the event bus: exactly-once settlement and signature checks. */
class BillingVerticleTest {
  private Vertx vertx;
  private Database db;
  private GroupCommitWriter writer;
  private KeyPair node;
  private SimpleMeterRegistry registry;
  /** The clock billing measures the age of the node keys it read by: moved by a test, not waited for. */
  private final java.util.concurrent.atomic.AtomicLong keysClock = new java.util.concurrent.atomic.AtomicLong(System.currentTimeMillis());

  @BeforeEach
  void setUp() throws Exception {
    db = TestDatabases.freshH2();
    writer = new GroupCommitWriter(db, "w", 100);
    node = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    writer.submit(c -> {
      SqlLedger.fundVault(c, "seed", 1_000_000_000L);
      OracleSnapshot o = OracleSnapshot.healthy("0.5");
      SqlLedger.updateBreaker(c, o, BmeParams.defaults());
      SqlLedger.openTenantAccounts(c, "t1");
      SqlLedger.depositAndMint(c, "t1", "d1", 100_000_000L, o, BmeParams.defaults());
      SqlLedger.hold(c, new EscrowHold("j1", "t1", 1_000_000L, 3_600_000L, "H100", 1));
      SqlLedger.placedOn(c, List.of("j1"), List.of("n1"));
      SqlLedger.registerNode(c, "n1", NodeKeys.encodePublic(node.getPublic()));
      return null;
    }).get();
    io.anneal.billing.testing.BlockedThreadWatch.install();
    io.anneal.billing.testing.BlockedThreadWatch.clear();
    vertx = Vertx.vertx();
    registry = new SimpleMeterRegistry();
    vertx.deployVerticle(new BillingVerticle(writer, Map.of("H100", 3_600_000L), registry).withKeysClock(keysClock::get))
        .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  @AfterEach
  void tearDown() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    io.anneal.billing.testing.BlockedThreadWatch.assertSilent();
    writer.close();
    db.close();
  }

  private JsonObject send(JsonObject receipt) throws Exception {
    return vertx.eventBus().<JsonObject>request(BillingAddresses.RECEIPT, receipt).toCompletionStage().toCompletableFuture()
        .get(10, TimeUnit.SECONDS).body();
  }

  private long balance(String account) throws Exception {
    return writer.submit(c -> SqlLedger.balance(c, account, "uact")).get();
  }

  private static Receipt receipt() {
    return new Receipt("j1/0", "j1", "t1", "n1", "H100", 1, false, 2_000_000_000L, 2_000_000_000L, 0, 1, 2, "SUCCEEDED", "ab");
  }

  @Test
  void aReceiptDeliveredTwiceSettlesOnce() throws Exception {
    SignedReceipt sr = new ReceiptSigner(node.getPrivate()).sign(List.of(receipt())).get(0);
    JsonObject body = ReceiptJson.encode(sr);
    long tenantBefore = balance(Accounts.tenant("t1"));
    JsonObject first = send(body);
    JsonObject second = send(body);
    assertThat(first.getBoolean("settled")).isTrue();
    assertThat(first.getBoolean("duplicate")).isFalse();
    assertThat(first.getLong("chargeUact")).isEqualTo(2_000L);
    assertThat(second.getBoolean("settled")).isTrue();
    assertThat(second.getBoolean("duplicate")).isTrue();
    assertThat(second.getLong("txId")).isEqualTo(first.getLong("txId"));
    assertThat(balance(Accounts.provider("n1"))).isEqualTo(2_000L);
    assertThat(balance(Accounts.tenant("t1"))).isEqualTo(tenantBefore + 1_000_000L - 2_000L);
    assertThat(registry.get("anneal.billing.settlements").tag("result", "duplicate").counter().count()).isEqualTo(1.0);
  }

  @Test
  void aReceiptClaimingMoreGpuTimeThanSincePlacementIsBilledTheBoundAndCounted() throws Exception {
    // j1 was placed a moment ago (setUp): one GPU cannot have run it for an hour
    Receipt hour = new Receipt("j1/0", "j1", "t1", "n1", "H100", 1, false, 3_600_000_000_000L, 3_600_000_000_000L, 0, 1, 2,
        "SUCCEEDED", "ab");
    JsonObject body = ReceiptJson.encode(new ReceiptSigner(node.getPrivate()).sign(List.of(hour)).get(0));
    JsonObject reply = send(body);
    assertThat(reply.getBoolean("settled")).isTrue();
    long billed = reply.getLong("billedGpuNanos");
    assertThat(billed).isBetween(5_000_000_000L, 60_000_000_000L); // 5 s of slack plus the seconds since setUp
    assertThat(reply.getLong("chargeUact")).isEqualTo(billed / 1_000_000L); // 1,000 uact per GPU-s
    assertThat(balance(Accounts.provider("n1"))).isEqualTo(reply.getLong("chargeUact"));
    assertThat(send(body).getLong("billedGpuNanos")).isEqualTo(billed); // a redelivery: the same, not counted again
    assertThat(registry.get("anneal.billing.usage.capped").counter().count()).isEqualTo(1.0);
  }

  @Test
  void aReceiptSignedByAnotherKeyIsRefusedAndNeverSettled() throws Exception {
    KeyPair stranger = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    SignedReceipt forged = new ReceiptSigner(stranger.getPrivate()).sign(List.of(receipt())).get(0);
    JsonObject reply = send(ReceiptJson.encode(forged));
    assertThat(reply.getBoolean("settled")).isFalse();
    assertThat(reply.getString("refusal")).isEqualTo("BAD_SIGNATURE");
    assertThat(balance(Accounts.provider("n1"))).isZero();
    assertThat(writer.submit(c -> SqlLedger.openEscrow(c, "j1")).get()).isPresent();
    assertThat(registry.get("anneal.billing.settlements").tag("result", "bad-signature").counter().count()).isEqualTo(1.0);
  }

  @Test
  void aTamperedReceiptFailsItsProof() throws Exception {
    SignedReceipt sr = new ReceiptSigner(node.getPrivate()).sign(List.of(receipt())).get(0);
    JsonObject tampered = ReceiptJson.encode(sr).put("deviceNanos", 1L);
    JsonObject reply = send(tampered);
    assertThat(reply.getString("refusal")).isEqualTo("BAD_SIGNATURE");
    assertThat(balance(Accounts.provider("n1"))).isZero();
  }

  @Test
  void aReceiptWhoseIdIsNotARunOfItsJobIsRefusedAsMalformedAndChangesNothing() throws Exception {
    SignedReceipt sr = new ReceiptSigner(node.getPrivate()).sign(List.of(receipt())).get(0);
    // another job's receipt id: answered as a duplicate, it would have made that job's own receipt look settled
    JsonObject squatting = ReceiptJson.encode(sr).put("receiptId", "j2/0");
    var failure = vertx.eventBus().<JsonObject>request(BillingAddresses.RECEIPT, squatting).toCompletionStage()
        .toCompletableFuture();
    assertThat(failure).failsWithin(10, TimeUnit.SECONDS).withThrowableOfType(java.util.concurrent.ExecutionException.class)
        .havingCause().isInstanceOf(io.vertx.core.eventbus.ReplyException.class)
        .withMessageContaining("receiptId must be <jobId>/<attempt> of job j1, not j2/0");
    assertThat(balance(Accounts.provider("n1"))).isZero();
    assertThat(writer.submit(c -> SqlLedger.openEscrow(c, "j1")).get()).isPresent();
    for (String bad : new String[] {"j1", "j1/", "j10/0", "j1/-1", "j1/0x", "j1/1234567890", "x/j1/0"}) {
      assertThatThrownBy(() -> new Receipt(bad, "j1", "t1", "n1", "H100", 1, false, 1, 1, 0, 1, 2, "SUCCEEDED", ""))
          .as(bad).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("<jobId>/<attempt>");
    }
    assertThat(new Receipt("j1/123456789", "j1", "t1", "n1", "H100", 1, false, 1, 1, 0, 1, 2, "SUCCEEDED", "").receiptId())
        .isEqualTo("j1/123456789");
  }

  @Test
  void aRegisteredNodeTheJobWasNotPlacedOnCannotBillIt() throws Exception {
    KeyPair other = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    writer.submit(c -> SqlLedger.registerNode(c, "n2", NodeKeys.encodePublic(other.getPublic()))).get();
    Receipt r = new Receipt("j1/0", "j1", "t1", "n2", "H100", 1, false, 2_000_000_000L, 2_000_000_000L, 0, 1, 2,
        "SUCCEEDED", "");
    JsonObject reply = send(ReceiptJson.encode(new ReceiptSigner(other.getPrivate()).sign(List.of(r)).get(0)));
    assertThat(reply.getBoolean("settled")).isFalse();
    assertThat(reply.getString("refusal")).isEqualTo("NOT_PLACED_ON_NODE");
    assertThat(balance(Accounts.provider("n2"))).isZero();
    assertThat(registry.get("anneal.billing.settlements").tag("result", "refused").counter().count()).isEqualTo(1.0);
    // kept for audit (written after the reply)
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    long audited = 0;
    while (audited == 0 && System.nanoTime() < deadline) {
      audited = writer.submit(c -> {
        try (var ps = c.prepareStatement("SELECT COUNT(*) FROM refused_receipt WHERE receipt_id = 'j1/0' AND node_id = 'n2'"
            + " AND reason LIKE '%not placed on node n2%'"); var rs = ps.executeQuery()) {
          rs.next();
          return rs.getLong(1);
        }
      }).get();
    }
    assertThat(audited).isEqualTo(1);
    // the node it was placed on still settles it
    JsonObject real = send(ReceiptJson.encode(new ReceiptSigner(node.getPrivate()).sign(List.of(receipt())).get(0)));
    assertThat(real.getBoolean("settled")).isTrue();
    assertThat(real.getBoolean("duplicate")).isFalse();
    assertThat(balance(Accounts.provider("n1"))).isEqualTo(real.getLong("chargeUact")).isPositive();
  }

  @Test
  void aRetiredKeyStillSettlesAndARevokedOneNoLongerDoesEvenForABatchCheckedBefore() throws Exception {
    List<String> jobs = List.of("j2", "j3", "j4", "j5", "j6");
    writer.submit(c -> {
      for (String j : jobs) SqlLedger.hold(c, new EscrowHold(j, "t1", 1_000_000L, 3_600_000L, "H100", 1));
      SqlLedger.placedOn(c, jobs, java.util.Collections.nCopies(jobs.size(), "n1"));
      return null;
    }).get();
    List<SignedReceipt> batch = new ReceiptSigner(node.getPrivate()).sign(jobs.subList(0, 4).stream()
        .map(j -> new Receipt(j + "/0", j, "t1", "n1", "H100", 1, false, 1_000_000_000L, 1_000_000_000L, 0, 1, 2, "SUCCEEDED", ""))
        .toList());
    assertThat(send(ReceiptJson.encode(batch.get(0))).getBoolean("settled")).isTrue(); // the batch's signature now known good

    String old = NodeKeys.encodePublic(node.getPublic());
    KeyPair next = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    writer.submit(c -> SqlLedger.rotateNodeKey(c, "n1", old, NodeKeys.encodePublic(next.getPublic()), false,
        System::currentTimeMillis)).get();
    vertx.eventBus().publish(BillingAddresses.NODE_KEYS_CHANGED, new JsonObject().put("nodeId", "n1"));
    assertThat(send(ReceiptJson.encode(batch.get(1))).getBoolean("settled")).as("signed with the retired key").isTrue();

    // revoked without billing being told: its check still trusts the batch, the ledger refuses it
    writer.submitAlone(c -> SqlLedger.revokeNodeKey(c, "n1", old, System::currentTimeMillis)).get();
    long provider = balance(Accounts.provider("n1"));
    JsonObject late = send(ReceiptJson.encode(batch.get(2)));
    assertThat(late.getBoolean("settled")).isFalse();
    assertThat(late.getString("refusal")).isEqualTo("BAD_SIGNATURE");
    // and billing, having heard it from the ledger, refuses the rest of the batch itself
    JsonObject later = send(ReceiptJson.encode(batch.get(3)));
    assertThat(later.getString("refusal")).isEqualTo("BAD_SIGNATURE");
    assertThat(balance(Accounts.provider("n1"))).isEqualTo(provider);
    // counted as signatures by a revoked key, apart from signatures that verify under no key of the node
    assertThat(registry.get("anneal.billing.settlements").tag("result", "revoked-key").counter().count()).isEqualTo(2.0);
    assertThat(registry.get("anneal.billing.settlements").tag("result", "bad-signature").counter().count()).isZero();
    List<String> reasons = awaitRefusals(2);
    assertThat(reasons).containsExactlyInAnyOrder(
        "bad signature from node n1: signed with a key revoked before it was settled",
        "bad signature from node n1: signed with its revoked key " + io.anneal.billing.receipt.ReceiptCheck.fingerprint(old));

    // the new key's receipts settle
    Receipt r6 = new Receipt("j6/0", "j6", "t1", "n1", "H100", 1, false, 1_000_000_000L, 1_000_000_000L, 0, 1, 2, "SUCCEEDED", "");
    assertThat(send(ReceiptJson.encode(new ReceiptSigner(next.getPrivate()).sign(List.of(r6)).get(0))).getBoolean("settled"))
        .isTrue();
  }

  @Test
  void aKeyRotatedByAnotherProcessIsReadBeforeItsFirstReceiptIsRefused() throws Exception {
    assertThat(send(ReceiptJson.encode(new ReceiptSigner(node.getPrivate()).sign(List.of(receipt())).get(0)))
        .getBoolean("settled")).isTrue(); // the node's keys are now known here
    writer.submit(c -> {
      SqlLedger.hold(c, new EscrowHold("j7", "t1", 1_000_000L, 3_600_000L, "H100", 1));
      SqlLedger.placedOn(c, List.of("j7"), List.of("n1"));
      return null;
    }).get();
    KeyPair next = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    // rotated in the ledger by someone else: nothing is published on this process's bus
    writer.submit(c -> SqlLedger.rotateNodeKey(c, "n1", NodeKeys.encodePublic(node.getPublic()),
        NodeKeys.encodePublic(next.getPublic()), false, System::currentTimeMillis)).get();
    keysClock.addAndGet(BillingVerticle.KEYS_RECHECK_MS + 100); // the keys known here are now old enough to be read again
    Receipt r = new Receipt("j7/0", "j7", "t1", "n1", "H100", 1, false, 1_000_000_000L, 1_000_000_000L, 0, 1, 2, "SUCCEEDED", "");
    JsonObject reply = send(ReceiptJson.encode(new ReceiptSigner(next.getPrivate()).sign(List.of(r)).get(0)));
    assertThat(reply.getBoolean("settled")).as(reply.encode()).isTrue();
    assertThat(registry.get("anneal.billing.settlements").tag("result", "bad-signature").counter().count()).isZero();
  }

  /** The reasons of the refused receipts kept for audit, once there are {@code n} (they are written after the reply). */
  private List<String> awaitRefusals(int n) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    List<String> reasons = List.of();
    while (reasons.size() < n && System.nanoTime() < deadline) {
      reasons = writer.submit(c -> {
        List<String> out = new java.util.ArrayList<>();
        try (var ps = c.prepareStatement("SELECT reason FROM refused_receipt"); var rs = ps.executeQuery()) {
          while (rs.next()) out.add(rs.getString(1));
        }
        return out;
      }).get();
    }
    return reasons;
  }

  @Test
  void aReceiptFromAnUnknownNodeIsRefused() throws Exception {
    Receipt r = new Receipt("j1/0", "j1", "t1", "n9", "H100", 1, false, 1, 1, 0, 1, 2, "SUCCEEDED", "");
    JsonObject reply = send(ReceiptJson.encode(new ReceiptSigner(node.getPrivate()).sign(List.of(r)).get(0)));
    assertThat(reply.getString("refusal")).isEqualTo("UNKNOWN_NODE");
  }
}
