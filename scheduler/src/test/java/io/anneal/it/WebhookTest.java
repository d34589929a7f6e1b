package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import com.sun.net.httpserver.HttpServer;
import io.anneal.webhook.WebhookSigner;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Webhooks (CONTRACT.md): signed deliveries of job events, retried until 2xx, logged, and stopped on delete. */
class WebhookTest {
  @TempDir Path dir;

  record Received(String path, String type, String signature, String body) {}

  private final List<Received> received = new CopyOnWriteArrayList<>();
  private final AtomicInteger flakyCalls = new AtomicInteger();
  private HttpServer receiver;

  @BeforeEach
  void startReceiver() throws Exception {
    receiver = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    receiver.createContext("/", ex -> {
      String body = new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
      String path = ex.getRequestURI().getPath();
      // the flaky receiver fails its first call: that delivery must be retried
      int status = path.equals("/flaky") && flakyCalls.getAndIncrement() == 0 ? 500 : 200;
      if (status == 200) {
        received.add(new Received(path, ex.getRequestHeaders().getFirst("Anneal-Event"),
            ex.getRequestHeaders().getFirst(WebhookSigner.HEADER), body));
      }
      ex.sendResponseHeaders(status, -1);
      ex.close();
    });
    receiver.start();
  }

  @AfterEach
  void stopReceiver() {
    receiver.stop(0);
  }

  private String url(String path) {
    return "http://127.0.0.1:" + receiver.getAddress().getPort() + path;
  }

  private List<Received> at(String path) {
    return received.stream().filter(r -> r.path().equals(path)).toList();
  }

  private static String sleepJob() {
    return new JsonObject().put("kind", "sleep").put("gpus", 1).put("maxSeconds", 30)
        .put("params", new JsonObject().put("ms", 50)).encode();
  }

