package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The watch every TestService applies really sees Vert.x's blocked-thread warnings (so its silence means something). */
class BlockedThreadWatchTest {
  @Test
  void aBlockedEventLoopIsRecorded() throws Exception {
    TestService.clearBlockedThreadWarnings();
    Vertx vertx = Vertx.vertx(new VertxOptions().setBlockedThreadCheckInterval(20).setMaxEventLoopExecuteTime(20)
        .setMaxEventLoopExecuteTimeUnit(TimeUnit.MILLISECONDS).setBlockedThreadCheckIntervalUnit(TimeUnit.MILLISECONDS));
    try {
      long until = System.nanoTime() + Duration.ofMillis(400).toNanos();
      vertx.runOnContext(v -> {
        while (System.nanoTime() < until) {
          Thread.onSpinWait(); // deliberately hog the event loop
        }
      });
      long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
      while (TestService.blockedThreadWarnings().isEmpty() && System.nanoTime() < deadline) {
        TimeUnit.MILLISECONDS.sleep(20);
      }
      assertThat(TestService.blockedThreadWarnings()).isNotEmpty();
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
      TestService.clearBlockedThreadWarnings();
    }
  }
}
