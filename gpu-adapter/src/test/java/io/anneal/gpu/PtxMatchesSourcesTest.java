package io.anneal.gpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The committed PTX is exactly what {@code build-ptx.sh} makes of the committed CUDA sources, and
 * ptxas assembles it for the A100 (sm_80) and H100/H200 (sm_90) under the PTX ISA version its header
 * claims — the checks that can be made of GPU code without a GPU.
 */
class PtxMatchesSourcesTest {
  private static final Path COMMITTED = Path.of("src/main/resources/io/anneal/gpu/ptx/anneal_kernels.ptx");
  @TempDir Path tmp;

  private static boolean available(String tool) {
    try {
      Process p = new ProcessBuilder(tool, "--version").redirectErrorStream(true).start();
      p.getInputStream().readAllBytes();
      return p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
    } catch (Exception e) {
      return false;
    }
  }

  private static String run(ProcessBuilder pb, Path log) throws Exception {
    Process p = pb.redirectErrorStream(true).redirectOutput(log.toFile()).start();
    assertThat(p.waitFor(300, TimeUnit.SECONDS)).isTrue();
    String out = Files.readString(log);
    assertThat(p.exitValue()).as(out).isZero();
    return out;
  }

  @Test
  void committedPtxIsBuiltFromTheCommittedSources() throws Exception {
    assumeTrue(available("nvcc"), "nvcc is not installed; the build itself needs no CUDA toolkit");
    ProcessBuilder pb = new ProcessBuilder("bash", "src/main/cuda/build-ptx.sh");
    pb.environment().put("OUT", tmp.toString());
    run(pb, tmp.resolve("build.log"));
    assertThat(Files.readString(tmp.resolve("anneal_kernels.ptx"))).as("run gpu-adapter/src/main/cuda/build-ptx.sh and commit the PTX")
        .isEqualTo(Files.readString(COMMITTED));
    assertThat(Files.readString(COMMITTED)).contains(".version 7.0", ".entry sgemm(", ".entry sgemm_nn(",
        ".entry softmax_xent", ".entry adam_update", ".entry sgd_update", ".entry bias_act_fwd", ".entry act_bwd",
        ".entry column_sums", ".entry reduce_sum", ".entry softmax_rows");
  }

  @Test
  void ptxasAssemblesTheCommittedPtxForA100AndH100UnderItsDeclaredIsa() throws Exception {
    assumeTrue(available("ptxas"), "ptxas is not installed");
    for (String arch : new String[] {"sm_80", "sm_90"}) {
      Path cubin = tmp.resolve(arch + ".cubin");
      String out = run(new ProcessBuilder("ptxas", "-arch=" + arch, "--verbose", "-o", cubin.toString(), COMMITTED.toString()),
          tmp.resolve(arch + ".log"));
      assertThat(Files.size(cubin)).as("cubin for %s", arch).isPositive();
      for (String kernel : JCudaKernels.NAMES) {
        assertThat(out).as("%s compiled for %s", kernel, arch).contains("Compiling entry function '" + kernel + "'");
      }
      assertThat(out).as("no register spills on %s", arch).doesNotContainPattern("[1-9][0-9]* bytes spill");
    }
  }
}
