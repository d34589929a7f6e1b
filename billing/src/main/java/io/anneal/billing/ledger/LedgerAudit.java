package io.anneal.billing.ledger;

import io.anneal.billing.merkle.MerkleTree;
import io.anneal.billing.receipt.NodeKeys;
import io.anneal.billing.receipt.ReceiptCheck;
import io.anneal.billing.sql.Database;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.PublicKey;
import java.security.Signature;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;

/**
 * Checks a whole ledger from what it stores, for an operator or an auditor ({@code anneal ledger
 * verify}): that nothing in it was changed after it was written, and that every ACT paid to a
 * provider for compute traces to receipts its node signed.
 *
 * <ul>
 *   <li><b>journal</b>: every journal entry balances per denomination;
 *   <li><b>balances</b>: every balance is the sum of its account's postings;
 *   <li><b>receipts</b>: every settlement's stored receipt is the one its columns say (receipt, job,
 *       tenant, node), hashes to its leaf, is in its signed batch by its Merkle proof, and the batch's
 *       root carries the signature of the node's registered key;
 *   <li><b>settlement entries</b>: each settlement journal entry pays each provider exactly the
 *       charges (ACT) and payments (AKT) of its settlement rows from that provider's node, and gives
 *       each tenant back exactly their refunds: no provider is paid for compute without a receipt;
 *   <li><b>epochs</b>: every closed epoch's Merkle root, stored chunks (V14), receipt count and ACT
 *       charged are recomputed from its settlements, whose order must be their receipt ids' code-point
 *       order (so anyone can rebuild the root from the receipts alone); no settlement is left in an
 *       epoch that was skipped while later ones closed;
 *   <li><b>payouts</b>: each node's executed payouts, in the order they executed, burned its income
 *       first in, first out by amount (since V19, ADR 8 addendum 2: replayed here, each payout's
 *       start, end and receipts as stored), or, executed before V19, name consecutive ranges of its
 *       settlement journal entries from the first on; none skipped and none twice, so every ACT
 *       burned for AKT names the receipts it came from;
 *   <li><b>supply</b>: the BME counters agree with the journal (ACT minted less burned is the ACT in
 *       existence; AKT newly minted is what the AKT issuance account gave out).
 * </ul>
 *
 * Everything is read in one read-only transaction, one snapshot of a ledger that may be in use
 * meanwhile (settlements committed after it began are not seen). Batches, settlements and leaves are
 * read in pages, journal entries one at a time: what is held does not grow with the ledger.
 */
public final class LedgerAudit {
  private static final HexFormat HEX = HexFormat.of();
  private static final int PAGE = EpochChunks.PAGE;
  /** The sum of an account's postings in one denomination. */
  private static final String POSTED = "SELECT COALESCE(SUM(amount), 0) FROM posting WHERE account = ? AND denom = ?";

  /** Something found wrong: which check, about what (a receipt id, a journal entry, an epoch), and how. */
  public record Finding(String check, String subject, String detail) {
    @Override
    public String toString() {
      return check + " " + subject + ": " + detail;
    }
  }

  /** What was checked (each check's line for the report, in order) and what was found wrong. */
  public record Report(Map<String, String> checked, List<Finding> findings, long findingCount) {
    public boolean clean() {
      return findingCount == 0;
    }

    /**
     * The report as the API and {@code ledger verify --json} show it: {@code clean}, {@code findingCount},
     * {@code findings} ({@code check}, {@code subject}, {@code detail}) and {@code checked}.
     */
    public Map<String, Object> toMap() {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("clean", clean());
      m.put("findingCount", findingCount);
      List<Map<String, Object>> list = new ArrayList<>();
      for (Finding f : findings) {
        Map<String, Object> one = new LinkedHashMap<>();
        one.put("check", f.check());
        one.put("subject", f.subject());
        one.put("detail", f.detail());
        list.add(one);
      }
      m.put("findings", list);
      m.put("checked", new LinkedHashMap<>(checked));
      return m;
    }
  }

