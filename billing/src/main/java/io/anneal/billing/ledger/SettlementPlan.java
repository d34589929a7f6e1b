package io.anneal.billing.ledger;

import io.anneal.billing.receipt.Receipt;
import io.anneal.billing.receipt.SignedReceipt;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * What settling a batch of verified receipts writes, decided from what the ledger holds: the
 * settlements found for their ids, the open escrows of their jobs. No I/O: each {@link LedgerStore}
 * adapter reads those, asks for a plan, and writes it in the transaction it read in, so every adapter
 * settles by the same rules (ADR 3, 6, 12).
 *
 * <p>A receipt settled before answers as a duplicate; one delivered twice in the batch settles once.
 * A receipt without an open escrow of its tenant, or from a node its job was not placed on, is refused
 * and changes nothing. Otherwise its usage, bounded by the job's GPUs times the time since it was
 * first placed, is charged at its class's price when it started (never before the placement, never
 * above the escrow's quote), out of the escrow; a final receipt closes the escrow and refunds the rest,
 * a preempted run's leaves the rest for the next run. The batch is one journal entry whose postings
 * are summed per account.
 */
public final class SettlementPlan {
  private static final HexFormat HEX = HexFormat.of();

  /**
   * An open escrow as settlement reads it: the hold, its recorded nodes (null: none, V10), its first
   * placement (null: not recorded, V11), the GPU time its earlier runs were billed (V13), how many
   * partial receipts it paid (V15).
   */
  public record OpenEscrow(EscrowHold hold, String nodes, Long placedAtMs, long usedGpuNanos, int partialRuns) {
    public OpenEscrow(EscrowHold hold, String nodes, Long placedAtMs) {
      this(hold, nodes, placedAtMs, 0, 0);
    }
  }

  /**
   * The ids of the receipts that may have been settled before, given the open escrows of their jobs:
   * the only ones whose earlier settlement an adapter reads for {@link #of}. A receipt is
   * {@code <jobId>/<attempt>} ({@link Receipt}) and settles only out of its job's open escrow, which
   * its final receipt closes; so a receipt whose job's escrow is open and has paid no partial receipt
   * was never settled. On a busy ledger that is nearly every fresh receipt: the keyed read of the
   * settlements is left for redeliveries, refusals and the runs of preempted jobs.
   */
  /** A signed batch as its node, root and signature name it. */
  public static String batchKey(SignedReceipt sr) {
    return sr.receipt().nodeId() + "/" + java.util.HexFormat.of().formatHex(sr.batchRoot()) + "/"
        + java.util.Base64.getEncoder().encodeToString(sr.signature());
  }

  /**
   * The signed batches among {@code receipts} ({@link #batchKey}) whose signature verifies under a
   * revoked key of their node ({@code revoked}: node → its revoked keys, X.509 Base64). Each batch is
   * checked once; nodes without a revoked key cost nothing.
   */
  public static Set<String> signedByRevokedKeys(List<SignedReceipt> receipts, Map<String, List<String>> revoked) {
    if (revoked.isEmpty()) return Set.of();
    Set<String> out = new java.util.HashSet<>();
    Set<String> seen = new java.util.HashSet<>();
    for (SignedReceipt sr : receipts) {
      List<String> keys = revoked.get(sr.receipt().nodeId());
      if (keys == null) continue;
      String batch = batchKey(sr);
      if (!seen.add(batch)) continue;
      for (String k : keys) {
        java.security.PublicKey key;
        try {
          key = io.anneal.billing.receipt.NodeKeys.decodePublic(k);
        } catch (IllegalArgumentException e) {
          continue;
        }
        if (io.anneal.billing.receipt.ReceiptVerifier.rootSigned(sr.batchRoot(), sr.signature(), key)) {
          out.add(batch);
          break;
        }
      }
    }
    return out;
  }

  public static List<String> mayHaveSettled(List<SignedReceipt> receipts, Map<String, OpenEscrow> open) {
    List<String> ids = new ArrayList<>();
    for (SignedReceipt sr : receipts) {
      OpenEscrow e = open.get(sr.receipt().jobId());
      if (e == null || e.partialRuns() > 0) ids.add(sr.receipt().receiptId());
    }
    return ids;
  }

