package io.anneal.gpu;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

/**
 * The reference backend: every workload in plain Java. It is the default where no GPU is found and
 * the oracle that GPU results are compared with. Its "devices" are slices of this host's CPU and
 * are labelled with class {@code cpu}, never as a GPU model.
 */
public final class CpuBackend implements GpuBackend {
  /** Largest matrix side the CPU backend accepts; larger products belong on a GPU. */
  public static final int MAX_MATMUL_N = 2048;

  private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();
  private final List<GpuDevice> devices;

  private final ModelStore models;

  public CpuBackend(int deviceCount) {
    this(deviceCount, ModelStore.inMemory());
  }

  public CpuBackend(int deviceCount, ModelStore models) {
    this.models = models;
    if (deviceCount < 1) throw new IllegalArgumentException("deviceCount must be >= 1");
    long memMiB = Math.max(256, Runtime.getRuntime().maxMemory() / (1024 * 1024) / deviceCount);
    List<GpuDevice> list = new ArrayList<>();
    for (int i = 0; i < deviceCount; i++) {
      String uuid = UUID.nameUUIDFromBytes(("cpu-" + i).getBytes(java.nio.charset.StandardCharsets.UTF_8)).toString();
      list.add(new GpuDevice(i, "cpu", "CPU reference backend", "CPU-" + uuid, memMiB,
          Runtime.getRuntime().availableProcessors(), "-", "-", false));
    }
    this.devices = List.copyOf(list);
  }

  @Override
  public String name() {
    return "cpu";
  }

  @Override
  public java.util.Set<String> kinds() {
    return java.util.Set.of("sleep", "matmul", "train", "infer");
  }

  @Override
  public java.util.Map<String, Long> paramLimits() {
    return java.util.Map.of("matmul.n", (long) MAX_MATMUL_N);
  }

  @Override
  public List<GpuDevice> devices() {
    return devices;
  }

  @Override
  public WorkloadResult run(int deviceIndex, Workload workload, RunControl control) throws WorkloadException {
    if (deviceIndex < 0 || deviceIndex >= devices.size()) {
      throw new WorkloadException(WorkloadException.Reason.DEVICE_FAILURE, "no CPU device " + deviceIndex, 0);
    }
    long deadline = System.nanoTime() + workload.maxDuration().toNanos();
    return switch (workload.kind()) {
      case "sleep" -> sleep(workload, control, deadline);
      case "matmul" -> matmul(workload, control, deadline);
      case "train" -> MlpWorkloads.train(workload, control, deadline, models, memoryBound(deviceIndex));
      case "infer" -> MlpWorkloads.infer(workload, control, models, memoryBound(deviceIndex));
      default -> throw new WorkloadException(WorkloadException.Reason.JOB_ERROR,
          "the cpu backend cannot run kind '" + workload.kind() + "'", 0);
    };
  }

  /** The CPU math, refusing networks larger than this device's share of the heap (its advertised memory). */
  private MlpWorkloads.Engine memoryBound(int deviceIndex) {
    return MlpWorkloads.cpu(devices.get(deviceIndex).memoryMiB() << 20);
  }

  /** Holds the device for {@code ms}; the held time is the metered device time. */
  static WorkloadResult sleep(Workload w, RunControl control, long deadline) throws WorkloadException {
    long start = System.nanoTime();
    long end = start + TimeUnit.MILLISECONDS.toNanos(w.longParam("ms", 0));
    while (true) {
      long now = System.nanoTime();
      if (control.cancelled()) {
        throw new WorkloadException(WorkloadException.Reason.CANCELLED, "cancelled", now - start);
      }
      if (now - deadline > 0) {
        throw new WorkloadException(WorkloadException.Reason.TIMEOUT, "exceeded maxSeconds", now - start);
      }
      long left = end - now;
      if (left <= 0) break;
      long slice = Math.min(left, Math.min(TimeUnit.MILLISECONDS.toNanos(50), Math.max(deadline - now, 1)));
      try {
        TimeUnit.NANOSECONDS.sleep(slice);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new WorkloadException(WorkloadException.Reason.CANCELLED, "interrupted", System.nanoTime() - start);
      }
    }
    long took = System.nanoTime() - start;
    return new WorkloadResult(took, took, 0, "", Map.of());
  }

  private static WorkloadResult matmul(Workload w, RunControl control, long deadline) throws WorkloadException {
    int n = (int) w.longParam("n", 256);
    if (n < 1 || n > MAX_MATMUL_N) {
      throw new WorkloadException(WorkloadException.Reason.JOB_ERROR,
          "matmul n must be 1.." + MAX_MATMUL_N + " on the cpu backend", 0);
    }
    long seed = w.longParam("seed", 1);
    long wallStart = System.nanoTime();
    long cpuStart = THREADS.getCurrentThreadCpuTime();
    SeededData data = new SeededData(seed);
    float[] a = data.matrix(n, n);
    float[] b = data.matrix(n, n);
    float[] c = new float[n * n];
    String abort = CpuMath.sgemm(n, n, n, a, b, c, row -> {
      if (control.cancelled()) return "cancelled";
      if (System.nanoTime() - deadline > 0) return "timeout";
      return null;
    });
    long cpu = THREADS.getCurrentThreadCpuTime() - cpuStart;
    long wall = System.nanoTime() - wallStart;
    if (abort != null) {
      boolean timeout = abort.equals("timeout");
      throw new WorkloadException(timeout ? WorkloadException.Reason.TIMEOUT : WorkloadException.Reason.CANCELLED,
          timeout ? "exceeded maxSeconds" : "cancelled", cpu);
    }
    double gflops = 2.0 * n * n * (double) n / Math.max(cpu, 1);
    return new WorkloadResult(cpu, wall, 3L * n * n * Float.BYTES, Digests.sha256(c),
        Map.of("n", n, "gflops", Math.round(gflops * 100) / 100.0));
  }

  static long threadCpu() {
    return THREADS.getCurrentThreadCpuTime();
  }

  @Override
  public void close() {}
}
