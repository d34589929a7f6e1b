package io.anneal.store;

import io.anneal.job.JobState;

/**
 * A job row as stored. Times are epoch milliseconds; absent ones are 0. {@code preemptions}: how often it
 * was preempted so far (at most twice, ADR 5).
 */
public record JobRecord(
    String id, String tenantId, String kind, String specJson, int gpus, String gpuClass, int priority, long maxSeconds,
    JobState state, String outcome, String error, String nodeId, String placedClass, String devices, int attempt, String resultJson,
    long escrowUact, long priceUactPerGpuHour, Long chargeUact, String receiptId, long submittedAt, long startedAt,
    long endedAt, long settledAt, int preemptions) {}
