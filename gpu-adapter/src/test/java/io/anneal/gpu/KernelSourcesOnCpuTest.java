package io.anneal.gpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assumptions.assumeThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The CUDA kernel sources, compiled as C++ against a small CPU emulation of CUDA's thread model
 * ({@code src/test/cuda/cuda_emu.h}: a thread per CUDA thread, barriers for {@code __syncthreads})
 * and checked against plain double-precision loops, with the launch shapes {@link JCudaKernels}
 * uses. This checks the kernels' indexing, tiling and bounds logic on a machine without a GPU; it
 * says nothing about the PTX, the driver's JIT or speed, which only the GPU profile can check.
 */
class KernelSourcesOnCpuTest {

  private static boolean hasGpp() {
    try {
      return new ProcessBuilder("g++", "--version").redirectErrorStream(true).start().waitFor(30, TimeUnit.SECONDS);
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  @Test
  void everyKernelSourceComputesWhatItsReferenceLoopComputes() throws Exception {
    assumeThat(hasGpp()).as("g++ (C++20) is needed to compile the kernels for the CPU").isTrue();
    Path exe = Path.of("target", "kernels_on_cpu");
    Files.createDirectories(exe.getParent());
    Process build = new ProcessBuilder("g++", "-std=c++20", "-O1", "-pthread", "-o", exe.toString(),
        "src/test/cuda/kernels_on_cpu.cpp").redirectErrorStream(true).start();
    String buildLog = new String(build.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(build.waitFor()).as("g++ output:%n%s", buildLog).isZero();

    Process run = new ProcessBuilder(exe.toAbsolutePath().toString()).redirectErrorStream(true).start();
    String out = new String(run.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(run.waitFor()).as("kernel checks:%n%s", out).isZero();
    assertThat(out).doesNotContain("FAIL").contains("all kernels agree with the reference");
    // every kernel of the PTX was exercised
    for (String kernel : JCudaKernels.NAMES) assertThat(out).as("checked %s", kernel).contains("ok   " + kernel + " ");
  }
}
