package io.anneal.gpu;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** The device benchmark tool runs end to end on the CPU kernels (small sizes; it is not a timing test). */
class GpuBenchTest {
  @Test
  void sgemmBenchmarkChecksItsProductAndReportsBothTimings() throws Exception {
    try (CpuKernels k = new CpuKernels()) {
      String line = GpuBench.sgemm(k, 96, 2);
      assertThat(line).startsWith("sgemm n=96 reps=2:").contains("GFLOP/s by CUDA events").contains("GFLOP/s by wall time");
    }
  }

  @Test
  void mlpBenchmarkTrainsAndReportsMillisecondsPerStep() throws Exception {
    try (CpuKernels k = new CpuKernels()) {
      String line = GpuBench.mlp(k, "8,16,3", 32, 5);
      assertThat(line).startsWith("mlp 8,16,3 batch=32 adam:").contains("ms/step wall").contains("loss");
    }
  }
}
