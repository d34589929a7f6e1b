package io.anneal.gpu;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** SHA-256 digests of result arrays, identical on every backend for identical values. */
public final class Digests {
  private Digests() {}

  /** Hex SHA-256 over the IEEE-754 bits of {@code values}, little-endian. */
  public static String sha256(float[] values) {
    MessageDigest md = sha256();
    ByteBuffer buf = ByteBuffer.allocate(4096 * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : values) {
      if (!buf.hasRemaining()) {
        md.update(buf.array(), 0, buf.position());
        buf.clear();
      }
      buf.putFloat(v);
    }
    md.update(buf.array(), 0, buf.position());
    return HexFormat.of().formatHex(md.digest());
  }

  /** Hex SHA-256 of raw bytes. */
  public static String sha256(byte[] bytes) {
    return HexFormat.of().formatHex(sha256().digest(bytes));
  }

  static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("the JDK always has SHA-256", e);
    }
  }
}
