package io.anneal.billing.ledger;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.receipt.Receipt;
import io.anneal.billing.receipt.ReceiptSigner;
import io.anneal.billing.receipt.SignedReceipt;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.statistics.Statistics;

/**
 * The settlement rules over random batches (what every ledger adapter writes, {@link SettlementPlan}):
 * journal entries balance, nothing goes negative, no escrow pays out more than it holds, a receipt id
 * settles once, duplicates answer with the first settlement, refusals write nothing, and billed usage
 * never exceeds what the job's GPUs could have run since placement.
 */
class SettlementPlanPropertiesTest {
  private static final long NOW = 1_800_000_000_000L;
  private static final KeyPair KEY = key();
  private static final List<String> NODES = List.of("n1", "n2", "n3");

  /** An open escrow to generate: tenant, amounts, price, GPUs, AKT or ACT, recorded nodes and placement. */
  record Escrow(int tenant, long amountUact, long price, int gpus, boolean inAkt, long heldUakt, Placement placement) {}

  /** Which nodes were recorded (0: none, before V10), how long ago it was first placed (null: before V11), GPU time billed. */
  record Placement(int nodes, Long placedAgoMs, long usedGpuNanos) {}

  /** A delivery: which job (beyond the escrows: none), from which tenant and node, usage, outcome, run. */
  record Delivery(int job, int tenant, int node, long deviceNanos, boolean preempted, int run, boolean repeat) {}

  @Provide
  Arbitrary<List<Escrow>> escrows() {
    Arbitrary<Long> placedAgo = Arbitraries.oneOf(Arbitraries.just((Long) null), Arbitraries.longs().between(0, 7_200_000L));
    Arbitrary<Escrow> e = Combinators.combine(Arbitraries.integers().between(0, 2), Arbitraries.longs().between(0, 5_000_000L),
        Arbitraries.of(0L, 1_000_000L, 3_600_000L, 36_000_000L), Arbitraries.integers().between(1, 8),
        Arbitraries.integers().between(0, 4).map(i -> i == 0), Arbitraries.longs().between(0, 200_000_000L),
        Combinators.combine(Arbitraries.integers().between(0, 2), placedAgo,
            Arbitraries.oneOf(Arbitraries.just(0L), Arbitraries.longs().between(0, 20_000_000_000_000L))).as(Placement::new))
        .as(Escrow::new);
    return e.list().ofMinSize(1).ofMaxSize(10);
  }

  @Provide
  Arbitrary<List<Delivery>> deliveries() {
    Arbitrary<Long> nanos = Arbitraries.oneOf(Arbitraries.longs().between(0, 1_000_000_000L),
        Arbitraries.longs().between(0, 40_000_000_000_000L));
    Arbitrary<Delivery> d = Combinators.combine(Arbitraries.integers().between(0, 11), Arbitraries.integers().between(0, 9),
        Arbitraries.integers().between(0, 2), nanos, Arbitraries.integers().between(0, 3).map(i -> i == 0),
        Arbitraries.integers().between(0, 2), Arbitraries.integers().between(0, 4).map(i -> i == 0)).as(Delivery::new);
    return d.list().ofMinSize(1).ofMaxSize(30);
  }

