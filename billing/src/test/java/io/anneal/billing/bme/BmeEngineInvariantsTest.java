package io.anneal.billing.bme;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/** bme-spec section 13, checked after every tick of random operation sequences. */
class BmeEngineInvariantsTest {
  private static final List<String> OWNERS = List.of("alice", "bob", "carol-provider", "d");

  /** One step: what to do, who, how much; applied in tick order. */
  record Op(int kind, int owner, int other, long amount) {}

  /** A tick: its oracle and its operations. */
  record Tick(boolean healthy, String price, List<Op> ops) {}

  @Provide
  Arbitrary<List<Tick>> sequences() {
    Arbitrary<Op> op = Combinators.combine(Arbitraries.integers().between(0, 6), Arbitraries.integers().between(0, 3),
        Arbitraries.integers().between(0, 3),
        Arbitraries.oneOf(Arbitraries.longs().between(1, 100), Arbitraries.longs().between(1, 50_000_000L),
            Arbitraries.longs().between(1, 5_000_000_000L))).as(Op::new);
    Arbitrary<String> price = Arbitraries.of("0.4823", "0.30", "1.25", "2.5", "0.05", "0.000001", "0", "13.37");
    Arbitrary<Tick> tick = Combinators.combine(Arbitraries.integers().between(0, 9).map(i -> i > 0), price,
        op.list().ofMaxSize(4)).as(Tick::new);
    // most runs start by funding the vault and giving owners AKT, so that queues really execute
    Arbitrary<Tick> seed = Combinators.combine(Arbitraries.longs().between(1, 20_000_000_000L),
        Arbitraries.longs().between(1, 2_000_000_000L), Arbitraries.integers().between(0, 3)).as((fund, give, who) ->
            new Tick(true, "0.4823", List.of(new Op(0, 3, 0, fund + give * 4), new Op(1, 3, 0, fund),
                new Op(0, 0, 0, give), new Op(0, 1, 0, give), new Op(0, who, 0, give))));
    return Combinators.combine(seed, tick.list().ofMinSize(1).ofMaxSize(80), Arbitraries.integers().between(0, 9))
        .as((s0, rest, coin) -> {
          if (coin == 0) return rest;
          List<Tick> all = new ArrayList<>();
          all.add(s0);
          all.addAll(rest);
          return all;
        });
  }

  @Property(tries = 1000)
  void invariantsHoldAfterEveryTick(@ForAll("sequences") List<Tick> ticks, @ForAll("paramsChoice") BmeParams params) {
    String trace = replayAndCheck(ticks, params);
    // the sequences must reach the interesting states, not only refusals at genesis
    net.jqwik.api.statistics.Statistics.label("mint executed").collect(trace.contains("AKT_TO_ACT, burned"));
    net.jqwik.api.statistics.Statistics.label("redemption executed").collect(trace.contains("ACT_TO_AKT, burned"));
    net.jqwik.api.statistics.Statistics.label("cancelled").collect(trace.contains("Canceled["));
    net.jqwik.api.statistics.Statistics.label("mint executed").coverage(c -> c.check(true).percentage(pct -> pct > 10));
    net.jqwik.api.statistics.Statistics.label("redemption executed").coverage(c -> c.check(true).percentage(pct -> pct > 3));
    net.jqwik.api.statistics.Statistics.label("cancelled").coverage(c -> c.check(true).percentage(pct -> pct > 5));
  }

  @Provide
  Arbitrary<BmeParams> paramsChoice() {
    BmeParams d = BmeParams.defaults();
    return Arbitraries.of(d,
        new BmeParams(9500, 9000, 3, 10, 25, 50, 1, Map.of("uact", java.math.BigInteger.valueOf(1_000)), 2),
        new BmeParams(9900, 9800, 1, 100, 1000, 1000, 2, Map.of(), 1),
        // every 16.4 option on: the invariants hold with them too
        d.withOptions(new BmeParams.Options(true, true, true, 9300, 3)));
  }

