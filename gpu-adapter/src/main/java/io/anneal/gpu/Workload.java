package io.anneal.gpu;

import java.time.Duration;
import java.util.Map;
import java.util.Objects;

/**
 * A unit of work for a backend: the job's kind, its parameters (already validated by the API) and
 * its time limit.
 */
public record Workload(String jobId, String kind, Map<String, Object> params, Duration maxDuration) {

  public Workload {
    Objects.requireNonNull(jobId, "jobId");
    Objects.requireNonNull(kind, "kind");
    params = params == null ? Map.of() : Map.copyOf(params);
    Objects.requireNonNull(maxDuration, "maxDuration");
  }

  public long longParam(String key, long dflt) {
    Object v = params.get(key);
    return v instanceof Number n ? n.longValue() : dflt;
  }
}
