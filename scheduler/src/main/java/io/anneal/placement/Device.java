package io.anneal.placement;

/** A GPU as placement sees it. */
public record Device(String nodeId, int index, String gpuClass, long memoryMiB, boolean simulated) {}