  @Test
  void jobEventsAreDeliveredSignedRetriedUntilAcceptedLoggedAndStoppedOnDelete() throws Exception {
    try (TestService s = TestService.start(dir)) {
      String k = TestService.DEMO_KEY;
      // bad registrations change nothing
      assertThat(s.post("/api/v1/webhooks", k, "{\"url\":\"ftp://example.com/x\"}").statusCode()).isEqualTo(422);
      assertThat(s.post("/api/v1/webhooks", k, "{\"url\":\"" + url("/x") + "\",\"events\":[\"job.exploded\"]}").statusCode())
          .isEqualTo(422);
      assertThat(s.post("/api/v1/webhooks", k, "{\"url\":\"" + url("/x") + "\",\"secret\":\"short\"}").statusCode())
          .isEqualTo(422);
      assertThat(s.json(s.get("/api/v1/webhooks", k)).getJsonArray("webhooks")).isEmpty();

      var a = s.post("/api/v1/webhooks", k,
          "{\"url\":\"" + url("/flaky") + "\",\"events\":[\"job.succeeded\",\"job.settled\"]}");
      assertThat(a.statusCode()).isEqualTo(201);
      JsonObject hookA = s.json(a);
      String secretA = hookA.getString("secret");
      assertThat(secretA).startsWith("whsec_");
      String secretB = "0123456789abcdef-our-secret";
      JsonObject hookB = s.json(s.post("/api/v1/webhooks", k,
          "{\"url\":\"" + url("/all") + "\",\"events\":[\"*\"],\"secret\":\"" + secretB + "\"}"));
      JsonArray listed = s.json(s.get("/api/v1/webhooks", k)).getJsonArray("webhooks");
      assertThat(listed).hasSize(2);
      assertThat(listed.getJsonObject(0).containsKey("secret")).as("secrets are shown once").isFalse();

      String job = s.json(s.post("/api/v1/jobs", k, sleepJob())).getString("id");
      // deliveries are not ordered across retries: wait for each expected one
      s.await(Duration.ofSeconds(30), () -> at("/flaky").stream().map(Received::type).toList()
          .containsAll(List.of("job.succeeded", "job.settled"))
          && at("/all").stream().anyMatch(r -> "job.settled".equals(r.type())));

      long now = System.currentTimeMillis() / 1000;
      for (Received r : received) {
        String secret = r.path().equals("/flaky") ? secretA : secretB;
        assertThat(WebhookSigner.verify(secret, r.signature(), r.body(), now, 300)).as("signature of %s", r).isTrue();
        assertThat(WebhookSigner.verify("another-secret-xxxxxxxx", r.signature(), r.body(), now, 300)).isFalse();
        JsonObject body = new JsonObject(r.body());
        assertThat(body.getString("id")).startsWith("evt_");
        assertThat(body.getString("type")).isEqualTo(r.type());
        assertThat(body.getJsonObject("data").getString("jobId")).isEqualTo(job);
        assertThat(body.getJsonObject("data").containsKey("tenantId")).isFalse();
      }
      assertThat(at("/flaky")).extracting(Received::type).containsOnly("job.succeeded", "job.settled");
      assertThat(at("/all")).extracting(Received::type).contains("job.placed", "job.running", "job.succeeded", "job.settled");

      // the delivery log: the first delivery to the flaky receiver took two attempts
      JsonArray log = s.json(s.get("/api/v1/webhooks/" + hookA.getString("id") + "/deliveries", k)).getJsonArray("deliveries");
      assertThat(log).hasSize(2);
      assertThat(log.stream().map(o -> (JsonObject) o)).allSatisfy(d -> assertThat(d.getString("state")).isEqualTo("DELIVERED"));
      assertThat(log.stream().map(o -> ((JsonObject) o).getInteger("attempts")).toList()).contains(2);
      assertThat(s.get("/metrics", null).body()).contains("anneal_webhooks_deliveries_total{outcome=\"retry\"} 1.0");

      // another tenant sees none of it
      String other = s.json(s.post("/api/v1/tenants", TestService.ADMIN_KEY, "{\"name\":\"other\"}")).getString("apiKey");
      assertThat(s.get("/api/v1/webhooks/" + hookA.getString("id") + "/deliveries", other).statusCode()).isEqualTo(404);
      assertThat(s.delete("/api/v1/webhooks/" + hookA.getString("id"), other).statusCode()).isEqualTo(404);
      assertThat(s.json(s.get("/api/v1/webhooks", other)).getJsonArray("webhooks")).isEmpty();

      // deleted: no more deliveries to it; the other webhook still gets the next job's events
      assertThat(s.delete("/api/v1/webhooks/" + hookA.getString("id"), k).statusCode()).isEqualTo(204);
      assertThat(s.delete("/api/v1/webhooks/" + hookA.getString("id"), k).statusCode()).isEqualTo(404);
      int toA = at("/flaky").size();
      String job2 = s.json(s.post("/api/v1/jobs", k, sleepJob())).getString("id");
      s.await(Duration.ofSeconds(30), () -> at("/all").stream()
          .anyMatch(r -> "job.settled".equals(r.type()) && r.body().contains(job2)));
      assertThat(at("/flaky")).hasSize(toA);
      assertThat(s.json(s.get("/api/v1/webhooks", k)).getJsonArray("webhooks")).hasSize(1);
      assertThat(hookB.getString("id")).isEqualTo(s.json(s.get("/api/v1/webhooks", k)).getJsonArray("webhooks")
          .getJsonObject(0).getString("id"));
    }
  }

