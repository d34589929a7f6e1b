package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * bme-spec 16.3 in the service: the mint spread feeds the bootstrap fund, which tops a small provider
 * up to its floor while the network is idle and pays nothing while it is fully used.
 */
class BootstrapFundTest {
  @TempDir Path dir;

  private static long providerUact(TestService s) {
    return s.json(s.get("/api/v1/providers/node-boot/payouts", TestService.ADMIN_KEY)).getLong("uact");
  }

  private static long fund(TestService s) {
    return s.json(s.get("/api/v1/supply", null)).getLong("bootstrapFundUact");
  }

  private static JsonObject windows(TestService s) {
    return s.json(s.get("/api/v1/bootstrap-fund/windows?limit=1000", null));
  }

  @Test
  void anIdleSmallProviderIsToppedUpAndAFullyUsedNetworkSunsetsTheFund() throws Exception {
    try (TestService s = TestService.start(dir, "--cpu-devices", "4", "--node-id", "node-boot", "--price-window-seconds", "1",
        "--payout-min-act", "0", "--price-adjust", "false")) {
      // the demo tenant's deposit left mint spread with the engine: the first window moves it to the fund
      s.await(Duration.ofSeconds(10), () -> fund(s) > 0);
      // idle windows: utilization 0, full share; 4 GPUs at 45 % of 0.1 ACT/GPU-hour = 50 uact a second
      s.await(Duration.ofSeconds(10), () -> providerUact(s) >= 100);
      long paidIdle = providerUact(s);
      assertThat(paidIdle).isPositive();
      // the windows account for every top-up, each second paid once: no window's span overlaps the one before
      s.await(Duration.ofSeconds(5), () -> {
        JsonObject w1 = windows(s);
        long paid = providerUact(s);
        return w1.equals(windows(s)) && w1.getJsonArray("windows").stream()
            .mapToLong(w -> ((JsonObject) w).getLong("paidUact")).sum() == paid;
      });
      JsonObject w = windows(s);
      assertThat(w.getBoolean("enabled")).isTrue();
      assertThat(w.getLong("fundUact")).isEqualTo(fund(s));
      var list = w.getJsonArray("windows");
      assertThat(list.size()).isGreaterThanOrEqualTo(2);
      for (int i = 0; i + 1 < list.size(); i++) {
        assertThat(list.getJsonObject(i).getLong("paidFromMs")).isGreaterThanOrEqualTo(list.getJsonObject(i + 1).getLong("endMs"));
      }
      assertThat(s.get("/api/v1/bootstrap-fund/windows?limit=0", null).statusCode()).isEqualTo(422);

      // all four GPUs busy: utilization 1, above the sunset, so the fund pays nothing
      List<String> ids = new ArrayList<>();
      for (int i = 0; i < 4; i++) {
        ids.add(s.json(s.post("/api/v1/jobs", TestService.DEMO_KEY, new JsonObject().put("kind", "sleep").put("gpus", 1)
            .put("maxSeconds", 60).put("params", new JsonObject().put("ms", 5000)).encode())).getString("id"));
      }
      for (String id : ids) s.await(Duration.ofSeconds(10), () -> "RUNNING".equals(s.job(id).getString("state")));
      // let the window that was partly idle close, then watch two fully busy ones
      long running = System.currentTimeMillis();
      s.await(Duration.ofSeconds(5), () -> System.currentTimeMillis() - running >= 1_200);
      long before = fund(s);
      long t0 = System.currentTimeMillis();
      s.await(Duration.ofSeconds(5), () -> System.currentTimeMillis() - t0 >= 2_200);
      assertThat(ids).allMatch(id -> "RUNNING".equals(s.job(id).getString("state")));
      assertThat(fund(s)).isEqualTo(before);
    }
  }

