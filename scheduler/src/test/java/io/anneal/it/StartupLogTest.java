package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A service that starts and takes a job over WebSocket logs no metrics-registration warning. */
class StartupLogTest {
  @Test
  void noMeterRegistryWarningsFromAStartAndAJob(@TempDir Path dir) throws Exception {
    List<String> warnings = new CopyOnWriteArrayList<>();
    Handler capture = new Handler() {
      @Override
      public void publish(LogRecord r) {
        if (r.getLevel().intValue() >= Level.WARNING.intValue()
            && String.valueOf(r.getLoggerName()).startsWith("io.micrometer")) {
          warnings.add(r.getLoggerName() + ": " + r.getMessage());
        }
      }

      @Override
      public void flush() {}

      @Override
      public void close() {}
    };
    Logger root = Logger.getLogger("");
    root.addHandler(capture);
    try (TestService s = TestService.start(Files.createDirectories(dir.resolve("data")));
        TestService.Ws ws = s.ws(TestService.DEMO_KEY)) {
      // a WebSocket session and a job register more event-bus consumers after the start
      ws.nextOfType("authenticated", Duration.ofSeconds(5));
      ws.send(new JsonObject().put("type", "submit").put("requestId", "r1").put("job", new JsonObject()
          .put("kind", "sleep").put("gpus", 1).put("maxSeconds", 30).put("params", new JsonObject().put("ms", 10))));
      String jobId = ws.nextOfType("accepted", Duration.ofSeconds(10)).getString("jobId");
      s.await(Duration.ofSeconds(30), () -> "SETTLED".equals(s.job(jobId).getString("state")));
    } finally {
      root.removeHandler(capture);
    }
    assertThat(warnings).isEmpty();
  }
}
