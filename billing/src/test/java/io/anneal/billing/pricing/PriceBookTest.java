package io.anneal.billing.pricing;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.bme.Dec;
import java.util.Map;
import org.junit.jupiter.api.Test;

class PriceBookTest {
  @Test
  void aFullWindowRaisesThePriceByTheMaximumStepAndHistoryAnswersThePriceInForce() {
    PriceBook book = PriceBook.withDefaults(Map.of("H100", 3_600_000L, "L4", 360_000L));
    assertThat(book.priceAt("H100", 0)).isEqualTo(3_600_000L);
    var changes = book.closeWindow(Map.of("H100", new long[] {600, 600}, "L4", new long[] {300, 600}), 1_000);
    // H100 full: +12.5 %; L4 at the target: unchanged (no change recorded)
    assertThat(changes).singleElement().satisfies(c -> {
      assertThat(c.gpuClass()).isEqualTo("H100");
      assertThat(c.perGpuHour()).isEqualTo(4_050_000L);
      assertThat(c.utilization()).isEqualTo(Dec.ONE);
    });
    assertThat(book.current()).containsEntry("H100", 4_050_000L).containsEntry("L4", 360_000L);
    assertThat(book.priceAt("H100", 999)).isEqualTo(3_600_000L);
    assertThat(book.priceAt("H100", 1_000)).isEqualTo(4_050_000L);
    assertThat(book.priceAt("A100", 1_000)).isNull();
    // the same window sent again (its answer was lost), or an older one of another scheduler: no second step
    assertThat(book.closeWindow(Map.of("H100", new long[] {600, 600}), 1_000)).isEmpty();
    assertThat(book.closeWindow(Map.of("H100", new long[] {600, 600}), 900)).isEmpty();
    assertThat(book.current()).containsEntry("H100", 4_050_000L);
    // an idle window: −12.5 % of the new price
    book.closeWindow(Map.of("H100", new long[] {0, 600}), 2_000);
    assertThat(book.current()).containsEntry("H100", 3_543_750L);
  }

  @Test
  void pricesStayWithinAQuarterAndFourTimesTheBaseAndRestoreFromTheirHistory() {
    PriceBook book = PriceBook.withDefaults(Map.of("H100", 3_600_000L));
    for (int i = 1; i <= 40; i++) book.closeWindow(Map.of("H100", new long[] {10, 10}), i);
    assertThat(book.current()).containsEntry("H100", 14_400_000L);
    for (int i = 41; i <= 120; i++) book.closeWindow(Map.of("H100", new long[] {0, 10}), i);
    assertThat(book.current()).containsEntry("H100", 900_000L);
    // a window with no capacity changes nothing
    assertThat(book.closeWindow(Map.of("H100", new long[] {0, 0}), 121)).isEmpty();

    PriceBook again = PriceBook.withDefaults(Map.of("H100", 3_600_000L));
    again.restore(java.util.List.copyOf(book.latestChanges().values()));
    assertThat(again.current()).isEqualTo(book.current());
  }
}