  /**
   * A window billing did not store (its role changing hands, its store out of reach) is sent again until it
   * is: every second is paid once, none skipped, none twice.
   */
  @Test
  void aWindowBillingRefusedIsSentAgainAndPaidOnce() throws Exception {
    try (TestService s = TestService.start(dir, "--cpu-devices", "4", "--node-id", "node-boot", "--price-window-seconds", "1",
        "--payout-min-act", "0", "--price-adjust", "false")) {
      java.util.concurrent.atomic.AtomicInteger seen = new java.util.concurrent.atomic.AtomicInteger();
      s.service.vertx().eventBus().addInboundInterceptor(ctx -> {
        if (ctx.message().address().equals(io.anneal.billing.BillingAddresses.CLASS_UTILIZATION)) {
          int n = seen.incrementAndGet();
          if (n == 2 || n == 3) { // the second window, twice
            ctx.message().fail(503, "test: billing is changing hands");
            return;
          }
        }
        ctx.next();
      });
      s.await(Duration.ofSeconds(30), () -> windows(s).getJsonArray("windows").size() >= 8);
      var list = windows(s).getJsonArray("windows");
      assertThat(seen.get()).isGreaterThan(list.size()); // the refused deliveries came again
      for (int i = 0; i + 1 < list.size(); i++) {
        JsonObject newer = list.getJsonObject(i);
        JsonObject older = list.getJsonObject(i + 1);
        assertThat(newer.getLong("startMs")).as("windows follow each other: " + list.encode()).isEqualTo(older.getLong("endMs"));
        assertThat(newer.getLong("paidFromMs")).isEqualTo(newer.getLong("startMs"));
      }
      long paid = list.stream().mapToLong(w -> ((JsonObject) w).getLong("paidUact")).sum();
      s.await(Duration.ofSeconds(5), () -> {
        JsonObject w1 = windows(s);
        long p = providerUact(s);
        return w1.equals(windows(s)) && w1.getJsonArray("windows").stream()
            .mapToLong(w -> ((JsonObject) w).getLong("paidUact")).sum() == p;
      });
      assertThat(paid).isPositive();
    }
  }

  /**
   * A restart pays the window it ends (the next scheduler starts its own window when it starts), but moves no
   * price on it: a window of seconds would step a price as far as one of ten minutes.
   */
  @Test
  void aGracefulStopSendsTheWindowUnderWayWhichMovesNoPrice() throws Exception {
    long started;
    try (TestService s = TestService.start(dir, "--cpu-devices", "4", "--node-id", "node-boot", "--price-window-seconds", "600",
        "--payout-min-act", "0", "--price-adjust", "true")) {
      started = System.currentTimeMillis();
      Thread.sleep(3_000);
      assertThat(windows(s).getJsonArray("windows")).as("no 600 s window has ended").isEmpty();
    }
    try (TestService s = TestService.start(dir, "--cpu-devices", "4", "--node-id", "node-boot", "--price-window-seconds", "600",
        "--payout-min-act", "0", "--price-adjust", "true")) {
      JsonObject cpu = s.json(s.get("/api/v1/prices", null)).getJsonObject("classes").getJsonObject("cpu");
      assertThat(cpu.getLong("uactPerGpuHour")).as("idle, but no step: " + cpu).isEqualTo(cpu.getLong("baseUactPerGpuHour"));
      var list = windows(s).getJsonArray("windows");
      assertThat(list).hasSize(1);
      JsonObject w = list.getJsonObject(0);
      assertThat(w.getLong("endMs") - w.getLong("startMs")).isGreaterThanOrEqualTo(3_000L);
      assertThat(w.getLong("endMs")).isGreaterThanOrEqualTo(started + 3_000L);
      assertThat(w.getLong("paidUact")).isPositive(); // 4 idle GPUs of a small provider: topped up
      assertThat(providerUact(s)).isEqualTo(w.getLong("paidUact"));
    }
  }

  private static final String[] LONG_WINDOWS = {"--cpu-devices", "4", "--node-id", "node-boot", "--price-window-seconds",
      "600", "--payout-min-act", "0", "--price-adjust", "true"};

  /** The one window the service shows: paid, a partial one that moved no price. */
  private static JsonObject theOnlyWindowPaidWithoutAPriceStep(TestService s) {
    JsonObject cpu = s.json(s.get("/api/v1/prices", null)).getJsonObject("classes").getJsonObject("cpu");
    assertThat(cpu.getLong("uactPerGpuHour")).as("idle, but no step: " + cpu).isEqualTo(cpu.getLong("baseUactPerGpuHour"));
    var list = windows(s).getJsonArray("windows");
    assertThat(list).as(list.encode()).hasSize(1);
    JsonObject w = list.getJsonObject(0);
    assertThat(w.getLong("paidUact")).isPositive(); // 4 idle GPUs of a small provider: topped up
    assertThat(providerUact(s)).isEqualTo(w.getLong("paidUact"));
    return w;
  }

