package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Stopping and starting on the same data dir loses nothing and runs what was waiting. */
class RestartTest {
  @TempDir Path dir;

  private static String submit(TestService s, long ms) {
    var r = s.post("/api/v1/jobs", TestService.DEMO_KEY,
        new JsonObject().put("kind", "sleep").put("gpus", 1).put("maxSeconds", 60).put("params", new JsonObject().put("ms", ms))
            .encode());
    assertThat(r.statusCode()).isEqualTo(202);
    return s.json(r).getString("id");
  }

  /** The signed receipt and its settlement (the epoch part may close in between, which is fine). */
  private static String receiptAndSettlement(TestService s, String jobId) {
    JsonObject r = s.json(s.get("/api/v1/receipts/" + jobId, TestService.DEMO_KEY));
    assertThat(r.getBoolean("settled")).isTrue();
    return r.getJsonObject("receipt").encode() + r.getJsonObject("settlement").encode();
  }

  @Test
  void jobsBalancesAndReceiptsSurviveAndQueuedJobsRunAfterRestart() throws Exception {
    String done;
    String longRunning;
    String waiting;
    long balance;
    String receiptBefore;
    try (TestService s = TestService.start(dir, "--cpu-devices", "1", "--drain-seconds", "0")) {
      done = submit(s, 10);
      s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(done).getString("state")));
      longRunning = submit(s, 60_000);
      s.await(Duration.ofSeconds(20), () -> "RUNNING".equals(s.job(longRunning).getString("state")));
      waiting = submit(s, 10);
      assertThat(s.job(waiting).getString("state")).isEqualTo("QUEUED");
      balance = s.balanceUact();
      receiptBefore = receiptAndSettlement(s, done);
    }
    try (TestService s = TestService.start(dir, "--cpu-devices", "1")) {
      // what was settled is still there, unchanged
      assertThat(s.job(done).getString("state")).isEqualTo("SETTLED");
      assertThat(receiptAndSettlement(s, done)).isEqualTo(receiptBefore);
      // the running job was re-queued at shutdown; it and the queued one run again
      s.await(Duration.ofSeconds(20), () -> "RUNNING".equals(s.job(longRunning).getString("state")));
      assertThat(s.balanceUact()).isEqualTo(balance);
      s.delete("/api/v1/jobs/" + longRunning, TestService.DEMO_KEY);
      s.await(Duration.ofSeconds(30), () -> "SETTLED".equals(s.job(waiting).getString("state")));
      s.await(Duration.ofSeconds(30), () -> "SETTLED".equals(s.job(longRunning).getString("state")));
      assertThat(s.job(longRunning).getString("outcome")).isEqualTo("CANCELLED");
      assertThat(s.job(longRunning).getInteger("attempt")).isEqualTo(2);
    }
  }

  /**
   * A ledger's accounting epochs keep the length they were written with: a start with another
   * --epoch-seconds is refused with what to start with, and changes nothing; the right length starts.
   */
  @Test
  void aStartWithAnotherEpochLengthThanTheLedgersIsRefused() throws Exception {
    String done;
    try (TestService s = TestService.start(dir, "--cpu-devices", "1", "--drain-seconds", "0")) {
      done = submit(s, 10);
      s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(done).getString("state")));
    }
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> TestService.start(dir, "--cpu-devices", "1",
            "--epoch-seconds", "60"))
        .hasMessageContaining("--epoch-seconds 60 (ANNEAL_EPOCH_SECONDS) does not match the ledger's accounting epochs")
        .hasMessageContaining("start with --epoch-seconds 3600");
    try (TestService s = TestService.start(dir, "--cpu-devices", "1")) {
      assertThat(s.job(done).getString("state")).isEqualTo("SETTLED");
    }
  }
}
