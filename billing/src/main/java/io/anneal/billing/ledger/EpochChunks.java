package io.anneal.billing.ledger;

import io.anneal.billing.merkle.MerkleTree;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;

/**
 * An epoch's Merkle leaves kept in chunks of {@link #SIZE} at its close, so that a receipt's inclusion
 * proof reads one chunk and the chunks' roots instead of every settlement of the epoch.
 *
 * <p>The epoch tree ({@link MerkleTree}: pairs by index, an odd node at the end of a level promoted)
 * over leaves in receipt-id order has, at level {@code log2(SIZE)}, exactly the roots of the aligned
 * chunks of {@code SIZE} leaves (the last one possibly shorter), and above them the tree over those
 * roots. So a proof is the leaf's proof within its chunk followed by its chunk's proof among the
 * chunk roots: the same steps, and the same root, as a proof over all leaves. Pure: no I/O.
 */
public final class EpochChunks {
  /** Leaves per chunk, a power of two (a chunk row holds {@code SIZE} hashes, 64 hex characters each). */
  public static final int SIZE = 1024;
  /** Leaves an epoch's close reads per query: whole chunks, so that every chunk but the last is full. */
  public static final int PAGE = 8 * SIZE;
  private static final HexFormat HEX = HexFormat.of();

  /** One chunk: its number, the receipt id of its first leaf, its leaves (concatenated hex) and its root (hex). */
  public record Chunk(int chunk, String firstReceiptId, String leaves, String root) {}

  private EpochChunks() {}

  /** The chunks of an epoch's leaves, in receipt-id order ({@code receiptIds} parallel to {@code leaves}). */
  static List<Chunk> of(List<String> receiptIds, List<byte[]> leaves) {
    return of(0, receiptIds, leaves, SIZE);
  }

  /**
   * The chunks of a page of an epoch's leaves (a whole number of chunks, but for the epoch's last
   * page), numbered from {@code firstChunk}: how a close cuts each page it reads.
   */
  public static List<Chunk> ofPage(int firstChunk, List<String> receiptIds, List<byte[]> leaves) {
    return of(firstChunk, receiptIds, leaves, SIZE);
  }

  static List<Chunk> of(List<String> receiptIds, List<byte[]> leaves, int size) {
    return of(0, receiptIds, leaves, size);
  }

  private static List<Chunk> of(int firstChunk, List<String> receiptIds, List<byte[]> leaves, int size) {
    if (Integer.bitCount(size) != 1) throw new IllegalArgumentException("chunk size must be a power of two: " + size);
    if (receiptIds.size() != leaves.size()) throw new IllegalArgumentException("one receipt id per leaf");
    List<Chunk> out = new ArrayList<>();
    for (int from = 0; from < leaves.size(); from += size) {
      int to = Math.min(leaves.size(), from + size);
      out.add(chunk(firstChunk + from / size, receiptIds.subList(from, to), leaves.subList(from, to)));
    }
    return out;
  }

  /**
   * Chunk number {@code chunk} from its leaves (at most {@link #SIZE}; fewer only for the epoch's last
   * chunk), as an epoch's close reads them, one chunk at a time.
   */
  private static Chunk chunk(int chunk, List<String> receiptIds, List<byte[]> leaves) {
    if (leaves.isEmpty() || receiptIds.size() != leaves.size()) {
      throw new IllegalArgumentException("a chunk needs one receipt id per leaf, and at least one leaf");
    }
    StringBuilder hex = new StringBuilder(leaves.size() * 64);
    for (byte[] leaf : leaves) hex.append(HEX.formatHex(leaf));
    return new Chunk(chunk, receiptIds.get(0), hex.toString(), HEX.formatHex(MerkleTree.ofLeafHashes(leaves).root()));
  }

  /** The root of the epoch tree (hex): the root of the tree over its chunks' roots (hex), in chunk order. */
  public static String root(List<String> chunkRoots) {
    List<byte[]> roots = new ArrayList<>(chunkRoots.size());
    for (String r : chunkRoots) roots.add(HEX.parseHex(r));
    return HEX.formatHex(MerkleTree.ofLeafHashes(roots).root());
  }

  /** The leaves of a chunk as stored. */
  static List<byte[]> leaves(String hex) {
    if (hex.length() % 64 != 0) throw new IllegalArgumentException("chunk leaves are not whole SHA-256 hashes");
    List<byte[]> out = new ArrayList<>(hex.length() / 64);
    for (int i = 0; i < hex.length(); i += 64) out.add(HEX.parseHex(hex, i, i + 64));
    return out;
  }

  /** Where a leaf sits in a chunk, or -1. */
  static int indexOf(List<byte[]> chunkLeaves, byte[] leaf) {
    for (int i = 0; i < chunkLeaves.size(); i++) {
      if (Arrays.equals(chunkLeaves.get(i), leaf)) return i;
    }
    return -1;
  }

  /**
   * The inclusion proof of leaf {@code local} of chunk {@code chunk} in the epoch tree, from the chunk's
   * leaves and every chunk's root in chunk order.
   */
  static List<MerkleTree.Step> proof(List<byte[]> chunkLeaves, int local, List<byte[]> chunkRoots, int chunk) {
    List<MerkleTree.Step> steps = new ArrayList<>(MerkleTree.ofLeafHashes(chunkLeaves).proof(local));
    steps.addAll(MerkleTree.ofLeafHashes(chunkRoots).proof(chunk));
    return steps;
  }
}
