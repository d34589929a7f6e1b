package io.anneal.gpu;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.assertj.core.data.Offset;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/**
 * The device-side training loop ({@link KernelMlp}, the code the JCuda backend runs) against the
 * CPU network it must reproduce, run here on {@link CpuKernels}. The GPU profile runs the same
 * comparison on {@link JCudaKernels}.
 */
class KernelMlpTest {

  static void assertClose(float[] actual, float[] expected, double tol, String what) {
    assertThat(actual).as(what).hasSameSizeAs(expected);
    for (int i = 0; i < expected.length; i++) {
      assertThat((double) actual[i]).as("%s[%d]", what, i)
          .isCloseTo(expected[i], Offset.offset(tol * Math.max(1.0, Math.abs(expected[i]))));
    }
  }

  @Test
  void sgemmStridesGiveEveryTransposition() throws Exception {
    SeededData d = new SeededData(7);
    int m = 13;
    int n = 9;
    int k = 21;
    float[] a = d.matrix(m, k);
    float[] b = d.matrix(k, n);
    float[] ref = new float[m * n];
    CpuMath.sgemm(m, n, k, a, b, ref, r -> null);
    float[] at = transpose(a, m, k);
    float[] bt = transpose(b, k, n);
    try (CpuKernels kern = new CpuKernels()) {
      for (boolean ta : new boolean[] {false, true}) {
        for (boolean tb : new boolean[] {false, true}) {
          CpuKernels.Buf da = kern.floats(m * k);
          CpuKernels.Buf db = kern.floats(k * n);
          CpuKernels.Buf dc = kern.floats(m * n);
          kern.upload(da, ta ? at : a, m * k);
          kern.upload(db, tb ? bt : b, k * n);
          // A stored as k×m when transposed: element (i, p) at p*m + i
          kern.sgemm(m, n, k, da, ta ? 1 : k, ta ? m : 1, db, tb ? 1 : n, tb ? k : 1, dc);
          float[] c = new float[m * n];
          kern.download(dc, c, m * n);
          assertClose(c, ref, 1e-5, "C with transA=" + ta + " transB=" + tb);
        }
      }
    }
  }

  private static float[] transpose(float[] x, int rows, int cols) {
    float[] t = new float[x.length];
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) t[c * rows + r] = x[r * cols + c];
    }
    return t;
  }

  @ParameterizedTest
  @CsvSource({"RELU,adam", "RELU,sgd", "TANH,adam", "TANH,sgd"})
  void kernelStepsReproduceTheCpuNetwork(Mlp.Activation act, String optimizer) throws Exception {
    int[] sizes = {2, 16, 12, 3};
    Datasets.Data data = Datasets.spirals(60, 3, 5);
    float lr = optimizer.equals("adam") ? 0.01f : 0.1f;
    Mlp reference = new Mlp(sizes, act, 11);
    Mlp.Optimizer opt = new Mlp.Optimizer(reference, optimizer, lr);
    try (CpuKernels kern = new CpuKernels()) {
      KernelMlp<CpuKernels.Buf> onKernels = new KernelMlp<>(kern, new Mlp(sizes, act, 11), 32, optimizer, lr);
      int rows = data.rows();
      for (int step = 0; step < 40; step++) {
        int start = (step * 32) % rows;
        int n = Math.min(32, rows - start);
        float[] x = java.util.Arrays.copyOfRange(data.x(), start * 2, (start + n) * 2);
        int[] y = java.util.Arrays.copyOfRange(data.y(), start, start + n);
        float expected = reference.step(x, y, n, opt);
        float actual = onKernels.step(x, y, n);
        assertThat((double) actual).as("loss at step %d", step).isCloseTo(expected, Offset.offset(1e-4));
      }
      Mlp trained = onKernels.toMlp();
      for (int l = 0; l < sizes.length - 1; l++) {
        assertClose(trained.weights(l), reference.weights(l), 1e-3, "W" + l);
        assertClose(trained.biases(l), reference.biases(l), 1e-3, "b" + l);
      }
      assertClose(onKernels.predict(data.x(), rows), reference.predict(data.x(), rows), 1e-4, "probabilities");
    }
  }

  @Test
  void trainWorkloadOnKernelsLearnsSpiralsAndItsArtifactInfersTheSameOnTheCpu() throws Exception {
    ModelStore models = ModelStore.inMemory();
    Map<String, Object> params = Map.of("dataset", "spirals", "samples", 100, "layers", List.of(2, 64, 64, 3),
        "activation", "relu", "optimizer", "adam", "learningRate", 0.01, "epochs", 200, "batchSize", 32, "seed", 3);
    Workload w = new Workload("k1", "tenant-a", "train", params, Duration.ofSeconds(120));
    WorkloadResult r = MlpWorkloads.train(w, RunControl.NONE, System.nanoTime() + Duration.ofSeconds(120).toNanos(),
        models, MlpWorkloads.onKernels(CpuKernels::new));
    double accuracy = ((Number) r.summary().get("accuracy")).doubleValue();
    assertThat(accuracy).as("training accuracy on 3 spirals through the kernel loop").isGreaterThanOrEqualTo(0.90);
    assertThat(r.peakMemoryBytes()).as("buffers held: parameters, gradients, Adam moments, activations").isPositive();
    assertThat(r.deviceNanos()).isPositive();

    // the artifact the kernel loop wrote predicts the same on the CPU reference
    Datasets.Data d = Datasets.spirals(100, 3, 3);
    Mlp cpu = Mlp.fromBytes(models.get("tenant-a", "m_k1").orElseThrow());
    assertThat(cpu.accuracy(d.x(), d.y())).isCloseTo(accuracy, Offset.offset(1e-4));
  }

  @Test
  void theKernelBatteryThatTheGpuProfileComparesRunsOnTheCpuKernels() throws Exception {
    Map<String, float[]> out;
    try (CpuKernels k = new CpuKernels()) {
      out = KernelBattery.run(k, 5);
    }
    // the battery's plain products are what CpuMath computes for the same seeded inputs
    SeededData d = new SeededData(5);
    float[] a = d.matrix(256, 256);
    float[] b = d.matrix(256, 256);
    float[] c = new float[256 * 256];
    CpuMath.sgemm(256, 256, 256, a, b, c, r -> null);
    assertClose(out.get("sgemm 256x256x256"), c, 1e-5, "sgemm 256^3");
    assertThat(out).hasSize(5 * 4 + 6 + 3 + 1 + 1 + 1 + 3);
    out.forEach((name, values) -> {
      for (float v : values) assertThat(Float.isFinite(v)).as(name).isTrue();
    });
  }
}
