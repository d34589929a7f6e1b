package io.anneal.it;

import io.anneal.config.AnnealConfig;
import io.anneal.config.ConfigLoader;
import io.anneal.service.AnnealService;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/** Starts a real Anneal instance on a free port for black-box tests, and talks to it like a user. */
final class TestService implements AutoCloseable {
  static {
    // a test service fails its test if Vert.x's blocked-thread checker warns while it runs
    io.anneal.billing.testing.BlockedThreadWatch.install();
  }

  static final String DEMO_KEY = "demo-key-0123456789";
  static final String ADMIN_KEY = "admin-key-0123456789";

  final AnnealService service;
  final Path dataDir;
  final HttpClient http = HttpClient.newHttpClient();

  private TestService(AnnealService service, Path dataDir) {
    this.service = service;
    this.dataDir = dataDir;
  }

  /** The blocked-thread warnings recorded so far (and not yet reported by a close). */
  static List<String> blockedThreadWarnings() {
    return io.anneal.billing.testing.BlockedThreadWatch.warnings();
  }

  static void clearBlockedThreadWarnings() {
    io.anneal.billing.testing.BlockedThreadWatch.clear();
  }

  static TestService start(Path dataDir, String... extraArgs) throws Exception {
    return start(dataDir, null, extraArgs);
  }

  static TestService start(Path dataDir, io.anneal.gpu.GpuBackend backend, String... extraArgs) throws Exception {
    return start(dataDir, backend, Map.of(), extraArgs);
  }

  /** As above, with extra environment variables (settings that have no flag). */
  static TestService start(Path dataDir, io.anneal.gpu.GpuBackend backend, Map<String, String> extraEnv,
      String... extraArgs) throws Exception {
    List<String> args = new ArrayList<>(List.of("--http-port", "0", "--data-dir", dataDir.toString(),
        "--gpu-backend", "cpu"));
    args.addAll(List.of(extraArgs));
    Map<String, String> env = new HashMap<>();
    env.put("ANNEAL_DEMO_TENANT", "demo:" + DEMO_KEY + ":100");
    env.put("ANNEAL_ADMIN_KEY", ADMIN_KEY);
    env.putAll(extraEnv); // may name other keys
    AnnealConfig cfg = ConfigLoader.load(args.toArray(String[]::new), env);
    AnnealService s = new AnnealService(cfg, backend);
    s.start().toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
    TestService ts = new TestService(s, dataDir);
    ts.await(Duration.ofSeconds(20), () -> ts.get("/ready", null).statusCode() == 200);
    return ts;
  }

  private static final HttpClient SPAWN_HTTP = HttpClient.newHttpClient();

  /** A service in a process of its own (to be killed), and the base URL it answers on. */
  record Spawned(Process process, String base) {}

