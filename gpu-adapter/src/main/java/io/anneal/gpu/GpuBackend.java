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

  /** Devices this backend drives, in index order. */
  List<GpuDevice> devices();

  /**
   * Runs one workload on one device and returns what it measured. Must return or throw within the
   * workload's max duration (plus a small grace) and leave the device usable.
   */
  WorkloadResult run(int deviceIndex, Workload workload, RunControl control) throws WorkloadException;

  @Override
  void close();
}
