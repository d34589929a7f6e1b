package io.anneal.placement;

import java.util.List;

/** Where a job was placed: one or more (node, devices) parts, all of one GPU class. */
public record Assignment(String jobId, String gpuClass, List<Part> parts) {
  /**
   * The GPUs of one placement host given to the job: {@code nodeId} is the worker that runs them,
   * {@code hostId} the group of devices a gang stays within (a machine, or 8 simulated GPUs).
   */
  public record Part(String nodeId, String hostId, List<Integer> devices) {
    public Part {
      devices = List.copyOf(devices);
    }
  }

  public Assignment {
    parts = List.copyOf(parts);
  }

  public int gpus() {
    int n = 0;
    for (Part p : parts) n += p.devices().size();
    return n;
  }
}
