package io.anneal.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.sql.SQLException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** First-start setup that meets another instance's on a unique key is run again, and only then. */
class FirstStartRaceTest {
  private static CompletableFuture<String> failingWith(String sqlState) {
    return CompletableFuture.supplyAsync(() -> {
      throw new CompletionException(new SQLException("refused", sqlState));
    });
  }

  @Test
  void aDuplicateKeyRunsTheStepsAgainAndTheSecondRunAnswers() throws Exception {
    AtomicInteger runs = new AtomicInteger();
    AtomicInteger retries = new AtomicInteger();
    String out = AnnealService.againOnUniqueViolation(
        () -> runs.incrementAndGet() == 1 ? failingWith("23505") : CompletableFuture.completedFuture("seeded"), 3,
        e -> retries.incrementAndGet()).get(5, TimeUnit.SECONDS);
    assertThat(out).isEqualTo("seeded");
    assertThat(runs.get()).isEqualTo(2);
    assertThat(retries.get()).isEqualTo(1);
  }

  @Test
  void anotherFailureIsNotRunAgain() {
    AtomicInteger runs = new AtomicInteger();
    var f = AnnealService.<String>againOnUniqueViolation(() -> {
      runs.incrementAndGet();
      return failingWith("08006"); // connection failure
    }, 3, e -> { });
    assertThatThrownBy(() -> f.get(5, TimeUnit.SECONDS)).hasRootCauseMessage("refused");
    assertThat(runs.get()).isEqualTo(1);
  }

  @Test
  void aDuplicateKeyEveryTimeFailsAfterTheAttempts() {
    AtomicInteger runs = new AtomicInteger();
    var f = AnnealService.<String>againOnUniqueViolation(() -> {
      runs.incrementAndGet();
      return failingWith("23505");
    }, 3, e -> { });
    assertThatThrownBy(() -> f.get(5, TimeUnit.SECONDS)).hasRootCauseInstanceOf(SQLException.class);
    assertThat(runs.get()).isEqualTo(3);
    assertThat(AnnealService.isUniqueViolation(new RuntimeException(new SQLException("x", "23505")))).isTrue();
    assertThat(AnnealService.isUniqueViolation(new SQLException("x", "40001"))).isFalse();
  }
}
