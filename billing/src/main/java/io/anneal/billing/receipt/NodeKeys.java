package io.anneal.billing.receipt;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PublicKey;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Base64;
import java.util.Optional;

/** A node's Ed25519 key pair, kept under the data dir so that it survives restarts. */
public final class NodeKeys {
  private NodeKeys() {}

  /** The key pair's files under the data dir: the private key (PKCS#8, owner-only) and the public key (X.509). */
  public static final String PRIVATE_FILE = "node-ed25519.pk8";
  public static final String PUBLIC_FILE = "node-ed25519.pub";
  /** A rotation's new key pair, written before the ledger learns of it and promoted after (ADR 18). */
  public static final String NEXT_PRIVATE_FILE = "node-ed25519.next.pk8";
  public static final String NEXT_PUBLIC_FILE = "node-ed25519.next.pub";

  /**
   * Held by a key rotation from writing its new pair until the ledger has it and the files are in
   * place, and by a backup while it takes the database and the key files: a backup then holds a
   * ledger and key files that belong together (one process: the embedded store's).
   */
  public static final java.util.concurrent.Semaphore FILES_IN_USE = new java.util.concurrent.Semaphore(1);

  public static KeyPair loadOrCreate(Path dir) throws IOException {
    Optional<KeyPair> kp = load(dir, PRIVATE_FILE, PUBLIC_FILE);
    if (kp.isPresent()) return kp.get();
    KeyPair created = generate();
    write(dir, created, PRIVATE_FILE, PUBLIC_FILE);
    return created;
  }

  public static KeyPair generate() {
    try {
      return KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("this JDK has no Ed25519", e);
    }
  }

  /** A rotation's first step: the new pair written beside the current one, which stays in use. */
  public static void writeNext(Path dir, KeyPair next) throws IOException {
    write(dir, next, NEXT_PRIVATE_FILE, NEXT_PUBLIC_FILE);
  }

  /** The key pair a rotation left written but not promoted, if any. */
  public static Optional<KeyPair> next(Path dir) throws IOException {
    return load(dir, NEXT_PRIVATE_FILE, NEXT_PUBLIC_FILE);
  }

  /**
   * A rotation's last step, once the ledger has the new key: the new pair replaces the current one
   * (each file moved atomically, the public key last, so that a crash between the two moves leaves a
   * pair that {@link #finishRotation} completes). The old private key is gone with it.
   */
  public static void promoteNext(Path dir) throws IOException {
    Files.move(dir.resolve(NEXT_PRIVATE_FILE), dir.resolve(PRIVATE_FILE), StandardCopyOption.REPLACE_EXISTING,
        StandardCopyOption.ATOMIC_MOVE);
    Files.move(dir.resolve(NEXT_PUBLIC_FILE), dir.resolve(PUBLIC_FILE), StandardCopyOption.REPLACE_EXISTING,
        StandardCopyOption.ATOMIC_MOVE);
  }

  /** A rotation that did not reach the ledger: its new pair is dropped. */
  public static void discardNext(Path dir) throws IOException {
    Files.deleteIfExists(dir.resolve(NEXT_PRIVATE_FILE));
    Files.deleteIfExists(dir.resolve(NEXT_PUBLIC_FILE));
  }

  /**
   * At start, before the key is loaded: a rotation cut short by a crash is completed when the ledger
   * already has its new key as the node's ({@code registered}), and dropped otherwise. Returns what
   * was done ({@code "promoted"}, {@code "discarded"}), or empty when no rotation was pending.
   */
  public static Optional<String> finishRotation(Path dir, Optional<String> registered) throws IOException {
    boolean nextPriv = Files.exists(dir.resolve(NEXT_PRIVATE_FILE));
    boolean nextPub = Files.exists(dir.resolve(NEXT_PUBLIC_FILE));
    if (!nextPriv && !nextPub) return Optional.empty();
    if (!nextPriv) {
      // crashed between the two moves of promoteNext: the private key is in place, the public one follows
      Files.move(dir.resolve(NEXT_PUBLIC_FILE), dir.resolve(PUBLIC_FILE), StandardCopyOption.REPLACE_EXISTING,
          StandardCopyOption.ATOMIC_MOVE);
      return Optional.of("promoted");
    }
    Optional<KeyPair> next = nextPub ? next(dir) : Optional.empty();
    if (next.isPresent() && registered.isPresent() && registered.get().equals(encodePublic(next.get().getPublic()))) {
      promoteNext(dir);
      return Optional.of("promoted");
    }
    discardNext(dir);
    return Optional.of("discarded");
  }

  private static Optional<KeyPair> load(Path dir, String privName, String pubName) throws IOException {
    Path priv = dir.resolve(privName);
    Path pub = dir.resolve(pubName);
    if (!Files.exists(priv) || !Files.exists(pub)) return Optional.empty();
    try {
      KeyFactory kf = KeyFactory.getInstance("Ed25519");
      return Optional.of(new KeyPair(
          kf.generatePublic(new X509EncodedKeySpec(Files.readAllBytes(pub))),
          kf.generatePrivate(new PKCS8EncodedKeySpec(Files.readAllBytes(priv)))));
    } catch (GeneralSecurityException e) {
      throw new IOException("cannot read the node key " + priv + " / " + pub, e);
    }
  }

  private static void write(Path dir, KeyPair kp, String privName, String pubName) throws IOException {
    Files.createDirectories(dir);
    Path priv = dir.resolve(privName);
    // owner-only from its creation: the private key is never readable by others, not even for a moment
    Files.deleteIfExists(priv);
    try {
      Files.createFile(priv, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    } catch (UnsupportedOperationException e) {
      Files.createFile(priv); // not a POSIX file system; the key stays readable by the owner's defaults
    }
    Files.write(priv, kp.getPrivate().getEncoded(), StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.SYNC);
    Files.write(dir.resolve(pubName), kp.getPublic().getEncoded(), StandardOpenOption.CREATE,
        StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.SYNC);
  }

  public static String encodePublic(PublicKey key) {
    return Base64.getEncoder().encodeToString(key.getEncoded());
  }

  public static PublicKey decodePublic(String b64) {
    try {
      return KeyFactory.getInstance("Ed25519").generatePublic(new X509EncodedKeySpec(Base64.getDecoder().decode(b64)));
    } catch (GeneralSecurityException | IllegalArgumentException e) {
      throw new IllegalArgumentException("not an Ed25519 public key", e);
    }
  }
}