  @Property(tries = 1000)
  void replayIsDeterministic(@ForAll("sequences") List<Tick> ticks, @ForAll("paramsChoice") BmeParams params) {
    String a = replayAndCheck(ticks, params);
    String b = replayAndCheck(ticks, params);
    assertThat(a).isEqualTo(b);
  }

  /** Runs the sequence, asserts every invariant after each tick, returns a fingerprint of the end state. */
  private static String replayAndCheck(List<Tick> ticks, BmeParams params) {
    BmeEngine e = BmeEngine.genesis(params);
    long funded = 0;
    long credited = 0;
    long settleSpreads = 0;
    long mintSpreads = 0;
    long accrued = 0;
    long issued = 0;
    Map<String, Long> requested = new HashMap<>();
    Set<String> ended = new HashSet<>();
    StringBuilder trace = new StringBuilder();
    // a ledger fed only by the engine's journal: it must hold exactly the engine's state
    Map<String, long[]> ledger = new HashMap<>();
    for (int i = 0; i < ticks.size(); i++) {
      Tick t = ticks.get(i);
      e.beginTick(i + 1, new OracleSnapshot(t.healthy(), Dec.parse(t.price())));
      for (Op op : t.ops()) {
        String owner = OWNERS.get(op.owner());
        try {
          switch (op.kind()) {
            case 0 -> {
              e.credit(owner, op.amount());
              credited += op.amount();
            }
            case 1 -> {
              e.fundVault(owner, op.amount());
              funded += op.amount();
            }
            case 2 -> e.transferAct(owner, OWNERS.get(op.other()), op.amount());
            case 3, 4 -> requested.put(e.request(owner, Direction.AKT_TO_ACT, op.amount()).toString(), op.amount());
            default -> requested.put(e.request(owner, Direction.ACT_TO_AKT, op.amount()).toString(), op.amount());
          }
        } catch (BmeException refused) {
          trace.append(refused.code()).append(';');
        }
      }
      long totalAktBefore = totalAkt(e);
      long mintedAktBefore = e.totalMintedUakt();
      e.endTick();
      for (Executed x : e.executed()) {
        assertThat(ended.add(x.id().toString())).as("ends once: %s", x.id()).isTrue();
        if (x.direction() == Direction.AKT_TO_ACT) {
          mintSpreads += x.spread();
          accrued += x.remintAccrued();
          assertThat(x.statusInForce()).as("a halted breaker never mints").isLessThanOrEqualTo(Status.WARNING);
        } else {
          settleSpreads += x.spread();
          issued += x.remintIssued();
        }
        trace.append(x).append(';');
      }
      for (Canceled c : e.canceled()) {
        assertThat(ended.add(c.id().toString())).as("ends once: %s", c.id()).isTrue();
        assertThat(c.amount()).as("refund = input").isEqualTo(requested.get(c.id().toString()));
        trace.append(c).append(';');
      }
      // 5. total AKT changes only by external credits and newly minted AKT (checked per endTick)
      assertThat(totalAkt(e) - totalAktBefore).isEqualTo(e.totalMintedUakt() - mintedAktBefore);
      // no amount negative
      assertThat(e.vaultAkt()).isNotNegative();
      assertThat(e.pendingAkt()).isNotNegative();
      assertThat(e.pendingAct()).isNotNegative();
      assertThat(e.engineAct()).isNotNegative();
      assertThat(e.actSupply()).isNotNegative();
      assertThat(e.remintCredits()).isNotNegative();
      e.balances().forEach((k, v) -> assertThat(Math.min(v[0], v[1])).as("balance of %s", k).isNotNegative());
      // 1. vault = funded + remint credits + pending AKT + settle spreads
      assertThat(e.vaultAkt()).isEqualTo(funded + e.remintCredits() + e.pendingAkt() + settleSpreads);
      // 2. ACT supply = users' ACT + engine ACT; engine ACT = mint spreads + pending ACT
      long usersAct = 0;
      for (long[] b : e.balances().values()) usersAct += b[0];
      assertThat(e.actSupply()).isEqualTo(usersAct + e.engineAct());
      assertThat(e.engineAct()).isEqualTo(mintSpreads + e.pendingAct());
      // 3. ACT outstanding = minted − burned
      assertThat(e.actSupply()).isEqualTo(e.totalMintedUact() - e.totalBurnedUact());
      // 4. remint credits = accrued − issued, never more than what mints took in
      assertThat(e.remintCredits()).isEqualTo(accrued - issued).isLessThanOrEqualTo(accrued);
      // 5 (whole run). AKT in existence = credited + newly minted
      assertThat(totalAkt(e)).isEqualTo(credited + e.totalMintedUakt());
      // 6. every accepted request is pending or ended, never both
      Set<String> pendingIds = new HashSet<>();
      for (BmeEngine.Pending p : e.pending()) pendingIds.add(p.id().toString());
      for (String id : requested.keySet()) {
        assertThat(pendingIds.contains(id) ^ ended.contains(id)).as("request %s is pending xor ended", id).isTrue();
      }
      for (JournalEntry entry : e.drainJournal()) {
        for (JournalEntry.Line l : entry.lines()) {
          ledger.computeIfAbsent(l.account(), k -> new long[2])[l.denom().equals("uact") ? 0 : 1] += l.amount();
        }
      }
      for (String o : OWNERS) {
        long[] b = ledger.getOrDefault(o, new long[2]);
        assertThat(b[0]).as("ledger uact of %s", o).isEqualTo(e.balance(o, "uact"));
        assertThat(b[1]).as("ledger uakt of %s", o).isEqualTo(e.balance(o, "uakt"));
      }
      assertThat(ledger.getOrDefault(JournalEntry.VAULT, new long[2])[1]).isEqualTo(e.vaultAkt());
      assertThat(ledger.getOrDefault(JournalEntry.ENGINE, new long[2])[0]).isEqualTo(e.engineAct());
      assertThat(-ledger.getOrDefault(JournalEntry.ACT_ISSUANCE, new long[2])[0]).isEqualTo(e.actSupply());
      assertThat(-ledger.getOrDefault(JournalEntry.AKT_ISSUANCE, new long[2])[1]).isEqualTo(e.totalMintedUakt());
      assertThat(-ledger.getOrDefault(JournalEntry.EXTERNAL, new long[2])[1]).isEqualTo(credited);
      trace.append(e.breaker()).append(e.mintEpoch()).append('/').append(e.burnEpoch()).append('\n');
    }
    return trace.toString();
  }

  private static long totalAkt(BmeEngine e) {
    long t = e.vaultAkt();
    for (long[] b : e.balances().values()) t += b[1];
    return t;
  }

  @org.junit.jupiter.api.Test
  void anUnbalancedJournalEntryCannotExist() {
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> new JournalEntry("mint", "x",
        List.of(new JournalEntry.Line("a", "uact", 5), new JournalEntry.Line("b", "uact", -4))))
        .hasMessageContaining("unbalanced in uact by 1");
  }

  @Property(tries = 50)
  void anUnknownParameterSetIsRejectedAtGenesis(@ForAll("paramsChoice") BmeParams ok) {
    assertThat(ok.validate()).isEmpty();
    BmeParams bad = new BmeParams(9000, 9000, 10, 10, 25, 0, 50, Map.of(), 3);
    assertThat(bad.validate()).hasValue("WARN_NOT_ABOVE_HALT");
    List<String> errors = new ArrayList<>();
    try {
      BmeEngine.genesis(bad);
    } catch (IllegalArgumentException e) {
      errors.add(e.getMessage());
    }
    assertThat(errors).singleElement().asString().contains("WARN_NOT_ABOVE_HALT");
  }
}
