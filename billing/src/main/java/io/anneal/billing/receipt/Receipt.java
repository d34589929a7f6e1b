package io.anneal.billing.receipt;

import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * Measured usage of one run of one job on one node: what billing charges for. The canonical form
 * ({@link #canonicalBytes}) is what gets hashed into the signed batch root.
 *
 * @param receiptId   unique across the cluster: {@code <jobId>/<attempt>}
 * @param deviceNanos device time measured by the backend, summed over the job's GPUs
 * @param outcome     {@code SUCCEEDED}, {@code FAILED} or {@code CANCELLED}
 * @param simulated   true when the device was a simulated GPU
 */
public record Receipt(
    String receiptId,
    String jobId,
    String tenantId,
    String nodeId,
    String gpuClass,
    int gpus,
    boolean simulated,
    long deviceNanos,
    long wallNanos,
    long peakMemoryBytes,
    long startedAtMs,
    long endedAtMs,
    String outcome,
    String resultDigest) {

  public Receipt {
    Objects.requireNonNull(receiptId, "receiptId");
    Objects.requireNonNull(jobId, "jobId");
    Objects.requireNonNull(tenantId, "tenantId");
    Objects.requireNonNull(nodeId, "nodeId");
    Objects.requireNonNull(gpuClass, "gpuClass");
    Objects.requireNonNull(outcome, "outcome");
    Objects.requireNonNull(resultDigest, "resultDigest");
    if (!isAttemptOf(receiptId, jobId)) {
      throw new IllegalArgumentException("receiptId must be <jobId>/<attempt> of job " + jobId + ", not " + receiptId);
    }
    if (gpus < 1) throw new IllegalArgumentException("gpus must be >= 1");
    if (deviceNanos < 0 || wallNanos < 0 || peakMemoryBytes < 0) {
      throw new IllegalArgumentException("measurements must be >= 0");
    }
    if (endedAtMs < startedAtMs) throw new IllegalArgumentException("endedAt before startedAt");
    for (String s : new String[] {receiptId, jobId, tenantId, nodeId, gpuClass, outcome, resultDigest}) {
      if (s.indexOf('\n') >= 0) throw new IllegalArgumentException("receipt fields must not contain newlines");
    }
  }

  /** {@code receiptId} is {@code jobId}, a slash and a run number (decimal digits, at most 9). */
  private static boolean isAttemptOf(String receiptId, String jobId) {
    int n = jobId.length();
    if (n == 0 || receiptId.length() < n + 2 || receiptId.length() > n + 10 || !receiptId.startsWith(jobId)
        || receiptId.charAt(n) != '/') {
      return false;
    }
    for (int i = n + 1; i < receiptId.length(); i++) {
      if (receiptId.charAt(i) < '0' || receiptId.charAt(i) > '9') return false;
    }
    return true;
  }

  /** A deterministic, versioned text form: one field per line, in declaration order. */
  public byte[] canonicalBytes() {
    String s = "anneal-receipt/1\n" + receiptId + '\n' + jobId + '\n' + tenantId + '\n' + nodeId + '\n'
        + gpuClass + '\n' + gpus + '\n' + simulated + '\n' + deviceNanos + '\n' + wallNanos + '\n'
        + peakMemoryBytes + '\n' + startedAtMs + '\n' + endedAtMs + '\n' + outcome + '\n' + resultDigest;
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
