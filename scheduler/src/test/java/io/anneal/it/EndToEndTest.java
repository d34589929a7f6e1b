package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.ledger.Accounts;
import io.anneal.billing.ledger.SqlLedger;
import io.anneal.billing.merkle.MerkleTree;
import io.anneal.billing.receipt.NodeKeys;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.Signature;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The walking skeleton's promise: jobs over WebSocket, run, receipted, settled, traceable. */
class EndToEndTest {
  @TempDir Path dir;

  @Test
  void twentySleepsAndOneMatmulOverWebSocketAllSettleAndBalancesMoveByTheCharges() throws Exception {
    try (TestService s = TestService.start(dir)) {
      runDemo(s);
      assertSettledOn(s, 0);
    }
  }

  @Test
  void theSameDemoOnPostgreSql() throws Exception {
    io.anneal.billing.ledger.TestDatabases.requirePostgres();
    String schema = "e2e_" + Long.toHexString(System.nanoTime());
    try (TestService s = TestService.start(dir, "--db-url",
        io.anneal.billing.ledger.TestDatabases.localPostgresUrl() + "&currentSchema=" + schema)) {
      assertThat(s.service.database().postgres()).isTrue();
      runDemo(s);
      assertSettledOn(s, 3); // db.settlementLanes auto on PostgreSQL (ADR 0011)
      s.service.database().dropSchema();
    }
  }

  @Test
  void theSameDemoSettlingThroughTheVertxSqlClientOnH2() throws Exception {
    try (TestService s = TestService.start(dir, "--ledger-client", "vertx")) {
      runDemo(s);
      assertSettledThroughVertx(s, 1);
    }
  }

  @Test
  void theSameDemoSettlingThroughTheReactivePostgresClient() throws Exception {
    io.anneal.billing.ledger.TestDatabases.requirePostgres();
    String schema = "e2e_" + Long.toHexString(System.nanoTime());
    try (TestService s = TestService.start(dir, "--ledger-client", "vertx", "--db-url",
        io.anneal.billing.ledger.TestDatabases.localPostgresUrl() + "&currentSchema=" + schema)) {
      runDemo(s);
      assertSettledThroughVertx(s, 3);
      s.service.database().dropSchema();
    }
  }

  /** Every receipt committed by the Vert.x SQL client ledger's lanes (ADR 12), none by a JDBC lane. */
  private static void assertSettledThroughVertx(TestService s, int lanes) throws Exception {
    String m = s.get("/metrics", null).body();
    assertThat(m).contains("anneal_billing_settlement_lanes " + lanes + ".0");
    var ops = java.util.regex.Pattern.compile("anneal_store_writer_operations_total\\{writer=\"anneal-settlement-vertx\",?\\} ([0-9.E]+)")
        .matcher(m);
    assertThat(ops.find()).as("the Vert.x ledger's writer in /metrics").isTrue();
    assertThat(Double.parseDouble(ops.group(1))).as("every receipt settled through it").isGreaterThanOrEqualTo(21);
    assertThat(m).doesNotContain("writer=\"anneal-settlement-0\"");
  }

