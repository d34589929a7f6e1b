package io.anneal.billing.bme;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The engine options of bme-spec 16.4, each off by default: FIFO queue order, refusing tiny mints at
 * admission, exact-USD top-ups, a restart threshold (hysteresis) out of HALT_CR, and a queue depth.
 * Figures are worked by hand from the spec's rules.
 */
class EngineOptionsTest {
  private static final OracleSnapshot ONE_DOLLAR = OracleSnapshot.healthy("1.00");
  private static final BmeParams.Options OFF = BmeParams.Options.OFF;

  private static BmeParams with(BmeParams.Options o) {
    return BmeParams.defaults().withOptions(o);
  }

  /** Genesis, a funded vault (so tick 1 ends HEALTHY and the mint epoch is tick 11), owners credited. */
  private static BmeEngine market(BmeParams p, OracleSnapshot oracle, String... owners) throws BmeException {
    BmeEngine e = BmeEngine.genesis(p);
    e.beginTick(1, oracle);
    e.credit("treasury", 1_000_000_000_000L);
    e.fundVault("treasury", 1_000_000_000_000L);
    for (String o : owners) e.credit(o, 1_000_000_000L);
    e.endTick();
    assertThat(e.breaker().status()).isEqualTo(Status.HEALTHY);
    assertThat(e.mintEpoch()).isEqualTo(11);
    return e;
  }

  private static void runTo(BmeEngine e, long h, OracleSnapshot oracle) {
    while (e.tick() < h) {
      e.beginTick(e.tick() + 1, oracle);
      e.endTick();
    }
  }

  // ------------------------------------------------------------------ restart threshold

  private static StatusUpdate statusAt(long crBps, Status stored, BmeParams p) {
    // vault value / ACT supply at $1: crBps 9200 <=> 9,200,000 uakt against 10,000,000 uact
    return Bme.nextStatus(new BreakerState(stored, Status.HEALTHY, 10), BigInteger.valueOf(crBps * 1_000),
        BigInteger.ZERO, BigInteger.valueOf(10_000_000), ONE_DOLLAR, p);
  }

  @Test
  void aHaltedBreakerWaitsForCrAboveTheRestartThreshold() {
    BmeParams hysteresis = with(new BmeParams.Options(false, false, false, 9300, 0));
    assertThat(statusAt(9200, Status.HALT_CR, BmeParams.defaults()).state().status()).as("no hysteresis by default")
        .isEqualTo(Status.WARNING);
    StatusUpdate held = statusAt(9200, Status.HALT_CR, hysteresis);
    assertThat(held.state().status()).isEqualTo(Status.HALT_CR);
    assertThat(held.changed()).isFalse();
    assertThat(statusAt(9300, Status.HALT_CR, hysteresis).state().status()).as("inclusive on the worse side")
        .isEqualTo(Status.HALT_CR);
    assertThat(statusAt(9301, Status.HALT_CR, hysteresis).state().status()).isEqualTo(Status.WARNING);
    assertThat(statusAt(9600, Status.HALT_CR, hysteresis).state().status()).isEqualTo(Status.HEALTHY);
    // only leaving HALT_CR is delayed: a WARNING breaker stays WARNING at 0.92, and halts at 0.90
    assertThat(statusAt(9200, Status.WARNING, hysteresis).state().status()).isEqualTo(Status.WARNING);
    assertThat(statusAt(9000, Status.WARNING, hysteresis).state().status()).isEqualTo(Status.HALT_CR);
  }

  @Test
  void aRestartThresholdMustLieAboveHaltAndAtMost10000() {
    assertThat(with(new BmeParams.Options(false, false, false, 9000, 0)).validate()).contains("RESTART_THRESHOLD_INVALID");
    assertThat(with(new BmeParams.Options(false, false, false, 10_001, 0)).validate()).contains("RESTART_THRESHOLD_INVALID");
    assertThat(with(new BmeParams.Options(false, false, false, 10_000, 0)).validate()).isEmpty();
    assertThat(with(new BmeParams.Options(false, false, false, 0, -1)).validate()).contains("MAX_QUEUE_DEPTH_NEGATIVE");
  }

  // ------------------------------------------------------------------ FIFO

  /** "bb" asks first, then "a"; one record per batch. Returns the owners in execution order. */
  private static List<String> executionOrder(boolean fifo) throws BmeException {
    BmeParams p = new BmeParams(9500, 9000, 10, 10, 25, 0, 1, BmeParams.defaults().minMint(), 3)
        .withOptions(new BmeParams.Options(fifo, false, false, 0, 0));
    BmeEngine e = market(p, ONE_DOLLAR, "a", "bb");
    e.beginTick(2, ONE_DOLLAR);
    e.request("bb", Direction.AKT_TO_ACT, 20_000_000);
    e.request("a", Direction.AKT_TO_ACT, 20_000_000);
    assertThat(e.pending()).extracting(x -> x.id().owner()).containsExactly(fifo ? new String[] {"bb", "a"} : new String[] {"a", "bb"});
    e.endTick();
    runTo(e, 11, ONE_DOLLAR);
    assertThat(e.executed()).hasSize(1);
    String first = e.executed().get(0).id().owner();
    runTo(e, 21, ONE_DOLLAR);
    assertThat(e.executed()).hasSize(1);
    return List.of(first, e.executed().get(0).id().owner());
  }

