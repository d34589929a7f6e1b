package io.anneal.bench;

import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * End-to-end load: WebSocket submits of {@code sleep} jobs ({@code ms} 0) against a running
 * service, bounded in count and time, loopback only. Reports jobs accepted per second (each
 * acknowledged only after it is durable), accept latency percentiles, and jobs placed per second
 * (PLACED events on the subscription).
 *
 * <p>{@code java -cp bench/target/benchmarks.jar io.anneal.bench.SubmitLoadGenerator ws://127.0.0.1:8080/api/v1/ws KEY
 * [connections] [jobs] [window] [maxSeconds]}
 */
public final class SubmitLoadGenerator {
  private SubmitLoadGenerator() {}

  /** Refusals by their code, so a run says why it was refused. */
  private static final java.util.Map<String, java.util.concurrent.atomic.LongAdder> errorKinds =
      new java.util.concurrent.ConcurrentHashMap<>();

  public static void main(String[] args) throws Exception {
    URI uri = URI.create(args[0]);
    if (!"127.0.0.1".equals(uri.getHost()) && !"localhost".equals(uri.getHost())) {
      throw new IllegalArgumentException("this load generator only targets loopback");
    }
    String key = args[1];
    int connections = args.length > 2 ? Integer.parseInt(args[2]) : 4;
    int jobs = args.length > 3 ? Integer.parseInt(args[3]) : 100_000;
    int window = args.length > 4 ? Integer.parseInt(args[4]) : 256;
    int maxSeconds = args.length > 5 ? Integer.parseInt(args[5]) : 60;
    HttpClient http = HttpClient.newHttpClient();
    long[] latencies = new long[jobs];
    AtomicLong accepted = new AtomicLong();
    AtomicLong errors = new AtomicLong();
    AtomicLong placed = new AtomicLong();
    AtomicLong sentIndex = new AtomicLong();
    CountDownLatch done = new CountDownLatch(jobs);
    List<WebSocket> sockets = new ArrayList<>();
    List<Semaphore> windows = new ArrayList<>();
    ConcurrentHashMap<String, Long> sentAt = new ConcurrentHashMap<>();
    for (int c = 0; c < connections; c++) {
      final boolean countsPlacements = c == 0; // every session of the tenant sees every event: count on one
      Semaphore sem = new Semaphore(window);
      windows.add(sem);
      WebSocket.Listener listener = new WebSocket.Listener() {
        final StringBuilder buf = new StringBuilder();

        @Override
        public CompletionStage<?> onText(WebSocket ws, CharSequence data, boolean last) {
          buf.append(data);
          if (last) {
            JsonObject m = new JsonObject(buf.toString());
            buf.setLength(0);
            String type = m.getString("type");
            if ("accepted".equals(type) || "error".equals(type)) {
              Long t0 = sentAt.remove(m.getString("requestId"));
              if (t0 != null) {
                long i = accepted.get() + errors.get();
                if ("accepted".equals(type)) {
                  latencies[(int) Math.min(i, jobs - 1)] = System.nanoTime() - t0;
                  accepted.incrementAndGet();
                } else {
                  errors.incrementAndGet();
                  JsonObject p = m.getJsonObject("error", new JsonObject());
                  String detail = p.getString("detail", "");
                  String why = p.getString("type", "?") + ": " + detail.substring(0, Math.min(80, detail.length()));
                  errorKinds.computeIfAbsent(why, k -> new java.util.concurrent.atomic.LongAdder()).increment();
                }
                sem.release();
                done.countDown();
              }
            } else if (countsPlacements && "job".equals(type) && "PLACED".equals(m.getString("state"))) {
              placed.incrementAndGet();
            }
          }
          ws.request(1);
          return null;
        }
      };
      WebSocket ws = http.newWebSocketBuilder().header("Authorization", "Bearer " + key).buildAsync(uri, listener)
          .get(10, TimeUnit.SECONDS);
      // one session follows the tenant's job events (to count placements); the others only submit,
      // as a client with several submitting connections and one watcher would
      if (countsPlacements) ws.sendText(new JsonObject().put("type", "subscribe").encode(), true).join();
      sockets.add(ws);
    }
    String job = new JsonObject().put("kind", "sleep").put("gpus", 1).put("maxSeconds", 1)
        .put("params", new JsonObject().put("ms", 0)).encode();
    long start = System.nanoTime();
    long deadline = start + TimeUnit.SECONDS.toNanos(maxSeconds);
    List<Thread> senders = new ArrayList<>();
    for (int c = 0; c < connections; c++) {
      WebSocket ws = sockets.get(c);
      Semaphore sem = windows.get(c);
      Thread t = new Thread(() -> {
        CompletableFuture<WebSocket> last = CompletableFuture.completedFuture(ws);
        while (System.nanoTime() < deadline) {
          long i = sentIndex.getAndIncrement();
          if (i >= jobs) break;
          // wait for room in the window; the index taken is sent once there is (never skipped:
          // a skipped index would leave the run waiting for a job that was never submitted)
          try {
            while (!sem.tryAcquire(1, TimeUnit.SECONDS)) {
              if (System.nanoTime() >= deadline) return;
            }
          } catch (InterruptedException e) {
            return;
          }
          String rid = "r" + i;
          sentAt.put(rid, System.nanoTime());
          String msg = "{\"type\":\"submit\",\"requestId\":\"" + rid + "\",\"job\":" + job + "}";
          last = last.thenCompose(w -> w.sendText(msg, true));
          last.join();
        }
      }, "sender-" + c);
      t.start();
      senders.add(t);
    }
    for (Thread t : senders) t.join();
    done.await(Math.max(1, (deadline - System.nanoTime()) / 1_000_000) + 30_000, TimeUnit.MILLISECONDS);
    double acceptSecs = (System.nanoTime() - start) / 1e9;
    long acc = accepted.get();
    long waitPlaced = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (placed.get() < acc && System.nanoTime() < waitPlaced) Thread.sleep(50);
    double placedSecs = (System.nanoTime() - start) / 1e9;
    long[] lat = Arrays.copyOf(latencies, (int) Math.min(acc, jobs));
    Arrays.sort(lat);
    if (!errorKinds.isEmpty()) System.out.println("refusals by kind: " + errorKinds);
    System.out.printf("connections %d, window %d: %d accepted, %d refused in %.2f s -> %.0f accepted/s;"
            + " accept latency p50 %.2f ms, p99 %.2f ms, max %.2f ms; %d placed in %.2f s -> %.0f placed/s%n",
        connections, window, acc, errors.get(), acceptSecs, acc / acceptSecs, pct(lat, 0.50), pct(lat, 0.99),
        lat.length == 0 ? 0 : lat[lat.length - 1] / 1e6, placed.get(), placedSecs, placed.get() / placedSecs);
    for (WebSocket ws : sockets) ws.abort();
  }

  private static double pct(long[] sorted, double p) {
    if (sorted.length == 0) return 0;
    return sorted[(int) Math.min(sorted.length - 1, Math.floor(p * sorted.length))] / 1e6;
  }
}
