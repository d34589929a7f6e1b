package io.anneal.billing.tools;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.anneal.billing.merkle.MerkleTree;
import io.anneal.billing.receipt.NodeKeys;
import io.anneal.billing.receipt.Receipt;
import io.anneal.billing.receipt.ReceiptSigner;
import io.anneal.billing.receipt.SignedReceipt;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code anneal receipt verify}: exit 0 on a good answer, 1 on a failed check, 2 on input it cannot check, and says where. */
class ReceiptCliTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HexFormat HEX = HexFormat.of();
  @TempDir Path dir;
  private KeyPair node;
  private ObjectNode answer;
  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private final ByteArrayOutputStream err = new ByteArrayOutputStream();

  /** The receipts API's answer for a job preempted once: two runs, the first in a closed epoch, the last in an open one. */
  @BeforeEach
  void answerOfAPreemptedJob() throws Exception {
    node = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    ReceiptSigner signer = new ReceiptSigner(node.getPrivate());
    SignedReceipt first = signer.sign(List.of(receipt(1, 400), receipt(9, 1))).get(0);
    SignedReceipt last = signer.sign(List.of(receipt(2, 600))).get(0);
    MerkleTree epoch = MerkleTree.ofLeafHashes(List.of(MerkleTree.leafHash(new byte[] {1}), first.leafHash()));
    answer = JSON.createObjectNode().put("jobId", "j1").put("state", "SETTLED").put("settled", true);
    ArrayNode runs = answer.putArray("runs");
    runs.addObject().<ObjectNode>set("receipt", receiptJson(first)).set("epoch", JSON.createObjectNode().put("epoch", 7)
        .put("leafHash", HEX.formatHex(first.leafHash())).put("closed", true).put("merkleRoot", HEX.formatHex(epoch.root()))
        .put("proof", MerkleTree.formatProof(epoch.proof(1))));
    runs.addObject().<ObjectNode>set("receipt", receiptJson(last)).set("epoch", JSON.createObjectNode().put("epoch", 8)
        .put("leafHash", HEX.formatHex(last.leafHash())).put("closed", false));
  }

  private static Receipt receipt(int attempt, long deviceNanos) {
    return new Receipt("j1/" + attempt, "j1", "t1", "n1", "H100", 1, false, deviceNanos, deviceNanos, 0, 1, 2, "SUCCEEDED", "ab");
  }

  private ObjectNode receiptJson(SignedReceipt r) {
    return JSON.createObjectNode().put("receiptId", r.receipt().receiptId()).put("nodeId", "n1")
        .put("body", new String(r.receipt().canonicalBytes(), StandardCharsets.UTF_8)).put("batchRoot", HEX.formatHex(r.batchRoot()))
        .put("proof", MerkleTree.formatProof(r.proof())).put("signature", Base64.getEncoder().encodeToString(r.signature()))
        .put("nodePublicKey", NodeKeys.encodePublic(node.getPublic()));
  }

  private int run(String... args) throws Exception {
    out.reset();
    err.reset();
    Path file = dir.resolve("answer.json");
    Files.writeString(file, JSON.writeValueAsString(answer));
    String[] full = new String[args.length + 2];
    full[0] = "verify";
    full[1] = file.toString();
    System.arraycopy(args, 0, full, 2, args.length);
    return ReceiptCli.run(full, new ByteArrayInputStream(new byte[0]), new PrintStream(out, true), new PrintStream(err, true));
  }

  @Test
  void aFileOrKeyThatCannotBeReadIsNamed() throws Exception {
    Path missing = dir.resolve("missing.json");
    out.reset();
    err.reset();
    int rc = ReceiptCli.run(new String[] {"verify", missing.toString()}, new ByteArrayInputStream(new byte[0]),
        new PrintStream(out, true), new PrintStream(err, true));
    assertThat(rc).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8)).contains("cannot read " + missing + ": no such file");
    assertThat(run("--node-key", "n1=" + dir.resolve("no-key.pem"))).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8)).contains("--node-key: not Base64 and not a file: " + dir.resolve("no-key.pem"));
  }

  private String out() {
    return out.toString(StandardCharsets.UTF_8);
  }

  @Test
  void everyRunOfTheJobIsCheckedAndAnOpenEpochIsPendingNotFailed() throws Exception {
    assertThat(run()).as(out() + err).isZero();
    assertThat(out()).contains("run j1/1 (epoch 7)", "run j1/2 (epoch 8)", "2 run(s), 9 check(s) passed, 0 failed, 1 pending")
        .contains("taken from the answer itself").doesNotContain("FAIL");
  }

  @Test
  void aPinnedKeyFileIsUsedAndAServiceShowingAnotherKeyFails() throws Exception {
    Path pub = dir.resolve("node-ed25519.pub");
    Files.write(pub, node.getPublic().getEncoded());
    assertThat(run("--node-key", "n1=" + pub)).as(out()).isZero();
    assertThat(out()).contains("PASS     node key: pinned sha256:");
    String other = NodeKeys.encodePublic(KeyPairGenerator.getInstance("Ed25519").generateKeyPair().getPublic());
    ((ObjectNode) answer.get("runs").get(1).get("receipt")).put("nodePublicKey", other);
    assertThat(run("--node-key", pub.toString())).isEqualTo(1);
    assertThat(out()).containsOnlyOnce("FAIL     node key: the service shows key");
    // the signature itself is checked with the pinned key, which signed it
    assertThat(out()).doesNotContain("FAIL     signed by");
  }

  @Test
  void aPinnedKeyMayBeGivenInlineWithOrWithoutItsNode() throws Exception {
    String key = NodeKeys.encodePublic(node.getPublic());
    assertThat(key).endsWith("=");
    assertThat(run("--node-key", key)).as(out() + err).isZero();
    assertThat(out()).contains("PASS     node key: pinned sha256:");
    assertThat(run("--node-key", "n1=" + key)).as(out() + err).isZero();
    assertThat(out()).contains("PASS     node key: pinned sha256:");
    // pinned for another node only: n1's runs use the key the answer shows, and say so
    assertThat(run("--node-key", "n2=" + key)).as(out() + err).isZero();
    assertThat(out()).contains("taken from the answer itself").doesNotContain("pinned");
  }

  @Test
  void aRotatedNodeMayBePinnedWithAllItsKeysAndEachRunPassesWithTheOneThatSignedIt() throws Exception {
    // the node's key was rotated between the two runs: the last run is signed with the new one
    KeyPair rotated = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    SignedReceipt last = new ReceiptSigner(rotated.getPrivate()).sign(List.of(receipt(2, 600))).get(0);
    ObjectNode lastReceipt = receiptJson(last).put("nodePublicKey", NodeKeys.encodePublic(rotated.getPublic()))
        .put("nodeKeyState", "current");
    ((ObjectNode) answer.get("runs").get(0).get("receipt")).put("nodeKeyState", "retired");
    ((ObjectNode) answer.get("runs").get(1)).set("receipt", lastReceipt);
    String oldKey = NodeKeys.encodePublic(node.getPublic());
    String newKey = NodeKeys.encodePublic(rotated.getPublic());
    assertThat(run("--node-key", "n1=" + oldKey, "--node-key", "n1=" + newKey)).as(out() + err).isZero();
    assertThat(out()).contains("pinned " + io.anneal.billing.receipt.ReceiptCheck.fingerprint(oldKey) + " (the node has retired it since",
        "pinned " + io.anneal.billing.receipt.ReceiptCheck.fingerprint(newKey));
    // the same answer without the key shown: the pinned key that signed each batch is found
    ((ObjectNode) answer.get("runs").get(0).get("receipt")).remove("nodePublicKey");
    lastReceipt.remove("nodePublicKey");
    assertThat(run("--node-key", "n1=" + oldKey, "--node-key", "n1=" + newKey)).as(out() + err).isZero();
    // pinned with the old key only: the run signed with the new one fails, and says the key is not among those pinned
    lastReceipt.put("nodePublicKey", newKey);
    assertThat(run("--node-key", "n1=" + oldKey)).isEqualTo(1);
    assertThat(out()).contains("the service shows key " + io.anneal.billing.receipt.ReceiptCheck.fingerprint(newKey)
        + " for node n1, not the pinned " + io.anneal.billing.receipt.ReceiptCheck.fingerprint(oldKey));
  }

  @Test
  void aPinnedEpochRootMustBeTheAnswersOne() throws Exception {
    String root = answer.get("runs").get(0).get("epoch").get("merkleRoot").asText();
    assertThat(run("--epoch-root", "7=" + root.toUpperCase())).as(out()).isZero();
    assertThat(run("--epoch-root", "7=" + "ab".repeat(32))).isEqualTo(1);
    assertThat(out()).contains("FAIL     epoch root: epoch 7's root is " + root);
  }

  @Test
  void aTamperedBodyFails() throws Exception {
    ObjectNode first = (ObjectNode) answer.get("runs").get(0).get("receipt");
    first.put("body", first.get("body").asText().replace("\n400\n", "\n4000000\n"));
    assertThat(run()).isEqualTo(1);
    assertThat(out()).contains("FAIL     in its node's signed batch", "FAIL     in its accounting epoch", "2 run(s)");
  }

  @Test
  void inputThatCannotBeCheckedSaysWhereAndExitsTwo() throws Exception {
    ((ObjectNode) answer.get("runs").get(1).get("receipt")).remove("body");
    assertThat(run()).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8)).contains("runs[1].receipt.body: missing or not a string");
    answer = JSON.createObjectNode().put("jobId", "j1").put("state", "RUNNING").put("settled", false);
    assertThat(run()).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8)).contains("job j1 has no settled receipt yet (state RUNNING)");
    assertThat(ReceiptCli.run(new String[] {"verify", dir.resolve("none.json").toString()}, System.in,
        new PrintStream(out, true), new PrintStream(err, true))).isEqualTo(2);
    assertThat(run("--node-key", "%%%")).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8)).contains("--node-key: not Base64 and not a file");
  }

  @Test
  void readsTheAnswerFromStandardInput() throws Exception {
    byte[] doc = JSON.writeValueAsBytes(answer);
    int code = ReceiptCli.run(new String[] {"verify", "-"}, new ByteArrayInputStream(doc), new PrintStream(out, true),
        new PrintStream(err, true));
    assertThat(code).as(err.toString(StandardCharsets.UTF_8)).isZero();
    assertThat(out()).contains("2 run(s)");
  }
}
