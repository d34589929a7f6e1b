package io.anneal.billing.oracle;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.sun.net.httpserver.HttpServer;
import io.anneal.billing.bme.Dec;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The HTTP price source against a local server that answers what each test sets. */
class HttpPriceFeedTest {
  private HttpServer server;
  private final AtomicReference<String> body = new AtomicReference<>("");
  private final AtomicReference<Integer> status = new AtomicReference<>(200);
  private HttpPriceFeed feed;

  @BeforeEach
  void start() throws IOException {
    server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    server.createContext("/price", ex -> {
      byte[] b = body.get().getBytes(StandardCharsets.UTF_8);
      ex.sendResponseHeaders(status.get(), b.length == 0 ? -1 : b.length);
      if (b.length > 0) ex.getResponseBody().write(b);
      ex.close();
    });
    server.start();
    feed = new HttpPriceFeed(URI.create("http://127.0.0.1:" + server.getAddress().getPort() + "/price"), Duration.ofSeconds(2));
  }

  @AfterEach
  void stop() {
    server.stop(0);
  }

  @Test
  void readsJsonOrAPlainLineWithOrWithoutATimestamp() throws Exception {
    body.set("{\"price\": \"0.4823\", \"timestampNs\": 123}");
    var r = feed.poll(999).orElseThrow();
    assertThat(r.price()).isEqualTo(Dec.parse("0.4823"));
    assertThat(r.tsNs()).isEqualTo(123);
    body.set("0.51");
    r = feed.poll(1_000).orElseThrow();
    assertThat(r.price()).isEqualTo(Dec.parse("0.51"));
    assertThat(r.tsNs()).isEqualTo(1_000);
    body.set("0.52 2000\n");
    assertThat(feed.poll(3_000).orElseThrow().tsNs()).isEqualTo(2_000);
    assertThat(feed.name()).startsWith("http:127.0.0.1:");
  }

  @Test
  void aFailingOrMalformedAnswerIsAnErrorThatSaysWhy() {
    status.set(503);
    body.set("down");
    assertThatThrownBy(() -> feed.poll(1)).isInstanceOf(IOException.class).hasMessageContaining("answered 503");
    status.set(200);
    body.set("{\"value\": 1}");
    assertThatThrownBy(() -> feed.poll(1)).hasMessageContaining("no \"price\"");
    body.set("cheap");
    assertThatThrownBy(() -> feed.poll(1)).hasMessageContaining("not a price");
    body.set("-1");
    assertThatThrownBy(() -> feed.poll(1)).hasMessageContaining("must be > 0");
    assertThatThrownBy(() -> new HttpPriceFeed(URI.create("ftp://x/price"), Duration.ofSeconds(1)))
        .hasMessageContaining("http or https");
  }
}
