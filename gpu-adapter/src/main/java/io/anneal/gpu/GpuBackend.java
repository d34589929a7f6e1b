package io.anneal.gpu;

import java.util.List;

/**
 * The port through which the worker runs jobs on devices. Implementations block: the worker
 * calls {@link #run} from a dedicated thread per device, never from an event loop.
 */
public interface GpuBackend extends AutoCloseable {

  /** {@code cpu}, {@code jcuda} or {@code simulated}. */
  String name();

  /** Job kinds this backend runs (CONTRACT.md: train, infer, matmul, sleep). */
  java.util.Set<String> kinds();

  /**
   * Upper bounds this backend puts on job parameters beyond what the job spec allows, as
   * {@code "kind.param" -> max} (e.g. {@code "matmul.n" -> 2048}), so that a job no node of the fleet
   * can run is refused at submit instead of failing when it runs. Empty: no bound of its own.
   */
  default java.util.Map<String, Long> paramLimits() {
    return java.util.Map.of();
  }

  /** Devices this backend drives, in index order. */
  List<GpuDevice> devices();

  /**
   * Runs one workload on one device and returns what it measured. Must return or throw within the
   * workload's max duration (plus a small grace) and leave the device usable.
   */
  WorkloadResult run(int deviceIndex, Workload workload, RunControl control) throws WorkloadException;

  /**
   * Checks, on the device's thread right before a job runs, that {@code bytes} of device memory (the
   * job's {@code memoryMiB}) can be had now; {@link WorkloadException.Reason#OUT_OF_MEMORY} fails the
   * job without running it. Backends that do not model device memory accept.
   */
  default void reserve(int deviceIndex, long bytes) throws WorkloadException {}

  /** Free device memory now in bytes, or -1 when the backend does not measure it. May block briefly. */
  default long freeMemoryBytes(int deviceIndex) {
    return -1;
  }

  @Override
  void close();
}
