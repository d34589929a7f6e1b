package io.anneal.service;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Micrometer's double-registration messages: Vert.x's own gauges are quiet, ours are warnings. */
class MeterRegistryLogTest {
  private final Logger log = Logger.getLogger(MeterRegistryLog.LOGGER);
  private final List<LogRecord> seen = new CopyOnWriteArrayList<>();
  private final Handler capture = new Handler() {
    @Override
    public void publish(LogRecord r) {
      seen.add(r);
    }

    @Override
    public void flush() {}

    @Override
    public void close() {}
  };

  @BeforeEach
  void listen() {
    MeterRegistryLog.install();
    log.addHandler(capture);
  }

  @AfterEach
  void stop() {
    log.removeHandler(capture);
  }

  @Test
  void vertxGaugesRegisteredAgainSayNothing() {
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    AtomicLong handlers = new AtomicLong();
    for (int i = 0; i < 5; i++) {
      Gauge.builder("vertx.eventbus.handlers", handlers, AtomicLong::get).register(registry);
      Gauge.builder("vertx.eventbus.pending", handlers, AtomicLong::get).tag("side", "local").register(registry);
    }
    assertThat(seen).isEmpty();
  }

  @Test
  void anyOtherMeterRegisteredTwiceIsAWarningOncePerMeter() {
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    AtomicLong value = new AtomicLong();
    // first the event-bus gauge, which may take Micrometer's one warning per JVM: ours must still warn
    Gauge.builder("vertx.eventbus.handlers", value, AtomicLong::get).register(registry);
    Gauge.builder("vertx.eventbus.handlers", value, AtomicLong::get).register(registry);
    for (int i = 0; i < 3; i++) {
      Gauge.builder("anneal.test.twice", value, AtomicLong::get).register(registry);
    }
    assertThat(seen).hasSize(1);
    assertThat(seen.get(0).getLevel()).isEqualTo(Level.WARNING);
    assertThat(seen.get(0).getMessage()).contains("anneal.test.twice").contains("already registered");
  }
}
