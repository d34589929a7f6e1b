package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.ledger.SqlLedger;
import io.anneal.billing.merkle.MerkleTree;
import io.anneal.billing.tools.ReceiptCli;
import io.vertx.core.json.JsonObject;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Closed accounting epochs commit to their settlements; any receipt proves its inclusion, a tampered one cannot,
 * and {@code anneal receipt verify} shows both from the API's answer alone, with the node key and the
 * epoch root pinned from elsewhere (the node's key file, the epochs list).
 */
class EpochProofTest {
  @TempDir Path dir;

  @Test
  void everySettledReceiptHasAnInclusionProofInItsClosedEpoch() throws Exception {
    try (TestService s = TestService.start(dir, "--epoch-seconds", "1")) {
      List<String> ids = new ArrayList<>();
      for (int i = 0; i < 5; i++) {
        var r = s.post("/api/v1/jobs", TestService.DEMO_KEY, new JsonObject().put("kind", "sleep").put("gpus", 1)
            .put("maxSeconds", 30).put("params", new JsonObject().put("ms", 5 * i)).encode());
        ids.add(s.json(r).getString("id"));
      }
      for (String id : ids) {
        s.await(Duration.ofSeconds(30), () -> {
          JsonObject r = s.json(s.get("/api/v1/receipts/" + id, TestService.DEMO_KEY));
          return r.containsKey("epoch") && r.getJsonObject("epoch").getBoolean("closed");
        });
        JsonObject r = s.json(s.get("/api/v1/receipts/" + id, TestService.DEMO_KEY));
        JsonObject epoch = r.getJsonObject("epoch");
        String body = r.getJsonObject("receipt").getString("body");
        byte[] leaf = MerkleTree.leafHash(body.getBytes(StandardCharsets.UTF_8));
        byte[] root = HexFormat.of().parseHex(epoch.getString("merkleRoot"));
        assertThat(HexFormat.of().formatHex(leaf)).isEqualTo(epoch.getString("leafHash"));
        assertThat(MerkleTree.verify(leaf, SqlLedger.decodeProof(epoch.getString("proof")), root)).isTrue();
        byte[] tampered = MerkleTree.leafHash(body.replace("SUCCEEDED", "FAILED").getBytes(StandardCharsets.UTF_8));
        assertThat(MerkleTree.verify(tampered, SqlLedger.decodeProof(epoch.getString("proof")), root)).isFalse();
        assertThat(epoch.getLong("receipts")).isPositive();
        assertThat(epoch.getLong("chargedUact")).isNotNegative();
        verifiedOffline(s, r);
      }
    }
  }

  private void verifiedOffline(TestService s, JsonObject answer) throws Exception {
    long epochNo = answer.getJsonObject("epoch").getLong("epoch");
    String listedRoot = s.json(s.get("/api/v1/epochs?limit=1000", null)).getJsonArray("epochs").stream()
        .map(JsonObject.class::cast).filter(e -> e.getLong("epoch") == epochNo).findFirst().orElseThrow().getString("merkleRoot");
    String[] pins = {"--node-key", dir.resolve("node-ed25519.pub").toString(), "--epoch-root", epochNo + "=" + listedRoot};
    Path file = dir.resolve("receipt.json");
    Files.writeString(file, answer.encode());
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int code = ReceiptCli.run(concat(new String[] {"verify", file.toString()}, pins), System.in, new PrintStream(out, true), System.err);
    assertThat(code).as(out.toString(StandardCharsets.UTF_8)).isZero();
    assertThat(out.toString(StandardCharsets.UTF_8)).contains("0 failed, 0 pending", "node key: pinned", "epoch root: epoch " + epochNo);
    // the same answer with the run's outcome changed: neither in the signed batch nor in the epoch
    JsonObject receipt = answer.getJsonArray("runs").getJsonObject(0).getJsonObject("receipt");
    receipt.put("body", receipt.getString("body").replace("SUCCEEDED", "FAILED"));
    Files.writeString(file, answer.encode());
    out.reset();
    code = ReceiptCli.run(concat(new String[] {"verify", file.toString()}, pins), System.in, new PrintStream(out, true), System.err);
    assertThat(code).isEqualTo(1);
    assertThat(out.toString(StandardCharsets.UTF_8)).contains("FAIL     in its node's signed batch", "FAIL     in its accounting epoch");
  }

  private static String[] concat(String[] a, String[] b) {
    String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
