package io.anneal.gpu;

import java.time.Duration;
import java.util.Map;
import java.util.Objects;

/**
 * A unit of work for a backend: the job's kind, its parameters (already validated by the API) and
 * its time limit.
 */
public record Workload(String jobId, String owner, String kind, Map<String, Object> params, Duration maxDuration) {

  /** A workload of no particular tenant (benchmarks, tests). */
  public Workload(String jobId, String kind, Map<String, Object> params, Duration maxDuration) {
    this(jobId, "anonymous", kind, params, maxDuration);
  }

  public Workload {
    Objects.requireNonNull(jobId, "jobId");
    Objects.requireNonNull(owner, "owner");
    Objects.requireNonNull(kind, "kind");
    params = params == null ? Map.of() : java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(params));
    Objects.requireNonNull(maxDuration, "maxDuration");
  }

  public long longParam(String key, long dflt) {
    Object v = params.get(key);
    return v instanceof Number n ? n.longValue() : dflt;
  }
}
