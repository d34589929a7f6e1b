package io.anneal.billing.pricing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.anneal.billing.bme.Dec;
import java.util.ArrayList;
import java.util.List;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.LongRange;
import net.jqwik.api.constraints.Size;
import org.junit.jupiter.api.Test;

class BootstrapFundTest {
  private final BootstrapFund fund = BootstrapFund.defaults();
  private static final long FLOOR = 1_000_000; // 1 ACT per GPU-hour

  private static BootstrapFund.ProviderWindow window(String id, int gpus, String online, long revenue) {
    return new BootstrapFund.ProviderWindow(id, gpus, Dec.parse(online), revenue, FLOOR);
  }

  @Test
  void theShareSunsetsLinearlyWithUtilizationAndEndsForGood() {
    assertThat(fund.share(Dec.parse("0.1"), 0)).isEqualTo(Dec.ONE);
    assertThat(fund.share(Dec.parse("0.3"), 0)).isEqualTo(Dec.ONE);
    assertThat(fund.share(Dec.parse("0.5"), 0)).isEqualTo(Dec.parse("0.5"));
    assertThat(fund.share(Dec.parse("0.7"), 0)).isEqualTo(Dec.ZERO);
    BootstrapFund ending = new BootstrapFund(8, Dec.parse("0.9"), Dec.parse("0.3"), Dec.parse("0.7"), 1000);
    assertThat(ending.share(Dec.parse("0.1"), 999)).isEqualTo(Dec.ONE);
    assertThat(ending.share(Dec.parse("0.1"), 1000)).isEqualTo(Dec.ZERO);
  }

  @Test
  void smallCommittedProvidersAreToppedUpToTheFloor() {
    // one hour, 4 GPUs online all of it: floor 4 ACT; earned 1 ACT; utilization below u0 → paid 3 ACT
    var payouts = fund.payouts(List.of(window("p", 4, "1", 1_000_000)), 3600, Dec.parse("0.2"), 1, 100_000_000);
    assertThat(payouts).containsExactly(new BootstrapFund.Payout("p", 3_000_000));
    // at u = 0.5 half of the gap
    payouts = fund.payouts(List.of(window("p", 4, "1", 1_000_000)), 3600, Dec.parse("0.5"), 1, 100_000_000);
    assertThat(payouts).containsExactly(new BootstrapFund.Payout("p", 1_500_000));
  }

  @Test
  void largeOrUncommittedOrWellPaidProvidersGetNothing() {
    var payouts = fund.payouts(List.of(window("big", 9, "1", 0), window("flaky", 2, "0.89", 0),
        window("rich", 2, "1", 2_000_000), window("ok", 1, "0.9", 0)), 3600, Dec.ZERO, 1, 100_000_000);
    assertThat(payouts).containsExactly(new BootstrapFund.Payout("ok", 900_000));
  }

  @Test
  void payoutsAreCappedByTheFundInProportion() {
    var payouts = fund.payouts(List.of(window("a", 1, "1", 0), window("b", 3, "1", 0)), 3600, Dec.ZERO, 1, 2_000_000);
    assertThat(payouts).containsExactly(new BootstrapFund.Payout("a", 500_000), new BootstrapFund.Payout("b", 1_500_000));
    assertThat(fund.payouts(List.of(window("a", 1, "1", 0)), 3600, Dec.ZERO, 1, 0)).isEmpty();
  }

  @Test
  void badParametersAreRefused() {
    assertThatThrownBy(() -> new BootstrapFund(0, Dec.ONE, Dec.ZERO, Dec.ONE, 1)).hasMessageContaining("maxGpus");
    assertThatThrownBy(() -> new BootstrapFund(8, Dec.ONE, Dec.parse("0.7"), Dec.parse("0.3"), 1))
        .hasMessageContaining("sunset");
    assertThatThrownBy(() -> window("p", -1, "1", 0)).isInstanceOf(IllegalArgumentException.class);
  }

  @Property(tries = 1000)
  void payoutsNeverExceedTheFundNorTheGap(@ForAll @Size(max = 30) List<@IntRange(min = 0, max = 16) Integer> gpus,
      @ForAll @LongRange(min = 0, max = 50_000_000) long fundUact, @ForAll @IntRange(min = 0, max = 100) int util) {
    List<BootstrapFund.ProviderWindow> ws = new ArrayList<>();
    for (int i = 0; i < gpus.size(); i++) ws.add(window("p" + i, gpus.get(i), "0.95", (i * 137_000L) % 5_000_000));
    var payouts = fund.payouts(ws, 3600, Dec.fromInt(util).quo(Dec.fromInt(100)), 1, fundUact);
    assertThat(payouts.stream().mapToLong(BootstrapFund.Payout::uact).sum()).isLessThanOrEqualTo(fundUact);
    for (var p : payouts) {
      var w = ws.get(Integer.parseInt(p.provider().substring(1)));
      assertThat(p.uact()).isPositive();
      assertThat(w.gpus()).isBetween(1, 8);
      assertThat(w.revenueUact() + p.uact()).isLessThanOrEqualTo(FLOOR * w.gpus());
    }
  }
}