  @Test
  void eachClosedEpochsRootIsDeliveredOnceToTheWebhooksThatAskForIt() throws Exception {
    try (TestService s = TestService.start(dir, "--epoch-seconds", "1")) {
      String k = TestService.DEMO_KEY;
      String secret = "0123456789abcdef-epoch-secret";
      s.json(s.post("/api/v1/webhooks", k, "{\"url\":\"" + url("/epochs") + "\",\"events\":[\"epoch.closed\"],\"secret\":\""
          + secret + "\"}"));
      s.json(s.post("/api/v1/webhooks", k, "{\"url\":\"" + url("/jobs") + "\",\"events\":[\"*\"]}"));
      String job = s.json(s.post("/api/v1/jobs", k, sleepJob())).getString("id");
      // the epoch holding the job's settlement closes, and its root arrives
      var root = new java.util.concurrent.atomic.AtomicReference<String>();
      s.await(Duration.ofSeconds(30), () -> {
        JsonObject epoch = s.json(s.get("/api/v1/receipts/" + job, k)).getJsonObject("epoch");
        if (epoch != null && epoch.getBoolean("closed")) root.set(epoch.getString("merkleRoot"));
        return root.get() != null;
      });
      s.await(Duration.ofSeconds(30), () -> at("/epochs").stream().anyMatch(r -> r.body().contains(root.get())));
      long now = System.currentTimeMillis() / 1000;
      JsonArray listed = s.json(s.get("/api/v1/epochs?limit=1000", null)).getJsonArray("epochs");
      for (Received r : at("/epochs")) {
        assertThat(r.type()).isEqualTo("epoch.closed");
        assertThat(WebhookSigner.verify(secret, r.signature(), r.body(), now, 300)).isTrue();
        JsonObject body = new JsonObject(r.body());
        JsonObject data = body.getJsonObject("data");
        assertThat(body.getString("id")).isEqualTo("ep_" + data.getLong("epoch"));
        // what the receiver keeps is what the service lists for that epoch
        JsonObject same = listed.stream().map(JsonObject.class::cast).filter(e -> e.getLong("epoch").equals(data.getLong("epoch")))
            .findFirst().orElseThrow();
        assertThat(data).isEqualTo(same);
      }
      // each epoch once (deliveries are not ordered: each carries its epoch)
      List<Long> epochs = at("/epochs").stream().map(r -> new JsonObject(r.body()).getJsonObject("data").getLong("epoch")).toList();
      assertThat(epochs).doesNotHaveDuplicates();
      // "*" is every job event, not the epochs
      assertThat(at("/jobs")).isNotEmpty().allSatisfy(r -> assertThat(r.type()).startsWith("job."));
    }
  }

