package io.anneal.billing.ledger;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.bme.BmeEngine;
import io.anneal.billing.bme.BmeException;
import io.anneal.billing.bme.BmeParams;
import io.anneal.billing.bme.Direction;
import io.anneal.billing.bme.OracleSnapshot;
import io.anneal.billing.bme.Status;
import io.anneal.billing.sql.Database;
import io.anneal.billing.sql.GroupCommitWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;

/**
 * The service runs the BME on the SQL ledger ({@link Mints}, {@link Redemptions}, {@link LedgerTicks})
 * while the spec's reference is the in-memory {@link BmeEngine}. This drives both with the same
 * random market — an oracle walk with crashes into HALT_CR and recoveries, deposits, ACT paid from
 * tenants to providers, provider payouts, budgets small enough to leave queues behind — and requires
 * the same state after every tick: vault, pending AKT, ACT supply, remint credits, totals, breaker
 * status and every account's ACT and AKT.
 *
 * <p>The service always refuses a deposit whose mint would be below the minimum at today's price
 * (ADR 0008, the 16.4 option), where the chain's engine queues it and cancels it at its epoch: with
 * the chain's parameters such deposits are skipped on both sides. With every 16.4 option on (that
 * one, FIFO queues, a restart threshold, a mint queue depth) the engine must refuse exactly what the
 * ledger refuses, with the same reason.
 */
class LedgerMatchesEngineTest {
  private static final String[] TENANTS = {"a", "bb", "t9", "t10"};
  private static final String[] PROVIDERS = {"n1", "node-22"};

  static java.util.stream.Stream<org.junit.jupiter.params.provider.Arguments> markets() {
    return java.util.stream.Stream.of(false, true).flatMap(options -> java.util.stream.LongStream.rangeClosed(1, 5)
        .mapToObj(seed -> org.junit.jupiter.params.provider.Arguments.of(seed, options)));
  }

