package io.anneal.billing.merkle;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;

/**
 * A binary SHA-256 Merkle tree in the style of RFC 6962: leaves are hashed as {@code H(0x00 ||
 * data)}, inner nodes as {@code H(0x01 || left || right)}, and an odd node at the end of a level is
 * promoted unchanged. The domain prefixes keep a leaf from ever passing for an inner node.
 */
public final class MerkleTree {
  private static final HexFormat HEX = HexFormat.of();
  private final List<byte[][]> levels = new ArrayList<>();

  /** One step of an inclusion proof: the sibling hash and whether it sits on the left. */
  public record Step(byte[] sibling, boolean siblingOnLeft) {
    public Step {
      sibling = sibling.clone();
    }
  }

  private MerkleTree(byte[][] leafHashes) {
    if (leafHashes.length == 0) throw new IllegalArgumentException("a Merkle tree needs at least one leaf");
    byte[][] level = leafHashes;
    levels.add(level);
    while (level.length > 1) {
      byte[][] up = new byte[(level.length + 1) / 2][];
      for (int i = 0; i < level.length; i += 2) {
        up[i / 2] = i + 1 < level.length ? node(level[i], level[i + 1]) : level[i];
      }
      levels.add(up);
      level = up;
    }
  }

  /** Builds the tree over already-hashed leaves ({@link #leafHash}). */
  public static MerkleTree ofLeafHashes(List<byte[]> leafHashes) {
    return new MerkleTree(leafHashes.toArray(new byte[0][]));
  }

  public byte[] root() {
    return levels.get(levels.size() - 1)[0].clone();
  }

  public int size() {
    return levels.get(0).length;
  }

  /** The inclusion proof of leaf {@code index}, from the leaf up. */
  public List<Step> proof(int index) {
    if (index < 0 || index >= size()) throw new IndexOutOfBoundsException(index);
    List<Step> steps = new ArrayList<>();
    int i = index;
    for (int l = 0; l < levels.size() - 1; l++) {
      byte[][] level = levels.get(l);
      int sibling = (i % 2 == 0) ? i + 1 : i - 1;
      if (sibling < level.length) steps.add(new Step(level[sibling], sibling < i));
      i /= 2;
    }
    return steps;
  }

  /** Recomputes the root from a leaf hash and its proof; true when it equals {@code root}. */
  public static boolean verify(byte[] leafHash, List<Step> proof, byte[] root) {
    byte[] h = leafHash;
    for (Step s : proof) {
      h = s.siblingOnLeft() ? node(s.sibling(), h) : node(h, s.sibling());
    }
    return MessageDigest.isEqual(h, root);
  }

  /** A proof as text: {@code L:<hex>} or {@code R:<hex>} per step, from the leaf up, joined by commas. */
  public static String formatProof(List<Step> proof) {
    StringBuilder sb = new StringBuilder();
    for (Step s : proof) {
      if (sb.length() > 0) sb.append(',');
      sb.append(s.siblingOnLeft() ? "L:" : "R:").append(HEX.formatHex(s.sibling()));
    }
    return sb.toString();
  }

  /** The steps of {@link #formatProof}'s text; empty for an empty text (a tree of one leaf). */
  public static List<Step> parseProof(String text) {
    List<Step> out = new ArrayList<>();
    if (text == null || text.isEmpty()) return out;
    for (String part : text.split(",", -1)) {
      if (part.length() < 3 || part.charAt(1) != ':' || (part.charAt(0) != 'L' && part.charAt(0) != 'R')) {
        throw new IllegalArgumentException("bad proof step '" + part + "' (expected L:<hex> or R:<hex>)");
      }
      try {
        out.add(new Step(HEX.parseHex(part.substring(2)), part.charAt(0) == 'L'));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("bad proof step '" + part + "': not hexadecimal");
      }
    }
    return out;
  }

  public static byte[] leafHash(byte[] data) {
    MessageDigest md = sha256();
    md.update((byte) 0x00);
    md.update(data);
    return md.digest();
  }

  static byte[] node(byte[] left, byte[] right) {
    MessageDigest md = sha256();
    md.update((byte) 0x01);
    md.update(left);
    md.update(right);
    return md.digest();
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override
  public String toString() {
    return "MerkleTree[" + size() + " leaves, root " + Arrays.toString(root()) + "]";
  }
}
