package io.anneal.gpu;

import java.util.Map;

/** What a running workload may ask of the worker: report progress, learn it was cancelled. */
public interface RunControl {
  /** Streams a progress event (e.g. {@code {"step": 10, "loss": 0.41}}) to the job's subscribers. */
  void progress(Map<String, Object> event);

  /** True once the job has been cancelled or has run past its deadline. */
  boolean cancelled();

  RunControl NONE =
      new RunControl() {
        @Override
        public void progress(Map<String, Object> event) {}

        @Override
        public boolean cancelled() {
          return false;
        }
      };
}