  @ParameterizedTest(name = "seed {0}, 16.4 options {1}")
  @org.junit.jupiter.params.provider.MethodSource("markets")
  void theSqlLedgerAndTheEngineAgreeAfterEveryTick(long seed, boolean options) throws Exception {
    // a small per-tick budget so that queues carry over and their order matters
    BmeParams d = BmeParams.defaults();
    BmeParams params = new BmeParams(d.circuitBreakerWarnThreshold(), d.circuitBreakerHaltThreshold(), d.minEpochBlocks(),
        d.epochBlocksBackoffPercent(), d.mintSpreadBps(), d.settleSpreadBps(), 4, d.minMint(), d.maxPendingAttempts(),
        options ? new BmeParams.Options(true, true, false, 9300, 6) : BmeParams.Options.OFF);
    Random rnd = new Random(seed);
    Database db = TestDatabases.freshH2();
    try (GroupCommitWriter w = new GroupCommitWriter(db, "equivalence", 100)) {
      BmeEngine engine = BmeEngine.genesis(params);
      LedgerTicks ticks = new LedgerTicks(params);
      long seedUakt = 1_000_000_000L;
      engine.credit("seed", seedUakt);
      engine.fundVault("seed", seedUakt);
      w.submit(c -> {
        SqlLedger.fundVault(c, "seed", seedUakt);
        for (String t : TENANTS) SqlLedger.openTenantAccounts(c, t);
        return null;
      }).get();
      double price = 0.5;
      int refusedAlike = 0;
      int queueFull = 0;
      int executedMints = 0;
      int executedPayouts = 0;
      List<String> statuses = new ArrayList<>();
      for (long h = 1; h <= 300; h++) {
        double u = rnd.nextDouble();
        price = u < 0.03 ? price * 0.25 : u < 0.08 ? price * 2.2 : price * Math.exp(rnd.nextGaussian() * 0.05);
        price = Math.max(0.02, Math.min(5.0, price));
        OracleSnapshot snap = OracleSnapshot.healthy(String.format(Locale.ROOT, "%.6f", price));
        engine.beginTick(h, snap);
        long tick = h;
        int ops = rnd.nextInt(4);
        for (int k = 0; k < ops; k++) {
          double what = rnd.nextDouble();
          String ref = "s" + seed + "-h" + h + "-" + k;
          if (what < 0.45) {
            String t = TENANTS[rnd.nextInt(TENANTS.length)];
            long uakt = (20 + rnd.nextInt(400)) * 1_000_000L;
            Mints.Requested r = w.submit(c -> Mints.request(c, t, ref, uakt, snap, params, tick)).get();
            if (r.refusal() == LedgerRefusal.BELOW_MINIMUM_MINT && !options) continue; // skipped on both sides (above)
            String owner = Accounts.tenant(t);
            if (r.refusal() != null) {
              // the ledger refused (breaker, minimum, full queue); the engine must refuse for the same reason,
              // before any balance check (the AKT is credited to the engine only when the deposit is taken)
              try {
                engine.request(owner, Direction.AKT_TO_ACT, uakt);
                throw new AssertionError("tick " + tick + ": the engine took a deposit the ledger refused: " + r.refusal());
              } catch (BmeException e) {
                String expected = r.refusal() == LedgerRefusal.BELOW_MINIMUM_MINT ? "MINIMUM_MINT|EPSILON" : r.refusal().name();
                assertThat(e.code().name()).as("tick %d", tick).matches(expected);
              }
              if (r.refusal() == LedgerRefusal.QUEUE_FULL) queueFull++;
              refusedAlike++;
              continue;
            }
            engine.credit(owner, uakt);
            engine.request(owner, Direction.AKT_TO_ACT, uakt);
          } else if (what < 0.8) {
            String t = Accounts.tenant(TENANTS[rnd.nextInt(TENANTS.length)]);
            String p = Accounts.provider(PROVIDERS[rnd.nextInt(PROVIDERS.length)]);
            long has = engine.balance(t, "uact");
            if (has == 0) continue;
            long amount = 1 + (long) (rnd.nextDouble() * has);
            w.submit(c -> SqlLedger.post(c, "transfer", ref, List.of(new Posting(t, "uact", -amount),
                new Posting(p, "uact", amount)))).get();
            engine.transferAct(t, p, amount);
          } else {
            String node = PROVIDERS[rnd.nextInt(PROVIDERS.length)];
            String p = Accounts.provider(node);
            long has = engine.balance(p, "uact");
            if (has == 0) continue;
            long amount = 1 + (long) (rnd.nextDouble() * has);
            Redemptions.Requested r = w.submit(c -> Redemptions.request(c, node, amount, ref, snap, tick)).get();
            if (r.refusal() != null) {
              try {
                engine.request(p, Direction.ACT_TO_AKT, amount);
                throw new AssertionError("tick " + tick + ": the engine took a payout the ledger refused: " + r.refusal());
              } catch (BmeException e) {
                assertThat(e.code().name()).as("tick %d", tick).isEqualTo(r.refusal().name());
              }
              refusedAlike++;
              continue;
            }
            engine.request(p, Direction.ACT_TO_AKT, amount);
          }
        }
        LedgerTicks.Result done = w.submit(c -> ticks.endTick(c, tick, snap, params, 0, tick)).get();
        engine.endTick();
        executedMints += (int) done.mints().stream().filter(o -> o.state().equals("EXECUTED")).count();
        executedPayouts += (int) done.payouts().stream().filter(o -> o.state().equals("EXECUTED")).count();
        statuses.add(engine.breaker().status().name());

        SupplyView s = w.submit(SqlLedger::supply).get();
        String at = "seed " + seed + ", tick " + h + ", price " + snap.priceAkt();
        assertThat(s.status()).as("status at %s", at).isEqualTo(engine.breaker().status().name());
        assertThat(s.vaultAkt()).as("vault at %s", at).isEqualTo(engine.vaultAkt());
        assertThat(s.pendingAkt()).as("pending AKT at %s", at).isEqualTo(engine.pendingAkt());
        assertThat(s.actSupply()).as("ACT supply at %s", at).isEqualTo(engine.actSupply());
        assertThat(s.remintCredits()).as("remint credits at %s", at).isEqualTo(engine.remintCredits());
        assertThat(s.totalMintedUact()).as("ACT minted at %s", at).isEqualTo(engine.totalMintedUact());
        assertThat(s.totalMintedUakt()).as("AKT minted at %s", at).isEqualTo(engine.totalMintedUakt());
        assertThat(s.totalBurnedUact()).as("ACT burned at %s", at).isEqualTo(engine.totalBurnedUact());
        for (String t : TENANTS) compareAccount(w, engine, Accounts.tenant(t), at);
        for (String p : PROVIDERS) compareAccount(w, engine, Accounts.provider(p), at);
      }
      // the scenario really exercised what it claims to
      assertThat(executedMints).isGreaterThan(10);
      if (options) {
        assertThat(queueFull).as("the queue depth was reached").isPositive();
      }
      assertThat(executedPayouts).isGreaterThan(5);
      assertThat(statuses).contains(Status.HALT_CR.name(), Status.HEALTHY.name());
      assertThat(refusedAlike).isGreaterThan(0);
      // the ledger the market left (mints, payouts with remint credits and fresh AKT) holds up to the audit
      try (java.sql.Connection c = db.connection()) {
        LedgerAudit.Report audit = LedgerAudit.run(c, 20);
        assertThat(audit.findings()).as("ledger audit, seed %s", seed).isEmpty();
        assertThat(audit.checked().get("supply")).contains("the BME counters agree with the journal");
      }
    } finally {
      db.dropSchema();
      db.close();
    }
  }

  private static void compareAccount(GroupCommitWriter w, BmeEngine engine, String account, String at) throws Exception {
    for (String denom : new String[] {"uact", "uakt"}) {
      long sql = w.submit(c -> SqlLedger.balance(c, account, denom)).get();
      assertThat(sql).as("%s %s at %s", account, denom, at).isEqualTo(engine.balance(account, denom));
    }
  }
}