  private void runDemo(TestService s) throws Exception {
    try (TestService.Ws ws = s.ws(TestService.DEMO_KEY)) {
      assertThat(ws.nextOfType("authenticated", Duration.ofSeconds(5)).getString("name")).isEqualTo("demo");
      long before = s.balanceUact();
      assertThat(before).isPositive();
      ws.send(new JsonObject().put("type", "subscribe"));
      ws.nextOfType("subscribed", Duration.ofSeconds(5));
      for (int i = 0; i < 20; i++) {
        ws.send(new JsonObject().put("type", "submit").put("requestId", "s" + i)
            .put("job", new JsonObject().put("kind", "sleep").put("gpus", 1).put("maxSeconds", 30)
                .put("params", new JsonObject().put("ms", 20 + i))));
      }
      ws.send(new JsonObject().put("type", "submit").put("requestId", "m")
          .put("job", new JsonObject().put("kind", "matmul").put("gpus", 1).put("maxSeconds", 60)
              .put("params", new JsonObject().put("n", 96).put("seed", 7))));
      List<String> ids = new ArrayList<>();
      Set<String> settled = new HashSet<>();
      String matmulId = null;
      long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
      while (settled.size() < 21 || ids.size() < 21) {
        JsonObject m = ws.next(Duration.ofNanos(Math.max(1, deadline - System.nanoTime())));
        switch (m.getString("type")) {
          case "accepted" -> {
            ids.add(m.getString("jobId"));
            if ("m".equals(m.getString("requestId"))) matmulId = m.getString("jobId");
          }
          case "job" -> {
            if ("SETTLED".equals(m.getString("state"))) settled.add(m.getString("jobId"));
          }
          case "error" -> throw new AssertionError("unexpected error " + m);
          default -> { }
        }
      }
      assertThat(settled).containsExactlyInAnyOrderElementsOf(ids);

      long charged = 0;
      for (String id : ids) {
        JsonObject job = s.job(id);
        assertThat(job.getString("state")).isEqualTo("SETTLED");
        assertThat(job.getString("outcome")).isEqualTo("SUCCEEDED");
        charged += job.getLong("chargeUact");
      }
      assertThat(charged).isPositive();
      assertThat(s.balanceUact()).isEqualTo(before - charged);
      String provider = Accounts.provider(s.service.nodeId());
      try (var c = s.service.database().connection()) {
        assertThat(SqlLedger.balance(c, provider, "uact")).isEqualTo(charged);
      }

      JsonObject matmul = s.job(matmulId);
      assertThat(matmul.getJsonObject("result").getString("digest")).hasSize(64);
      JsonObject r = s.json(s.get("/api/v1/receipts/" + matmulId, TestService.DEMO_KEY));
      assertThat(r.getBoolean("settled")).isTrue();
      JsonObject receipt = r.getJsonObject("receipt");
      assertThat(receipt.getString("body")).contains(matmulId).contains(matmul.getJsonObject("result").getString("digest"));
      assertThat(r.getJsonObject("settlement").getLong("chargeUact")).isEqualTo(matmul.getLong("chargeUact"));
      assertThat(verify(receipt, dir)).isTrue();
      JsonObject forged = receipt.copy().put("body", receipt.getString("body").replace("SUCCEEDED", "FAILED"));
      assertThat(verify(forged, dir)).isFalse();
    }
  }

  /**
   * /metrics shows how receipts were settled: the lane count, and the 21 receipts committed by the
   * lanes' writers (with lanes) or the store's writer (without).
   */
  private static void assertSettledOn(TestService s, int lanes) throws Exception {
    String m = s.get("/metrics", null).body();
    assertThat(m).contains("anneal_billing_settlement_lanes " + lanes + ".0");
    var ops = java.util.regex.Pattern.compile("anneal_store_writer_operations_total\\{writer=\"([^\"]+)\",?\\} ([0-9.E]+)")
        .matcher(m);
    double onLanes = 0;
    double onStore = 0;
    int laneWriters = 0;
    while (ops.find()) {
      if (ops.group(1).startsWith("anneal-settlement-")) {
        laneWriters++;
        onLanes += Double.parseDouble(ops.group(2));
      } else if (ops.group(1).equals("anneal-store-writer")) {
        onStore += Double.parseDouble(ops.group(2));
      }
    }
    assertThat(laneWriters).isEqualTo(lanes);
    if (lanes > 0) {
      assertThat(onLanes).as("every receipt settled on a lane").isGreaterThanOrEqualTo(21);
    } else {
      assertThat(onStore).as("receipts and the rest, on the store's writer").isGreaterThanOrEqualTo(21);
    }
    assertThat(m).contains("anneal_store_writer_queued{writer=\"anneal-store-writer\"");
  }

  /** Independent check: leaf hash of the body, up the proof to the root, Ed25519 over the root. */
  static boolean verify(JsonObject receipt, Path dataDir) throws Exception {
    byte[] leaf = MerkleTree.leafHash(receipt.getString("body").getBytes(StandardCharsets.UTF_8));
    byte[] root = HexFormat.of().parseHex(receipt.getString("batchRoot"));
    if (!MerkleTree.verify(leaf, SqlLedger.decodeProof(receipt.getString("proof")), root)) return false;
    var key = NodeKeys.decodePublic(Base64.getEncoder().encodeToString(Files.readAllBytes(dataDir.resolve("node-ed25519.pub"))));
    Signature sig = Signature.getInstance("Ed25519");
    sig.initVerify(key);
    sig.update(root);
    return sig.verify(Base64.getDecoder().decode(receipt.getString("signature")));
  }
}
