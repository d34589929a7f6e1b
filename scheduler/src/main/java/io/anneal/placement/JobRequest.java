package io.anneal.placement;

import java.util.Map;
import java.util.Objects;

/**
 * A queued job as placement sees it.
 *
 * @param gpuClass     required class, or null for any
 * @param labels       node labels the job requires (all must match)
 * @param maxSeconds   upper bound of its run time: used for backfill and fair-share accounting
 * @param spread       may the gang span several nodes (only when asked)
 * @param needs        parameter values a node's own limits must reach ({@code "kind.param" -> value},
 *                     e.g. {@code "matmul.n" -> 4096}): a node that limits the key below the value
 *                     cannot run the job (see {@code GpuBackend.paramLimits})
 */
public record JobRequest(String id, String tenant, int priority, int gpus, String gpuClass, long memoryMiB,
    Map<String, String> labels, long maxSeconds, boolean spread, Map<String, Long> needs) {
  public JobRequest {
    Objects.requireNonNull(id, "id");
    Objects.requireNonNull(tenant, "tenant");
    if (gpus < 1) throw new IllegalArgumentException("gpus must be >= 1");
    if (maxSeconds < 1) throw new IllegalArgumentException("maxSeconds must be >= 1");
    labels = labels == null ? Map.of() : Map.copyOf(labels);
    needs = needs == null ? Map.of() : Map.copyOf(needs);
  }

  /** A job with no parameter limits to meet. */
  public JobRequest(String id, String tenant, int priority, int gpus, String gpuClass, long memoryMiB,
      Map<String, String> labels, long maxSeconds, boolean spread) {
    this(id, tenant, priority, gpus, gpuClass, memoryMiB, labels, maxSeconds, spread, Map.of());
  }

  public static JobRequest simple(String id, String tenant, int priority, int gpus, String gpuClass, long maxSeconds) {
    return new JobRequest(id, tenant, priority, gpus, gpuClass, 0, Map.of(), maxSeconds, false);
  }
}
