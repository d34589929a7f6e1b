package io.anneal.gpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Runs only in the GPU profile ({@code mvn -Pgpu verify} on a machine with an NVIDIA driver and
 * device): GPU vs CPU parity, faults that fail one job and leave the device usable, CUDA-event
 * metering. Without a device these tests are excluded by the default build, not skipped silently.
 */
@Tag("gpu")
class JCudaGpuTest {
  static JCudaBackend gpu;

  @BeforeAll
  static void open() {
    gpu = new JCudaBackend();
  }

  private static void assertClose(float[] gpuOut, float[] cpuOut, double relTol) {
    assertThat(gpuOut).hasSameSizeAs(cpuOut);
    for (int i = 0; i < cpuOut.length; i++) {
      double tol = relTol * Math.max(1.0, Math.abs(cpuOut[i]));
      assertThat((double) gpuOut[i]).as("element %d", i).isCloseTo(cpuOut[i], org.assertj.core.data.Offset.offset(tol));
    }
  }

  @Test
  void devicesAreRealAndDescribed() {
    assertThat(gpu.devices()).isNotEmpty().allSatisfy(d -> {
      assertThat(d.simulated()).isFalse();
      assertThat(d.uuid()).startsWith("GPU-");
      assertThat(d.smCount()).isPositive();
      assertThat(d.memoryMiB()).isGreaterThan(1024);
    });
  }

  @Test
  void sgemmMatchesTheCpuReferenceForSquareAndRaggedShapes() throws Exception {
    for (int[] s : new int[][] {{512, 512, 512}, {333, 77, 129}, {1, 1000, 3}, {1000, 1, 7}}) {
      SeededData d = new SeededData(s[0] * 31L + s[1]);
      float[] a = d.matrix(s[0], s[2]);
      float[] b = d.matrix(s[2], s[1]);
      float[] cg = new float[s[0] * s[1]];
      float[] cc = new float[s[0] * s[1]];
      gpu.multiply(0, s[0], s[1], s[2], a, b, cg);
      CpuMath.sgemm(s[0], s[1], s[2], a, b, cc, r -> null);
      assertClose(cg, cc, 1e-4 * Math.sqrt(s[2]));
    }
  }

  @Test
  void matmulWorkloadMetersDeviceTimeWithCudaEvents() throws Exception {
    WorkloadResult r = gpu.run(0, new Workload("g1", "matmul", Map.of("n", 2048, "seed", 3), Duration.ofSeconds(60)),
        RunControl.NONE);
    assertThat(r.deviceNanos()).isPositive().isLessThanOrEqualTo(r.wallNanos());
    assertThat(((Number) r.summary().get("gflops")).doubleValue()).isGreaterThan(100);
  }

  @Test
  void outOfMemoryFailsThatJobAloneAndTheDeviceStaysUsable() throws Exception {
    long beyond = (gpu.devices().get(0).memoryMiB() + 1024) * 1024L * 1024L;
    assertThatThrownBy(() -> gpu.reserve(0, beyond)).isInstanceOfSatisfying(WorkloadException.class,
        e -> assertThat(e.reason()).isEqualTo(WorkloadException.Reason.OUT_OF_MEMORY));
    WorkloadResult ok = gpu.run(0, new Workload("after", "matmul", Map.of("n", 256), Duration.ofSeconds(30)), RunControl.NONE);
    assertThat(ok.digest()).hasSize(64);
    assertThat(gpu.quarantined(0)).isFalse();
  }
}
