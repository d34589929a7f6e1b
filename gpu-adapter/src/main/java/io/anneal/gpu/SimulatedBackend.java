package io.anneal.gpu;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * A fleet of virtual GPUs for scheduler scale tests. Nothing runs: a job "takes" a modelled
 * duration ({@code ms} for {@code sleep}, a throughput model for {@code matmul}). Every device is
 * flagged {@link GpuDevice#simulated()} and shows so in the API, the UI and receipts.
 */
public final class SimulatedBackend implements GpuBackend {
  /** Modelled FP32 throughput per class, GFLOP/s, for matmul durations. */
  private static final Map<String, Double> GFLOPS = Map.of(
      "H200", 60_000.0, "H100", 50_000.0, "A100", 19_500.0, "L40S", 91_600.0, "L4", 30_300.0);
  private static final Map<String, Long> MEMORY_MIB = Map.of(
      "H200", 143_771L, "H100", 81_559L, "A100", 81_920L, "L40S", 46_068L, "L4", 23_034L);

  private final List<GpuDevice> devices;

  /** @param classes one entry per device: its GPU class (e.g. {@code H100}) */
  public SimulatedBackend(List<String> classes) {
    List<GpuDevice> list = new ArrayList<>(classes.size());
    for (int i = 0; i < classes.size(); i++) {
      String cls = classes.get(i);
      String uuid = UUID.nameUUIDFromBytes(("sim-" + cls + "-" + i).getBytes(java.nio.charset.StandardCharsets.UTF_8)).toString();
      list.add(new GpuDevice(i, cls, "Simulated " + cls, "SIM-" + uuid,
          MEMORY_MIB.getOrDefault(cls, 24_576L), 0, "-", "simulated", true));
    }
    this.devices = List.copyOf(list);
  }

  @Override
  public String name() {
    return "simulated";
  }

  @Override
  public java.util.Set<String> kinds() {
    return java.util.Set.of("sleep", "matmul");
  }

  @Override
  public List<GpuDevice> devices() {
    return devices;
  }

  @Override
  public WorkloadResult run(int deviceIndex, Workload workload, RunControl control) throws WorkloadException {
    long deadline = System.nanoTime() + workload.maxDuration().toNanos();
    return switch (workload.kind()) {
      case "sleep" -> CpuBackend.sleep(workload, control, deadline);
      case "matmul" -> {
        long n = workload.longParam("n", 256);
        double gflops = GFLOPS.getOrDefault(devices.get(deviceIndex).gpuClass(), 10_000.0);
        long ms = Math.max(0, Math.round(2.0 * n * n * n / (gflops * 1e6)));
        Workload held = new Workload(workload.jobId(), "sleep", Map.of("ms", ms), workload.maxDuration());
        WorkloadResult r = CpuBackend.sleep(held, control, deadline);
        yield new WorkloadResult(r.deviceNanos(), r.wallNanos(), 3L * n * n * Float.BYTES, "",
            Map.of("n", n, "simulated", true, "gflops", gflops));
      }
      default -> throw new WorkloadException(WorkloadException.Reason.JOB_ERROR,
          "the simulated fleet models only sleep and matmul, not '" + workload.kind() + "'", 0);
    };
  }

  @Override
  public void close() {}
}
