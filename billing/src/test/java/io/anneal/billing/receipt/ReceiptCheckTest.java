package io.anneal.billing.receipt;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.merkle.MerkleTree;
import io.anneal.billing.receipt.ReceiptCheck.Outcome;
import java.nio.charset.StandardCharsets;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Each check of a settled run passes on what a node signed and an epoch closed, and fails on each kind of tampering. */
class ReceiptCheckTest {
  private static final HexFormat HEX = HexFormat.of();
  private KeyPair node;
  private ReceiptCheck.Run good;

  static Receipt receipt(String job, int attempt, long deviceNanos) {
    return new Receipt(job + "/" + attempt, job, "t1", "n1", "H100", 2, false, deviceNanos, deviceNanos, 0, 1, 2, "SUCCEEDED", "ab");
  }

  @BeforeEach
  void signAndCloseAnEpoch() throws Exception {
    node = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    // a batch of three signed together; the epoch holds them and two more
    List<SignedReceipt> batch = new ReceiptSigner(node.getPrivate())
        .sign(List.of(receipt("j1", 0, 5), receipt("j2", 1, 7_000_000_000L), receipt("j3", 0, 9)));
    List<byte[]> epochLeaves = new ArrayList<>();
    batch.forEach(r -> epochLeaves.add(r.leafHash()));
    epochLeaves.add(MerkleTree.leafHash("other".getBytes(StandardCharsets.UTF_8)));
    epochLeaves.add(MerkleTree.leafHash("another".getBytes(StandardCharsets.UTF_8)));
    MerkleTree epoch = MerkleTree.ofLeafHashes(epochLeaves);
    SignedReceipt r = batch.get(1);
    good = new ReceiptCheck.Run("j2", "j2/1", "n1", new String(r.receipt().canonicalBytes(), StandardCharsets.UTF_8),
        HEX.formatHex(r.batchRoot()), MerkleTree.formatProof(r.proof()), Base64.getEncoder().encodeToString(r.signature()),
        NodeKeys.encodePublic(node.getPublic()), HEX.formatHex(r.leafHash()), true, MerkleTree.formatProof(epoch.proof(1)),
        HEX.formatHex(epoch.root()));
  }

  private static List<Outcome> outcomes(ReceiptCheck.Run r) {
    return ReceiptCheck.run(r).stream().map(ReceiptCheck.Check::outcome).toList();
  }

  private ReceiptCheck.Run withBody(UnaryOperator<String> change) {
    return new ReceiptCheck.Run(good.jobId(), good.receiptId(), good.nodeId(), change.apply(good.body()), good.batchRoot(),
        good.proof(), good.signature(), good.nodePublicKey(), null, true, good.epochProof(), good.epochRoot());
  }

  @Test
  void aSignedRunInAClosedEpochPassesEveryCheck() {
    List<ReceiptCheck.Check> checks = ReceiptCheck.run(good);
    assertThat(checks).extracting(ReceiptCheck.Check::outcome).containsExactly(Outcome.PASS, Outcome.PASS, Outcome.PASS, Outcome.PASS);
    assertThat(checks.get(0).detail()).contains("7000000000 ns", "2 GPU(s) of class H100", "SUCCEEDED");
  }

  @Test
  void moreDeviceTimeInTheBodyIsInNeitherTheSignedBatchNorTheEpoch() {
    ReceiptCheck.Run inflated = withBody(b -> b.replace("\n7000000000\n", "\n9000000000\n"));
    assertThat(inflated.body()).isNotEqualTo(good.body());
    assertThat(outcomes(inflated)).containsExactly(Outcome.PASS, Outcome.FAIL, Outcome.PASS, Outcome.FAIL);
  }

  @Test
  void aBodyOfAnotherJobOrNodeOrVersionFails() {
    assertThat(outcomes(withBody(b -> b.replace("\nj2\n", "\nj9\n"))).get(0)).isEqualTo(Outcome.FAIL);
    assertThat(outcomes(withBody(b -> b.replace("\nn1\n", "\nn2\n"))).get(0)).isEqualTo(Outcome.FAIL);
    assertThat(outcomes(withBody(b -> b.replace("anneal-receipt/1", "anneal-receipt/2"))).get(0)).isEqualTo(Outcome.FAIL);
    assertThat(outcomes(withBody(b -> b + "\nextra"))).first().isEqualTo(Outcome.FAIL);
  }

