package io.anneal.api;

import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.net.PemKeyCertOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.util.HexFormat;
import java.util.List;
import javax.net.ssl.KeyManager;
import javax.net.ssl.X509KeyManager;

/**
 * The certificate and key the API serves HTTPS with (ADR 27), read from their PEM files as one pair:
 * checked to be usable and to belong together (the key signs what the certificate's public key verifies),
 * so that a renewal caught between writing the certificate and the key is not taken.
 *
 * @param options the pair as Vert.x takes it (the files' contents, not their paths: what was checked is served)
 * @param digest  SHA-256 over both files: a renewal changes it
 * @param leaf    the certificate presented to clients
 */
record ServingCertificate(PemKeyCertOptions options, String digest, X509Certificate leaf) {
  /** Key types a PEM private key may have, as {@link X509KeyManager#getServerAliases} names them. */
  private static final List<String> KEY_TYPES = List.of("RSA", "EC", "EdDSA", "Ed25519", "RSASSA-PSS");

  /** The SHA-256 of both files now (blocking). */
  static String digestOf(Path cert, Path key) throws Exception {
    return digest(Files.readAllBytes(cert), Files.readAllBytes(key));
  }

  private static String digest(byte[] cert, byte[] key) throws Exception {
    MessageDigest md = MessageDigest.getInstance("SHA-256");
    md.update(cert);
    md.update((byte) 0);
    md.update(key);
    return HexFormat.of().formatHex(md.digest());
  }

  /** Reads and checks the pair (blocking); the exception says what is wrong. */
  static ServingCertificate load(Vertx vertx, Path cert, Path key) throws Exception {
    byte[] c = Files.readAllBytes(cert);
    byte[] k = Files.readAllBytes(key);
    PemKeyCertOptions pem = new PemKeyCertOptions().setCertValue(Buffer.buffer(c)).setKeyValue(Buffer.buffer(k));
    X509KeyManager km = null;
    for (KeyManager m : pem.getKeyManagerFactory(vertx).getKeyManagers()) {
      if (m instanceof X509KeyManager x) km = x;
    }
    if (km == null) throw new IllegalArgumentException("no X.509 key in the files");
    String alias = null;
    for (String type : KEY_TYPES) {
      String[] aliases = km.getServerAliases(type, null);
      if (aliases != null && aliases.length > 0) {
        alias = aliases[0];
        break;
      }
    }
    if (alias == null) throw new IllegalArgumentException("no private key of a known type (RSA, EC, Ed25519)");
    X509Certificate[] chain = km.getCertificateChain(alias);
    if (chain == null || chain.length == 0) throw new IllegalArgumentException("no certificate");
    checkPair(km.getPrivateKey(alias), chain[0]);
    return new ServingCertificate(pem, digest(c, k), chain[0]);
  }

  /** The private key signs what the certificate's public key verifies, or the pair is refused. */
  private static void checkPair(PrivateKey key, X509Certificate cert) throws Exception {
    String alg = switch (key.getAlgorithm()) {
      case "RSA" -> "SHA256withRSA";
      case "EC" -> "SHA256withECDSA";
      case "EdDSA", "Ed25519" -> "Ed25519";
      default -> null;
    };
    if (alg == null) return; // a type the JDK signs otherwise: the handshake will tell
    byte[] probe = new byte[32];
    new java.security.SecureRandom().nextBytes(probe);
    Signature s = Signature.getInstance(alg);
    s.initSign(key);
    s.update(probe);
    byte[] sig = s.sign();
    Signature v = Signature.getInstance(alg);
    v.initVerify(cert.getPublicKey());
    v.update(probe);
    if (!v.verify(sig)) {
      throw new IllegalArgumentException("the private key does not belong to the certificate (" + cert.getSubjectX500Principal() + ")");
    }
  }
}
