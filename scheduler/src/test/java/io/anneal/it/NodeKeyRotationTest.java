package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.receipt.NodeKeys;
import io.anneal.billing.receipt.ReceiptCheck;
import io.anneal.billing.tools.ReceiptCli;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A node's signing key rotated and revoked through the API (ADR 18): receipts signed before stay
 * checkable with the key that signed them, new ones are signed with the new key, a revoked key's
 * receipts waiting in the outbox are signed again, and a restart signs with the new key.
 */
class NodeKeyRotationTest {
  @TempDir Path dir;

  private String submitSleep(TestService s) {
    var r = s.post("/api/v1/jobs", TestService.DEMO_KEY, new JsonObject().put("kind", "sleep").put("gpus", 1)
        .put("maxSeconds", 30).put("params", new JsonObject().put("ms", 10)).encode());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(202);
    return s.json(r).getString("id");
  }

  private JsonObject settledReceipt(TestService s, String job) throws Exception {
    s.await(Duration.ofSeconds(30), () -> "SETTLED".equals(s.job(job).getString("state")));
    return s.json(s.get("/api/v1/receipts/" + job, TestService.DEMO_KEY));
  }

  private String fileKey() throws Exception {
    return Base64.getEncoder().encodeToString(Files.readAllBytes(dir.resolve(NodeKeys.PUBLIC_FILE)));
  }

  @Test
  void aRotatedKeyKeepsOldReceiptsCheckableAndSignsTheNewOnes() throws Exception {
    Path saved = Files.createDirectories(dir.resolve("saved"));
    try (TestService s = TestService.start(dir)) {
      for (String f : new String[] {NodeKeys.PRIVATE_FILE, NodeKeys.PUBLIC_FILE}) Files.copy(dir.resolve(f), saved.resolve(f));
      String node = s.service.nodeId();
      String first = fileKey();
      String before = submitSleep(s);
      JsonObject oldAnswer = settledReceipt(s, before);
      JsonArray keys = s.json(s.get("/api/v1/nodes/" + node + "/keys", null)).getJsonArray("keys");
      assertThat(keys).hasSize(1);
      assertThat(keys.getJsonObject(0).getString("publicKey")).isEqualTo(first);
      assertThat(keys.getJsonObject(0).getString("state")).isEqualTo("current");

      // only an admin rotates, with a well-formed body, a node this instance runs
      assertThat(s.post("/api/v1/nodes/" + node + "/keys", TestService.DEMO_KEY, "{}").statusCode()).isEqualTo(403);
      var badBody = s.post("/api/v1/nodes/" + node + "/keys", TestService.ADMIN_KEY, "{\"revokePrevious\":\"yes\"}");
      assertThat(badBody.statusCode()).isEqualTo(422);
      assertThat(badBody.body()).contains("revokePrevious must be true or false");
      assertThat(s.post("/api/v1/nodes/" + node + "/keys", TestService.ADMIN_KEY, "{\"revoke\":true}").statusCode()).isEqualTo(422);
      var elsewhere = s.post("/api/v1/nodes/n-nowhere/keys", TestService.ADMIN_KEY, "{}");
      assertThat(elsewhere.statusCode()).as(elsewhere.body()).isEqualTo(404);
      assertThat(s.get("/api/v1/nodes/" + node + "/keys", null).statusCode()).isEqualTo(200);
      assertThat(fileKey()).as("nothing refused changed the key").isEqualTo(first);

      var rotated = s.post("/api/v1/nodes/" + node + "/keys", TestService.ADMIN_KEY, "{}");
      assertThat(rotated.statusCode()).as(rotated.body()).isEqualTo(201);
      JsonObject r = s.json(rotated);
      String second = r.getString("publicKey");
      assertThat(second).isNotEqualTo(first).isEqualTo(fileKey());
      assertThat(r.getString("fingerprint")).isEqualTo(ReceiptCheck.fingerprint(second));
      assertThat(r.getJsonObject("previous").getString("state")).isEqualTo("retired");
      assertThat(Files.exists(dir.resolve(NodeKeys.NEXT_PRIVATE_FILE))).isFalse();

      String after = submitSleep(s);
      JsonObject newAnswer = settledReceipt(s, after);
      JsonObject newReceipt = newAnswer.getJsonArray("runs").getJsonObject(0).getJsonObject("receipt");
      assertThat(newReceipt.getString("nodePublicKey")).isEqualTo(second);
      assertThat(newReceipt.getString("nodeKeyState")).isEqualTo("current");
      JsonObject oldReceipt = s.json(s.get("/api/v1/receipts/" + before, TestService.DEMO_KEY)).getJsonArray("runs")
          .getJsonObject(0).getJsonObject("receipt");
      assertThat(oldReceipt.getString("nodePublicKey")).isEqualTo(first);
      assertThat(oldReceipt.getString("nodeKeyState")).isEqualTo("retired");
      // checked offline with both of the provider's keys pinned: each run passes with the key that signed it
      assertThat(verify(oldAnswer, first, second)).isZero();
      assertThat(verify(newAnswer, first, second)).isZero();
      assertThat(verify(newAnswer, first)).as("the new run is not signed with the old key").isEqualTo(1);

      // revoking: never the current key; a retired one once; the answer shows it
      String oldPrint = ReceiptCheck.fingerprint(first);
      var inUse = s.post("/api/v1/nodes/" + node + "/keys/" + ReceiptCheck.fingerprint(second) + "/revoke", TestService.ADMIN_KEY, "");
      assertThat(inUse.statusCode()).isEqualTo(409);
      assertThat(inUse.body()).contains("key-in-use");
      assertThat(s.post("/api/v1/nodes/" + node + "/keys/sha256:0000000000000000/revoke", TestService.ADMIN_KEY, "").statusCode())
          .isEqualTo(404);
      assertThat(s.post("/api/v1/nodes/" + node + "/keys/" + oldPrint + "/revoke", TestService.DEMO_KEY, "").statusCode())
          .isEqualTo(403);
      var revoked = s.post("/api/v1/nodes/" + node + "/keys/" + oldPrint.substring("sha256:".length()) + "/revoke",
          TestService.ADMIN_KEY, "");
      assertThat(revoked.statusCode()).as(revoked.body()).isEqualTo(200);
      assertThat(s.json(revoked).getString("state")).isEqualTo("revoked");
      assertThat(s.json(revoked).getLong("revokedAtMs")).isNotNull();
      assertThat(s.post("/api/v1/nodes/" + node + "/keys/" + oldPrint + "/revoke", TestService.ADMIN_KEY, "").statusCode()).isEqualTo(200);
      JsonArray now = s.json(s.get("/api/v1/nodes/" + node + "/keys", null)).getJsonArray("keys");
      assertThat(now.stream().map(o -> ((JsonObject) o).getString("state")).toList()).containsExactly("current", "revoked");
      // what the revoked key signed before stays settled, shown as such, and the ledger audit has nothing to say
      assertThat(s.json(s.get("/api/v1/receipts/" + before, TestService.DEMO_KEY)).getJsonArray("runs").getJsonObject(0)
          .getJsonObject("receipt").getString("nodeKeyState")).isEqualTo("revoked");
      JsonObject audit = s.json(s.get("/api/v1/ledger/audit", TestService.ADMIN_KEY));
      assertThat(audit.getJsonArray("findings")).as(audit.encode()).isEmpty();
    }
    // the key files of before the rotation put back (an older backup's): the node does not start, and says why
    for (String f : new String[] {NodeKeys.PRIVATE_FILE, NodeKeys.PUBLIC_FILE}) {
      Files.copy(saved.resolve(f), dir.resolve(f), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    }
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> TestService.start(dir).close())
        .hasStackTraceContaining("is registered with another signing key; the data dir holds its revoked key")
        .hasStackTraceContaining("a data dir older than its last key rotation?");
    // the failed start stopped what it had started without holding an event loop (it used to, for 30 s)
    assertThat(TestService.blockedThreadWarnings()).isEmpty();
  }