  @Test
  void anotherKeyOrAnAlteredSignatureDoesNotCheckOut() throws Exception {
    String otherKey = NodeKeys.encodePublic(KeyPairGenerator.getInstance("Ed25519").generateKeyPair().getPublic());
    ReceiptCheck.Run otherNode = new ReceiptCheck.Run(good.jobId(), good.receiptId(), good.nodeId(), good.body(), good.batchRoot(),
        good.proof(), good.signature(), otherKey, good.epochLeafHash(), true, good.epochProof(), good.epochRoot());
    assertThat(outcomes(otherNode)).containsExactly(Outcome.PASS, Outcome.PASS, Outcome.FAIL, Outcome.PASS);
    byte[] sig = Base64.getDecoder().decode(good.signature());
    sig[10] ^= 1;
    ReceiptCheck.Run altered = new ReceiptCheck.Run(good.jobId(), good.receiptId(), good.nodeId(), good.body(), good.batchRoot(),
        good.proof(), Base64.getEncoder().encodeToString(sig), good.nodePublicKey(), good.epochLeafHash(), true, good.epochProof(),
        good.epochRoot());
    assertThat(outcomes(altered).get(2)).isEqualTo(Outcome.FAIL);
    ReceiptCheck.Run notAKey = new ReceiptCheck.Run(good.jobId(), good.receiptId(), good.nodeId(), good.body(), good.batchRoot(),
        good.proof(), good.signature(), "bm90IGEga2V5", good.epochLeafHash(), true, good.epochProof(), good.epochRoot());
    assertThat(ReceiptCheck.run(notAKey).get(2).detail()).contains("unreadable node key");
  }

  @Test
  void anOpenEpochIsPendingAndAnotherEpochRootOrLeafFails() {
    ReceiptCheck.Run open = new ReceiptCheck.Run(good.jobId(), good.receiptId(), good.nodeId(), good.body(), good.batchRoot(),
        good.proof(), good.signature(), good.nodePublicKey(), good.epochLeafHash(), false, null, null);
    assertThat(outcomes(open)).containsExactly(Outcome.PASS, Outcome.PASS, Outcome.PASS, Outcome.PENDING);
    String flipped = good.epochRoot().replace(good.epochRoot().charAt(0), good.epochRoot().charAt(0) == 'a' ? 'b' : 'a');
    ReceiptCheck.Run otherRoot = new ReceiptCheck.Run(good.jobId(), good.receiptId(), good.nodeId(), good.body(), good.batchRoot(),
        good.proof(), good.signature(), good.nodePublicKey(), good.epochLeafHash(), true, good.epochProof(), flipped);
    assertThat(outcomes(otherRoot).get(3)).isEqualTo(Outcome.FAIL);
    ReceiptCheck.Run otherLeaf = new ReceiptCheck.Run(good.jobId(), good.receiptId(), good.nodeId(), good.body(), good.batchRoot(),
        good.proof(), good.signature(), good.nodePublicKey(), "00".repeat(32), true, good.epochProof(), good.epochRoot());
    assertThat(ReceiptCheck.run(otherLeaf).get(3).detail()).contains("files leaf 0000");
    ReceiptCheck.Run badProof = new ReceiptCheck.Run(good.jobId(), good.receiptId(), good.nodeId(), good.body(), good.batchRoot(),
        "X:zz", good.signature(), good.nodePublicKey(), good.epochLeafHash(), true, "L:nothex", good.epochRoot());
    assertThat(ReceiptCheck.run(badProof)).extracting(ReceiptCheck.Check::detail)
        .anySatisfy(d -> assertThat(d).contains("bad proof step 'X:zz'"))
        .anySatisfy(d -> assertThat(d).contains("not hexadecimal"));
  }
}
