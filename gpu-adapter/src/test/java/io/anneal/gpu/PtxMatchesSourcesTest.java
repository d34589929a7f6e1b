package io.anneal.gpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The committed PTX is exactly what nvcc makes of the committed CUDA sources. */
class PtxMatchesSourcesTest {
  @TempDir Path tmp;

  private static boolean nvccAvailable() {
    try {
      Process p = new ProcessBuilder("nvcc", "--version").redirectErrorStream(true).start();
      p.getInputStream().readAllBytes();
      return p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
    } catch (Exception e) {
      return false;
    }
  }

  @Test
  void committedPtxIsBuiltFromTheCommittedSources() throws Exception {
    assumeTrue(nvccAvailable(), "nvcc is not installed; the build itself needs no CUDA toolkit");
    Path cu = Path.of("src/main/cuda/anneal_kernels.cu");
    Path committed = Path.of("src/main/resources/io/anneal/gpu/ptx/anneal_kernels.ptx");
    Path out = tmp.resolve("anneal_kernels.ptx");
    // the same command as src/main/cuda/build-ptx.sh
    Process p = new ProcessBuilder("nvcc", "-ptx", "-arch=compute_80", "-O3", "-o", out.toString(), cu.toString())
        .redirectErrorStream(true).redirectOutput(tmp.resolve("nvcc.log").toFile()).start();
    assertThat(p.waitFor(300, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).as(Files.readString(tmp.resolve("nvcc.log"))).isZero();
    assertThat(Files.readString(out)).as("run gpu-adapter/src/main/cuda/build-ptx.sh and commit the PTX")
        .isEqualTo(Files.readString(committed));
    assertThat(Files.readString(committed)).contains(".entry sgemm", ".entry softmax_xent", ".entry adam_update",
        ".entry sgd_update", ".entry bias_act_fwd", ".entry act_bwd", ".entry column_sums", ".entry reduce_sum",
        ".entry softmax_rows");
    assertThat(new File(cu.getParent().toFile(), "build-ptx.sh")).exists();
  }
}
