package io.anneal.gpu;

import java.util.Arrays;
import java.util.Locale;

/**
 * Side-by-side GPU benchmarks for the device machine (paired with {@code device/torch_bench.py}):
 *
 * <pre>
 *   java -cp 'lib/*' io.anneal.gpu.GpuBench sgemm 4096 20          # our SGEMM, FP32, GFLOP/s
 *   java -cp 'lib/*' io.anneal.gpu.GpuBench mlp 784,2048,2048,10 512 200   # one Adam step of an MLP, ms
 *   java -cp 'lib/*' io.anneal.gpu.GpuBench --cpu sgemm 256 2      # the same code on the CPU kernels
 * </pre>
 *
 * SGEMM is timed two ways: CUDA-event time summed over the launches (as the receipts meter it) and
 * wall time from the first launch to a synchronizing copy. Results are spot-checked against a
 * double-precision product. The MLP step is wall time per step, each step copying its batch in
 * and its loss out (as a training job does).
 */
public final class GpuBench {
  private GpuBench() {}

  public static void main(String[] args) throws Exception {
    boolean cpu = args.length > 0 && args[0].equals("--cpu");
    String[] a = cpu ? Arrays.copyOfRange(args, 1, args.length) : args;
    if (a.length < 1) {
      System.err.println("usage: GpuBench [--cpu] sgemm N REPS | mlp L1,L2,..,Lk BATCH STEPS");
      System.exit(2);
    }
    JCudaBackend gpu = cpu ? null : new JCudaBackend();
    try (Kernels<?> k = cpu ? new CpuKernels() : gpu.kernels(0)) {
      String device = cpu ? "CPU kernels" : gpu.devices().get(0).name() + ", " + gpu.devices().get(0).smCount() + " SMs, compute " + gpu.devices().get(0).computeCapability() + ", driver " + gpu.devices().get(0).driverVersion();
      System.out.println("device: " + device);
      switch (a[0]) {
        case "sgemm" -> System.out.println(sgemm(k, Integer.parseInt(a[1]), Integer.parseInt(a[2])));
        case "mlp" -> System.out.println(mlp(k, a[1], Integer.parseInt(a[2]), Integer.parseInt(a[3])));
        default -> {
          System.err.println("unknown benchmark " + a[0]);
          System.exit(2);
        }
      }
    } finally {
      if (gpu != null) gpu.close();
    }
  }

  /** Result line of the SGEMM benchmark; throws if the product is wrong. */
  static <B> String sgemm(Kernels<B> k, int n, int reps) throws WorkloadException {
    SeededData d = new SeededData(42);
    float[] ha = d.matrix(n, n);
    float[] hb = d.matrix(n, n);
    B da = k.floats((long) n * n);
    B db = k.floats((long) n * n);
    B dc = k.floats((long) n * n);
    k.upload(da, ha, n * n);
    k.upload(db, hb, n * n);
    float[] hc = new float[n * n];
    k.sgemm(n, n, n, da, n, 1, db, n, 1, dc); // warm-up (JIT, caches)
    k.download(dc, hc, n * n);
    checkSpots(ha, hb, hc, n);
    long before = k.deviceNanos();
    long wallStart = System.nanoTime();
    for (int r = 0; r < reps; r++) k.sgemm(n, n, n, da, n, 1, db, n, 1, dc);
    float[] one = new float[1];
    k.download(dc, one, 1);
    long wall = System.nanoTime() - wallStart;
    long device = k.deviceNanos() - before;
    double flops = 2.0 * n * n * (double) n * reps;
    return String.format(Locale.ROOT, "sgemm n=%d reps=%d: %.1f GFLOP/s by CUDA events (%.3f ms/launch), %.1f GFLOP/s by wall time",
        n, reps, flops / device, device / 1e6 / reps, flops / wall);
  }

  private static void checkSpots(float[] a, float[] b, float[] c, int n) {
    SeededData pick = new SeededData(7);
    for (int s = 0; s < 16; s++) {
      int i = (int) Long.remainderUnsigned(pick.nextLong(), n);
      int j = (int) Long.remainderUnsigned(pick.nextLong(), n);
      double want = 0;
      for (int p = 0; p < n; p++) want += (double) a[i * n + p] * b[p * n + j];
      if (Math.abs(c[i * n + j] - want) > 1e-4 * Math.sqrt(n) * Math.max(1, Math.abs(want))) {
        throw new IllegalStateException("sgemm wrong at (" + i + "," + j + "): " + c[i * n + j] + " vs " + want);
      }
    }
  }

  /** Result line of the MLP step benchmark. */
  static <B> String mlp(Kernels<B> k, String layerList, int batch, int steps) throws WorkloadException {
    int[] sizes = Arrays.stream(layerList.split(",")).mapToInt(Integer::parseInt).toArray();
    int in = sizes[0];
    int classes = sizes[sizes.length - 1];
    SeededData d = new SeededData(3);
    float[] x = d.matrix(batch, in);
    int[] y = new int[batch];
    for (int r = 0; r < batch; r++) y[r] = (int) Long.remainderUnsigned(d.nextLong(), classes);
    KernelMlp<B> net = new KernelMlp<>(k, new Mlp(sizes, Mlp.Activation.RELU, 1), batch, "adam", 1e-3f);
    int warm = Math.max(1, Math.min(10, steps / 10));
    for (int s = 0; s < warm; s++) net.step(x, y, batch);
    long before = k.deviceNanos();
    long wallStart = System.nanoTime();
    float loss = 0;
    for (int s = 0; s < steps; s++) loss = net.step(x, y, batch);
    long wall = System.nanoTime() - wallStart;
    long device = k.deviceNanos() - before;
    if (!Float.isFinite(loss)) throw new IllegalStateException("loss is not finite: " + loss);
    return String.format(Locale.ROOT, "mlp %s batch=%d adam: %.3f ms/step wall, %.3f ms/step metered device time (loss %.4f)",
        layerList, batch, wall / 1e6 / steps, device / 1e6 / steps, loss);
  }
}
