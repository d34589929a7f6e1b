package io.anneal.gpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

class CpuBackendTest {
  private final CpuBackend cpu = new CpuBackend(2);

  @Test
  void matmulIsDeterministicAndMatchesAnIndependentProduct() throws Exception {
    Workload w = new Workload("j", "matmul", Map.of("n", 48, "seed", 11L), Duration.ofSeconds(30));
    WorkloadResult a = cpu.run(0, w, RunControl.NONE);
    WorkloadResult b = cpu.run(1, w, RunControl.NONE);
    assertThat(a.digest()).hasSize(64).isEqualTo(b.digest());
    assertThat(a.deviceNanos()).isPositive();
    assertThat(a.summary()).containsKey("gflops");
    // independent reference: same seeded inputs, textbook triple loop in the same k order
    SeededData d = new SeededData(11L);
    float[] x = d.matrix(48, 48);
    float[] y = d.matrix(48, 48);
    float[] z = new float[48 * 48];
    for (int i = 0; i < 48; i++) {
      for (int j = 0; j < 48; j++) {
        float s = 0f;
        for (int k = 0; k < 48; k++) s += x[i * 48 + k] * y[k * 48 + j];
        z[i * 48 + j] = s;
      }
    }
    assertThat(a.digest()).isEqualTo(Digests.sha256(z));
    Workload other = new Workload("j", "matmul", Map.of("n", 48, "seed", 12L), Duration.ofSeconds(30));
    assertThat(cpu.run(0, other, RunControl.NONE).digest()).isNotEqualTo(a.digest());
  }

  @Test
  void sleepHoldsTheDeviceForTheAskedTimeAndMetersIt() throws Exception {
    WorkloadResult r = cpu.run(0, new Workload("j", "sleep", Map.of("ms", 60), Duration.ofSeconds(5)), RunControl.NONE);
    assertThat(r.deviceNanos()).isGreaterThanOrEqualTo(60_000_000L);
  }

  @Test
  void aJobPastItsMaxSecondsFailsWithTimeoutAndKeepsItsMeteredTime() {
    Workload w = new Workload("j", "sleep", Map.of("ms", 10_000), Duration.ofMillis(120));
    assertThatThrownBy(() -> cpu.run(0, w, RunControl.NONE)).isInstanceOfSatisfying(WorkloadException.class, e -> {
      assertThat(e.reason()).isEqualTo(WorkloadException.Reason.TIMEOUT);
      assertThat(e.deviceNanosUsed()).isGreaterThanOrEqualTo(100_000_000L);
    });
  }

  @Test
  void cancellationStopsARunningJob() {
    AtomicBoolean cancel = new AtomicBoolean();
    RunControl control = new RunControl() {
      @Override
      public void progress(Map<String, Object> event) {}

      @Override
      public boolean cancelled() {
        return cancel.get();
      }
    };
    cancel.set(true);
    assertThatThrownBy(() -> cpu.run(0, new Workload("j", "matmul", Map.of("n", 512), Duration.ofSeconds(30)), control))
        .isInstanceOfSatisfying(WorkloadException.class, e -> assertThat(e.reason()).isEqualTo(WorkloadException.Reason.CANCELLED));
  }

  @Test
  void badParametersAreJobErrorsNotDeviceFailures() {
    assertThatThrownBy(() -> cpu.run(0, new Workload("j", "matmul", Map.of("n", 100_000), Duration.ofSeconds(1)), RunControl.NONE))
        .isInstanceOfSatisfying(WorkloadException.class, e -> {
          assertThat(e.reason()).isEqualTo(WorkloadException.Reason.JOB_ERROR);
          assertThat(e.reason().infrastructure()).isFalse();
        });
  }
}
