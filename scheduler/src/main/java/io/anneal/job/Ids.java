package io.anneal.job;

import java.security.SecureRandom;
import java.util.HexFormat;

/**
 * Identifiers unique across nodes without coordination: 48 bits of milliseconds then 80 random
 * bits, as 32 hex characters (time-ordered like UUIDv7, so inserts stay index-friendly).
 */
public final class Ids {
  private static final SecureRandom RANDOM = new SecureRandom();

  private Ids() {}

  public static String next(String prefix) {
    byte[] b = new byte[16];
    long ms = System.currentTimeMillis();
    for (int i = 5; i >= 0; i--) {
      b[i] = (byte) ms;
      ms >>>= 8;
    }
    byte[] r = new byte[10];
    RANDOM.nextBytes(r);
    System.arraycopy(r, 0, b, 6, 10);
    return prefix + HexFormat.of().formatHex(b);
  }
}
