package io.anneal.placement;

/** What a job needs: a number of GPUs, optionally of one class, each with at least that memory. */
public record Demand(int gpus, String gpuClass, long memoryMiB) {
  public Demand {
    if (gpus < 1) throw new IllegalArgumentException("gpus must be >= 1");
  }

  boolean accepts(Device d) {
    return (gpuClass == null || gpuClass.equals(d.gpuClass())) && d.memoryMiB() >= memoryMiB;
  }
}
