package io.anneal.bench;

import io.anneal.billing.JdbcLedgerStore;
import io.anneal.billing.SettlementLanes;
import io.anneal.billing.bme.BmeParams;
import io.anneal.billing.bme.OracleSnapshot;
import io.anneal.billing.ledger.Accounts;
import io.anneal.billing.ledger.EscrowHold;
import io.anneal.billing.ledger.LedgerAudit;
import io.anneal.billing.ledger.LedgerStore;
import io.anneal.billing.ledger.Settlement;
import io.anneal.billing.ledger.SqlClientLedgerStore;
import io.anneal.billing.ledger.SqlLedger;
import io.anneal.billing.receipt.NodeKeys;
import io.anneal.billing.receipt.Receipt;
import io.anneal.billing.receipt.ReceiptSigner;
import io.anneal.billing.receipt.SignedReceipt;
import io.anneal.billing.sql.Database;
import io.anneal.billing.sql.GroupCommitWriter;
import io.anneal.job.Ids;
import io.vertx.core.Vertx;
import java.nio.file.Files;
import java.security.KeyPairGenerator;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;

/**
 * Receipts settled exactly once per second into the SQL ledger through the group-commit writer,
 * with a share of duplicate deliveries mixed in.
 *
 * <p>{@code java -cp bench/target/benchmarks.jar io.anneal.bench.SettlementBenchmark h2|pg|h2mem [receipts]
 * [duplicateRate] [arrival|shuffled] [lanes] [rounds] [jdbc|vertx]}
 *
 * <p>Receipts go through the ledger port ({@link LedgerStore}) as billing sends them: {@code jdbc}
 * (the default) settles on the group-commit writer or on settlement lanes, {@code vertx} on the Vert.x
 * SQL clients (the reactive PostgreSQL client with {@code lanes} lanes, H2 through the Vert.x JDBC
 * client with one).
 *
 * <p>{@code rounds} (default 1) settles that many sets of {@code receipts} one after the other into the
 * same ledger, each timed and verified on its own. The first round also pays for the JIT compiling the
 * settlement path (on 2 cores it competes with the writer); later rounds show the steady state of a
 * service that has been running, with the tables as large as the rounds before made them.
 *
 * <p>Job ids are made as the service makes them ({@link Ids}: time-ordered). {@code arrival} (the default)
 * delivers receipts in the order their jobs were admitted, each displaced by up to {@link #WINDOW}
 * places (jobs of different lengths finish out of order: about that many jobs in flight), and each
 * duplicate within {@link #WINDOW} places after its first delivery (a redelivery after a lost reply).
 * {@code shuffled} delivers all of them in random order, as if all N jobs were in flight at once: the
 * hardest case for the ledger's indexes, since every receipt lands at a random place in them.
 */
public final class SettlementBenchmark {
  /** How far out of admission order a receipt may arrive, in deliveries. */
  static final int WINDOW = 10_000;

  private SettlementBenchmark() {}

