package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.ledger.TestDatabases;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * PostgreSQL out of reach for a few seconds while jobs run and settle (every connection to it cut,
 * new ones refused, through a TCP proxy the test holds): submits meanwhile get a clear 503 and may be
 * retried with their idempotency key; once it is back, every job runs and settles once, the tenant is
 * charged the sum of the jobs' charges, the audit is clean, and the service is ready again.
 */
class DatabaseOutageTest {
  @TempDir Path dir;

  @Test
  void aPostgresOutageLosesNoJobAndNoReceiptAndChargesNothingTwice() throws Exception {
    outage();
  }

  @Test
  void theSameWithTheReactiveLedgerClient() throws Exception {
    outage("--ledger-client", "vertx");
  }

  private void outage(String... extraArgs) throws Exception {
    TestDatabases.requirePostgres();
    URI pg = URI.create(TestDatabases.localPostgresUrl().substring("jdbc:".length()));
    try (CuttableProxy proxy = new CuttableProxy(pg.getHost(), pg.getPort() < 0 ? 5432 : pg.getPort())) {
      String schema = "outage_" + Long.toHexString(System.nanoTime());
      String url = "jdbc:postgresql://127.0.0.1:" + proxy.port() + pg.getPath() + "?" + pg.getRawQuery()
          + "&currentSchema=" + schema;
      List<String> args = new ArrayList<>(List.of("--db-url", url));
      args.addAll(List.of(extraArgs));
      try (TestService s = TestService.start(dir, args.toArray(String[]::new))) {
        long actBefore = s.balanceUact();
        Map<String, String> byKey = new LinkedHashMap<>(); // idempotency key → job id
        // the last four run when the store goes: they end while it is away, and their ends must be recorded later
        for (int i = 0; i < 20; i++) {
          var r = submit(s, "before-" + i, i >= 16 ? 2_000 : 100);
          assertThat(r.statusCode()).as(r.body()).isEqualTo(202);
          byKey.put("before-" + i, s.json(r).getString("id"));
        }
        s.await(Duration.ofSeconds(30), () -> byKey.values().stream().filter(id -> "RUNNING".equals(s.job(id).getString("state")))
            .count() == 4);
        TestService.Ws ws = s.ws(TestService.DEMO_KEY); // authenticated while the store is there
        proxy.cut();
        List<String> refused = new ArrayList<>();
        // over the WebSocket too: the same 503 (as an error message), and a retry with the key after
        ws.send(new JsonObject().put("type", "submit").put("requestId", "ws-1").put("idempotencyKey", "during-ws")
            .put("job", new JsonObject().put("kind", "sleep").put("gpus", 1).put("maxSeconds", 60)
                .put("params", new JsonObject().put("ms", 100))));
        JsonObject answer = ws.next(Duration.ofSeconds(30));
        while (!"ws-1".equals(answer.getString("requestId"))) answer = ws.next(Duration.ofSeconds(30)); // "authenticated" first
        ws.close();
        if ("accepted".equals(answer.getString("type"))) {
          byKey.put("during-ws", answer.getString("jobId"));
        } else {
          assertThat(answer.getString("type")).as(answer.encode()).isEqualTo("error");
          assertThat(answer.getJsonObject("error").getString("type")).as(answer.encode()).endsWith("/unavailable");
          refused.add("during-ws");
        }
        for (int i = 0; i < 3; i++) { // each answered once the store's connection timeout (5 s) is out
          var r = submit(s, "during-" + i, 100);
          if (r.statusCode() == 202) {
            byKey.put("during-" + i, s.json(r).getString("id"));
          } else {
            assertThat(r.statusCode()).as(r.body()).isEqualTo(503);
            assertThat(s.json(r).getString("type")).endsWith("/unavailable");
            refused.add("during-" + i);
          }
        }
        assertThat(refused).as("submits while the store is out of reach").isNotEmpty();
        // longer than the store's connection timeout (5 s): the four long jobs end meanwhile, and recording
        // their ends fails (the worker keeps their signed receipts and tries again)
        Thread.sleep(8_000);
        // operators see them waiting: the worker's gauge counts the runs it could not record yet
        assertThat(unrecordedRuns(s)).as("runs that ended while the store was away").isPositive();
        proxy.restore();
        // a client retries a refused submit with its key: one job each, whether or not the first try was written
        for (String key : refused) {
          String[] id = new String[1];
          s.await(Duration.ofSeconds(30), () -> {
            var r = submit(s, key, 100);
            if (r.statusCode() == 202 || r.statusCode() == 200) id[0] = s.json(r).getString("id");
            return id[0] != null;
          });
          byKey.put(key, id[0]);
        }
        assertThat(Set.copyOf(byKey.values())).hasSize(byKey.size());
        s.await(Duration.ofSeconds(90), () -> byKey.values().stream().allMatch(id -> "SETTLED".equals(s.job(id).getString("state"))));
        assertThat(unrecordedRuns(s)).as("all recorded once the store is back").isZero();
        long charged = 0;
        for (String id : byKey.values()) {
          JsonObject job = s.job(id);
          assertThat(job.getString("outcome")).as(job.encode()).isEqualTo("SUCCEEDED");
          charged += job.getLong("chargeUact");
        }
        JsonObject balance = s.json(s.get("/api/v1/me", TestService.DEMO_KEY)).getJsonObject("balance");
        assertThat(balance.getLong("escrowUact")).isZero();
        assertThat(balance.getLong("uact")).as("each job charged once").isEqualTo(actBefore - charged);
        JsonObject audit = s.json(s.get("/api/v1/ledger/audit", TestService.ADMIN_KEY));
        assertThat(audit.getBoolean("clean")).as(audit.encode()).isTrue();
        s.await(Duration.ofSeconds(30), () -> s.get("/ready", null).statusCode() == 200);
      } finally {
        // once the service has stopped: its pool makes the schema again with each new connection
        try (var c = java.sql.DriverManager.getConnection(TestDatabases.localPostgresUrl()); var st = c.createStatement()) {
          st.execute("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
        }
      }
    }
  }

  private static HttpResponse<String> submit(TestService s, String key, int ms) {
    String job = new JsonObject().put("kind", "sleep").put("gpus", 1).put("maxSeconds", 60)
        .put("params", new JsonObject().put("ms", ms)).encode();
    try {
      return s.http.send(HttpRequest.newBuilder(URI.create(s.base() + "/api/v1/jobs"))
          .header("Authorization", "Bearer " + TestService.DEMO_KEY).header("Idempotency-Key", key)
          .timeout(Duration.ofSeconds(60)).POST(HttpRequest.BodyPublishers.ofString(job)).build(),
          HttpResponse.BodyHandlers.ofString());
    } catch (IOException e) {
      throw new AssertionError(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError(e);
    }
  }

  /** {@code anneal_worker_runs_unrecorded} as /metrics shows it now. */
  private static double unrecordedRuns(TestService s) {
    return s.get("/metrics", null).body().lines().filter(l -> l.startsWith("anneal_worker_runs_unrecorded "))
        .mapToDouble(l -> Double.parseDouble(l.substring(l.indexOf(' ') + 1))).findFirst().orElseThrow();
  }

  /** A TCP proxy to one upstream that can cut every connection and refuse new ones, then let them through again. */
  static final class CuttableProxy implements AutoCloseable {
    private final ServerSocket server;
    private final String host;
    private final int upstreamPort;
    private final Set<Socket> open = ConcurrentHashMap.newKeySet();
    private volatile boolean cut;

    CuttableProxy(String host, int upstreamPort) throws IOException {
      this.host = host;
      this.upstreamPort = upstreamPort;
      this.server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
      Thread acceptor = new Thread(this::accept, "outage-proxy");
      acceptor.setDaemon(true);
      acceptor.start();
    }

    int port() {
      return server.getLocalPort();
    }

    void cut() {
      cut = true;
      for (Socket s : open) closeQuietly(s);
      open.clear();
    }

    void restore() {
      cut = false;
    }

    private void accept() {
      while (!server.isClosed()) {
        Socket client;
        try {
          client = server.accept();
        } catch (IOException e) {
          return;
        }
        if (cut) {
          closeQuietly(client);
          continue;
        }
        try {
          Socket upstream = new Socket(host, upstreamPort);
          open.add(client);
          open.add(upstream);
          pump(client, upstream);
          pump(upstream, client);
        } catch (IOException e) {
          closeQuietly(client);
        }
      }
    }

    private void pump(Socket from, Socket to) {
      Thread t = new Thread(() -> {
        byte[] buf = new byte[16 * 1024];
        try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
          for (int n; (n = in.read(buf)) >= 0; ) {
            out.write(buf, 0, n);
            out.flush();
          }
        } catch (IOException e) {
          // cut, or closed by either side
        } finally {
          closeQuietly(from);
          closeQuietly(to);
          open.remove(from);
          open.remove(to);
        }
      }, "outage-proxy-pump");
      t.setDaemon(true);
      t.start();
    }

    private static void closeQuietly(Socket s) {
      try {
        s.close();
      } catch (IOException ignored) {
        // already closed
      }
    }

    @Override
    public void close() throws IOException {
      server.close();
      cut();
    }
  }
}
