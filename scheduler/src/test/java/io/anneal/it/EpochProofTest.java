package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.ledger.SqlLedger;
import io.anneal.billing.merkle.MerkleTree;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Closed accounting epochs commit to their settlements; any receipt proves its inclusion, a tampered one cannot. */
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
      }
    }
  }
}