  /**
   * A settlement row to insert, with what it does to its escrow: {@code escrowUactUsed} is the ACT
   * taken out of it (an AKT escrow: of its ceiling), {@code escrowUaktUsed} the AKT taken out of it
   * (paid, and on a final receipt refunded too), {@code gpuNanos} the GPU time billed. A partial row
   * leaves the escrow open, smaller by both amounts, and with the GPU time added to what it billed.
   */
  public record Row(SignedReceipt receipt, boolean inAkt, boolean partial, long chargeUact, long refundUact, long paidUakt,
      Long billedGpuNanos, long escrowUactUsed, long escrowUaktUsed, long gpuNanos) {

    public String receiptId() {
      return receipt.receipt().receiptId();
    }

    public String jobId() {
      return receipt.receipt().jobId();
    }

    /** The receipt as signed, in its canonical text (what the leaf hash covers). */
    public String body() {
      return new String(receipt.receipt().canonicalBytes(), StandardCharsets.UTF_8);
    }

    public String batchRoot() {
      return HEX.formatHex(receipt.batchRoot());
    }

    public String proof() {
      return SqlLedger.encodeProofCompact(receipt.proof());
    }

    public String leafHash() {
      return HEX.formatHex(receipt.leafHash());
    }
  }

  private final List<SignedReceipt> receipts;
  private final Settlement[] out;
  private final Map<String, Integer> firstFresh;
  private final List<Integer> freshIndex;
  private final List<Row> rows;
  private final long epoch;
  private final long nowMs;

  private SettlementPlan(List<SignedReceipt> receipts, Settlement[] out, Map<String, Integer> firstFresh,
      List<Integer> freshIndex, List<Row> rows, long epoch, long nowMs) {
    this.receipts = receipts;
    this.out = out;
    this.firstFresh = firstFresh;
    this.freshIndex = freshIndex;
    this.rows = rows;
    this.epoch = epoch;
    this.nowMs = nowMs;
  }

  /**
   * @param prior settlements already recorded, by receipt id: at least those of the ids that
   *     {@link #mayHaveSettled} gives for {@code open}
   * @param open open escrows, by job id (read locked, on PostgreSQL)
   * @param nowMs the settlement time, read once the settlement barrier is held
   */
  public static SettlementPlan of(List<SignedReceipt> receipts, Map<String, Settlement> prior, Map<String, OpenEscrow> open,
      SqlLedger.PriceLookup prices, long nowMs, long epochSeconds) {
    return of(receipts, prior, open, prices, nowMs, epochSeconds, Set.of());
  }

