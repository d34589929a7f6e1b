package io.anneal.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Sealed backups open only with their passphrase and only as they were: changed, reordered or cut short, they are refused. */
class BackupCryptoTest {
  private static final char[] PASS = "correct horse battery".toCharArray();
  @TempDir Path dir;

  private Path plain(int size) throws IOException {
    byte[] b = new byte[size];
    new Random(size).nextBytes(b);
    return Files.write(dir.resolve("plain-" + size), b);
  }

  @Test
  void whatIsSealedOpensAsItWasWhateverItsSize() throws Exception {
    for (int size : new int[] {0, 1, BackupCrypto.CHUNK - 1, BackupCrypto.CHUNK, BackupCrypto.CHUNK + 1, 5 * BackupCrypto.CHUNK / 2}) {
      Path p = plain(size);
      Path sealed = dir.resolve("sealed-" + size);
      Path opened = dir.resolve("opened-" + size);
      BackupCrypto.seal(p, sealed, PASS);
      assertThat(BackupCrypto.isSealed(sealed)).isTrue();
      assertThat(BackupCrypto.isSealed(p)).isFalse();
      BackupCrypto.open(sealed, opened, PASS);
      assertThat(Files.mismatch(p, opened)).as("size %d", size).isEqualTo(-1);
    }
  }

  @Test
  void aWrongPassphraseOrAChangedReorderedOrTruncatedBackupIsRefusedAndLeavesNothing() throws Exception {
    Path p = plain(5 * BackupCrypto.CHUNK / 2); // three chunks
    Path sealed = dir.resolve("sealed");
    BackupCrypto.seal(p, sealed, PASS);
    Path opened = dir.resolve("opened");
    assertThatThrownBy(() -> BackupCrypto.open(sealed, opened, "wrong passphrase!".toCharArray()))
        .isInstanceOf(IOException.class).hasMessageContaining("wrong passphrase");
    assertThat(opened).doesNotExist();

    byte[] bytes = Files.readAllBytes(sealed);
    int header = 16 + 16 + 4 + 8;
    int chunk = 4 + BackupCrypto.CHUNK + 16;

    byte[] changed = bytes.clone();
    changed[header + chunk + 100] ^= 1; // inside the second chunk
    Path c = Files.write(dir.resolve("changed"), changed);
    assertThatThrownBy(() -> BackupCrypto.open(c, opened, PASS)).hasMessageContaining("changed at chunk 1");
    assertThat(opened).doesNotExist();

    // the first two chunks swapped
    byte[] swapped = bytes.clone();
    System.arraycopy(bytes, header + chunk, swapped, header, chunk);
    System.arraycopy(bytes, header, swapped, header + chunk, chunk);
    Path s = Files.write(dir.resolve("swapped"), swapped);
    assertThatThrownBy(() -> BackupCrypto.open(s, opened, PASS)).isInstanceOf(IOException.class);

    // the last chunk dropped: the second one is not marked last
    byte[] truncated = java.util.Arrays.copyOf(bytes, header + 2 * chunk);
    Path t = Files.write(dir.resolve("truncated"), truncated);
    assertThatThrownBy(() -> BackupCrypto.open(t, opened, PASS)).hasMessageContaining("cut short");
    assertThat(opened).doesNotExist();

    // something after the last chunk
    byte[] longer = java.util.Arrays.copyOf(bytes, bytes.length + 4);
    ByteBuffer.wrap(longer, bytes.length, 4).putInt(7);
    Path l = Files.write(dir.resolve("longer"), longer);
    assertThatThrownBy(() -> BackupCrypto.open(l, opened, PASS)).hasMessageContaining("after its last chunk");
  }
}
