package io.anneal.billing.pricing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.anneal.billing.bme.Dec;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.LongRange;
import org.junit.jupiter.api.Test;

class UtilizationPricingTest {
  private final Dec base = UtilizationPricing.perGpuSecond(2_500_000);
  private final UtilizationPricing pricing = UtilizationPricing.around(base);

  @Test
  void atTargetThePriceHolds() {
    assertThat(pricing.next(base, Dec.parse("0.5"))).isEqualTo(base);
  }

  @Test
  void fullAndIdleWindowsMoveTheSpecsMaximumStep() {
    assertThat(pricing.next(base, Dec.ONE)).isEqualTo(base.mul(Dec.parse("1.125")));
    assertThat(pricing.next(base, Dec.ZERO)).isEqualTo(base.mul(Dec.parse("0.875")));
    // u = 0.75: adj = 0.125 * 0.25 / 0.5 = 0.0625
    assertThat(pricing.next(base, Dec.parse("0.75"))).isEqualTo(base.mul(Dec.parse("1.0625")));
  }

  @Test
  void pricesStayWithinTheirBounds() {
    Dec p = base;
    for (int i = 0; i < 100; i++) p = pricing.next(p, Dec.ONE);
    assertThat(p).isEqualTo(pricing.max());
    for (int i = 0; i < 200; i++) p = pricing.next(p, Dec.ZERO);
    assertThat(p).isEqualTo(pricing.min());
  }

  @Test
  void utilizationIsBusyOverAvailableCappedAtOne() {
    assertThat(pricing.utilization(300, 1200)).isEqualTo(Dec.parse("0.25"));
    assertThat(pricing.utilization(5000, 1200)).isEqualTo(Dec.ONE);
    assertThat(pricing.utilization(0, 0)).isEqualTo(pricing.target());
    assertThatThrownBy(() -> pricing.utilization(-1, 10)).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void badParametersAreRefused() {
    assertThatThrownBy(() -> new UtilizationPricing(Dec.ONE, Dec.parse("0.1"), base, base))
        .hasMessageContaining("target utilization");
    assertThatThrownBy(() -> new UtilizationPricing(Dec.parse("0.5"), Dec.parse("1.5"), base, base))
        .hasMessageContaining("max change");
    assertThatThrownBy(() -> new UtilizationPricing(Dec.parse("0.5"), Dec.parse("0.1"), base, base.quo(Dec.fromInt(2))))
        .hasMessageContaining("price bounds");
  }

  @Property(tries = 2000)
  void oneWindowMovesThePriceByAtMostTheMaxChange(@ForAll @LongRange(min = 0, max = 1_000_000) long busy,
      @ForAll @LongRange(min = 1, max = 1_000_000) long available, @ForAll @LongRange(min = 1, max = 40) long tenths) {
    Dec p = base.mul(Dec.fromInt(tenths)).quo(Dec.fromInt(10));
    Dec next = pricing.next(p, pricing.utilization(busy, available));
    assertThat(next).isBetween(pricing.min(), pricing.max());
    Dec step = next.sub(p);
    Dec limit = p.mul(pricing.maxChange());
    if (next.compareTo(pricing.min()) > 0 && next.compareTo(pricing.max()) < 0) {
      assertThat(step.value().abs()).isLessThanOrEqualTo(limit.value().add(new java.math.BigDecimal("1e-18")));
    }
  }
}
