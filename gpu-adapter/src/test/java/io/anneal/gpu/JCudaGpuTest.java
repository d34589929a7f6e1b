package io.anneal.gpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
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
  }

  @Test
  void everyKernelMatchesTheCpuKernels() throws Exception {
    Map<String, float[]> cpu;
    try (CpuKernels k = new CpuKernels()) {
      cpu = KernelBattery.run(k, 5);
    }
    Map<String, float[]> onGpu;
    try (JCudaKernels k = gpu.kernels(0)) {
      onGpu = KernelBattery.run(k, 5);
    }
    assertThat(onGpu.keySet()).containsExactlyElementsOf(cpu.keySet());
    for (String name : cpu.keySet()) {
      // SGEMM sums up to 256 products in a different order per tile; the rest is elementwise or short sums
      double tol = name.startsWith("sgemm") ? 1e-4 * 16 : name.equals("reduce_sum") ? 1e-3 : 1e-5;
      float[] want = cpu.get(name);
      float[] got = onGpu.get(name);
      for (int i = 0; i < want.length; i++) {
        assertThat((double) got[i]).as("%s[%d]", name, i)
            .isCloseTo(want[i], org.assertj.core.data.Offset.offset(tol * Math.max(1.0, Math.abs(want[i]))));
      }
    }
  }

  private static final Map<String, Object> SPIRALS = Map.of("dataset", "spirals", "samples", 100, "layers",
      List.of(2, 64, 64, 3), "activation", "relu", "optimizer", "adam", "learningRate", 0.01, "epochs", 200,
      "batchSize", 32, "seed", 3);

  private static List<Double> losses(List<Map<String, Object>> progress) {
    List<Double> out = new ArrayList<>();
    for (Map<String, Object> e : progress) out.add(((Number) e.get("loss")).doubleValue());
    return out;
  }

  private static RunControl recording(List<Map<String, Object>> progress) {
    return new RunControl() {
      @Override
      public void progress(Map<String, Object> event) {
        progress.add(event);
      }

      @Override
      public boolean cancelled() {
        return false;
      }
    };
  }

  @Test
  void fullTrainRunOnTheGpuFollowsTheCpuAndLearns() throws Exception {
    ModelStore models = ModelStore.inMemory();
    long deadline = System.nanoTime() + Duration.ofMinutes(5).toNanos();
    List<Map<String, Object>> gpuProgress = new ArrayList<>();
    WorkloadResult onGpu = MlpWorkloads.train(new Workload("g", "t", "train", SPIRALS, Duration.ofMinutes(5)),
        recording(gpuProgress), deadline, models, gpu.engine(0));
    List<Map<String, Object>> cpuProgress = new ArrayList<>();
    WorkloadResult onCpu = MlpWorkloads.train(new Workload("c", "t", "train", SPIRALS, Duration.ofMinutes(5)),
        recording(cpuProgress), deadline, models, MlpWorkloads.CPU);
    List<Double> g = losses(gpuProgress);
    List<Double> c = losses(cpuProgress);
    assertThat(g).hasSameSizeAs(c);
    // the same seeds and batches: the loss curves agree closely early and stay together
    for (int i = 0; i < g.size(); i++) {
      double tol = i < 20 ? 1e-3 : 0.05;
      assertThat(g.get(i)).as("loss at progress event %d", i).isCloseTo(c.get(i), org.assertj.core.data.Offset.offset(tol));
    }
    assertThat(((Number) onGpu.summary().get("accuracy")).doubleValue()).isGreaterThanOrEqualTo(0.90);
    assertThat(onGpu.deviceNanos()).isPositive().isLessThanOrEqualTo(onGpu.wallNanos());
    assertThat(onGpu.peakMemoryBytes()).isPositive();

    // infer on the GPU with the GPU-trained artifact equals infer on the CPU with it
    Datasets.Data d = Datasets.spirals(100, 3, 3);
    List<List<Double>> inputs = new ArrayList<>();
    for (int i = 0; i < d.rows(); i++) inputs.add(List.of((double) d.x()[i * 2], (double) d.x()[i * 2 + 1]));
    Workload infer = new Workload("i", "t", "infer", Map.of("modelId", "m_g", "inputs", inputs), Duration.ofSeconds(30));
    WorkloadResult gi = MlpWorkloads.infer(infer, RunControl.NONE, models, gpu.engine(0));
    WorkloadResult ci = MlpWorkloads.infer(infer, RunControl.NONE, models, MlpWorkloads.CPU);
    assertThat(gi.summary().get("classes")).isEqualTo(ci.summary().get("classes"));
  }

  @Test
  void cudaEventMeteringGrowsWithTheWork() throws Exception {
    // 8x the FLOPs: device time must grow by well over 2x and stay below wall time
    WorkloadResult small = gpu.run(0, new Workload("s", "matmul", Map.of("n", 2048, "seed", 1), Duration.ofSeconds(60)),
        RunControl.NONE);
    WorkloadResult large = gpu.run(0, new Workload("l", "matmul", Map.of("n", 4096, "seed", 1), Duration.ofSeconds(60)),
        RunControl.NONE);
    assertThat(large.deviceNanos()).isGreaterThan(2 * small.deviceNanos());
    assertThat(large.deviceNanos()).isLessThanOrEqualTo(large.wallNanos());
  }

  @Test
  void aTrainJobThatDoesNotFitBesideAnotherJobsMemoryFailsAloneWithOutOfMemory() throws Exception {
    // another job holds all but < 256 MiB of the device
    try (JCudaKernels hog = gpu.kernels(0)) {
      try {
        while (true) hog.floats(64L * 1024 * 1024);
      } catch (WorkloadException full) {
        assertThat(full.reason()).isEqualTo(WorkloadException.Reason.OUT_OF_MEMORY);
      }
      // ~1 GiB of activations and gradients: 8,192 rows x 4,096 units x 4 bytes x several buffers
      Map<String, Object> big = Map.of("dataset", "blobs", "samples", 8192, "layers", List.of(2, 4096, 4096, 3),
          "epochs", 1, "batchSize", 8192, "seed", 1);
      assertThatThrownBy(() -> gpu.run(0, new Workload("oom", "train", big, Duration.ofSeconds(120)), RunControl.NONE))
          .isInstanceOfSatisfying(WorkloadException.class,
              e -> assertThat(e.reason()).isEqualTo(WorkloadException.Reason.OUT_OF_MEMORY));
    }
    // the memory is back and the device takes the next job
    WorkloadResult ok = gpu.run(0, new Workload("next", "train", SPIRALS, Duration.ofSeconds(120)), RunControl.NONE);
    assertThat(((Number) ok.summary().get("accuracy")).doubleValue()).isGreaterThanOrEqualTo(0.90);
  }
}