  /**
   * Starts the service as {@code ./run} does, in a process of its own on a free port, with the test keys,
   * its output in {@code log}, and waits up to 60 s for it to be ready (failing with the log if it ends).
   */
  static Spawned spawn(Path dataDir, Path log, String... extraArgs) throws Exception {
    int port;
    try (java.net.ServerSocket free = new java.net.ServerSocket(0)) {
      port = free.getLocalPort();
    }
    List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-cp", System.getProperty("java.class.path"), "io.anneal.Main", "--http-port", String.valueOf(port),
        "--data-dir", dataDir.toString(), "--gpu-backend", "cpu"));
    command.addAll(List.of(extraArgs));
    ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
    pb.environment().put("ANNEAL_DEMO_TENANT", "demo:" + DEMO_KEY + ":100");
    pb.environment().put("ANNEAL_ADMIN_KEY", ADMIN_KEY);
    Process process = pb.start();
    String base = "http://127.0.0.1:" + port;
    HttpRequest ready = HttpRequest.newBuilder(URI.create(base + "/ready")).build();
    long until = System.nanoTime() + Duration.ofSeconds(60).toNanos();
    while (true) {
      if (!process.isAlive()) throw new AssertionError("the service process ended: " + java.nio.file.Files.readString(log));
      if (System.nanoTime() > until) {
        process.destroyForcibly();
        throw new AssertionError("not ready within 60 s: " + java.nio.file.Files.readString(log));
      }
      try {
        if (SPAWN_HTTP.send(ready, HttpResponse.BodyHandlers.discarding()).statusCode() == 200) return new Spawned(process, base);
      } catch (java.io.IOException notYet) {
        // not listening yet
      }
      Thread.sleep(50);
    }
  }

  String base() {
    return "http://127.0.0.1:" + service.httpPort();
  }

  HttpResponse<String> get(String path, String key) {
    return send(HttpRequest.newBuilder(URI.create(base() + path)).GET(), key);
  }

  HttpResponse<String> post(String path, String key, String body) {
    return send(HttpRequest.newBuilder(URI.create(base() + path)).POST(HttpRequest.BodyPublishers.ofString(body))
        .header("content-type", "application/json"), key);
  }

  HttpResponse<String> patch(String path, String key, String body) {
    return send(HttpRequest.newBuilder(URI.create(base() + path)).method("PATCH", HttpRequest.BodyPublishers.ofString(body))
        .header("content-type", "application/json"), key);
  }

  HttpResponse<String> put(String path, String key, String body) {
    return send(HttpRequest.newBuilder(URI.create(base() + path)).PUT(HttpRequest.BodyPublishers.ofString(body))
        .header("content-type", "application/json"), key);
  }

  HttpResponse<String> delete(String path, String key) {
    return send(HttpRequest.newBuilder(URI.create(base() + path)).DELETE(), key);
  }

  private HttpResponse<String> send(HttpRequest.Builder b, String key) {
    if (key != null) b.header("Authorization", "Bearer " + key);
    try {
      return http.send(b.timeout(Duration.ofSeconds(20)).build(), HttpResponse.BodyHandlers.ofString());
    } catch (Exception e) {
      throw new AssertionError("request failed: " + e, e);
    }
  }

  JsonObject json(HttpResponse<String> r) {
    return new JsonObject(r.body());
  }

  JsonObject job(String id) {
    return json(get("/api/v1/jobs/" + id, DEMO_KEY));
  }

  /** The fleet view's entry of the GPU with this index (one node). */
  JsonObject gpu(int index) {
    return json(get("/api/v1/gpus", null)).getJsonArray("gpus").stream().map(o -> (JsonObject) o)
        .filter(g -> g.getInteger("index") == index).findFirst().orElseThrow();
  }

  long balanceUact() {
    return json(get("/api/v1/me", DEMO_KEY)).getJsonObject("balance").getLong("uact");
  }

  void await(Duration max, BooleanSupplier condition) throws InterruptedException {
    awaitCondition(max, condition, () -> "condition not met within " + max);
  }

  /** Polls {@code condition} until it holds; fails with {@code why} after {@code max}. */
  static void awaitCondition(Duration max, BooleanSupplier condition, java.util.function.Supplier<String> why)
      throws InterruptedException {
    long deadline = System.nanoTime() + max.toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) throw new AssertionError(why.get());
      TimeUnit.MILLISECONDS.sleep(25);
    }
  }

  /**
   * Writes a price file the way a publisher should: a temporary file renamed over it, so that the
   * service never reads it half written. (A publisher that rewrites in place is FilePriceFeedTest's.)
   */
  static void publishPrice(java.nio.file.Path file, String price) throws java.io.IOException {
    java.nio.file.Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    java.nio.file.Files.writeString(tmp, price + "\n");
    java.nio.file.Files.move(tmp, file, java.nio.file.StandardCopyOption.ATOMIC_MOVE,
        java.nio.file.StandardCopyOption.REPLACE_EXISTING);
  }

  /** A WebSocket client that queues every text message it receives. */
  static final class Ws implements WebSocket.Listener, AutoCloseable {
    final LinkedBlockingQueue<JsonObject> messages = new LinkedBlockingQueue<>();
    private final StringBuilder partial = new StringBuilder();
    WebSocket socket;

    @Override
    public CompletionStage<?> onText(WebSocket ws, CharSequence data, boolean last) {
      partial.append(data);
      if (last) {
        messages.add(new JsonObject(partial.toString()));
        partial.setLength(0);
      }
      ws.request(1);
      return null;
    }

    /** The close code the server sent, once it closed the connection. */
    final java.util.concurrent.CompletableFuture<Integer> closed = new java.util.concurrent.CompletableFuture<>();

    @Override
    public CompletionStage<?> onClose(WebSocket ws, int statusCode, String reason) {
      closed.complete(statusCode);
      return null;
    }

    void send(JsonObject msg) {
      socket.sendText(msg.encode(), true).join();
    }

    JsonObject next(Duration max) throws InterruptedException {
      JsonObject m = messages.poll(max.toMillis(), TimeUnit.MILLISECONDS);
      if (m == null) throw new AssertionError("no WebSocket message within " + max);
      return m;
    }

    /** Waits for the next message of the given type, skipping others. */
    JsonObject nextOfType(String type, Duration max) throws InterruptedException {
      long deadline = System.nanoTime() + max.toNanos();
      while (true) {
        long left = deadline - System.nanoTime();
        if (left <= 0) throw new AssertionError("no '" + type + "' message within " + max);
        JsonObject m = next(Duration.ofNanos(left));
        if (type.equals(m.getString("type"))) return m;
      }
    }

    @Override
    public void close() {
      if (socket != null) socket.abort();
    }
  }

  Ws ws(String keyHeader) throws Exception {
    Ws listener = new Ws();
    var builder = http.newWebSocketBuilder();
    if (keyHeader != null) builder.header("Authorization", "Bearer " + keyHeader);
    listener.socket = builder.buildAsync(URI.create("ws://127.0.0.1:" + service.httpPort() + "/api/v1/ws"), listener)
        .get(10, TimeUnit.SECONDS);
    return listener;
  }

  @Override
  public void close() {
    service.stop();
    io.anneal.billing.testing.BlockedThreadWatch.assertSilent();
  }
}
