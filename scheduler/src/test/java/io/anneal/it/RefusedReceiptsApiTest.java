package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.BillingAddresses;
import io.anneal.billing.ReceiptJson;
import io.anneal.billing.receipt.Receipt;
import io.anneal.billing.receipt.ReceiptSigner;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.security.KeyPairGenerator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Receipts refused for who sent them are kept for audit and listed to the admin, newest first. */
class RefusedReceiptsApiTest {
  @TempDir Path dir;

  @Test
  void aReceiptFromAnUnknownNodeIsListedToTheAdminOnly() throws Exception {
    try (TestService s = TestService.start(dir)) {
      var stranger = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
      Receipt r = new Receipt("j_forged/0", "j_forged", "t_x", "stranger", "H100", 1, false, 1_000_000L, 1_000_000L, 0, 1,
          2, "SUCCEEDED", "");
      JsonObject reply = s.service.vertx().eventBus()
          .<JsonObject>request(BillingAddresses.RECEIPT, ReceiptJson.encode(new ReceiptSigner(stranger.getPrivate())
              .sign(List.of(r)).get(0)))
          .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS).body();
      assertThat(reply.getString("refusal")).isEqualTo("UNKNOWN_NODE");

      var listed = s.get("/api/v1/refused-receipts?limit=10", TestService.ADMIN_KEY);
      assertThat(listed.statusCode()).as(listed.body()).isEqualTo(200);
      var refused = s.json(listed).getJsonArray("refused");
      assertThat(refused).hasSize(1);
      JsonObject first = refused.getJsonObject(0);
      assertThat(first.getString("receiptId")).isEqualTo("j_forged/0");
      assertThat(first.getString("nodeId")).isEqualTo("stranger");
      assertThat(first.getString("reason")).isEqualTo("unknown node stranger");
      assertThat(first.getBoolean("settledSince")).isFalse();
      assertThat(java.time.Instant.parse(first.getString("at"))).isBefore(java.time.Instant.now().plusSeconds(1));

      assertThat(s.get("/api/v1/refused-receipts", TestService.DEMO_KEY).statusCode()).isEqualTo(403);
      assertThat(s.get("/api/v1/refused-receipts", null).statusCode()).isEqualTo(401);
      var bad = s.get("/api/v1/refused-receipts?limit=0", TestService.ADMIN_KEY);
      assertThat(bad.statusCode()).isEqualTo(422);
      assertThat(bad.body()).contains("limit must be 1..1000");
    }
  }
}