  /**
   * balance.low (ADR 28): told once when the tenant's ACT available falls below the threshold (a job's
   * escrow taking it there), not again while it stays below, and again after it came back and fell anew.
   */
  @Test
  void aBalanceLowWebhookIsToldOnceEachTimeTheTenantsActFallsBelowItsThreshold() throws Exception {
    try (TestService s = TestService.start(dir, "--cpu-devices", "1")) {
      String k = TestService.DEMO_KEY;
      // refused: the event without a threshold, a threshold without the event, a bad amount; nothing made
      assertThat(s.post("/api/v1/webhooks", k, "{\"url\":\"" + url("/low") + "\",\"events\":[\"balance.low\"]}").statusCode())
          .isEqualTo(422);
      assertThat(s.post("/api/v1/webhooks", k, "{\"url\":\"" + url("/low") + "\",\"events\":[\"*\"],\"lowBalanceAct\":\"5\"}")
          .statusCode()).isEqualTo(422);
      assertThat(s.post("/api/v1/webhooks", k, "{\"url\":\"" + url("/low") + "\",\"events\":[\"balance.low\"],"
          + "\"lowBalanceAct\":\"-1\"}").statusCode()).isEqualTo(422);
      assertThat(s.json(s.get("/api/v1/webhooks", k)).getJsonArray("webhooks")).isEmpty();

      // a job on the one device, so that the next waits in the queue with its escrow held
      String running = s.json(s.post("/api/v1/jobs", k, new JsonObject().put("kind", "sleep").put("gpus", 1).put("maxSeconds", 120)
          .put("params", new JsonObject().put("ms", 60_000)).encode())).getString("id");
      // a threshold 1 ACT under the balance now; a day's escrow at the cpu class's price (0.1 ACT/GPU-hour) is 2.4 ACT
      long have = s.balanceUact();
      String threshold = java.math.BigDecimal.valueOf(have - 1_000_000L, 6).toPlainString();
      String secret = "0123456789abcdef-low-secret";
      var made = s.post("/api/v1/webhooks", k, "{\"url\":\"" + url("/low") + "\",\"events\":[\"balance.low\"],"
          + "\"lowBalanceAct\":\"" + threshold + "\",\"secret\":\"" + secret + "\"}");
      assertThat(made.statusCode()).isEqualTo(201);
      assertThat(new java.math.BigDecimal(s.json(made).getString("lowBalanceAct"))).isEqualByComparingTo(threshold);
      String dayJob = new JsonObject().put("kind", "sleep").put("gpus", 1).put("maxSeconds", 86_400)
          .put("params", new JsonObject().put("ms", 10)).encode();
      var bigAnswer = s.json(s.post("/api/v1/jobs", k, dayJob));
      assertThat(bigAnswer.getLong("escrowUact")).isGreaterThan(1_000_000L);
      String big = bigAnswer.getString("id");
      s.await(Duration.ofSeconds(15), () -> at("/low").size() == 1);
      Received first = at("/low").get(0);
      assertThat(first.type()).isEqualTo("balance.low");
      assertThat(WebhookSigner.verify(secret, first.signature(), first.body(), System.currentTimeMillis() / 1000, 300)).isTrue();
      JsonObject data = new JsonObject(first.body()).getJsonObject("data");
      assertThat(data.getLong("lowBalanceUact")).isEqualTo(have - 1_000_000L);
      assertThat(data.getJsonObject("balance").getLong("uact")).isLessThan(have - 1_000_000L);

      String hooks = "/api/v1/webhooks";
      assertThat(s.json(s.get(hooks, k)).getJsonArray("webhooks").getJsonObject(0).getBoolean("balanceLow")).isTrue();
      // not told again while it stays below: two more looks (every 2 s) pass (a wait for something not to happen)
      Thread.sleep(4_500);
      assertThat(at("/low")).hasSize(1);

      // the escrow comes back (cancelled while queued): above the threshold again, re-armed; held again: told again
      assertThat(s.delete("/api/v1/jobs/" + big, k).statusCode()).isEqualTo(202);
      s.await(Duration.ofSeconds(10), () -> !s.json(s.get(hooks, k)).getJsonArray("webhooks").getJsonObject(0)
          .getBoolean("balanceLow"));
      assertThat(s.balanceUact()).isGreaterThanOrEqualTo(have - 1_000_000L);
      String again = s.json(s.post("/api/v1/jobs", k, dayJob)).getString("id");
      s.await(Duration.ofSeconds(15), () -> at("/low").size() == 2);
      assertThat(new JsonObject(at("/low").get(1).body()).getString("id")).isNotEqualTo(new JsonObject(first.body()).getString("id"));
      s.delete("/api/v1/jobs/" + again, k);
      s.delete("/api/v1/jobs/" + running, k);
    }
  }

  /**
   * deposit.executed: a deposit is told once when its ACT arrives at the mint epoch, with what it minted;
   * deposits decided before the webhook was registered (the demo tenant's own) are not sent.
   */
  @Test
  void aDepositIsToldOnceWhenItsActArrivesAtTheMintEpoch() throws Exception {
    try (TestService s = TestService.start(dir, "--tick-seconds", "1", "--min-epoch-ticks", "1")) {
      String k = TestService.DEMO_KEY;
      String tenant = s.json(s.get("/api/v1/me", k)).getString("id");
      // the demo tenant's deposit at start is converted at the first mint epoch: before the webhook, not told
      s.await(Duration.ofSeconds(20), () -> s.balanceUact() > 0);
      assertThat(s.post("/api/v1/webhooks", k, "{\"url\":\"" + url("/deposits") + "\",\"events\":[\"deposit.executed\","
          + "\"deposit.cancelled\"]}").statusCode()).isEqualTo(201);
      long before = s.balanceUact();
      var made = s.post("/api/v1/tenants/" + tenant + "/deposits", TestService.ADMIN_KEY, "{\"akt\":\"100\",\"reference\":\"chain-tx-7\"}");
      assertThat(made.statusCode()).isEqualTo(202);
      s.await(Duration.ofSeconds(20), () -> !at("/deposits").isEmpty());
      String status = "/api/v1/tenants/" + tenant + "/deposits/chain-tx-7";
      JsonObject executed = s.json(s.get(status, k));
      assertThat(executed.getString("state")).isEqualTo("EXECUTED");
      Received r = at("/deposits").get(0);
      assertThat(r.type()).isEqualTo("deposit.executed");
      JsonObject body = new JsonObject(r.body());
      JsonObject data = body.getJsonObject("data");
      assertThat(body.getString("id")).isEqualTo("dep_" + executed.getLong("requestId"));
      assertThat(data.getString("reference")).isEqualTo("chain-tx-7");
      assertThat(data.getString("tenantId")).isEqualTo(tenant);
      assertThat(data.getLong("mintedUact")).isEqualTo(executed.getLong("mintedUact")).isPositive();
      assertThat(s.balanceUact()).isEqualTo(before + executed.getLong("creditedUact"));
      // once: a second deposit is told as its own event, the first not again
      s.post("/api/v1/tenants/" + tenant + "/deposits", TestService.ADMIN_KEY, "{\"akt\":\"50\",\"reference\":\"chain-tx-8\"}");
      s.await(Duration.ofSeconds(20), () -> at("/deposits").size() >= 2);
      assertThat(at("/deposits").stream().map(x -> new JsonObject(x.body()).getJsonObject("data").getString("reference")))
          .containsExactly("chain-tx-7", "chain-tx-8");
    }
  }

