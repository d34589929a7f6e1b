package io.anneal.billing.sim;

import io.anneal.billing.bme.Dec;
import io.anneal.billing.bme.Status;

/**
 * One simulated hour. Token amounts are in base units (uakt, uact); {@code aktIn} is AKT taken out
 * of circulation by mints (Σ remintAccrued), {@code aktOut} AKT paid to providers by redemptions,
 * {@code aktFresh} newly minted AKT (bme-spec 16.1).
 */
public record SimulationRow(int hour, double demandMultiplier, Dec aktPrice, Status breaker, long ticksWarning,
    long ticksHalt, Dec collateralRatio, long vaultUakt, long actSupplyUact, long remintCreditsUakt, long pendingMints,
    long pendingRedemptions, double gpusOnline, double utilization, long priceH100, long priceA100, long priceL4,
    double demandGpuHours, double servedGpuHours, long aktIn, long aktOut, long aktFresh, long aktDirectUakt,
    long topUpsRefused, long redemptionsRefused, long canceled, long fundUact, long fundPaidUact,
    double smallIncomePerGpuHour, double largeIncomePerGpuHour, int smallProviders, int largeProviders,
    boolean actConserved) {

  /** bme-spec 16.1: quo(aktIn, aktOut), undefined (null) when nothing was paid out. */
  public Dec burnMintRatio() {
    return aktOut == 0 ? null : Dec.fromInt(aktIn).quo(Dec.fromInt(aktOut));
  }

  /** Positive = deflationary. */
  public long netBurn() {
    return aktIn - aktOut;
  }

  static final String CSV_HEADER = "hour,demand_multiplier,akt_price_usd,oracle_healthy,breaker,ticks_warning,ticks_halt,"
      + "collateral_ratio,vault_akt,act_supply,remint_credits_akt,pending_mints,pending_redemptions,gpus_online,"
      + "utilization,price_h100_act_per_gpu_hour,price_a100_act_per_gpu_hour,price_l4_act_per_gpu_hour,"
      + "demand_gpu_hours,served_gpu_hours,akt_burned,akt_paid_out,akt_fresh,burn_mint_ratio,net_burn_akt,"
      + "akt_direct_paid,topups_refused,redemptions_refused,conversions_canceled,fund_act,fund_paid_act,"
      + "small_provider_act_per_gpu_hour,large_provider_act_per_gpu_hour,small_providers,large_providers";

  String csv() {
    Dec ratio = burnMintRatio();
    return String.join(",", String.valueOf(hour), fmt(demandMultiplier, 2), aktPrice == null ? "" : strip(aktPrice),
        String.valueOf(aktPrice != null), breaker.name(), String.valueOf(ticksWarning), String.valueOf(ticksHalt),
        collateralRatio == null ? "" : strip(collateralRatio), BmeSimulator.whole(vaultUakt),
        BmeSimulator.whole(actSupplyUact), BmeSimulator.whole(remintCreditsUakt), String.valueOf(pendingMints),
        String.valueOf(pendingRedemptions), fmt(gpusOnline, 1), fmt(utilization, 4), BmeSimulator.whole(priceH100),
        BmeSimulator.whole(priceA100), BmeSimulator.whole(priceL4), fmt(demandGpuHours, 1), fmt(servedGpuHours, 1),
        BmeSimulator.whole(aktIn), BmeSimulator.whole(aktOut), BmeSimulator.whole(aktFresh),
        ratio == null ? "" : strip(ratio), BmeSimulator.whole(netBurn()), BmeSimulator.whole(aktDirectUakt),
        String.valueOf(topUpsRefused), String.valueOf(redemptionsRefused), String.valueOf(canceled),
        BmeSimulator.whole(fundUact), BmeSimulator.whole(fundPaidUact), fmt(smallIncomePerGpuHour / 1e6, 4),
        fmt(largeIncomePerGpuHour / 1e6, 4), String.valueOf(smallProviders), String.valueOf(largeProviders));
  }

  private static String fmt(double v, int decimals) {
    return String.format(java.util.Locale.ROOT, "%." + decimals + "f", v);
  }

  private static String strip(Dec d) {
    return d.value().setScale(6, java.math.RoundingMode.HALF_EVEN).toPlainString();
  }
}
