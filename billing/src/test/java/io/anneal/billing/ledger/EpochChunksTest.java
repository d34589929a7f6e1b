package io.anneal.billing.ledger;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.merkle.MerkleTree;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;

/** Proofs from chunks are the proofs over all leaves: same steps, same root, for any epoch size. */
class EpochChunksTest {
  private static List<byte[]> leaves(int n) {
    List<byte[]> out = new ArrayList<>();
    for (int i = 0; i < n; i++) out.add(MerkleTree.leafHash(("receipt " + i).getBytes(StandardCharsets.UTF_8)));
    return out;
  }

  private static List<String> ids(int n) {
    List<String> out = new ArrayList<>();
    for (int i = 0; i < n; i++) out.add(String.format("j%06d/1", i));
    return out;
  }

  private static void assertSameProofs(int n, int size, List<Integer> indices) {
    List<byte[]> leaves = leaves(n);
    MerkleTree all = MerkleTree.ofLeafHashes(leaves);
    List<EpochChunks.Chunk> chunks = EpochChunks.of(ids(n), leaves, size);
    assertThat(chunks).hasSize((n + size - 1) / size);
    assertThat(EpochChunks.root(chunks.stream().map(EpochChunks.Chunk::root).toList()))
        .isEqualTo(HexFormat.of().formatHex(all.root()));
    List<byte[]> roots = new ArrayList<>();
    for (EpochChunks.Chunk k : chunks) roots.add(HexFormat.of().parseHex(k.root()));
    for (int i : indices) {
      EpochChunks.Chunk k = chunks.get(i / size);
      assertThat(k.firstReceiptId()).isEqualTo(ids(n).get(k.chunk() * size));
      List<byte[]> chunkLeaves = EpochChunks.leaves(k.leaves());
      int local = EpochChunks.indexOf(chunkLeaves, leaves.get(i));
      assertThat(local).isEqualTo(i % size);
      List<MerkleTree.Step> fromChunks = EpochChunks.proof(chunkLeaves, local, roots, k.chunk());
      assertThat(SqlLedger.encodeProof(fromChunks)).as("leaf %d of %d, chunks of %d", i, n, size)
          .isEqualTo(SqlLedger.encodeProof(all.proof(i)));
      assertThat(MerkleTree.verify(leaves.get(i), fromChunks, all.root())).isTrue();
    }
  }

  @Property(tries = 300)
  void smallChunksGiveTheSameProofs(@ForAll @IntRange(min = 1, max = 300) int n,
      @ForAll @IntRange(min = 0, max = 4) int log2Size, @ForAll long seed) {
    int size = 1 << log2Size;
    Random r = new Random(seed);
    List<Integer> indices = new ArrayList<>(List.of(0, n - 1, r.nextInt(n), r.nextInt(n)));
    assertSameProofs(n, size, indices);
  }

  @Test
  void theServiceChunkSizeAroundItsBoundaries() {
    for (int n : new int[] {1, 2, 1023, 1024, 1025, 2047, 2048, 2049, 3 * 1024 + 7, 5000}) {
      List<Integer> indices = new ArrayList<>();
      for (int i : new int[] {0, 1, 511, 1022, 1023, 1024, 1025, 2047, 2048, 3071, 3072, n - 2, n - 1}) {
        if (i >= 0 && i < n) indices.add(i);
      }
      assertSameProofs(n, EpochChunks.SIZE, indices);
    }
  }

  @Test
  void aChunkRowFitsItsColumn() {
    EpochChunks.Chunk full = EpochChunks.of(ids(EpochChunks.SIZE), leaves(EpochChunks.SIZE)).get(0);
    assertThat(full.leaves()).hasSize(65_536); // VARCHAR(65536) in V14
  }
}
