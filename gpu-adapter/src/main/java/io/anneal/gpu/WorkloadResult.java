package io.anneal.gpu;

import java.util.Map;
import java.util.Objects;

/**
 * What a finished workload measured and produced.
 *
 * @param deviceNanos  time the device was busy for this job: CUDA-event time summed over the job's
 *     kernels and copies (JCuda), the computing thread's CPU time (CPU backend), the modelled
 *     duration (simulated), or the held time of a {@code sleep} job
 * @param wallNanos    wall-clock time from start to end of the run
 * @param peakMemoryBytes largest device memory reserved at once for the job
 * @param digest       hex SHA-256 of the job's result bytes (empty for {@code sleep})
 * @param summary      small JSON-friendly result fields (e.g. GFLOP/s, modelId, accuracy)
 */
public record WorkloadResult(
    long deviceNanos, long wallNanos, long peakMemoryBytes, String digest, Map<String, Object> summary) {

  public WorkloadResult {
    if (deviceNanos < 0 || wallNanos < 0 || peakMemoryBytes < 0) {
      throw new IllegalArgumentException("measurements must be >= 0");
    }
    Objects.requireNonNull(digest, "digest");
    summary = summary == null ? Map.of() : Map.copyOf(summary);
  }
}