  @Property(tries = 2000)
  void aBatchSettlesByTheRules(@ForAll("escrows") List<Escrow> escrows, @ForAll("deliveries") List<Delivery> deliveries,
      @ForAll("priorShare") int priorShare) {
    Map<String, SettlementPlan.OpenEscrow> open = new LinkedHashMap<>();
    for (int j = 0; j < escrows.size(); j++) {
      Escrow e = escrows.get(j);
      Placement at = e.placement();
      String nodes = switch (at.nodes()) {
        case 0 -> null; // held before placements were recorded
        case 1 -> "n1\n";
        default -> "n1\nn2\n";
      };
      EscrowHold h = e.inAkt()
          ? new EscrowHold("j" + j, "t" + e.tenant(), e.amountUact(), e.price(), "H100", e.gpus(), null, "0.04", e.heldUakt())
          : new EscrowHold("j" + j, "t" + e.tenant(), e.amountUact(), e.price(), "H100", e.gpus());
      open.put("j" + j, new SettlementPlan.OpenEscrow(h, nodes, at.placedAgoMs() == null ? null : NOW - at.placedAgoMs(),
          at.usedGpuNanos(), 0));
    }
    List<Receipt> unique = new ArrayList<>();
    List<Integer> delivered = new ArrayList<>(); // per delivery, its receipt in unique
    for (Delivery d : deliveries) {
      if (d.repeat() && !unique.isEmpty()) {
        delivered.add(delivered.get(delivered.size() - 1)); // delivered twice in one batch
        continue;
      }
      // mostly the escrow's own tenant; sometimes another's; jobs beyond the escrows have none
      int tenant = d.job() < escrows.size() && d.tenant() > 1 ? escrows.get(d.job()).tenant() : d.tenant() % 3;
      Receipt r = new Receipt("j" + d.job() + "/" + d.run(), "j" + d.job(), "t" + tenant, NODES.get(d.node()), "H100", 1,
          false, d.deviceNanos(), d.deviceNanos(), 0, NOW - 3_600_000L, NOW - 1_000L, d.preempted() ? "PREEMPTED" : "SUCCEEDED",
          "");
      unique.add(r);
      delivered.add(unique.size() - 1);
    }
    List<SignedReceipt> signed = new ReceiptSigner(KEY.getPrivate()).sign(unique); // one Merkle batch, one signature
    List<SignedReceipt> receipts = new ArrayList<>();
    for (int u : delivered) receipts.add(signed.get(u));
    // some receipt ids were settled by an earlier batch
    Map<String, Settlement> prior = new HashMap<>();
    for (SignedReceipt sr : receipts) {
      String id = sr.receipt().receiptId();
      if (Math.floorMod(id.hashCode(), 10) < priorShare) {
        prior.putIfAbsent(id, new Settlement(id, sr.receipt().jobId(), 7, 3, 42, true, null, 0));
      }
    }
    // a receipt settled while its job's escrow stays open was a partial one, which the escrow counts (V15)
    Map<String, Integer> partials = new HashMap<>();
    prior.values().forEach(p -> partials.merge(p.jobId(), 1, Integer::sum));
    partials.forEach((job, n) -> open.computeIfPresent(job,
        (k, e) -> new SettlementPlan.OpenEscrow(e.hold(), e.nodes(), e.placedAtMs(), e.usedGpuNanos(), n)));
    SettlementPlan plan = SettlementPlan.of(receipts, prior, open, (cls, atMs) -> null, NOW, 3600);
    List<Settlement> out = plan.settlements(99);

    // what adapters read: the earlier settlements of the receipts the escrows leave unsure, and no others
    List<String> unsure = SettlementPlan.mayHaveSettled(receipts, open);
    assertThat(unsure).containsAll(prior.keySet());
    Map<String, Settlement> read = new HashMap<>(prior);
    read.keySet().retainAll(unsure);
    assertThat(SettlementPlan.of(receipts, read, open, (cls, atMs) -> null, NOW, 3600).settlements(99)).isEqualTo(out);
    Statistics.label("looked up").collect(unsure.size() < receipts.size() ? "some receipts" : "all receipts");

    assertThat(out).hasSize(receipts.size());
    // the rows' columns: one entry per row in each, the journal entry's id where adapters fill it in
    Object[] columns = plan.settlementColumns(99);
    assertThat(columns).hasSize(15).allSatisfy(c -> assertThat((Object[]) c).hasSize(plan.rows().size()));
    assertThat((Long[]) columns[SettlementPlan.TX_ID_COLUMN]).allMatch(v -> v == 99L);
    // every journal entry balances per denomination
    Map<String, Long> sums = new HashMap<>();
    for (Posting p : plan.postings()) sums.merge(p.denom(), p.amount(), Long::sum);
    assertThat(sums.values()).allMatch(v -> v == 0);

    Set<String> written = new HashSet<>();
    Map<String, Long> uactLeft = new HashMap<>();
    Map<String, Long> uaktLeft = new HashMap<>();
    Set<String> closed = new HashSet<>();
    Map<String, Long> usedGpu = new HashMap<>();
    open.forEach((job, e) -> {
      uactLeft.put(job, e.hold().amountUact());
      uaktLeft.put(job, e.hold().heldUakt());
    });
    for (SettlementPlan.Row row : plan.rows()) {
      Receipt r = row.receipt().receipt();
      SettlementPlan.OpenEscrow e = open.get(r.jobId());
      assertThat(written.add(r.receiptId())).as("settled once: %s", r.receiptId()).isTrue();
      assertThat(prior).doesNotContainKey(r.receiptId());
      assertThat(e).as("an open escrow for %s", r.jobId()).isNotNull();
      assertThat(closed).as("nothing settles after a job's final receipt").doesNotContain(r.jobId());
      assertThat(r.tenantId()).isEqualTo(e.hold().tenantId());
      assertThat(e.nodes() == null || SqlLedger.recordedOn(e.nodes(), r.nodeId())).isTrue();
      assertThat(row.chargeUact()).isNotNegative();
      assertThat(row.refundUact()).isNotNegative();
      assertThat(row.paidUakt()).isNotNegative();
      assertThat(row.escrowUactUsed()).isBetween(0L, uactLeft.get(r.jobId()));
      assertThat(row.escrowUaktUsed()).isBetween(0L, uaktLeft.get(r.jobId()));
      if (row.inAkt()) {
        assertThat(row.chargeUact()).isZero();
        assertThat(row.paidUakt()).isLessThanOrEqualTo(row.escrowUaktUsed());
      } else if (!row.partial()) {
        assertThat(row.chargeUact() + row.refundUact()).isEqualTo(row.escrowUactUsed()).isEqualTo(uactLeft.get(r.jobId()));
      }
      // usage billed: as claimed, or less when more than the GPUs could have run since placement,
      // less what the job's earlier runs were billed
      long usedBefore = usedGpu.getOrDefault(r.jobId(), e.usedGpuNanos());
      long bound = e.placedAtMs() == null ? Long.MAX_VALUE
          : Math.max(0, SqlLedger.usableGpuNanos(e.hold().gpus(), e.placedAtMs(), NOW) - usedBefore);
      if (row.billedGpuNanos() == null) {
        assertThat(r.deviceNanos()).isLessThanOrEqualTo(bound);
        assertThat(row.gpuNanos()).isEqualTo(r.deviceNanos());
      } else {
        assertThat(row.billedGpuNanos()).isLessThan(r.deviceNanos()).isEqualTo(bound).isEqualTo(row.gpuNanos());
      }
      usedGpu.put(r.jobId(), usedBefore + row.gpuNanos());
      uactLeft.merge(r.jobId(), -row.escrowUactUsed(), Long::sum);
      uaktLeft.merge(r.jobId(), -row.escrowUaktUsed(), Long::sum);
      if (!row.partial()) closed.add(r.jobId());
      Statistics.label("row").collect(row.inAkt() ? "akt" : row.partial() ? "partial" : "final");
      Statistics.label("billed").collect(row.billedGpuNanos() != null ? "capped" : "as claimed");
    }
    // the balances move by the rows: escrows down by what they paid out, providers and tenants up
    Map<String, Long> expected = new HashMap<>();
    for (SettlementPlan.Row row : plan.rows()) {
      Receipt r = row.receipt().receipt();
      String denom = row.inAkt() ? "uakt" : "uact";
      expected.merge(Accounts.escrow(r.tenantId()) + " " + denom, -(row.inAkt() ? row.escrowUaktUsed() : row.escrowUactUsed()),
          Long::sum);
      expected.merge(Accounts.provider(r.nodeId()) + " " + denom, row.inAkt() ? row.paidUakt() : row.chargeUact(), Long::sum);
      long back = row.inAkt() ? (row.partial() ? 0 : row.escrowUaktUsed() - row.paidUakt()) : row.refundUact();
      expected.merge(Accounts.tenant(r.tenantId()) + " " + denom, back, Long::sum);
    }
    expected.values().removeIf(v -> v == 0);
    Map<String, Long> actual = new HashMap<>();
    for (Posting p : plan.postings()) actual.put(p.account() + " " + p.denom(), p.amount());
    assertThat(actual).isEqualTo(expected);

    // each delivery's answer: a receipt id settled before, or earlier in the batch, answers with that
    // settlement; otherwise the delivery is decided on its own (a refused one does not take the id)
    Map<String, Settlement> settledFirst = new HashMap<>();
    for (int i = 0; i < receipts.size(); i++) {
      SignedReceipt sr = receipts.get(i);
      Receipt r = sr.receipt();
      Settlement s = out.get(i);
      assertThat(s.receiptId()).isEqualTo(r.receiptId());
      Settlement earlier = settledFirst.get(r.receiptId());
      if (prior.containsKey(r.receiptId())) {
        assertThat(s.duplicate()).isTrue();
        assertThat(s.txId()).isEqualTo(42);
      } else if (earlier != null) {
        assertThat(s.duplicate()).isTrue();
        assertThat(s.chargeUact()).isEqualTo(earlier.chargeUact());
        assertThat(s.txId()).isEqualTo(earlier.txId());
      } else if (s.settled()) {
        assertThat(s.duplicate()).isFalse();
        assertThat(s.txId()).isEqualTo(99);
        assertThat(plan.rows()).filteredOn(row -> row.receipt() == sr).singleElement()
            .satisfies(row -> assertThat(row.chargeUact()).isEqualTo(s.chargeUact()));
        settledFirst.put(r.receiptId(), s);
      } else {
        assertThat(s.refusal()).isIn(LedgerRefusal.NO_OPEN_ESCROW, LedgerRefusal.NOT_PLACED_ON_NODE);
        assertThat(s.chargeUact()).isZero();
        assertThat(plan.rows()).noneMatch(row -> row.receipt() == sr);
      }
      Statistics.label("answer").collect(s.refusal() != null ? s.refusal().name() : s.duplicate() ? "duplicate" : "settled");
    }
    Statistics.label("billed").coverage(c -> c.check("capped").percentage(p -> p > 0.5));
    Statistics.label("looked up").coverage(c -> c.check("some receipts").percentage(p -> p > 20));
    Statistics.label("row").coverage(c -> {
      c.check("partial").percentage(p -> p > 5);
      c.check("akt").percentage(p -> p > 5);
    });
    Statistics.label("answer").coverage(c -> {
      c.check("settled").percentage(p -> p > 8);
      c.check("duplicate").percentage(p -> p > 5);
      c.check("NO_OPEN_ESCROW").percentage(p -> p > 5);
      c.check("NOT_PLACED_ON_NODE").percentage(p -> p > 2);
    });
  }

  @Provide
  Arbitrary<Integer> priorShare() {
    return Arbitraries.integers().between(0, 3);
  }

  private static KeyPair key() {
    try {
      return KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
