package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.ledger.Accounts;
import io.anneal.billing.ledger.SqlLedger;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A higher-priority job preempts a lower one; the preempted run is billed, the job re-queued and run again. */
class PreemptionTest {
  @TempDir Path dir;

  private static String submit(TestService s, int priority, long ms) {
    var r = s.post("/api/v1/jobs", TestService.DEMO_KEY, new JsonObject().put("kind", "sleep").put("gpus", 1)
        .put("priority", priority).put("maxSeconds", 120).put("params", new JsonObject().put("ms", ms)).encode());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(202);
    return s.json(r).getString("id");
  }

  @Test
  void aHigherPriorityJobPreemptsALowerOneWhichIsBilledForItsRunAndRunsAgain() throws Exception {
    try (TestService s = TestService.start(dir, "--cpu-devices", "1"); TestService.Ws ws = s.ws(TestService.DEMO_KEY)) {
      ws.nextOfType("authenticated", Duration.ofSeconds(5));
      ws.send(new JsonObject().put("type", "subscribe"));
      long before = s.balanceUact();
      String low = submit(s, 0, 60_000);
      s.await(Duration.ofSeconds(10), () -> "RUNNING".equals(s.job(low).getString("state")));
      long startedAt = s.job(low).getLong("startedAt");
      // let the low job accumulate device time worth charging before it is preempted
      s.await(Duration.ofSeconds(5), () -> System.currentTimeMillis() - startedAt >= 300);
      String high = submit(s, 5, 20);
      s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(high).getString("state")));
      // the low job was preempted (PREEMPTED then QUEUED) and runs again once the GPU is free
      boolean sawPreempted = false;
      while (!sawPreempted) {
        JsonObject m = ws.nextOfType("job", Duration.ofSeconds(10));
        sawPreempted = low.equals(m.getString("jobId")) && "PREEMPTED".equals(m.getString("state"));
      }
      s.await(Duration.ofSeconds(20), () -> "RUNNING".equals(s.job(low).getString("state")));
      JsonObject lowJob = s.job(low);
      assertThat(lowJob.getInteger("attempt")).isEqualTo(2);
      assertThat(lowJob.getInteger("preemptions")).isEqualTo(1);
      assertThat(s.job(high).containsKey("preemptions")).as("never preempted: absent").isFalse();
      assertThat(lowJob.getLong("chargeUact")).as("the preempted run is billed").isPositive();
      long preemptedCharge = lowJob.getLong("chargeUact");
      s.delete("/api/v1/jobs/" + low, TestService.DEMO_KEY);
      s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(low).getString("state")));
      lowJob = s.job(low);
      assertThat(lowJob.getString("outcome")).isEqualTo("CANCELLED");
      assertThat(lowJob.getLong("chargeUact")).isGreaterThanOrEqualTo(preemptedCharge);
      long charged = lowJob.getLong("chargeUact") + s.job(high).getLong("chargeUact");
      assertThat(s.balanceUact()).as("tenant paid exactly what was charged").isEqualTo(before - charged);
      try (var c = s.service.database().connection()) {
        assertThat(SqlLedger.balance(c, Accounts.provider(s.service.nodeId()), "uact")).isEqualTo(charged);
        assertThat(SqlLedger.balance(c, Accounts.escrow(tenantOf(s)), "uact")).as("no escrow left behind").isZero();
      }
      assertThat(s.get("/metrics", null).body()).contains("anneal_scheduler_preemptions_total 1.0");
      // the scheduler holds nothing for jobs that left it: not their preemption counts either
      var held = s.service.scheduler().perJobState().toCompletionStage().toCompletableFuture().get(5, java.util.concurrent.TimeUnit.SECONDS);
      assertThat(held).as("per-job state held after every job ended").allSatisfy((map, size) -> assertThat(size).as(map).isZero());
      // the receipts API lists both billed runs, each signed and traceable; together they are the job's charge
      JsonObject receipts = s.json(s.get("/api/v1/receipts/" + low, TestService.DEMO_KEY));
      var runs = receipts.getJsonArray("runs");
      assertThat(runs).hasSize(2);
      var ids = runs.stream().map(r -> ((JsonObject) r).getJsonObject("receipt").getString("receiptId")).toList();
      assertThat(ids).doesNotHaveDuplicates().allSatisfy(id -> assertThat(id).startsWith(low + "/"));
      long runCharges = runs.stream().mapToLong(r -> ((JsonObject) r).getJsonObject("settlement").getLong("chargeUact")).sum();
      assertThat(runCharges).isEqualTo(lowJob.getLong("chargeUact"));
      assertThat(runs.getJsonObject(0).getJsonObject("settlement").getLong("chargeUact")).isEqualTo(preemptedCharge);
      assertThat(receipts.getJsonObject("receipt")).as("the last run, also at the top level").isEqualTo(runs.getJsonObject(1).getJsonObject("receipt"));
      java.nio.file.Path file = dir.resolve("receipts.json");
      java.nio.file.Files.writeString(file, receipts.encode());
      var out = new java.io.ByteArrayOutputStream();
      int code = io.anneal.billing.tools.ReceiptCli.run(new String[] {"verify", file.toString(), "--node-key",
          dir.resolve("node-ed25519.pub").toString()}, System.in, new java.io.PrintStream(out, true), System.err);
      assertThat(code).as(out.toString()).isZero();
      assertThat(out.toString()).contains("2 run(s)", "0 failed");
    }
  }

  /**
   * A job is preempted at most twice: its count goes with it when it is queued again (the scheduler
   * forgets a job whose run ended, and the re-submission carries the count), so a third higher-priority
   * job waits for it instead.
   */
  @Test
  void aJobIsPreemptedAtMostTwice() throws Exception {
    try (TestService s = TestService.start(dir, "--cpu-devices", "1")) {
      String low = submit(s, 0, 60_000);
      for (int round = 1; round <= 2; round++) {
        int attempt = round;
        s.await(Duration.ofSeconds(10), () -> "RUNNING".equals(s.job(low).getString("state"))
            && s.job(low).getInteger("attempt") == attempt);
        String high = submit(s, 5, 20);
        s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(high).getString("state")));
      }
      s.await(Duration.ofSeconds(10), () -> "RUNNING".equals(s.job(low).getString("state")) && s.job(low).getInteger("attempt") == 3);
      String third = submit(s, 5, 20);
      // the low job has been preempted twice: the third waits, however long the scheduler looks
      Thread.sleep(2_000);
      assertThat(s.job(third).getString("state")).isEqualTo("QUEUED");
      assertThat(s.job(low).getString("state")).isEqualTo("RUNNING");
      assertThat(s.get("/metrics", null).body()).contains("anneal_scheduler_preemptions_total 2.0");
      s.delete("/api/v1/jobs/" + low, TestService.DEMO_KEY);
      s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(third).getString("state")));
      s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(low).getString("state")));
      var held = s.service.scheduler().perJobState().toCompletionStage().toCompletableFuture().get(5, java.util.concurrent.TimeUnit.SECONDS);
      assertThat(held).allSatisfy((map, size) -> assertThat(size).as(map).isZero());
    }
  }

  /** The count is in the store: a scheduler that starts again goes on from it (V10). */
  @Test
  void aJobPreemptedTwiceIsNotPreemptedAgainAfterARestart() throws Exception {
    String low;
    try (TestService s = TestService.start(dir, "--cpu-devices", "1", "--drain-seconds", "0")) {
      low = submit(s, 0, 60_000);
      for (int round = 1; round <= 2; round++) {
        int attempt = round;
        s.await(Duration.ofSeconds(10), () -> "RUNNING".equals(s.job(low).getString("state"))
            && s.job(low).getInteger("attempt") == attempt);
        String high = submit(s, 5, 20);
        s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(high).getString("state")));
      }
      s.await(Duration.ofSeconds(10), () -> "RUNNING".equals(s.job(low).getString("state")) && s.job(low).getInteger("attempt") == 3);
    }
    try (TestService s = TestService.start(dir, "--cpu-devices", "1", "--drain-seconds", "0")) {
      s.await(Duration.ofSeconds(20), () -> "RUNNING".equals(s.job(low).getString("state")));
      String third = submit(s, 5, 20);
      // a fixed look on purpose: what is shown is that nothing happens (a preemption takes milliseconds)
      Thread.sleep(2_000);
      assertThat(s.job(third).getString("state")).as("the low job was preempted twice before the restart").isEqualTo("QUEUED");
      assertThat(s.job(low).getString("state")).isEqualTo("RUNNING");
      s.delete("/api/v1/jobs/" + low, TestService.DEMO_KEY);
      s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(third).getString("state")));
    }
  }

  private static String tenantOf(TestService s) {
    return s.json(s.get("/api/v1/me", TestService.DEMO_KEY)).getString("id");
  }
}