  @Test
  void fifoServesRequestsInArrivalOrderInsteadOfOwnerKeyOrder() throws BmeException {
    assertThat(executionOrder(false)).as("owner key: shorter id first").containsExactly("a", "bb");
    assertThat(executionOrder(true)).containsExactly("bb", "a");
  }

  // ------------------------------------------------------------------ minimum mint at admission

  @Test
  void aMintBelowTheMinimumIsRefusedAtAdmissionAndChangesNothing() throws BmeException {
    BmeEngine strict = market(with(new BmeParams.Options(false, true, false, 0, 0)), ONE_DOLLAR, "t");
    strict.beginTick(2, ONE_DOLLAR);
    // 9.999999 AKT at $1 mints 9,999,999 uact gross, below 10 ACT
    assertThatThrownBy(() -> strict.request("t", Direction.AKT_TO_ACT, 9_999_999))
        .isInstanceOfSatisfying(BmeException.class, x -> assertThat(x.code()).isEqualTo(BmeError.MINIMUM_MINT));
    assertThat(strict.balance("t", "uakt")).isEqualTo(1_000_000_000L);
    assertThat(strict.pending()).isEmpty();
    assertThat(strict.request("t", Direction.AKT_TO_ACT, 10_000_000)).as("exactly the minimum passes").isNotNull();

    BmeEngine chain = market(BmeParams.defaults(), ONE_DOLLAR, "t");
    chain.beginTick(2, ONE_DOLLAR);
    chain.request("t", Direction.AKT_TO_ACT, 9_999_999);
    chain.endTick();
    runTo(chain, 11, ONE_DOLLAR);
    assertThat(chain.canceled()).as("without the option: queued, then cancelled at the mint epoch")
        .extracting(Canceled::reason).containsExactly(BmeError.MINIMUM_MINT);
  }

  // ------------------------------------------------------------------ exact USD

  @Test
  void anExactUsdTopUpAsksForTheAktThatBuysAtLeastThatManyDollars() throws BmeException {
    OracleSnapshot thirtyCents = OracleSnapshot.healthy("0.30");
    BmeEngine e = market(with(new BmeParams.Options(false, false, true, 0, 0)), thirtyCents, "t");
    e.beginTick(2, thirtyCents);
    // 10 USD / 0.30 = 33.333333(3) AKT -> rounded up to 33,333,334 uakt
    assertThat(Bme.uaktForUsd(new BigDecimal("10"), thirtyCents)).isEqualTo(33_333_334L);
    RequestId id = e.requestUsd("t", new BigDecimal("10"));
    assertThat(e.pending()).singleElement().satisfies(p -> assertThat(p.amount()).isEqualTo(33_333_334L));
    e.endTick();
    runTo(e, 11, thirtyCents);
    assertThat(e.executed()).singleElement().satisfies(x -> {
      assertThat(x.id()).isEqualTo(id);
      assertThat(x.mintAmount()).as("gross ACT >= 10 USD").isEqualTo(10_000_000L);
    });

    BmeEngine off = market(BmeParams.defaults(), thirtyCents, "t");
    off.beginTick(2, thirtyCents);
    assertThatThrownBy(() -> off.requestUsd("t", new BigDecimal("10")))
        .isInstanceOfSatisfying(BmeException.class, x -> assertThat(x.code()).isEqualTo(BmeError.OPTION_OFF));
    assertThatThrownBy(() -> Bme.uaktForUsd(new BigDecimal("10"), new OracleSnapshot(false, Dec.ZERO)))
        .isInstanceOfSatisfying(BmeException.class, x -> assertThat(x.code()).isEqualTo(BmeError.ORACLE_UNHEALTHY));
    assertThatThrownBy(() -> Bme.uaktForUsd(BigDecimal.ZERO, thirtyCents))
        .isInstanceOfSatisfying(BmeException.class, x -> assertThat(x.code()).isEqualTo(BmeError.INVALID_AMOUNT));
  }

  // ------------------------------------------------------------------ queue depth

  @Test
  void aFullMintQueueRefusesMoreTopUpsButNotRedemptions() throws BmeException {
    BmeEngine e = market(with(new BmeParams.Options(false, false, false, 0, 2)), ONE_DOLLAR, "t", "p");
    e.beginTick(2, ONE_DOLLAR);
    e.request("t", Direction.AKT_TO_ACT, 20_000_000);
    e.request("t", Direction.AKT_TO_ACT, 20_000_000);
    long before = e.balance("t", "uakt");
    assertThatThrownBy(() -> e.request("t", Direction.AKT_TO_ACT, 20_000_000))
        .isInstanceOfSatisfying(BmeException.class, x -> assertThat(x.code()).isEqualTo(BmeError.QUEUE_FULL));
    assertThat(e.balance("t", "uakt")).isEqualTo(before);
    assertThat(e.pending()).hasSize(2);
    e.endTick();
    runTo(e, 11, ONE_DOLLAR);
    assertThat(e.executed()).hasSize(2);
    // once executed, the queue has room again; redemptions (supply, not demand) are not limited
    e.beginTick(12, ONE_DOLLAR);
    e.request("t", Direction.AKT_TO_ACT, 20_000_000);
    for (int i = 0; i < 3; i++) e.request("t", Direction.ACT_TO_AKT, 1_000_000);
    assertThat(e.pending()).hasSize(4);
    e.endTick();
    assertThat(OFF.maxQueueDepth()).as("off by default").isZero();
  }
}
