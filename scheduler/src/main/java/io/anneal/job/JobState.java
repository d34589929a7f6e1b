package io.anneal.job;

import java.util.EnumSet;
import java.util.Set;

/** A job's lifecycle. Transitions are named here and nowhere else. */
public enum JobState {
  QUEUED, PLACED, RUNNING, SUCCEEDED, FAILED, CANCELLED, PREEMPTED, SETTLED;

  /** States from which a move to {@code this} is allowed. */
  public Set<JobState> allowedFrom() {
    return switch (this) {
      case QUEUED -> EnumSet.of(PLACED, RUNNING, PREEMPTED);
      case PLACED -> EnumSet.of(QUEUED);
      case RUNNING -> EnumSet.of(PLACED);
      case SUCCEEDED -> EnumSet.of(RUNNING, PLACED);
      // a queued job fails without running when its start-by deadline passes
      case FAILED -> EnumSet.of(RUNNING, PLACED, QUEUED);
      case CANCELLED -> EnumSet.of(QUEUED, PLACED, RUNNING);
      case PREEMPTED -> EnumSet.of(PLACED, RUNNING);
      case SETTLED -> EnumSet.of(SUCCEEDED, FAILED, CANCELLED);
    };
  }

  /** No further change but settlement: the job has stopped using GPUs. */
  public boolean finished() {
    return this == SUCCEEDED || this == FAILED || this == CANCELLED || this == SETTLED;
  }
}
