package io.anneal.gpu;

/**
 * A workload that failed. {@link Reason} says whose fault it was: the scheduler retries
 * infrastructure failures, never job errors.
 */
public final class WorkloadException extends Exception {
  private static final long serialVersionUID = 1L;

  public enum Reason {
    /** The job itself is wrong (bad parameters, unknown model). Not retried. */
    JOB_ERROR(false),
    /** The job exceeded its {@code maxSeconds}. Not retried. */
    TIMEOUT(false),
    /** The device ran out of memory for this job. Not retried. */
    OUT_OF_MEMORY(false),
    /** The job was cancelled while running. */
    CANCELLED(false),
    /** The device or driver failed (launch failure, lost device). Retried elsewhere. */
    DEVICE_FAILURE(true);

    private final boolean infrastructure;

    Reason(boolean infrastructure) {
      this.infrastructure = infrastructure;
    }

    public boolean infrastructure() {
      return infrastructure;
    }
  }

  private final Reason reason;
  private final long deviceNanosUsed;

  public WorkloadException(Reason reason, String message, long deviceNanosUsed) {
    super(message);
    this.reason = reason;
    this.deviceNanosUsed = deviceNanosUsed;
  }

  public Reason reason() {
    return reason;
  }

  /** Device time already used before the failure; it is still metered. */
  public long deviceNanosUsed() {
    return deviceNanosUsed;
  }
}
