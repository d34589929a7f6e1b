package io.anneal.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class CountBudgetTest {
  @Test
  void aQuickCountComesBackAfterTheShortestInterval() {
    CountBudget b = new CountBudget(30_000, 100);
    assertThat(b.due(0)).isTrue();
    b.counted(0, 50); // 50 ms: 100 times that is 5 s, under the 30 s
    assertThat(b.due(29_999)).isFalse();
    assertThat(b.due(30_000)).isTrue();
  }

  @Test
  void aSlowCountWaitsAHundredTimesItsDurationAfterItEnds() {
    CountBudget b = new CountBudget(30_000, 100);
    b.counted(1_000, 3_000); // 2 s: a store with tens of millions of jobs
    assertThat(b.due(30_000)).isFalse();
    assertThat(b.due(202_999)).isFalse();
    assertThat(b.due(203_000)).isTrue();
  }

  @Test
  void theIntervalFollowsTheLastCountNotTheWorstOne() {
    CountBudget b = new CountBudget(30_000, 100);
    b.counted(0, 5_000);
    assertThat(b.due(505_000)).isTrue();
    b.counted(505_000, 505_100); // the store got faster (a vacuum, a warm cache)
    assertThat(b.due(535_000)).isTrue();
  }

  @Test
  void aFailedCountIsTriedAgainAfterTheShortestInterval() {
    CountBudget b = new CountBudget(30_000, 100);
    b.counted(0, 5_000);
    b.failed(505_000);
    assertThat(b.due(534_999)).isFalse();
    assertThat(b.due(535_000)).isTrue();
  }

  @Test
  void refusesANonsensicalBudget() {
    assertThatThrownBy(() -> new CountBudget(0, 100)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> new CountBudget(30_000, 0)).isInstanceOf(IllegalArgumentException.class);
  }
}
