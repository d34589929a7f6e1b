package io.anneal.billing.receipt;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyPair;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A node's key files, and a key rotation cut short at each of its steps, finished or dropped at the next start (ADR 18). */
class NodeKeysTest {
  @TempDir Path dir;

  private static String pub(KeyPair k) {
    return NodeKeys.encodePublic(k.getPublic());
  }

  @Test
  void aCreatedKeyIsKeptOwnerOnlyAndLoadedAgain() throws Exception {
    KeyPair k = NodeKeys.loadOrCreate(dir);
    assertThat(pub(NodeKeys.loadOrCreate(dir))).isEqualTo(pub(k));
    assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve(NodeKeys.PRIVATE_FILE)))).isEqualTo("rw-------");
    assertThat(NodeKeys.finishRotation(dir, Optional.of(pub(k)))).isEmpty();
  }

  @Test
  void aRotationTheLedgerTookIsFinished() throws Exception {
    KeyPair old = NodeKeys.loadOrCreate(dir);
    KeyPair next = NodeKeys.generate();
    NodeKeys.writeNext(dir, next);
    assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve(NodeKeys.NEXT_PRIVATE_FILE))))
        .isEqualTo("rw-------");
    assertThat(pub(NodeKeys.loadOrCreate(dir))).as("the current key until promoted").isEqualTo(pub(old));
    assertThat(NodeKeys.finishRotation(dir, Optional.of(pub(next)))).contains("promoted");
    assertThat(pub(NodeKeys.loadOrCreate(dir))).isEqualTo(pub(next));
    assertThat(NodeKeys.next(dir)).isEmpty();
  }

  @Test
  void aRotationTheLedgerNeverTookIsDropped() throws Exception {
    KeyPair old = NodeKeys.loadOrCreate(dir);
    NodeKeys.writeNext(dir, NodeKeys.generate());
    assertThat(NodeKeys.finishRotation(dir, Optional.of(pub(old)))).contains("discarded");
    assertThat(pub(NodeKeys.loadOrCreate(dir))).isEqualTo(pub(old));
    assertThat(Files.exists(dir.resolve(NodeKeys.NEXT_PRIVATE_FILE))).isFalse();
    assertThat(Files.exists(dir.resolve(NodeKeys.NEXT_PUBLIC_FILE))).isFalse();
  }

  @Test
  void aRotationStoppedWhileItsNewPairWasWrittenIsDropped() throws Exception {
    KeyPair old = NodeKeys.loadOrCreate(dir);
    NodeKeys.writeNext(dir, NodeKeys.generate());
    Files.delete(dir.resolve(NodeKeys.NEXT_PUBLIC_FILE)); // stopped after the private half
    assertThat(NodeKeys.finishRotation(dir, Optional.of(pub(old)))).contains("discarded");
    assertThat(pub(NodeKeys.loadOrCreate(dir))).isEqualTo(pub(old));
  }

  @Test
  void aRotationStoppedBetweenItsTwoMovesIsFinished() throws Exception {
    NodeKeys.loadOrCreate(dir);
    KeyPair next = NodeKeys.generate();
    NodeKeys.writeNext(dir, next);
    // promoteNext's first move done, the second not
    Files.move(dir.resolve(NodeKeys.NEXT_PRIVATE_FILE), dir.resolve(NodeKeys.PRIVATE_FILE),
        java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    assertThat(NodeKeys.finishRotation(dir, Optional.of(pub(next)))).contains("promoted");
    KeyPair loaded = NodeKeys.loadOrCreate(dir);
    assertThat(pub(loaded)).isEqualTo(pub(next));
    // the pair fits: what its private key signs, its public key verifies
    byte[] root = new byte[32];
    assertThat(ReceiptVerifier.rootSigned(root, new ReceiptSigner(loaded.getPrivate()).signRoot(root), loaded.getPublic())).isTrue();
  }
}