  /**
   * As above, refusing the receipts of signed batches in {@code revokedBatches} ({@link #batchKey}):
   * signed with a key revoked before this settlement (ADR 18). A duplicate of a receipt settled before
   * stays a duplicate: it was settled while its key was good.
   */
  public static SettlementPlan of(List<SignedReceipt> receipts, Map<String, Settlement> prior, Map<String, OpenEscrow> open,
      SqlLedger.PriceLookup prices, long nowMs, long epochSeconds, Set<String> revokedBatches) {
    int n = receipts.size();
    Settlement[] out = new Settlement[n];
    Map<String, EscrowHold> holds = new HashMap<>();
    Map<String, Long> used = new HashMap<>(); // GPU time billed per job so far, earlier batches and this one
    open.forEach((job, e) -> {
      holds.put(job, e.hold());
      used.put(job, e.usedGpuNanos());
    });
    Map<String, Integer> firstFresh = new HashMap<>();
    List<Integer> freshIndex = new ArrayList<>();
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      SignedReceipt sr = receipts.get(i);
      Receipt r = sr.receipt();
      Settlement p = prior.get(r.receiptId());
      if (p != null) {
        out[i] = p.asDuplicate();
        continue;
      }
      if (firstFresh.containsKey(r.receiptId())) continue; // answered below as a duplicate of the first
      if (!revokedBatches.isEmpty() && revokedBatches.contains(batchKey(sr))) {
        out[i] = Settlement.refused(r.receiptId(), r.jobId(), LedgerRefusal.BAD_SIGNATURE);
        continue;
      }
      EscrowHold h = holds.get(r.jobId());
      if (h == null || !h.tenantId().equals(r.tenantId())) {
        out[i] = Settlement.refused(r.receiptId(), r.jobId(), LedgerRefusal.NO_OPEN_ESCROW);
        continue;
      }
      OpenEscrow e = open.get(r.jobId());
      if (e.nodes() != null && !SqlLedger.recordedOn(e.nodes(), r.nodeId())) {
        // a node the job was never placed on cannot bill it; the escrow stays for the node that runs it
        out[i] = Settlement.refused(r.receiptId(), r.jobId(), LedgerRefusal.NOT_PLACED_ON_NODE);
        continue;
      }
      holds.remove(r.jobId()); // a final settlement consumes the job's escrow
      // what the scheduler saw bounds what the node says: no more GPU time than the job's GPUs had
      // since it was first placed, less what its earlier runs were billed (V11, V13), and no price from
      // before then (unbounded for escrows placed before V11)
      Long since = e.placedAtMs();
      long gpuNanos = since == null ? r.deviceNanos()
          : Math.min(r.deviceNanos(), Math.max(0, SqlLedger.usableGpuNanos(h.gpus(), since, nowMs) - used.get(r.jobId())));
      long startedAt = since == null ? r.startedAtMs() : Math.max(r.startedAtMs(), since - SqlLedger.USAGE_SLACK_MS);
      // the quote is a ceiling: a job that asked for any class and ran on a cheaper one pays that class's price
      Long atStart = prices.priceAt(r.gpuClass(), startedAt);
      long price = atStart == null ? h.priceUactPerGpuHour() : Math.min(h.priceUactPerGpuHour(), atStart);
      long charge = Math.min(SqlLedger.chargeUact(gpuNanos, price), h.amountUact());
      Long billed = gpuNanos < r.deviceNanos() ? gpuNanos : null;
      boolean partial = "PREEMPTED".equals(r.outcome());
      firstFresh.put(r.receiptId(), i);
      freshIndex.add(i);
      used.merge(r.jobId(), gpuNanos, Long::sum);
      if (h.inAkt()) {
        // AKT-direct (16.5): the provider is paid trunc(quo(charge, P)) uakt from the AKT held; no ACT moves
        long paid = AktDirect.payUakt(charge, h.heldUakt(), h.aktPrice());
        // a final receipt gives the rest of the AKT held back to the tenant
        rows.add(new Row(sr, true, partial, 0, 0, paid, billed, charge, partial ? paid : h.heldUakt(), gpuNanos));
        if (partial) {
          holds.put(r.jobId(), new EscrowHold(h.jobId(), h.tenantId(), h.amountUact() - charge, h.priceUactPerGpuHour(),
              h.gpuClass(), h.gpus(), null, h.aktPrice(), h.heldUakt() - paid));
        }
      } else if (partial) {
        // a preempted run: its time is charged now, the rest of the escrow stays for the job's next run
        rows.add(new Row(sr, false, true, charge, 0, 0, billed, charge, 0, gpuNanos));
        holds.put(r.jobId(), new EscrowHold(h.jobId(), h.tenantId(), h.amountUact() - charge, h.priceUactPerGpuHour(),
            h.gpuClass(), h.gpus()));
      } else {
        rows.add(new Row(sr, false, false, charge, h.amountUact() - charge, 0, billed, h.amountUact(), 0, gpuNanos));
      }
    }
    return new SettlementPlan(receipts, out, firstFresh, freshIndex, rows, Math.floorDiv(nowMs, epochSeconds * 1000), nowMs);
  }

  /** The receipts settled now, in order: one settlement row each. */
  public List<Row> rows() {
    return rows;
  }

  /** Whether anything is written: otherwise every receipt is a duplicate or refused. */
  public boolean writes() {
    return !rows.isEmpty();
  }

  /** The accounting epoch the rows are filed in. */
  public long epoch() {
    return epoch;
  }

  public long nowMs() {
    return nowMs;
  }

  /** The journal entry's reference: unique, so the batch is recorded once. */
  public String journalRef() {
    return "settle:" + rows.get(0).receiptId();
  }

  /**
   * The batch's postings, summed per account, in account order per denomination (balances are
   * updated in this order: two transactions lock the rows they share in the same order).
   */
  public List<Posting> postings() {
    List<Posting> out = new ArrayList<>();
    deltas("uact").forEach((account, d) -> out.add(new Posting(account, "uact", d)));
    deltas("uakt").forEach((account, d) -> out.add(new Posting(account, "uakt", d)));
    return out;
  }

  /** The batch's balance changes in one denomination, by account in account order, zeros left out. */
  public TreeMap<String, Long> deltas(String denom) {
    TreeMap<String, Long> d = new TreeMap<>();
    boolean act = denom.equals("uact");
    for (Row row : rows) {
      Receipt r = row.receipt().receipt();
      if (act && !row.inAkt()) {
        d.merge(Accounts.escrow(r.tenantId()), -row.escrowUactUsed(), Long::sum);
        d.merge(Accounts.provider(r.nodeId()), row.chargeUact(), Long::sum);
        d.merge(Accounts.tenant(r.tenantId()), row.refundUact(), Long::sum);
      } else if (!act && row.inAkt()) {
        d.merge(Accounts.escrow(r.tenantId()), -row.escrowUaktUsed(), Long::sum);
        d.merge(Accounts.provider(r.nodeId()), row.paidUakt(), Long::sum);
        if (!row.partial()) d.merge(Accounts.tenant(r.tenantId()), row.escrowUaktUsed() - row.paidUakt(), Long::sum);
      }
    }
    d.values().removeIf(v -> v == 0);
    return d;
  }

  /** Where {@link #settlementColumns} puts the journal entry's id (a {@code Long[]}, the same in every row). */
  public static final int TX_ID_COLUMN = 4;

  /**
   * The receipts of this plan whose batch the ledger holds under another signature than the one they
   * carry, with their own (Base64), in row order; usually none. The ledger records a batch's
   * signature once ({@code receipt_batch}, V9); a batch signed again under a rotated key (ADR 18)
   * keeps its first, and its receipts settled under the new one keep, on their settlement rows, the
   * signature billing checked.
   *
   * @param recorded each batch root of the plan and its recorded signature (Base64), once this plan's
   *     batches are recorded ({@link #batches})
   */
  public Map<String, String> ownSignatures(Map<String, String> recorded) {
    Map<String, String> out = new java.util.LinkedHashMap<>();
    Map<String, byte[]> decoded = new HashMap<>();
    for (Row row : rows) {
      byte[] stored = decoded.computeIfAbsent(row.batchRoot(), r -> {
        String b64 = recorded.get(r);
        return b64 == null ? new byte[0] : Base64.getDecoder().decode(b64);
      });
      byte[] own = row.receipt().signature();
      if (!java.util.Arrays.equals(stored, own)) out.put(row.receiptId(), Base64.getEncoder().encodeToString(own));
    }
    return out;
  }

  /**
   * The settlement rows as the columns {@link SqlLedger#INSERT_SETTLEMENTS} takes after the settlement
   * time, one array per column (String[] or Long[]), filed under the journal entry {@code txId}.
   */
  public Object[] settlementColumns(long txId) {
    int m = rows.size();
    String[][] text = new String[9][m]; // receipt_id, job_id, tenant_id, node_id, body, root, proof, signature, leaf
    Long[][] nums = new Long[6][m]; // tx_id, charge, refund, epoch, paid_uakt, billed_gpu_nanos
    for (int i = 0; i < m; i++) {
      Row row = rows.get(i);
      Receipt r = row.receipt().receipt();
      text[0][i] = r.receiptId();
      text[1][i] = r.jobId();
      text[2][i] = r.tenantId();
      text[3][i] = r.nodeId();
      text[4][i] = row.body();
      text[5][i] = row.batchRoot();
      text[6][i] = row.proof();
      text[7][i] = null; // once per signed batch, in receipt_batch (V9); see ownSignatures for the exceptions
      text[8][i] = row.leafHash();
      nums[0][i] = txId;
      nums[1][i] = row.chargeUact();
      nums[2][i] = row.refundUact();
      nums[3][i] = epoch;
      nums[4][i] = row.paidUakt();
      nums[5][i] = row.billedGpuNanos();
    }
    return new Object[] {text[0], text[1], text[2], text[3], nums[0], nums[1], nums[2], text[4], text[5], text[6], text[7],
        nums[3], text[8], nums[4], nums[5]};
  }

  /** The jobs whose escrow the batch closes: those of its final receipts. */
  public String[] finalJobs() {
    return rows.stream().filter(r -> !r.partial()).map(Row::jobId).toArray(String[]::new);
  }

  /** Each signed batch's signature, by batch root in root order: {node, Base64 signature}. */
  public TreeMap<String, String[]> batches() {
    TreeMap<String, String[]> b = new TreeMap<>();
    for (Row row : rows) {
      SignedReceipt sr = row.receipt();
      b.putIfAbsent(row.batchRoot(), new String[] {sr.receipt().nodeId(), Base64.getEncoder().encodeToString(sr.signature())});
    }
    return b;
  }

  /** One settlement per receipt in order, once the batch's journal entry is {@code txId}. */
  public List<Settlement> settlements(long txId) {
    Settlement[] done = out.clone();
    for (int f = 0; f < rows.size(); f++) {
      Row row = rows.get(f);
      done[freshIndex.get(f)] = new Settlement(row.receiptId(), row.jobId(), row.chargeUact(), row.refundUact(), txId, false,
          null, row.paidUakt(), row.billedGpuNanos());
    }
    for (int i = 0; i < done.length; i++) {
      if (done[i] != null) continue;
      Settlement first = done[firstFresh.get(receipts.get(i).receipt().receiptId())];
      done[i] = first.settled() ? first.asDuplicate() : first;
    }
    return List.of(done);
  }
}