  /**
   * A service killed in the middle of a window (SIGKILL: nothing closed, nothing sent) took the seconds it had
   * sampled with it. Its scheduler saves the window under way every few seconds, and the next one to start
   * sends it (ADR 22): those seconds are paid, and no price moves on the part of a window.
   */
  @Test
  void theWindowOfAKilledServiceIsPaidByTheNextStart() throws Exception {
    TestService.Spawned spawned = TestService.spawn(dir, dir.resolve("killed.log"), LONG_WINDOWS);
    long ready = System.currentTimeMillis();
    try {
      // past one save of the window under way (every 5 s), well inside the 600 s window: the seconds are
      // what is tested, so they are let pass
      Thread.sleep(io.anneal.sched.SchedulerVerticle.WINDOW_SAVE_MS + 3_000);
    } finally {
      spawned.process().destroyForcibly();
      spawned.process().waitFor();
    }
    try (TestService s = TestService.start(dir, LONG_WINDOWS)) {
      s.await(Duration.ofSeconds(10), () -> !windows(s).getJsonArray("windows").isEmpty());
      JsonObject w = theOnlyWindowPaidWithoutAPriceStep(s);
      assertThat(s.service.metrics().registry().counter("anneal.scheduler.repaired", "what", "window").count())
          .isEqualTo(1.0);
      assertThat(w.getLong("endMs") - w.getLong("startMs")).as(w.encode()).isGreaterThanOrEqualTo(4_000L);
      assertThat(w.getLong("endMs")).as(w.encode()).isGreaterThanOrEqualTo(ready + 4_000L);
    }
  }

  /**
   * Windows billing does not take before a graceful stop are saved, not dropped: the next start sends them.
   */
  @Test
  void windowsBillingDidNotTakeBeforeAStopAreSentByTheNextStart() throws Exception {
    long started;
    try (TestService s = TestService.start(dir, LONG_WINDOWS)) {
      started = System.currentTimeMillis();
      s.service.vertx().eventBus().addInboundInterceptor(ctx -> {
        if (ctx.message().address().equals(io.anneal.billing.BillingAddresses.CLASS_UTILIZATION)) {
          ctx.message().fail(503, "test: billing is changing hands");
          return;
        }
        ctx.next();
      });
      Thread.sleep(3_000);
      assertThat(s.get("/metrics", null).body()).as("no 600 s window has closed yet")
          .contains("anneal_scheduler_pricing_windows_unsent 0.0");
    }
    try (TestService s = TestService.start(dir, LONG_WINDOWS)) {
      s.await(Duration.ofSeconds(10), () -> !windows(s).getJsonArray("windows").isEmpty());
      JsonObject w = theOnlyWindowPaidWithoutAPriceStep(s);
      assertThat(w.getLong("endMs") - w.getLong("startMs")).as(w.encode()).isGreaterThanOrEqualTo(3_000L);
      assertThat(w.getLong("endMs")).isGreaterThanOrEqualTo(started + 3_000L);
    }
  }

  @Test
  void aQuarantinedGpuIsNotOnlineCapacitySoItsProviderMissesTheCommitment() throws Exception {
    try (TestService s = TestService.start(dir, "--cpu-devices", "4", "--node-id", "node-boot", "--price-window-seconds", "1",
        "--payout-min-act", "0", "--price-adjust", "false")) {
      s.await(Duration.ofSeconds(10), () -> providerUact(s) >= 100);
      // one GPU of four out of service (recorded and told to the scheduler, as the worker does after
      // repeated faults): 75 % of the node's GPU-time offered, under the 90 % commitment
      try (var c = s.service.database().connection()) {
        io.anneal.store.Quarantines.add(c, "node-boot", 0, "test: repeated faults", System.currentTimeMillis());
      }
      s.service.vertx().eventBus().send(io.anneal.bus.Addresses.DEVICE_QUARANTINED,
          new JsonObject().put("nodeId", "node-boot").put("device", 0).put("reason", "test: repeated faults"));
      s.await(Duration.ofSeconds(5), () -> s.json(s.get("/api/v1/gpus", null)).getJsonArray("gpus").stream()
          .anyMatch(g -> ((JsonObject) g).getBoolean("quarantined", false)));
      // the window the quarantine began in may still pay; the ones after it do not
      long since = System.currentTimeMillis();
      s.await(Duration.ofSeconds(5), () -> System.currentTimeMillis() - since >= 2_200);
      long paid = providerUact(s);
      long t0 = System.currentTimeMillis();
      s.await(Duration.ofSeconds(5), () -> System.currentTimeMillis() - t0 >= 2_500);
      assertThat(providerUact(s)).as("no top-up while a quarter of its GPUs is out of service").isEqualTo(paid);
      // back in service: the top-ups resume
      assertThat(s.delete("/api/v1/gpus/node-boot/0/quarantine", TestService.ADMIN_KEY).statusCode()).isBetween(200, 204);
      s.await(Duration.ofSeconds(10), () -> providerUact(s) > paid);
    }
  }
}
