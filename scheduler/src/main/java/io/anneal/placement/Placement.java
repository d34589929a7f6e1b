package io.anneal.placement;

import java.util.List;

/** The GPUs given to one job: all on one node, all of one class (gang, all or nothing). */
public record Placement(String nodeId, String gpuClass, List<Integer> devices) {
  public Placement {
    devices = List.copyOf(devices);
    if (devices.isEmpty()) throw new IllegalArgumentException("a placement holds at least one GPU");
  }
}
