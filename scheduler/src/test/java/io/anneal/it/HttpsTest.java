package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.anneal.config.ConfigLoader;
import io.anneal.service.AnnealService;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * With a certificate and key (ADR 27) the API serves HTTPS and WSS only, on its one port: a client that
 * trusts the certificate's CA reads and submits over them, a plaintext request gets no answer, and a
 * client that does not trust the CA refuses the connection. TLS settings are checked at start.
 */
class HttpsTest {
  @TempDir Path dir;

  private static HttpRequest get(String url, String key) {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10));
    if (key != null) b.header("Authorization", "Bearer " + key);
    return b.build();
  }

  @Test
  void withACertificateTheApiServesHttpsAndWssOnly() throws Exception {
    TestCerts ca = new TestCerts(dir.resolve("certs"), "anneal-test-ca");
    Path[] server = ca.issue("api");
    List<String> args = new ArrayList<>(List.of("--http-port", "0", "--data-dir", dir.resolve("data").toString(),
        "--gpu-backend", "cpu", "--tls-cert", server[0].toString(), "--tls-key", server[1].toString()));
    AnnealService s = new AnnealService(ConfigLoader.load(args.toArray(String[]::new),
        Map.of("ANNEAL_DEMO_TENANT", "demo:" + TestService.DEMO_KEY + ":100", "ANNEAL_ADMIN_KEY", TestService.ADMIN_KEY)));
    s.start().toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
    try {
      String base = "https://127.0.0.1:" + s.httpPort();
      HttpClient https = HttpClient.newBuilder().sslContext(ca.clientContext()).connectTimeout(Duration.ofSeconds(10)).build();
      TestService.awaitCondition(Duration.ofSeconds(20), () -> {
        try {
          return https.send(get(base + "/ready", null), HttpResponse.BodyHandlers.ofString()).statusCode() == 200;
        } catch (IOException | InterruptedException e) {
          return false;
        }
      }, () -> "not ready over HTTPS within 20 s");
      HttpResponse<String> me = https.send(get("https://localhost:" + s.httpPort() + "/api/v1/me", TestService.DEMO_KEY),
          HttpResponse.BodyHandlers.ofString());
      assertThat(me.statusCode()).isEqualTo(200);
      assertThat(new JsonObject(me.body()).getString("name")).isEqualTo("demo");

      // WSS: a job submitted and told as it settles
      TestService.Ws ws = new TestService.Ws();
      ws.socket = https.newWebSocketBuilder().header("Authorization", "Bearer " + TestService.DEMO_KEY)
          .buildAsync(URI.create("wss://127.0.0.1:" + s.httpPort() + "/api/v1/ws"), ws).get(10, TimeUnit.SECONDS);
      try {
        ws.send(new JsonObject().put("type", "submit").put("requestId", "r1").put("subscribe", true).put("job",
            new JsonObject().put("kind", "sleep").put("gpus", 1).put("maxSeconds", 30).put("params", new JsonObject().put("ms", 10))));
        String job = ws.nextOfType("accepted", Duration.ofSeconds(10)).getString("jobId");
        String state = "";
        while (!"SETTLED".equals(state)) { // each event within 20 s, or the test fails saying so
          JsonObject event = ws.nextOfType("job", Duration.ofSeconds(20));
          assertThat(event.getString("jobId")).isEqualTo(job);
          state = event.getString("state");
        }
      } finally {
        ws.close();
      }

      // plaintext on the same port gets no HTTP answer; a client that does not trust the CA refuses the server
      assertThatThrownBy(() -> HttpClient.newHttpClient().send(get("http://127.0.0.1:" + s.httpPort() + "/health", null),
          HttpResponse.BodyHandlers.ofString())).isInstanceOf(IOException.class);
      assertThatThrownBy(() -> HttpClient.newHttpClient().send(get(base + "/health", null), HttpResponse.BodyHandlers.ofString()))
          .isInstanceOf(javax.net.ssl.SSLHandshakeException.class);
    } finally {
      s.stop();
    }
  }

  @Test
  void tlsSettingsAreCheckedAtStart() throws Exception {
    TestCerts ca = new TestCerts(dir.resolve("certs"), "anneal-test-ca");
    Path[] server = ca.issue("api");
    assertThatThrownBy(() -> ConfigLoader.load(new String[] {"--tls-cert", server[0].toString()}, Map.of()))
        .hasMessageContaining("--tls-cert and --tls-key are given together");
    assertThatThrownBy(() -> ConfigLoader.load(new String[] {"--tls-cert", dir.resolve("none.pem").toString(), "--tls-key",
        server[1].toString()}, Map.of())).hasMessageContaining("http.tlsCert: no readable file");
    assertThatThrownBy(() -> ConfigLoader.load(new String[] {"--cluster-tls-cert", server[0].toString(), "--cluster-tls-key",
        server[1].toString()}, Map.of())).hasMessageContaining("--cluster-tls-ca are given together");
    assertThatThrownBy(() -> ConfigLoader.load(new String[] {"--cluster-tls-cert", server[0].toString(), "--cluster-tls-key",
        server[1].toString(), "--cluster-tls-ca", ca.caPem().toString()}, Map.of())).hasMessageContaining("not in cluster mode");
    // a key file that is not a key: the service does not start, and says why
    Path garbage = Files.writeString(dir.resolve("garbage.pem"), "not a key\n");
    AnnealService s = new AnnealService(ConfigLoader.load(new String[] {"--http-port", "0", "--data-dir",
        dir.resolve("data").toString(), "--gpu-backend", "cpu", "--tls-cert", server[0].toString(), "--tls-key",
        garbage.toString()}, Map.of()));
    assertThatThrownBy(() -> s.start().toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS))
        .hasMessageContaining("key " + garbage + " cannot be used");
    s.stop();
  }

  /** The serial number of the certificate the server at {@code port} presents now, to a client trusting {@code ca}. */
  private static java.math.BigInteger servedSerial(TestCerts ca, int port) throws Exception {
    try (javax.net.ssl.SSLSocket socket = (javax.net.ssl.SSLSocket) ca.clientContext().getSocketFactory()
        .createSocket("127.0.0.1", port)) {
      socket.setSoTimeout(10_000);
      socket.startHandshake();
      return ((java.security.cert.X509Certificate) socket.getSession().getPeerCertificates()[0]).getSerialNumber();
    }
  }

  /**
   * A renewed certificate is served without a restart (ADR 27 addendum): the files are looked at every
   * {@code http.tlsReloadSeconds}; a pair that cannot be used — here a renewal caught with the new
   * certificate and the old key — is refused and the certificate served so far stays.
   */
  @Test
  void aRenewedCertificateIsServedWithoutARestartAndABrokenRenewalIsRefused() throws Exception {
    TestCerts ca = new TestCerts(dir.resolve("certs"), "anneal-test-ca");
    Path[] first = ca.issue("api");
    Path cert = Files.copy(first[0], dir.resolve("api.crt"));
    Path key = Files.copy(first[1], dir.resolve("api.key"));
    AnnealService s = new AnnealService(ConfigLoader.load(new String[] {"--http-port", "0", "--data-dir",
        dir.resolve("data").toString(), "--gpu-backend", "cpu", "--tls-cert", cert.toString(), "--tls-key", key.toString()},
        Map.of("ANNEAL_TLS_RELOAD_SECONDS", "1", "ANNEAL_ADMIN_KEY", TestService.ADMIN_KEY)));
    s.start().toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
    try {
      int port = s.httpPort();
      java.math.BigInteger before = servedSerial(ca, port);
      HttpClient https = HttpClient.newBuilder().sslContext(ca.clientContext()).connectTimeout(Duration.ofSeconds(10)).build();
      java.util.function.Supplier<String> metrics = () -> {
        try {
          return https.send(get("https://127.0.0.1:" + port + "/metrics", null), HttpResponse.BodyHandlers.ofString()).body();
        } catch (IOException | InterruptedException e) {
          throw new AssertionError(e);
        }
      };
      assertThat(metrics.get()).contains("anneal_tls_certificate_not_after_seconds ");

      // a renewal caught halfway: the new certificate is written, its key not yet
      Path[] renewed = ca.issue("api-renewed");
      Files.copy(renewed[0], cert, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      TestService.awaitCondition(Duration.ofSeconds(10), () -> metrics.get().contains("anneal_tls_reloads_total{outcome=\"refused\"} 1.0"),
          () -> "the mismatched pair was not refused: " + metrics.get());
      assertThat(servedSerial(ca, port)).as("the certificate served so far stays").isEqualTo(before);
      // the key follows: the renewed pair is served to new connections
      Files.copy(renewed[1], key, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      TestService.awaitCondition(Duration.ofSeconds(10), () -> {
        try {
          return !servedSerial(ca, port).equals(before);
        } catch (Exception e) {
          return false;
        }
      }, () -> "the renewed certificate is not served within 10 s");
      assertThat(metrics.get()).contains("anneal_tls_reloads_total{outcome=\"ok\"} 1.0");
      assertThat(https.send(get("https://127.0.0.1:" + port + "/health", null), HttpResponse.BodyHandlers.ofString()).statusCode())
          .isEqualTo(200);
    } finally {
      s.stop();
    }
  }
}
