package io.anneal.billing.bme;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Key of a queued conversion (bme-spec 9.3): (fromDenom, toDenom, owner by UTF-8 length then
 * bytes, tick, seq). The order is by owner first, not FIFO, as on chain.
 */
public record RequestId(Direction direction, String owner, long tick, long seq) implements Comparable<RequestId> {
  @Override
  public int compareTo(RequestId o) {
    int c = direction.fromDenom().compareTo(o.direction.fromDenom());
    if (c != 0) return c;
    c = direction.toDenom().compareTo(o.direction.toDenom());
    if (c != 0) return c;
    c = compareOwners(owner, o.owner);
    if (c != 0) return c;
    c = Long.compare(tick, o.tick);
    return c != 0 ? c : Long.compare(seq, o.seq);
  }

  /** {@code "uakt/uact/<owner>/<tick>/<seq>"}. */
  @Override
  public String toString() {
    return direction.fromDenom() + "/" + direction.toDenom() + "/" + owner + "/" + tick + "/" + seq;
  }

  /** bme-spec 9.3 ownerKey order: the UTF-8 byte length first, then the bytes unsigned-lexicographically. */
  public static int compareOwners(String x, String y) {
    byte[] a = x.getBytes(StandardCharsets.UTF_8);
    byte[] b = y.getBytes(StandardCharsets.UTF_8);
    int c = Integer.compare(a.length, b.length);
    return c != 0 ? c : Arrays.compareUnsigned(a, b);
  }
}
