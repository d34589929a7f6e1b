package io.anneal.billing.sim;

import io.anneal.billing.bme.BmeEngine;
import io.anneal.billing.bme.BmeException;
import io.anneal.billing.bme.BmeParams;
import io.anneal.billing.bme.Canceled;
import io.anneal.billing.bme.CollateralRatio;
import io.anneal.billing.bme.Dec;
import io.anneal.billing.bme.Direction;
import io.anneal.billing.bme.Executed;
import io.anneal.billing.bme.JournalEntry;
import io.anneal.billing.bme.OracleSnapshot;
import io.anneal.billing.bme.Status;
import io.anneal.billing.pricing.BootstrapFund;
import io.anneal.billing.pricing.UtilizationPricing;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Runs the ticked BME engine (bme-spec 9–10) with the pricing of section 16 over a simulated GPU
 * market, one tick at a time, and reports one row per simulated hour. Deterministic per seed.
 *
 * <p>The market model, stated so the results can be judged:
 * <ul>
 *   <li>Fleet: 40 large providers (256 H100, 256 A100 or 128 L4 GPUs each) and 400 small ones
 *       (1–8 GPUs of one class). Small providers are online 85–100 % of each window, large ones always.
 *   <li>Demand per class and pricing window: 55 % of the starting fleet at the starting price, times
 *       the scenario's multiplier, times {@code (p0 / p)^0.5} (tenants buy less when the price rises),
 *       ±5 % noise. 60 % of it is gangs that only large providers can host; the rest is spread over
 *       all free GPUs in proportion.
 *   <li>Tenants: 100 active at baseline, ten times as many during a 10× spike. Each keeps a buffer of
 *       {@value #TENANT_BUFFER_HOURS} hours of its spend in ACT and tops up once an hour by burning
 *       AKT (AKT→ACT request, section 8.1); ACT arrives at the next mint epoch. A job is served only
 *       if it is paid: with ACT, or during HALT_CR with a healthy oracle straight in AKT (16.5).
 *   <li>Providers redeem all their ACT for AKT once an hour (ACT→AKT), also during HALT_CR.
 *       A provider whose income over the last 24 h falls below its cost ({@value #COST_SHARE} of
 *       the class's starting price per online GPU-hour) leaves for good.
 *   <li>Bootstrap fund (16.3, when on): fed each window by the engine's mint spread and a treasury
 *       grant of {@value #TREASURY_GRANT_ACT} ACT minted at the start; pays small providers up to a
 *       floor of {@value #FLOOR_SHARE} of its class's starting price per online GPU-hour.
 * </ul>
 */
public final class BmeSimulator {
  public static final long TICK_SECONDS = 6;
  public static final long TICKS_PER_HOUR = 3600 / TICK_SECONDS;
  /** bme-spec 16.2's default pricing window. */
  public static final long WINDOW_TICKS = 100;
  static final int TENANT_BUFFER_HOURS = 24;
  static final double COST_SHARE = 0.35;
  static final double FLOOR_SHARE = 0.45;
  static final long TREASURY_GRANT_ACT = 20_000;
  static final String MARKET = "market";
  /** Rounding dust of a window's payments (floors of each provider's share). */
  static final String DUST = "market:dust";
  static final String FUND = "fund:bootstrap";
  static final String TREASURY = "treasury";
  private static final long MICRO = 1_000_000;

  /** GPU classes with their starting prices in uact per GPU-hour. */
  public enum GpuClass {
    H100(2_500_000), A100(1_500_000), L4(500_000);

    final long startUactPerGpuHour;

    GpuClass(long startUactPerGpuHour) {
      this.startUactPerGpuHour = startUactPerGpuHour;
    }
  }

  /** What to simulate. */
  public record Config(Scenario scenario, int hours, long seed, boolean pricing, boolean bootstrap) {
    public Config {
      if (hours < 1 || hours > 24 * 90) throw new IllegalArgumentException("hours must be between 1 and 2160");
    }

    public static Config of(Scenario s) {
      return new Config(s, 96, 1, true, true);
    }
  }

  private static final class Provider {
    final String id;
    final GpuClass gpuClass;
    final int gpus;
    final boolean small;
    final int index;
    boolean active = true;
    double online = 1.0;
    long busyGpuSeconds; // this window
    long windowRevenueUact; // this window (ACT and AKT-direct in uact)
    final long[] hourlyIncome = new long[24]; // ring of the last 24 hours' income, uact
    final long[] hourlyOnlineGpuSeconds = new long[24];
    long incomeThisHour;
    long onlineGpuSecondsThisHour;

    Provider(String id, GpuClass c, int gpus, boolean small, int index) {
      this.id = id;
      this.gpuClass = c;
      this.gpus = gpus;
      this.small = small;
      this.index = index;
    }
  }

  private final Config cfg;
  private final SplittableRandom rnd;
  private final BmeEngine engine = BmeEngine.genesis(BmeParams.defaults());
  private final List<Provider> providers = new ArrayList<>();
  private final Map<GpuClass, Dec> price = new EnumMap<>(GpuClass.class);
  private final Map<GpuClass, UtilizationPricing> pricers = new EnumMap<>(GpuClass.class);
  private final Map<GpuClass, Long> startCapacity = new EnumMap<>(GpuClass.class);
  private final BootstrapFund fund;
  private final int maxTenants = 1000;
  private final int[] tenantTopUpTick = new int[maxTenants];
  private double walk = 0.5;
  private OracleSnapshot oracle;
  private final List<SimulationRow> rows = new ArrayList<>();
  private final Map<String, long[]> mirror = new java.util.HashMap<>();
  private final Hour hour = new Hour();

  /** Per-hour accumulators. */
  private static final class Hour {
    long aktIn, aktOut, aktFresh, aktDirectUakt, fundPaid, topUpsRefused, redemptionsRefused, canceled;
    double demandGpuSeconds, servedGpuSeconds, availableGpuSeconds;
    long ticksWarning, ticksHalt;

    void reset() {
      aktIn = aktOut = aktFresh = aktDirectUakt = fundPaid = topUpsRefused = redemptionsRefused = canceled = 0;
      demandGpuSeconds = servedGpuSeconds = availableGpuSeconds = 0;
      ticksWarning = ticksHalt = 0;
    }
  }

  public BmeSimulator(Config cfg) {
    this.cfg = cfg;
    this.rnd = new SplittableRandom(cfg.seed());
    GpuClass[] largeClasses = {GpuClass.H100, GpuClass.A100, GpuClass.L4};
    int[] largeSizes = {256, 256, 128};
    int[] largePerClass = {15, 15, 10};
    int n = 0;
    for (int c = 0; c < 3; c++) {
      for (int i = 0; i < largePerClass[c]; i++) {
        providers.add(new Provider("large-" + n, largeClasses[c], largeSizes[c], false, n));
        n++;
      }
    }
    for (int i = 0; i < 400; i++) {
      double r = rnd.nextDouble();
      GpuClass c = r < 0.3 ? GpuClass.H100 : r < 0.6 ? GpuClass.A100 : GpuClass.L4;
      providers.add(new Provider("small-" + i, c, 1 + rnd.nextInt(8), true, i));
    }
    for (GpuClass c : GpuClass.values()) {
      Dec p0 = UtilizationPricing.perGpuSecond(c.startUactPerGpuHour);
      price.put(c, p0);
      pricers.put(c, UtilizationPricing.around(p0));
      startCapacity.put(c, providers.stream().filter(p -> p.gpuClass == c).mapToLong(p -> p.gpus).sum());
    }
    fund = BootstrapFund.defaults();
    for (int t = 0; t < maxTenants; t++) tenantTopUpTick[t] = rnd.nextInt((int) TICKS_PER_HOUR);
  }

  /** Runs the whole scenario and returns one row per hour. */
  public SimulationResult run() throws BmeException {
    long ticks = cfg.hours() * TICKS_PER_HOUR;
    hour.reset();
    for (long h = 1; h <= ticks; h++) {
      double hourF = (h - 1) / (double) TICKS_PER_HOUR;
      if ((h - 1) % WINDOW_TICKS == 0) walk = Math.max(0.01, walk * (1 + 0.004 * gaussian()));
      Dec p = Dec.parse(new BigDecimal(walk * cfg.scenario().priceFactor(hourF)).setScale(6, RoundingMode.HALF_EVEN)
          .toPlainString());
      oracle = cfg.scenario().oracleHealthy(hourF) ? new OracleSnapshot(true, p) : new OracleSnapshot(false, Dec.ZERO);
      engine.beginTick(h, oracle);
      if (h == 1) {
        engine.credit("community-pool", 300_000_000_000L);
        engine.fundVault("community-pool", 300_000_000_000L);
      }
      if (h == 2 && cfg.bootstrap()) treasuryGrant(p);
      topUpsAndRedemptions(h, hourF);
      if (h % WINDOW_TICKS == 0) marketWindow(h, hourF);
      engine.endTick();
      collect();
      Status st = engine.breaker().status();
      if (st == Status.WARNING) hour.ticksWarning++;
      if (st.compareTo(Status.HALT_CR) >= 0) hour.ticksHalt++;
      if (h % TICKS_PER_HOUR == 0) endHour((int) (h / TICKS_PER_HOUR));
    }
    return new SimulationResult(cfg, rows);
  }

  private double gaussian() {
    return Math.sqrt(-2 * Math.log(1 - rnd.nextDouble())) * Math.cos(2 * Math.PI * rnd.nextDouble());
  }

  private int activeTenants(double hourF) {
    return (int) Math.round(100 * cfg.scenario().demandMultiplier(hourF));
  }

  private static String tenant(int i) {
    return "tenant:" + i;
  }

  private void treasuryGrant(Dec p) throws BmeException {
    long uakt = Dec.fromInt(TREASURY_GRANT_ACT * MICRO).quo(p).trunc().longValueExact() + 1;
    engine.credit(TREASURY, uakt);
    engine.request(TREASURY, Direction.AKT_TO_ACT, uakt);
  }

  /** Each tenant tops up and each provider redeems at its own tick of the hour. */
  private void topUpsAndRedemptions(long h, double hourF) {
    int slot = (int) ((h - 1) % TICKS_PER_HOUR);
    int tenants = activeTenants(hourF);
    for (int t = 0; t < tenants; t++) {
      // a tenant new to the market (a spike) tops up at once, then at its own slot each hour
      boolean first = engine.balance(tenant(t), "uact") == 0 && !hasPending(tenant(t)) && slot % 10 == t % 10;
      if (tenantTopUpTick[t] != slot && !first) continue;
      long target = expectedSpendPerTenantUact(hourF) * TENANT_BUFFER_HOURS;
      long need = target - engine.balance(tenant(t), "uact") - pendingOf(tenant(t));
      if (need < 10 * MICRO || !oracle.healthy()) {
        if (need >= 10 * MICRO) hour.topUpsRefused++;
        continue;
      }
      long uakt = Dec.fromInt(need).quo(oracle.priceAkt()).trunc().longValueExact();
      try {
        engine.credit(tenant(t), uakt);
        engine.request(tenant(t), Direction.AKT_TO_ACT, uakt);
      } catch (BmeException e) {
        hour.topUpsRefused++;
        // the AKT bought for the top-up stays with the tenant
      }
    }
    for (Provider pr : providers) {
      if ((pr.index * 7 + (pr.small ? 3 : 0)) % TICKS_PER_HOUR != slot) continue;
      long act = engine.balance(pr.id, "uact");
      if (act < MICRO) continue;
      try {
        engine.request(pr.id, Direction.ACT_TO_AKT, act);
      } catch (BmeException e) {
        hour.redemptionsRefused++;
      }
    }
  }

  private boolean hasPending(String owner) {
    return pendingOf(owner) > 0;
  }

  private long pendingOf(String owner) {
    long sum = 0;
    for (BmeEngine.Pending p : engine.pending()) {
      if (p.id().owner().equals(owner) && p.id().direction() == Direction.AKT_TO_ACT) sum += p.amount();
    }
    return sum == 0 ? 0 : Dec.fromInt(sum).mul(oracle.healthy() ? oracle.priceAkt() : Dec.ONE).trunc().longValueExact();
  }

  /** A tenant's expected ACT spend per hour at today's prices and demand (uact). */
  private long expectedSpendPerTenantUact(double hourF) {
    double total = 0;
    for (GpuClass c : GpuClass.values()) {
      total += baseDemandGpuHours(c, hourF) * UtilizationPricing.perGpuHour(price.get(c));
    }
    return (long) (total / activeTenants(hourF));
  }

  private double baseDemandGpuHours(GpuClass c, double hourF) {
    double elasticity = Math.sqrt(UtilizationPricing.perGpuSecond(c.startUactPerGpuHour).value().doubleValue()
        / price.get(c).value().doubleValue());
    return 0.55 * startCapacity.get(c) * cfg.scenario().demandMultiplier(hourF) * elasticity;
  }

  /** One pricing window: place the demand, pay for it, pay the fund, move prices. */
  private void marketWindow(long h, double hourF) throws BmeException {
    long windowSeconds = WINDOW_TICKS * TICK_SECONDS;
    long netBusy = 0;
    long netAvailable = 0;
    for (Provider pr : providers) {
      pr.busyGpuSeconds = 0;
      pr.windowRevenueUact = 0;
      if (!pr.small && !cfg.scenario().largeProviderPresent(pr.index, hourF)) pr.active = false;
      pr.online = pr.small ? 0.85 + 0.15 * rnd.nextDouble() : 1.0;
    }
    long[] classCost = new long[GpuClass.values().length];
    double[] classServed = new double[GpuClass.values().length];
    for (GpuClass c : GpuClass.values()) {
      double demand = baseDemandGpuHours(c, hourF) * (1 + 0.05 * gaussian()) * windowSeconds;
      demand = Math.max(0, demand);
      hour.demandGpuSeconds += demand;
      List<Provider> large = new ArrayList<>();
      List<Provider> all = new ArrayList<>();
      double capLarge = 0;
      double capAll = 0;
      for (Provider pr : providers) {
        if (!pr.active || pr.gpuClass != c) continue;
        double cap = pr.gpus * pr.online * windowSeconds;
        all.add(pr);
        capAll += cap;
        if (!pr.small) {
          large.add(pr);
          capLarge += cap;
        }
      }
      double gangs = Math.min(0.6 * demand, capLarge);
      double rest = Math.min(demand - gangs, capAll - gangs);
      double freeAll = capAll - gangs;
      for (Provider pr : all) {
        double cap = pr.gpus * pr.online * windowSeconds;
        double busy = pr.small ? 0 : (capLarge == 0 ? 0 : gangs * cap / capLarge);
        double free = cap - busy;
        if (freeAll > 0) busy += rest * free / freeAll;
        pr.busyGpuSeconds = (long) busy;
        netAvailable += (long) cap;
      }
      Dec p = price.get(c);
      for (Provider pr : all) {
        long revenue = Dec.fromInt(pr.busyGpuSeconds).mul(p).trunc().longValueExact();
        pr.windowRevenueUact = revenue;
        classCost[c.ordinal()] += revenue;
        classServed[c.ordinal()] += pr.busyGpuSeconds;
      }
    }
    // tenants pay in ACT what they can; the rest is paid in AKT while HALT_CR (16.5) or not served
    int tenants = activeTenants(hourF);
    long cost = 0;
    for (long x : classCost) cost += x;
    long payable = 0;
    for (int t = 0; t < tenants; t++) payable += engine.balance(tenant(t), "uact");
    long paidAct = Math.min(cost, payable);
    boolean direct = engine.breaker().status() == Status.HALT_CR && oracle.healthy();
    double servedShare = cost == 0 ? 1 : direct ? 1.0 : paidAct / (double) cost;
    collectFromTenants(tenants, paidAct);
    long paidOut = 0;
    for (Provider pr : providers) {
      if (pr.windowRevenueUact == 0) continue;
      long actPart = cost == 0 ? 0 : (long) Math.floor(pr.windowRevenueUact * (paidAct / (double) cost));
      actPart = Math.min(actPart, paidAct - paidOut);
      if (actPart > 0) {
        engine.transferAct(MARKET, pr.id, actPart);
        paidOut += actPart;
      }
      long income = actPart;
      if (direct) {
        long rest = pr.windowRevenueUact - actPart;
        hour.aktDirectUakt += Dec.fromInt(rest).quo(oracle.priceAkt()).trunc().longValueExact();
        income += rest;
      } else {
        pr.busyGpuSeconds = (long) (pr.busyGpuSeconds * servedShare);
      }
      pr.windowRevenueUact = income;
    }
    if (paidAct > paidOut) engine.transferAct(MARKET, DUST, paidAct - paidOut);
    for (Provider pr : providers) {
      if (!pr.active) continue;
      long onlineSeconds = (long) (pr.gpus * pr.online * windowSeconds);
      netBusy += pr.busyGpuSeconds;
      pr.incomeThisHour += pr.windowRevenueUact;
      pr.onlineGpuSecondsThisHour += onlineSeconds;
    }
    hour.servedGpuSeconds += netBusy;
    hour.availableGpuSeconds += netAvailable;
    Dec u = netAvailable == 0 ? Dec.ZERO : Dec.fromInt(netBusy).quo(Dec.fromInt(netAvailable));
    if (cfg.bootstrap()) payFund(h, windowSeconds, u);
    if (cfg.pricing()) {
      for (GpuClass c : GpuClass.values()) {
        long available = 0;
        for (Provider pr : providers) {
          if (pr.active && pr.gpuClass == c) available += (long) (pr.gpus * pr.online * windowSeconds);
        }
        UtilizationPricing up = pricers.get(c);
        long busy = (long) (classServed[c.ordinal()] * (direct ? 1.0 : servedShare));
        price.put(c, up.next(price.get(c), up.utilization(busy, available)));
      }
    }
  }

  private void collectFromTenants(int tenants, long amount) throws BmeException {
    long remaining = amount;
    for (int pass = 0; pass < 2 && remaining > 0; pass++) {
      for (int t = 0; t < tenants && remaining > 0; t++) {
        long bal = engine.balance(tenant(t), "uact");
        long want = pass == 0 ? Math.max(1, remaining / (tenants - t)) : remaining;
        long pay = Math.min(bal, Math.min(want, remaining));
        if (pay > 0) {
          engine.transferAct(tenant(t), MARKET, pay);
          remaining -= pay;
        }
      }
    }
    if (remaining != 0) throw new IllegalStateException("tenants could not pay " + remaining + " uact");
  }

  private void payFund(long h, long windowSeconds, Dec u) throws BmeException {
    long spread = engine.spreadHeld();
    if (spread > 0) engine.moveSpreadToFund(FUND, spread);
    long treasury = engine.balance(TREASURY, "uact");
    if (treasury > 0) engine.transferAct(TREASURY, FUND, treasury);
    List<BootstrapFund.ProviderWindow> windows = new ArrayList<>();
    for (Provider pr : providers) {
      if (!pr.active || !pr.small) continue;
      windows.add(new BootstrapFund.ProviderWindow(pr.id, pr.gpus, Dec.parse(String.format("%.6f", pr.online)),
          pr.windowRevenueUact, Math.round(FLOOR_SHARE * pr.gpuClass.startUactPerGpuHour)));
    }
    Map<String, Provider> byId = new java.util.HashMap<>();
    for (Provider pr : providers) byId.put(pr.id, pr);
    for (BootstrapFund.Payout pay : fund.payouts(windows, windowSeconds, u, h, engine.balance(FUND, "uact"))) {
      engine.transferAct(FUND, pay.provider(), pay.uact());
      byId.get(pay.provider()).incomeThisHour += pay.uact();
      hour.fundPaid += pay.uact();
    }
  }

  private void collect() {
    // the simulation has no ledger of its own: it applies the engine's journal to a mirror, and
    // actConserved() checks it against the engine every hour
    for (JournalEntry entry : engine.drainJournal()) {
      for (JournalEntry.Line l : entry.lines()) mirror.computeIfAbsent(l.account(), k -> new long[2])[l.denom().equals("uact") ? 0 : 1] += l.amount();
    }
    for (Executed e : engine.executed()) {
      if (e.direction() == Direction.AKT_TO_ACT) {
        hour.aktIn += e.remintAccrued();
      } else {
        hour.aktOut += e.userAmount();
        hour.aktFresh += e.newlyMinted();
      }
    }
    for (Canceled c : engine.canceled()) hour.canceled++;
  }

  private void endHour(int h) {
    long smallIncome = 0, smallOnline = 0, largeIncome = 0, largeOnline = 0;
    int smallActive = 0, largeActive = 0;
    for (Provider pr : providers) {
      if (!pr.active) continue;
      int slot = (h - 1) % 24;
      pr.hourlyIncome[slot] = pr.incomeThisHour;
      pr.hourlyOnlineGpuSeconds[slot] = pr.onlineGpuSecondsThisHour;
      if (pr.small) {
        smallIncome += pr.incomeThisHour;
        smallOnline += pr.onlineGpuSecondsThisHour;
        smallActive++;
      } else {
        largeIncome += pr.incomeThisHour;
        largeOnline += pr.onlineGpuSecondsThisHour;
        largeActive++;
      }
      pr.incomeThisHour = 0;
      pr.onlineGpuSecondsThisHour = 0;
      if (h >= 24) {
        long income = 0, online = 0;
        for (int i = 0; i < 24; i++) {
          income += pr.hourlyIncome[i];
          online += pr.hourlyOnlineGpuSeconds[i];
        }
        double perGpuHour = online == 0 ? 0 : income / (online / 3600.0);
        if (perGpuHour < COST_SHARE * pr.gpuClass.startUactPerGpuHour) pr.active = false;
      }
    }
    CollateralRatio cr = engine.collateralRatioOrNull();
    long pendingMints = 0, pendingRedemptions = 0;
    for (BmeEngine.Pending p : engine.pending()) {
      if (p.id().direction() == Direction.AKT_TO_ACT) pendingMints++;
      else pendingRedemptions++;
    }
    rows.add(new SimulationRow(h, cfg.scenario().demandMultiplier(h - 0.5), oracle.healthy() ? oracle.priceAkt() : null,
        engine.breaker().status(), hour.ticksWarning, hour.ticksHalt, cr == null ? null : cr.ratio(), engine.vaultAkt(),
        engine.actSupply(), engine.remintCredits(), pendingMints, pendingRedemptions,
        hour.availableGpuSeconds / 3600,
        hour.availableGpuSeconds == 0 ? 0 : hour.servedGpuSeconds / hour.availableGpuSeconds,
        UtilizationPricing.perGpuHour(price.get(GpuClass.H100)), UtilizationPricing.perGpuHour(price.get(GpuClass.A100)),
        UtilizationPricing.perGpuHour(price.get(GpuClass.L4)), hour.demandGpuSeconds / 3600,
        hour.servedGpuSeconds / 3600, hour.aktIn, hour.aktOut, hour.aktFresh, hour.aktDirectUakt, hour.topUpsRefused,
        hour.redemptionsRefused, hour.canceled, engine.balance(FUND, "uact"), hour.fundPaid,
        smallOnline == 0 ? 0 : smallIncome / (smallOnline / 3600.0), largeOnline == 0 ? 0 : largeIncome / (largeOnline / 3600.0),
        smallActive, largeActive, actConserved()));
    hour.reset();
  }

  /**
   * Invariant 2 with 16.3 (all ACT in accounts plus what the engine holds is the ACT supply), and the
   * ledger mirror built from the engine's journal agrees with the engine on every account.
   */
  private boolean actConserved() {
    long sum = 0;
    for (long[] b : engine.balances().values()) sum += b[0];
    if (sum + engine.engineAct() != engine.actSupply()) return false;
    for (var e : engine.balances().entrySet()) {
      long[] m = mirror.getOrDefault(e.getKey(), new long[2]);
      if (m[0] != e.getValue()[0] || m[1] != e.getValue()[1]) return false;
    }
    return mirror.getOrDefault(JournalEntry.VAULT, new long[2])[1] == engine.vaultAkt()
        && mirror.getOrDefault(JournalEntry.ENGINE, new long[2])[0] == engine.engineAct()
        && -mirror.getOrDefault(JournalEntry.ACT_ISSUANCE, new long[2])[0] == engine.actSupply();
  }

  /** Micro-units as a decimal of whole units. */
  static String whole(long micro) {
    return BigDecimal.valueOf(micro, 6).toPlainString();
  }
}