  /**
   * deposit.cancelled: a deposit that can no longer mint by its mint epoch (AKT fell: below the 10 ACT
   * minimum) is given back and told so, with the reason.
   */
  @Test
  void aDepositThatCanNoLongerMintIsToldAsCancelled() throws Exception {
    Path price = dir.resolve("akt-usd.txt");
    java.util.concurrent.atomic.AtomicReference<String> current = new java.util.concurrent.atomic.AtomicReference<>("0.5");
    TestService.publishPrice(price, current.get());
    var publisher = java.util.concurrent.Executors.newSingleThreadScheduledExecutor();
    publisher.scheduleAtFixedRate(() -> {
      try {
        TestService.publishPrice(price, current.get());
      } catch (java.io.IOException ignored) {
        // the next round writes again
      }
    }, 0, 300, java.util.concurrent.TimeUnit.MILLISECONDS);
    // mint epochs every 10 s; the oracle's price is a 5 s average
    try (TestService s = TestService.start(dir.resolve("data"), "--oracle-source", "file", "--oracle-file", price.toString(),
        "--oracle-poll-seconds", "1", "--tick-seconds", "1", "--min-epoch-ticks", "10")) {
      String k = TestService.DEMO_KEY;
      String tenant = s.json(s.get("/api/v1/me", k)).getString("id");
      // the demo tenant's deposit converted: a mint epoch just ended, the next is ~10 s away
      s.await(Duration.ofSeconds(30), () -> s.balanceUact() > 0);
      assertThat(s.post("/api/v1/webhooks", k, "{\"url\":\"" + url("/deposits") + "\",\"events\":[\"deposit.cancelled\"]}")
          .statusCode()).isEqualTo(201);
      // 21 AKT is 10.5 ACT at 0.5; AKT then falls to 0.3 (6.3 ACT, under the 10 ACT minimum) well before that epoch
      assertThat(s.post("/api/v1/tenants/" + tenant + "/deposits", TestService.ADMIN_KEY,
          "{\"akt\":\"21\",\"reference\":\"chain-tx-9\"}").statusCode()).isEqualTo(202);
      current.set("0.3");
      s.await(Duration.ofSeconds(30), () -> !at("/deposits").isEmpty());
      JsonObject status = s.json(s.get("/api/v1/tenants/" + tenant + "/deposits/chain-tx-9", k));
      assertThat(status.getString("state")).isEqualTo("CANCELED");
      Received r = at("/deposits").get(0);
      assertThat(r.type()).isEqualTo("deposit.cancelled");
      JsonObject data = new JsonObject(r.body()).getJsonObject("data");
      assertThat(data.getString("reference")).isEqualTo("chain-tx-9");
      assertThat(data.getString("reason")).isEqualTo("MINIMUM_MINT");
      assertThat(data.getLong("depositedUakt")).isEqualTo(21_000_000L);
      // the AKT is the tenant's again
      assertThat(s.json(s.get("/api/v1/me", k)).getJsonObject("balance").getLong("uakt")).isEqualTo(21_000_000L);
    } finally {
      publisher.shutdownNow();
    }
  }
}
