package io.anneal.gpu;

import java.util.Objects;

/**
 * One device a backend can run work on, as the scheduler and the API see it.
 *
 * @param index           the backend's own index of the device (0-based)
 * @param gpuClass        class used for placement and pricing, e.g. {@code H100}, {@code cpu}
 * @param name            human-readable model name reported by the driver (or the backend)
 * @param uuid            stable identifier of the device
 * @param memoryMiB       total device memory
 * @param smCount         streaming multiprocessors (or cores for the CPU backend)
 * @param computeCapability e.g. {@code 9.0}; {@code -} where it does not apply
 * @param driverVersion   e.g. {@code 13000}; {@code -} where it does not apply
 * @param simulated       true for devices of the simulated fleet: never presented as real hardware
 */
public record GpuDevice(
    int index,
    String gpuClass,
    String name,
    String uuid,
    long memoryMiB,
    int smCount,
    String computeCapability,
    String driverVersion,
    boolean simulated) {

  public GpuDevice {
    if (index < 0) throw new IllegalArgumentException("index must be >= 0");
    Objects.requireNonNull(gpuClass, "gpuClass");
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(uuid, "uuid");
    if (memoryMiB <= 0) throw new IllegalArgumentException("memoryMiB must be > 0");
  }
}
