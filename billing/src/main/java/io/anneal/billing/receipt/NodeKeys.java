package io.anneal.billing.receipt;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
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

/** A node's Ed25519 key pair, kept under the data dir so that it survives restarts. */
public final class NodeKeys {
  private NodeKeys() {}

  public static KeyPair loadOrCreate(Path dir) throws IOException {
    Path priv = dir.resolve("node-ed25519.pk8");
    Path pub = dir.resolve("node-ed25519.pub");
    try {
      KeyFactory kf = KeyFactory.getInstance("Ed25519");
      if (Files.exists(priv) && Files.exists(pub)) {
        return new KeyPair(
            kf.generatePublic(new X509EncodedKeySpec(Files.readAllBytes(pub))),
            kf.generatePrivate(new PKCS8EncodedKeySpec(Files.readAllBytes(priv))));
      }
      KeyPair kp = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
      Files.createDirectories(dir);
      Files.write(pub, kp.getPublic().getEncoded());
      Files.write(priv, kp.getPrivate().getEncoded(), StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING);
      try {
        Files.setPosixFilePermissions(priv, PosixFilePermissions.fromString("rw-------"));
      } catch (UnsupportedOperationException ignored) {
        // not a POSIX file system; the key stays readable by the owner's defaults
      }
      return kp;
    } catch (GeneralSecurityException e) {
      throw new IOException("cannot load or create the node key in " + dir, e);
    }
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