  @Test
  void receiptsWaitingUnderARevokedKeyAreSignedAgainAndSettleAfterARestart() throws Exception {
    // first start with every role: the demo tenant's AKT becomes ACT
    try (TestService s = TestService.start(dir)) {
      assertThat(s.balanceUact()).isPositive();
    }
    String job;
    String revokedKey = fileKey();
    String newKey;
    // no billing role: finished runs wait in the outbox, signed with the current key
    try (TestService s = TestService.start(dir, "--roles", "api,scheduler,worker")) {
      String node = s.service.nodeId();
      job = submitSleep(s);
      s.await(Duration.ofSeconds(30), () -> "SUCCEEDED".equals(s.job(job).getString("state")));
      var rotated = s.post("/api/v1/nodes/" + node + "/keys", TestService.ADMIN_KEY, "{\"revokePrevious\":true}");
      assertThat(rotated.statusCode()).as(rotated.body()).isEqualTo(201);
      JsonObject r = s.json(rotated);
      assertThat(r.getJsonObject("previous").getString("state")).isEqualTo("revoked");
      assertThat(r.getInteger("outboxResigned")).isEqualTo(1);
      newKey = r.getString("publicKey");
    }
    assertThat(fileKey()).isEqualTo(newKey);
    // billing back: the receipt, signed again with the new key, settles; the node signs with the new key
    try (TestService s = TestService.start(dir)) {
      JsonObject answer = settledReceipt(s, job);
      JsonObject receipt = answer.getJsonArray("runs").getJsonObject(0).getJsonObject("receipt");
      assertThat(receipt.getString("nodePublicKey")).isEqualTo(newKey);
      assertThat(verify(answer, newKey)).isZero();
      assertThat(verify(answer, revokedKey)).isEqualTo(1);
      assertThat(s.json(s.get("/api/v1/refused-receipts", TestService.ADMIN_KEY)).getJsonArray("refused")).isEmpty();
      String next = submitSleep(s);
      assertThat(settledReceipt(s, next).getJsonArray("runs").getJsonObject(0).getJsonObject("receipt").getString("nodePublicKey"))
          .isEqualTo(newKey);
    }
  }

  private int verify(JsonObject answer, String... pinned) throws Exception {
    Path file = dir.resolve("answer.json");
    Files.writeString(file, answer.encode());
    String[] args = new String[2 + 2 * pinned.length];
    args[0] = "verify";
    args[1] = file.toString();
    for (int i = 0; i < pinned.length; i++) {
      args[2 + 2 * i] = "--node-key";
      args[3 + 2 * i] = pinned[i];
    }
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    return ReceiptCli.run(args, System.in, new PrintStream(out, true), new PrintStream(out, true));
  }
}