  private final Connection c;
  private final int maxFindings;
  private final Map<String, String> checked = new LinkedHashMap<>();
  private final List<Finding> findings = new ArrayList<>();
  private long findingCount;

  private LedgerAudit(Connection c, int maxFindings) {
    this.c = c;
    this.maxFindings = maxFindings;
  }

  /**
   * Audits the ledger on {@code c}, keeping the first {@code maxFindings} findings (all are counted).
   * The connection must be the audit's own, outside any transaction (never a writer's): it is used in
   * one read-only transaction, rolled back at the end, and then set back as it was.
   */
  public static Report run(Connection c, int maxFindings) throws SQLException {
    return run(c, maxFindings, () -> {});
  }

  /**
   * As above, running {@code midway} after the journal check and again after reading the settlements
   * (for tests: what commits then must not be seen).
   */
  static Report run(Connection c, int maxFindings, Runnable midway) throws SQLException {
    return Database.inSnapshot(c, s -> {
      LedgerAudit a = new LedgerAudit(s, maxFindings);
      a.journal();
      midway.run();
      a.balances();
      a.receipts();
      midway.run();
      a.settlementEntries();
      a.epochs();
      a.payouts();
      a.supply();
      return new Report(a.checked, List.copyOf(a.findings), a.findingCount);
    });
  }

  private void found(String check, String subject, String detail) {
    findingCount++;
    if (findings.size() < maxFindings) findings.add(new Finding(check, subject, detail));
  }

  // ---------------------------------------------------------------- journal and balances

  private void journal() throws SQLException {
    long entries = scalar("SELECT COUNT(*) FROM ledger_tx");
    long before = findingCount;
    try (PreparedStatement ps = c.prepareStatement("SELECT tx_id, denom, SUM(amount) FROM posting GROUP BY tx_id, denom"
        + " HAVING SUM(amount) <> 0 ORDER BY tx_id, denom"); ResultSet rs = ps.executeQuery()) {
      while (rs.next()) {
        found("journal", "entry " + rs.getLong(1), "its " + rs.getString(2) + " postings sum to " + rs.getLong(3) + ", not 0");
      }
    }
    checked.put("journal", of(entries, "journal entry", "journal entries") + (findingCount == before ? ", each balanced per denomination" : ""));
  }

  private void balances() throws SQLException {
    long accounts = scalar("SELECT COUNT(*) FROM balance");
    long before = findingCount;
    try (PreparedStatement ps = c.prepareStatement("SELECT b.account, b.denom, b.amount, COALESCE(p.total, 0) FROM balance b"
        + " LEFT JOIN (SELECT account, denom, SUM(amount) AS total FROM posting GROUP BY account, denom) p"
        + " ON p.account = b.account AND p.denom = b.denom WHERE b.amount <> COALESCE(p.total, 0)"
        + " ORDER BY b.account, b.denom"); ResultSet rs = ps.executeQuery()) {
      while (rs.next()) {
        found("balance", rs.getString(1) + " " + rs.getString(2), "balance " + rs.getLong(3)
            + " is not the sum of its postings, " + rs.getLong(4));
      }
    }
    // postings to an account that has no balance at all
    try (PreparedStatement ps = c.prepareStatement("SELECT p.account, p.denom, SUM(p.amount) FROM posting p"
        + " WHERE NOT EXISTS (SELECT 1 FROM balance b WHERE b.account = p.account AND b.denom = p.denom)"
        + " GROUP BY p.account, p.denom HAVING SUM(p.amount) <> 0 ORDER BY p.account, p.denom"); ResultSet rs = ps.executeQuery()) {
      while (rs.next()) {
        found("balance", rs.getString(1) + " " + rs.getString(2), "postings sum to " + rs.getLong(3) + " but the account has no balance");
      }
    }
    checked.put("balance", of(accounts, "balance", "balances") + (findingCount == before ? ", each the sum of its postings" : ""));
  }

  // ---------------------------------------------------------------- receipts

  /** A key a node has had, decoded, and when it was revoked (null: never). */
  private record AuditKey(PublicKey key, String b64, Long revokedAtMs) {}