  public static void main(String[] args) throws Exception {
    String target = args.length > 0 ? args[0] : "h2";
    int n = args.length > 1 ? Integer.parseInt(args[1]) : 50_000;
    double dupRate = args.length > 2 ? Double.parseDouble(args[2]) : 0.1;
    String order = args.length > 3 ? args[3] : "arrival";
    if (!order.equals("arrival") && !order.equals("shuffled")) {
      throw new IllegalArgumentException("order must be arrival or shuffled, not " + order);
    }
    // as the service's db.settlementLanes=auto: lanes of their own on PostgreSQL, the one writer on H2
    int laneCount = args.length > 4 ? Integer.parseInt(args[4]) : target.equals("pg") ? 3 : 0;
    Database db;
    java.nio.file.Path h2Dir = null; // the H2 file's directory, removed at the end (~1 GB after a few rounds)
    if (target.equals("pg")) {
      String url = System.getenv().getOrDefault("ANNEAL_BENCH_PG_URL", "jdbc:postgresql://127.0.0.1:5432/test?user=postgres");
      db = Database.open(url, "bench_" + Long.toHexString(System.nanoTime()), 4 + laneCount);
    } else if (target.equals("h2mem")) {
      db = Database.h2Memory("bench", 4); // a reference point only: nothing reaches a disk
    } else {
      h2Dir = Files.createTempDirectory("anneal-bench");
      db = Database.h2File(h2Dir, 4);
    }
    db.migrate("db/ledger", "flyway_ledger_history");
    GroupCommitWriter w = new GroupCommitWriter(db, "bench-writer", 2000);
    OracleSnapshot oracle = OracleSnapshot.healthy("0.5");
    var key = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    w.submit(c -> {
      SqlLedger.fundVault(c, "seed", 1_000_000_000_000L);
      SqlLedger.updateBreaker(c, oracle, BmeParams.defaults());
      for (int t = 0; t < 10; t++) {
        SqlLedger.openTenantAccounts(c, "t" + t);
        SqlLedger.depositAndMint(c, "t" + t, "d" + t, 1_000_000_000_000L, oracle, BmeParams.defaults());
      }
      return null;
    }).get();
    int rounds = args.length > 5 ? Integer.parseInt(args[5]) : 1;
    String[] jobIds = new String[n * rounds];
    for (int i = 0; i < jobIds.length; i++) jobIds[i] = Ids.next(""); // admission order
    // escrows held set-based, 2,000 per transaction, as admission holds them (not part of the measurement)
    for (int b = 0; b < jobIds.length; b += 2000) {
      List<EscrowHold> batch = new ArrayList<>();
      for (int i = b; i < Math.min(jobIds.length, b + 2000); i++) {
        batch.add(new EscrowHold(jobIds[i], "t" + (i % 10), 1_000_000, 2_500_000, "H100", 1));
      }
      List<?> refused = w.submit(c -> SqlLedger.holdAll(c, batch)).get();
      if (refused.stream().anyMatch(java.util.Objects::nonNull)) throw new IllegalStateException("escrow refused: " + refused);
    }
    // placed on the node that signs the receipts, by batches of 2,000 as the scheduler records placements
    for (int b = 0; b < jobIds.length; b += 2000) {
      List<String> placed = Arrays.asList(jobIds).subList(b, Math.min(jobIds.length, b + 2000));
      w.submit(c -> {
        SqlLedger.placedOn(c, placed, Collections.nCopies(placed.size(), "node-1"));
        return null;
      }).get();
    }
    // the worker's side: receipts signed in Merkle batches of 1,000 (not part of the measurement)
    ReceiptSigner signer = new ReceiptSigner(key.getPrivate());
    List<SignedReceipt> signed = new ArrayList<>(jobIds.length);
    for (int b = 0; b < jobIds.length; b += 1000) {
      List<Receipt> batch = new ArrayList<>();
      for (int i = b; i < Math.min(jobIds.length, b + 1000); i++) {
        batch.add(new Receipt(jobIds[i] + "/1", jobIds[i], "t" + (i % 10), "node-1", "H100", 1, true,
            1_000_000_000L + i,
            1_000_000_000L, 0, 1, 2, "SUCCEEDED", ""));
      }
      signed.addAll(signer.sign(batch));
    }
    Random rnd = new Random(1);
    int dups = (int) Math.round(n * dupRate);
    Map<String, Long> prices = Map.of("H100", 2_500_000L);
    String client = args.length > 6 ? args[6] : "jdbc";
    SqlLedger.PriceLookup lookup = (cls, at) -> prices.get(cls);
    Vertx vertx = Vertx.vertx();
    LedgerStore store;
    java.util.function.LongSupplier commits;
    if (client.equals("vertx")) {
      SqlClientLedgerStore s = db.postgres()
          ? SqlClientLedgerStore.postgres(vertx, db.jdbcUrl(), db.schema(), Math.max(1, laneCount), 2000, lookup,
              System::currentTimeMillis, 3600)
          : SqlClientLedgerStore.h2(vertx, db.jdbcUrl(), 2000, lookup, System::currentTimeMillis, 3600);
      store = s;
      commits = s.stats()::commits;
    } else if (client.equals("jdbc")) {
      SettlementLanes lanes = laneCount == 0 ? SettlementLanes.shared(w) : SettlementLanes.own(db, laneCount, 2000);
      store = new JdbcLedgerStore(w, lanes, lookup, System::currentTimeMillis, 3600);
      commits = lanes::commits;
    } else {
      throw new IllegalArgumentException("client must be jdbc or vertx, not " + client);
    }
    long charged = 0;
    for (int round = 1; round <= rounds; round++) {
      List<SignedReceipt> deliveries =
          deliveryOrder(signed.subList((round - 1) * n, round * n), dups, order.equals("shuffled"), rnd);
      if (target.equals("pg")) {
        // every run starts with no dirty pages from its setup pending a checkpoint (needs a superuser; skipped otherwise)
        try (var c = db.connection(); var st = c.createStatement()) {
          st.execute("CHECKPOINT");
        } catch (java.sql.SQLException e) {
          System.err.println("no CHECKPOINT before the run: " + e.getMessage());
        }
      }
      CpuAccount cpu = CpuAccount.start();
      long t0 = System.nanoTime();
      List<CompletableFuture<Settlement>> all = new ArrayList<>(deliveries.size());
      long commitsBefore = commits.getAsLong();
      for (SignedReceipt r : deliveries) all.add(store.settle(r).toCompletionStage().toCompletableFuture());
      long firsts = 0;
      long dupSeen = 0;
      for (var f : all) {
        Settlement s = f.get();
        if (!s.settled()) throw new IllegalStateException("refused: " + s.refusal());
        if (s.duplicate()) {
          dupSeen++;
        } else {
          firsts++;
          charged += s.chargeUact();
        }
      }
      double secs = (System.nanoTime() - t0) / 1e9;
      String cpuUse = cpu.report(secs, n, !target.equals("pg"));
      long provider = w.submit(c -> SqlLedger.balance(c, Accounts.provider("node-1"), "uact")).get();
      if (firsts != n || provider != charged) {
        throw new IllegalStateException("exactly-once violated: " + firsts + " first settlements of " + n + ", provider "
            + provider + " vs charged " + charged);
      }
      System.out.printf("%s (%s), %s order, %s, round %d of %d: %d receipts + %d duplicate deliveries (%.0f %%) in %.2f s:"
              + " %.0f receipts settled/s (%.0f deliveries/s), %d transactions, %d duplicates answered as such,"
              + " exactly once verified%n",
          target, client, order, laneCount == 0 ? "one writer" : laneCount + " lanes", round, rounds, n, dups, dupRate * 100,
          secs, n / secs, deliveries.size() / secs, commits.getAsLong() - commitsBefore, dupSeen);
      System.out.println("  " + cpuUse);
    }
    if (args.length > 7 && args[7].equals("audit")) {
      // the ledger as an operator would audit it: its epochs closed, the signing node's key registered
      store.closeEpochs(System.currentTimeMillis() + 2 * 3600 * 1000L).toCompletionStage().toCompletableFuture().get();
      w.submit(c -> SqlLedger.registerNode(c, "node-1", NodeKeys.encodePublic(key.getPublic()))).get();
      long t0 = System.nanoTime();
      LedgerAudit.Report report;
      try (var c = db.connection()) {
        report = LedgerAudit.run(c, 10);
      }
      double secs = (System.nanoTime() - t0) / 1e9;
      report.checked().forEach((check, what) -> System.out.println("  " + check + ": " + what));
      System.out.printf("ledger audit of %d settlements in %.2f s (%.0f settlements/s): %d findings %s%n", (long) n * rounds,
          secs, n * rounds / secs, report.findingCount(), report.findings());
      if (!report.clean()) throw new IllegalStateException("the audit found something: " + report.findings());
    }
    store.close();
    vertx.close().toCompletionStage().toCompletableFuture().get();
    w.close();
    db.dropSchema();
    db.close();
    TempDirs.delete(h2Dir);
  }

