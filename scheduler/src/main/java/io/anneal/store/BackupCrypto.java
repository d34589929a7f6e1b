package io.anneal.store;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.Arrays;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.PBEKeySpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * Backups sealed with a passphrase (they hold the node's private key and the admin key): AES-256-GCM
 * in chunks of 1 MiB, so that neither side holds a whole backup in memory, with a key derived from
 * the passphrase (PBKDF2-HMAC-SHA256). Each chunk's number, and whether it is the last, are
 * authenticated with it: a chunk changed, moved, dropped or cut off is refused, as is a wrong
 * passphrase.
 *
 * <p>Layout: {@code ANNEAL-BACKUP-1\n}, salt (16 bytes), PBKDF2 iterations (int), nonce prefix
 * (8 bytes), then chunks: length (int) and ciphertext with its tag, the last one marked final.
 */
public final class BackupCrypto {
  private static final byte[] MAGIC = "ANNEAL-BACKUP-1\n".getBytes(StandardCharsets.US_ASCII);
  static final int CHUNK = 1 << 20;
  /** PBKDF2-HMAC-SHA256 iterations (OWASP's 2023 advice); a file may name more, up to {@link #MAX_ITERATIONS}. */
  private static final int ITERATIONS = 600_000;
  private static final int MAX_ITERATIONS = 10_000_000;
  private static final int TAG_BITS = 128;

  private BackupCrypto() {}

  /** Whether a file starts as a sealed backup does. */
  public static boolean isSealed(Path file) throws IOException {
    try (InputStream in = Files.newInputStream(file)) {
      return Arrays.equals(in.readNBytes(MAGIC.length), MAGIC);
    }
  }

  /** Seals {@code plain} into {@code out} (created, owner-only) with {@code passphrase}. */
  public static void seal(Path plain, Path out, char[] passphrase) throws IOException {
    SecureRandom random = new SecureRandom();
    byte[] salt = new byte[16];
    byte[] prefix = new byte[8];
    random.nextBytes(salt);
    random.nextBytes(prefix);
    SecretKeySpec key = key(passphrase, salt, ITERATIONS);
    try (InputStream in = Files.newInputStream(plain);
        DataOutputStream o = new DataOutputStream(new java.io.BufferedOutputStream(Files.newOutputStream(out)))) {
      o.write(MAGIC);
      o.write(salt);
      o.writeInt(ITERATIONS);
      o.write(prefix);
      byte[] buf = new byte[CHUNK];
      int n = in.readNBytes(buf, 0, CHUNK);
      long index = 0;
      while (true) {
        // read one chunk ahead: the last chunk is the one with nothing after it
        byte[] next = new byte[CHUNK];
        int m = n < CHUNK ? 0 : in.readNBytes(next, 0, CHUNK);
        boolean last = m == 0;
        byte[] sealed = cipher(Cipher.ENCRYPT_MODE, key, prefix, index, last).doFinal(buf, 0, n);
        o.writeInt(sealed.length);
        o.write(sealed);
        if (last) break;
        buf = next;
        n = m;
        index++;
      }
    } catch (GeneralSecurityException e) {
      throw new IOException("cannot seal the backup: " + e.getMessage(), e);
    }
  }

  /**
   * Opens a sealed backup into {@code out}. Fails, writing nothing usable, on a wrong passphrase or a
   * backup changed or cut short; {@code out} is deleted then.
   */
  public static void open(Path sealed, Path out, char[] passphrase) throws IOException {
    boolean done = false;
    try (DataInputStream in = new DataInputStream(new java.io.BufferedInputStream(Files.newInputStream(sealed)));
        OutputStream o = Files.newOutputStream(out)) {
      byte[] magic = in.readNBytes(MAGIC.length);
      if (!Arrays.equals(magic, MAGIC)) throw new IOException(sealed + " is not a sealed Anneal backup");
      byte[] salt = in.readNBytes(16);
      int iterations = in.readInt();
      byte[] prefix = in.readNBytes(8);
      if (salt.length != 16 || prefix.length != 8 || iterations < 1 || iterations > MAX_ITERATIONS) {
        throw new IOException(sealed + ": damaged header");
      }
      SecretKeySpec key = key(passphrase, salt, iterations);
      for (long index = 0; ; index++) {
        int len;
        try {
          len = in.readInt();
        } catch (EOFException e) {
          throw new IOException(sealed + " is cut short: it ends after chunk " + index + " without its last one");
        }
        if (len < TAG_BITS / 8 || len > CHUNK + TAG_BITS / 8) throw new IOException(sealed + ": damaged at chunk " + index);
        byte[] chunk = in.readNBytes(len);
        if (chunk.length != len) throw new IOException(sealed + " is cut short inside chunk " + index);
        byte[] plain;
        boolean last;
        try {
          plain = cipher(Cipher.DECRYPT_MODE, key, prefix, index, false).doFinal(chunk);
          last = false;
        } catch (AEADBadTagException notMiddle) {
          try {
            plain = cipher(Cipher.DECRYPT_MODE, key, prefix, index, true).doFinal(chunk);
            last = true;
          } catch (AEADBadTagException e) {
            throw new IOException(index == 0 ? "wrong passphrase, or " + sealed + " was changed"
                : sealed + " was changed at chunk " + index);
          }
        }
        o.write(plain);
        if (last) {
          if (in.read() != -1) throw new IOException(sealed + " has data after its last chunk");
          done = true;
          return;
        }
      }
    } catch (GeneralSecurityException e) {
      throw new IOException("cannot open the backup: " + e.getMessage(), e);
    } finally {
      if (!done) Files.deleteIfExists(out);
    }
  }

  private static SecretKeySpec key(char[] passphrase, byte[] salt, int iterations) throws IOException {
    try {
      PBEKeySpec spec = new PBEKeySpec(passphrase, salt, iterations, 256);
      byte[] k = SecretKeyFactory.getInstance("PBKDF2WithHmacSHA256").generateSecret(spec).getEncoded();
      spec.clearPassword();
      return new SecretKeySpec(k, "AES");
    } catch (GeneralSecurityException e) {
      throw new IOException("cannot derive the backup key: " + e.getMessage(), e);
    }
  }

  private static Cipher cipher(int mode, SecretKeySpec key, byte[] prefix, long index, boolean last)
      throws GeneralSecurityException {
    if (index > 0xFFFF_FFFFL) throw new GeneralSecurityException("backup too large");
    byte[] nonce = ByteBuffer.allocate(12).put(prefix).putInt((int) index).array();
    Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
    c.init(mode, key, new GCMParameterSpec(TAG_BITS, nonce));
    c.updateAAD(ByteBuffer.allocate(9).putLong(index).put((byte) (last ? 1 : 0)).array());
    return c;
  }
}