  /**
   * Every key every node has had (V18: a rotated node has several), and why a key that cannot be read
   * cannot (nodes and their keys are few).
   */
  private Map<String, List<AuditKey>> nodeKeys(Map<String, String> badKeys) throws SQLException {
    Map<String, List<AuditKey>> keys = new HashMap<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT node_id, public_key, revoked_at_ms FROM node_key_history"
        + " ORDER BY node_id, added_at_ms DESC"); ResultSet rs = ps.executeQuery()) {
      while (rs.next()) {
        try {
          keys.computeIfAbsent(rs.getString(1), n -> new ArrayList<>())
              .add(new AuditKey(NodeKeys.decodePublic(rs.getString(2)), rs.getString(2), rs.getObject(3, Long.class)));
        } catch (IllegalArgumentException e) {
          badKeys.put(rs.getString(1), e.getMessage());
        }
      }
    }
    return keys;
  }

  /**
   * Checks every signed batch's signature (V9: one row per batch), then every settlement's stored
   * receipt, both in pages: nothing held grows with the ledger.
   */
  private void receipts() throws SQLException {
    Map<String, String> badKeys = new HashMap<>();
    Map<String, List<AuditKey>> keys = nodeKeys(badKeys);
    long before = findingCount;
    long batches = 0;
    String after = "";
    try (PreparedStatement ps = c.prepareStatement("SELECT batch_root, node_id, signature FROM receipt_batch"
        + " WHERE batch_root > ? ORDER BY batch_root LIMIT ?")) {
      while (true) {
        ps.setString(1, after);
        ps.setInt(2, PAGE);
        int rows = 0;
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            rows++;
            after = rs.getString(1);
            String problem = signatureProblem(after, rs.getString(2), rs.getString(3), keys, badKeys);
            if (problem != null) {
              long receipts = scalar("SELECT COUNT(*) FROM settlement WHERE batch_root = ?", after);
              found("signature", "batch " + after, problem + " (" + receipts + " receipts)");
            }
          }
        }
        batches += rows;
        if (rows < PAGE) break;
      }
    }
    // settlements from before V9 carry their batch's signature themselves: each signature verified once per batch
    Map<String, String> legacy = new LinkedHashMap<>(16, 0.75f, true) {
      @Override
      protected boolean removeEldestEntry(Map.Entry<String, String> eldest) {
        return size() > 1024;
      }
    };
    long settlements = 0;
    after = "";
    try (PreparedStatement ps = c.prepareStatement("SELECT s.receipt_id, s.job_id, s.tenant_id, s.node_id, s.receipt_body,"
        + " s.batch_root, s.proof, s.leaf_hash, s.signature, b.node_id FROM settlement s"
        + " LEFT JOIN receipt_batch b ON b.batch_root = s.batch_root WHERE s.receipt_id > ? ORDER BY s.receipt_id LIMIT ?")) {
      while (true) {
        ps.setString(1, after);
        ps.setInt(2, PAGE);
        int rows = 0;
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            rows++;
            String id = rs.getString(1);
            String node = rs.getString(4);
            String root = rs.getString(6);
            checkReceipt(id, rs.getString(2), rs.getString(3), node, rs.getString(5), root, rs.getString(7), rs.getString(8));
            String ownSignature = rs.getString(9);
            String signer = rs.getString(10);
            if (ownSignature != null) {
              String seen = root + " " + node + " " + ownSignature;
              String problem = legacy.get(seen);
              if (problem == null) {
                problem = Objects.requireNonNullElse(signatureProblem(root, node, ownSignature, keys, badKeys), "");
                legacy.put(seen, problem);
              }
              if (!problem.isEmpty()) found("signature", id, problem);
            } else if (signer == null) {
              found("signature", id, "no signature is recorded for its batch " + root);
            } else if (!signer.equals(node)) {
              found("receipt", id, "its batch " + root + " was signed by node " + signer + ", not " + node);
            }
            after = id;
          }
        }
        settlements += rows;
        if (rows < PAGE) break;
      }
    }
    checked.put("receipts", of(settlements, "settled receipt", "settled receipts") + " in " + of(batches, "signed batch", "signed batches")
        + (findingCount == before ? ": each as its columns say, in its batch by its proof, the batch signed by its node" : ""));
  }

  /**
   * Why a batch's signature does not hold, or null when it does: a key of its node signed its root,
   * and if that key has since been revoked, the batch was settled before (ADR 18).
   */
  private String signatureProblem(String root, String node, String signatureB64, Map<String, List<AuditKey>> keys,
      Map<String, String> badKeys) throws SQLException {
    if (signatureB64 == null) return "no signature is stored for it";
    List<AuditKey> ofNode = keys.getOrDefault(node, List.of());
    if (ofNode.isEmpty()) {
      return badKeys.containsKey(node) ? "node " + node + "'s registered key cannot be read: " + badKeys.get(node)
          : "node " + node + " has no registered key";
    }
    String failure = null;
    for (AuditKey k : ofNode) {
      try {
        Signature s = Signature.getInstance("Ed25519");
        s.initVerify(k.key());
        s.update(HEX.parseHex(root));
        if (!s.verify(Base64.getDecoder().decode(signatureB64))) continue;
      } catch (GeneralSecurityException | IllegalArgumentException e) {
        failure = e.getMessage();
        continue;
      }
      if (k.revokedAtMs() == null) return null;
      java.sql.Timestamp first = null;
      try (PreparedStatement ps = c.prepareStatement("SELECT MIN(settled_at) FROM settlement WHERE batch_root = ?")) {
        ps.setString(1, root);
        try (ResultSet rs = ps.executeQuery()) {
          if (rs.next()) first = rs.getTimestamp(1);
        }
      }
      if (first == null || first.getTime() <= k.revokedAtMs()) return null;
      return "signed with node " + node + "'s key " + ReceiptCheck.fingerprint(k.b64()) + ", settled at " + first.toInstant()
          + ", after the key was revoked at " + java.time.Instant.ofEpochMilli(k.revokedAtMs());
    }
    return "its signature does not verify under " + (ofNode.size() == 1 ? "node " + node + "'s key" : "any of node " + node
        + "'s " + ofNode.size() + " keys") + (failure == null ? "" : " (" + failure + ")");
  }

  private void checkReceipt(String id, String job, String tenant, String node, String body, String root, String proof,
      String leafHex) {
    String[] f = body == null ? new String[0] : body.split("\n", -1);
    if (f.length != 15 || !f[0].equals("anneal-receipt/1")) {
      found("receipt", id, "the stored receipt is not an anneal-receipt/1 of 15 lines");
      return;
    }
    String[] names = {"receipt id", "job", "tenant", "node"};
    String[] columns = {id, job, tenant, node};
    for (int i = 0; i < 4; i++) {
      if (!f[i + 1].equals(columns[i])) {
        found("receipt", id, "the stored receipt's " + names[i] + " is " + f[i + 1] + ", the settlement's " + columns[i]);
      }
    }
    byte[] leaf = MerkleTree.leafHash(body.getBytes(StandardCharsets.UTF_8));
    // no leaf stored: settled before epochs (V2), so in no epoch's tree
    if (leafHex != null && !HEX.formatHex(leaf).equals(leafHex)) {
      found("receipt", id, "the stored leaf hash is not the hash of the stored receipt");
    }
    try {
      if (!MerkleTree.verify(leaf, SqlLedger.decodeProof(proof), HEX.parseHex(root))) {
        found("receipt", id, "its proof does not lead from the receipt to its batch root " + root);
      }
    } catch (IllegalArgumentException | NullPointerException e) {
      found("receipt", id, "its proof or batch root cannot be read: " + e.getMessage());
    }
  }

  // ---------------------------------------------------------------- settlement entries

  /** Takes one row of a {@link ByEntry}; returns how many settlement rows it stands for. */
  private interface RowSink {
    long take(ResultSet rs) throws SQLException;
  }

  /** A result ordered by journal entry (its first column), read one entry at a time. */
  private static final class ByEntry implements AutoCloseable {
    private final PreparedStatement ps;
    private final ResultSet rs;
    private boolean more;

    ByEntry(Connection c, String sql) throws SQLException {
      ps = c.prepareStatement(sql);
      ps.setFetchSize(PAGE); // streamed (PostgreSQL: a cursor, the transaction being open), not held whole
      rs = ps.executeQuery();
      more = rs.next();
    }

    /** The entry of the next row, or Long.MAX_VALUE when there is none. */
    long entry() throws SQLException {
      return more ? rs.getLong(1) : Long.MAX_VALUE;
    }

    /** Hands entry {@code tx}'s rows to {@code sink} and moves past them; the settlement rows they stand for. */
    long take(long tx, RowSink sink) throws SQLException {
      long rows = 0;
      while (more && rs.getLong(1) == tx) {
        rows += sink.take(rs);
        more = rs.next();
      }
      return rows;
    }

    @Override
    public void close() throws SQLException {
      rs.close();
      ps.close();
    }
  }

  /**
   * Each settlement entry against its rows, one entry at a time: the rows' sums per provider (charges
   * in uact, AKT payments in uakt) and per tenant (refunds in uact) must be what the entry posts them.
   */
  private void settlementEntries() throws SQLException {
    long before = findingCount;
    long entries = 0;
    RowSink skip = rs -> 0;
    try (ByEntry settle = new ByEntry(c, "SELECT id FROM ledger_tx WHERE kind = 'settle' ORDER BY id");
        ByEntry posted = new ByEntry(c, "SELECT p.tx_id, p.account, p.denom, p.amount FROM posting p"
            + " JOIN ledger_tx t ON t.id = p.tx_id WHERE t.kind = 'settle' ORDER BY p.tx_id");
        // one pass over the settlements, summed per entry, node and tenant
        ByEntry rows = new ByEntry(c, "SELECT tx_id, node_id, tenant_id, SUM(charge_uact), SUM(paid_uakt), SUM(refund_uact),"
            + " COUNT(*) FROM settlement GROUP BY tx_id, node_id, tenant_id ORDER BY tx_id")) {
      while (true) {
        long tx = Math.min(settle.entry(), rows.entry());
        if (tx == Long.MAX_VALUE) break;
        boolean isSettle = settle.entry() == tx;
        settle.take(tx, skip);
        Map<String, Long> want = new TreeMap<>();
        long count = rows.take(tx, rs -> {
          want.merge(Accounts.provider(rs.getString(2)) + " uact", rs.getLong(4), Long::sum);
          want.merge(Accounts.provider(rs.getString(2)) + " uakt", rs.getLong(5), Long::sum);
          want.merge(Accounts.tenant(rs.getString(3)) + " uact", rs.getLong(6), Long::sum);
          return rs.getLong(7);
        });
        // never behind (every settlement entry is visited, in order): kept in step should that ever not hold
        while (posted.entry() < tx) posted.take(posted.entry(), skip);
        // what settlement entries post to providers (both denominations) and to tenants in ACT: the rest
        // (escrows, a tenant's AKT back from an AKT-direct escrow) is not on the rows, and the balance check holds it
        Map<String, Long> got = new TreeMap<>();
        posted.take(tx, rs -> {
          String account = rs.getString(2);
          String denom = rs.getString(3);
          if (account.startsWith("provider:") || account.startsWith("tenant:") && denom.equals("uact")) {
            got.merge(account + " " + denom, rs.getLong(4), Long::sum);
          }
          return 0;
        });
        if (!isSettle) {
          found("entry", "entry " + tx, "settlement rows point to it, but it is not a settlement entry");
          continue;
        }
        entries++;
        if (count == 0) {
          found("entry", "entry " + tx, "a settlement entry without settlement rows");
          continue;
        }
        java.util.Set<String> accounts = new java.util.TreeSet<>(got.keySet());
        want.forEach((account, v) -> {
          if (v != 0) accounts.add(account);
        });
        for (String account : accounts) {
          long w = want.getOrDefault(account, 0L);
          long g = got.getOrDefault(account, 0L);
          if (w != g) {
            found("entry", "entry " + tx, "posts " + g + " to " + account + " where its " + count + " settlement rows add up to " + w);
          }
        }
      }
    }
    checked.put("entries", of(entries, "settlement entry", "settlement entries")
        + (findingCount == before ? ": each pays providers and refunds tenants exactly what its receipts say" : ""));
  }

  // ---------------------------------------------------------------- epochs

  private void epochs() throws SQLException {
    List<long[]> closes = new ArrayList<>(); // epoch, receipts, charged
    List<String> roots = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT epoch, receipts, charged_uact, merkle_root FROM epoch_close ORDER BY epoch");
        ResultSet rs = ps.executeQuery()) {
      while (rs.next()) {
        closes.add(new long[] {rs.getLong(1), rs.getLong(2), rs.getLong(3)});
        roots.add(rs.getString(4));
      }
    }
    long before = findingCount;
    long leavesRead = 0;
    for (int i = 0; i < closes.size(); i++) {
      long epoch = closes.get(i)[0];
      String subject = "epoch " + epoch;
      long storedChunks = scalar("SELECT COUNT(*) FROM epoch_chunk WHERE epoch = ?", epoch);
      List<String> chunkRoots = new ArrayList<>();
      long receipts = 0;
      long charged = 0;
      String after = "";
      boolean ordered = true;
      try (PreparedStatement page = c.prepareStatement(SqlLedger.jdbc(SqlLedger.EPOCH_LEAVES));
          PreparedStatement stored = c.prepareStatement("SELECT first_receipt_id, leaves, root FROM epoch_chunk"
              + " WHERE epoch = ? AND chunk = ?")) {
        while (true) {
          List<byte[]> leaves = new ArrayList<>();
          List<String> ids = new ArrayList<>();
          page.setLong(1, epoch);
          page.setString(2, after);
          page.setInt(3, PAGE);
          try (ResultSet rs = page.executeQuery()) {
            while (rs.next()) {
              String id = rs.getString(3);
              String previous = ids.isEmpty() ? after : ids.get(ids.size() - 1);
              if (ordered && previous.compareTo(id) >= 0) {
                ordered = false;
                found("epoch", subject, "the database orders its receipt ids otherwise than by code point (near " + id
                    + "): its root cannot be rebuilt from the receipts outside this database");
              }
              try {
                leaves.add(HEX.parseHex(rs.getString(1)));
              } catch (IllegalArgumentException | NullPointerException e) {
                found("epoch", subject, "receipt " + id + " has no readable leaf hash");
                leaves.add(new byte[32]);
              }
              charged += rs.getLong(2);
              ids.add(id);
            }
          }
          if (leaves.isEmpty()) break;
          for (EpochChunks.Chunk k : EpochChunks.ofPage(chunkRoots.size(), ids, leaves)) {
            chunkRoots.add(k.root());
            if (storedChunks > 0) checkChunk(stored, subject, epoch, k);
          }
          receipts += leaves.size();
          after = ids.get(ids.size() - 1);
          if (leaves.size() < PAGE) break;
        }
      }
      leavesRead += receipts;
      // an epoch closed before V14 has no chunks (its proofs read the settlements)
      if (storedChunks > 0 && storedChunks != chunkRoots.size()) {
        found("epoch", subject, "it stores other chunks than the " + chunkRoots.size() + " its settlements make");
      }
      String root = chunkRoots.isEmpty() ? SqlLedger.EMPTY_ROOT : EpochChunks.root(chunkRoots);
      if (!root.equals(roots.get(i))) {
        found("epoch", subject, "its Merkle root " + roots.get(i) + " is not the root of its settlements, " + root);
      }
      if (receipts != closes.get(i)[1]) {
        found("epoch", subject, "it says " + closes.get(i)[1] + " receipts settled; its settlements are " + receipts);
      }
      if (charged != closes.get(i)[2]) {
        found("epoch", subject, "it says " + closes.get(i)[2] + " uact charged; its settlements charged " + charged);
      }
    }
    // epochs close in order, every ended one at once: settlements in an unclosed epoch before the last
    // closed one are in no Merkle root, so they have no inclusion proof
    if (!closes.isEmpty()) {
      try (PreparedStatement ps = c.prepareStatement("SELECT s.epoch, COUNT(*) FROM settlement s WHERE s.epoch < ?"
          + " AND NOT EXISTS (SELECT 1 FROM epoch_close e WHERE e.epoch = s.epoch) GROUP BY s.epoch ORDER BY s.epoch")) {
        ps.setLong(1, closes.get(closes.size() - 1)[0]);
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            found("epoch", "epoch " + rs.getLong(1), rs.getLong(2) + " receipts settled in it, but it was never closed while"
                + " later epochs were: they are in no Merkle root");
          }
        }
      }
    }
    checked.put("epochs", of(closes.size(), "closed epoch", "closed epochs") + " over " + of(leavesRead, "receipt", "receipts")
        + (findingCount == before ? ": roots, chunks, receipt counts and charges rebuilt from the settlements" : ""));
  }

  // ---------------------------------------------------------------- supply

  /** Each node's executed payouts, in the order they executed (their journal entries), tile its settlements. */
  private void payouts() throws SQLException {
    long before = findingCount;
    long executed = 0;
    Map<String, Long> ended = new HashMap<>(); // owner → last entry named by its payouts attributed by range
    Map<String, PayoutFifo.Cursor> cursors = new HashMap<>(); // owner → where its next payout by amount starts
    try (PreparedStatement ps = c.prepareStatement("SELECT id, owner, covers_tx_after, covers_tx_through, amount,"
        + " fifo_income_uact, fifo_start_tx, fifo_start_item, fifo_start_used, fifo_end_tx, fifo_end_item, fifo_end_used,"
        + " fifo_receipts, fifo_receipts_uact FROM bme_request WHERE direction = 'ACT_TO_AKT' AND state = 'EXECUTED'"
        + " ORDER BY owner, tx_id"); ResultSet rs = ps.executeQuery()) {
      while (rs.next()) {
        executed++;
        String subject = "payout " + rs.getLong(1);
        String owner = rs.getString(2);
        if (rs.getObject(6) == null) {
          // executed before V19: it names a range of journal entries, consecutive with the node's earlier ones
          long after = rs.getLong(3);
          long through = rs.getLong(4);
          long prev = ended.getOrDefault(owner, 0L);
          if (cursors.containsKey(owner)) {
            found("payouts", subject, "it is attributed by range, but " + owner + " had payouts attributed by amount before it");
          } else if (after > prev) {
            found("payouts", subject, "it names " + owner + "'s settlements after entry " + after + ", but the payout executed"
                + " before it ended at entry " + prev + ": the settlements between trace to no payout");
          } else if (after < prev) {
            found("payouts", subject, "it names " + owner + "'s settlements after entry " + after + ", but those through entry "
                + prev + " are named by a payout executed before it");
          }
          if (through < after) found("payouts", subject, "its range ends at entry " + through + ", before it starts (" + after + ")");
          ended.put(owner, Math.max(prev, through));
          continue;
        }
        // by amount (V19): what it says it burned is what first in, first out over the node's income gives
        String node = owner.substring("provider:".length());
        PayoutFifo.Cursor from = cursors.getOrDefault(owner, PayoutFifo.Cursor.from(ended.getOrDefault(owner, 0L) + 1));
        PayoutFifo.Burn want = PayoutFifo.burn(new Redemptions.Income(c, node, from.tx()), from, rs.getLong(5));
        PayoutFifo.Cursor start = rs.getObject(7) == null ? null : new PayoutFifo.Cursor(rs.getLong(7), rs.getString(8), rs.getLong(9));
        PayoutFifo.Cursor end = rs.getObject(10) == null ? null : new PayoutFifo.Cursor(rs.getLong(10), rs.getString(11), rs.getLong(12));
        PayoutFifo.Burn says = new PayoutFifo.Burn(start, end, rs.getLong(6), rs.getLong(13), rs.getLong(14));
        if (!says.equals(want)) {
          found("payouts", subject, "it says it burned " + describe(says) + ", but " + owner + "'s income not burned before it gives "
              + describe(want));
        } else if (want.fromIncome() < rs.getLong(5) && !ended.containsKey(owner)) {
          // only ACT from before attribution by amount (a partial payout by range) may lie outside the income
          found("payouts", subject, "it burned " + rs.getLong(5) + " uact, but " + owner + "'s income not burned before it held "
              + want.fromIncome());
        }
        cursors.put(owner, want.next(from));
      }
    }
    Set<String> nodes = new java.util.HashSet<>(ended.keySet());
    nodes.addAll(cursors.keySet());
    checked.put("payouts", of(executed, "executed payout", "executed payouts") + " of " + of(nodes.size(), "node", "nodes")
        + (findingCount == before ? ": each burns its node's oldest income not burned before, by amount (by range before"
            + " V19), none skipped, none twice" : ""));
  }

  private static String describe(PayoutFifo.Burn b) {
    return b.start() == null ? "nothing" : b.fromIncome() + " uact from " + b.start() + " to " + b.end() + " (" + b.receipts()
        + " receipts, " + b.receiptsUact() + " uact of them)";
  }

  /**
   * The BME counters (bme_state) against the journal: ACT minted less ACT burned is the ACT in
   * existence (minus the issuance account's balance), AKT newly minted by redemptions is what the AKT
   * issuance account gave out, and remint credits are not negative.
   */
  private void supply() throws SQLException {
    long before = findingCount;
    long minted;
    long burned;
    long aktMinted;
    long credits;
    try (PreparedStatement ps = c.prepareStatement("SELECT total_minted_uact, total_burned_uact, total_minted_uakt,"
        + " remint_credits FROM bme_state WHERE id = 1"); ResultSet rs = ps.executeQuery()) {
      if (!rs.next()) {
        found("supply", "bme_state", "the BME state row is missing");
        checked.put("supply", "no BME state");
        return;
      }
      minted = rs.getLong(1);
      burned = rs.getLong(2);
      aktMinted = rs.getLong(3);
      credits = rs.getLong(4);
    }
    long actSupply = -scalar(POSTED, Accounts.ACT_ISSUANCE, "uact");
    long aktIssued = -scalar(POSTED, Accounts.AKT_ISSUANCE, "uakt");
    if (minted - burned != actSupply) {
      found("supply", "uact", "ACT minted " + minted + " less burned " + burned + " is " + (minted - burned)
          + ", but the journal holds " + actSupply + " uact in existence");
    }
    if (aktMinted != aktIssued) {
      found("supply", "uakt", "AKT newly minted is " + aktMinted + " uakt, but the journal issued " + aktIssued);
    }
    if (credits < 0) found("supply", "remint credits", "remint credits are negative: " + credits);
    checked.put("supply", actSupply + " uact in existence, " + aktIssued + " uakt newly minted"
        + (findingCount == before ? ": the BME counters agree with the journal" : ""));
  }

  private void checkChunk(PreparedStatement stored, String subject, long epoch, EpochChunks.Chunk k) throws SQLException {
    stored.setLong(1, epoch);
    stored.setInt(2, k.chunk());
    try (ResultSet rs = stored.executeQuery()) {
      if (!rs.next()) {
        found("epoch", subject, "chunk " + k.chunk() + " is missing");
      } else if (!Objects.equals(rs.getString(1), k.firstReceiptId()) || !Objects.equals(rs.getString(2), k.leaves())
          || !Objects.equals(rs.getString(3), k.root())) {
        found("epoch", subject, "stored chunk " + k.chunk() + " is not the one its settlements make (proofs read it)");
      }
    }
  }

  private static String of(long n, String one, String many) {
    return n + " " + (n == 1 ? one : many);
  }

  /** The one number {@code sql} answers, with {@code args} bound in order. */
  private long scalar(String sql, Object... args) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      for (int i = 0; i < args.length; i++) ps.setObject(i + 1, args[i]);
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        return rs.getLong(1);
      }
    }
  }
}