  /**
   * The receipts, each once, plus {@code dups} redeliveries of random ones. Shuffled: all in random
   * order. Otherwise each receipt arrives up to {@link #WINDOW} places after its admission rank and
   * each redelivery up to {@link #WINDOW} places after the delivery it repeats.
   */
  static List<SignedReceipt> deliveryOrder(List<SignedReceipt> signed, int dups, boolean shuffled, Random rnd) {
    int n = signed.size();
    List<SignedReceipt> out = new ArrayList<>(n + dups);
    if (shuffled) {
      out.addAll(signed);
      for (int i = 0; i < dups; i++) out.add(signed.get(rnd.nextInt(n)));
      Collections.shuffle(out, rnd);
      return out;
    }
    long[] keyed = new long[n + dups]; // arrival rank << 32 | index into signed
    long[] first = new long[n];
    for (int i = 0; i < n; i++) {
      first[i] = i + rnd.nextInt(WINDOW);
      keyed[i] = first[i] << 32 | i;
    }
    for (int d = 0; d < dups; d++) {
      int i = rnd.nextInt(n);
      keyed[n + d] = (first[i] + 1 + rnd.nextInt(WINDOW)) << 32 | i;
    }
    Arrays.sort(keyed);
    for (long k : keyed) out.add(signed.get((int) k));
    return out;
  }
}
