package io.anneal.billing.ledger;

import io.anneal.billing.receipt.SignedReceipt;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.jdbcclient.JDBCConnectOptions;
import io.vertx.jdbcclient.JDBCPool;
import io.vertx.pgclient.PgBuilder;
import io.vertx.pgclient.PgConnectOptions;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.PoolOptions;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.RowSet;
import io.vertx.sqlclient.SqlConnection;
import io.vertx.sqlclient.Tuple;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.function.LongSupplier;

/**
 * The ledger port on the Vert.x SQL clients (ADR 12): the reactive PostgreSQL client, or H2 through
 * the Vert.x JDBC client. Nothing blocks a thread of its own: receipts queue in job lanes ({@link
 * ClientLanes}: batching, retries, isolating a bad receipt) and each lane's batch settles in one
 * transaction, by the same {@link SettlementPlan}, SQL and schema as the JDBC adapter.
 *
 * <p>On PostgreSQL several lanes settle at once, each on its own connection, as the JDBC adapter's
 * settlement lanes do (ADR 11): balances are updated last in account order, and each settlement
 * holds the settlement barrier shared. On H2 there is one lane, and the barrier is the row of
 * {@code settlement_barrier}, which settlements and the barrier's holders ({@link
 * SqlLedger#settlementBarrier}) both lock. On both, escrows are read {@code FOR UPDATE}, as a
 * release on the store's writer reads them: whichever comes second sees the other's outcome.
 */
public final class SqlClientLedgerStore implements LedgerStore {
  private final Pool pool;
  private final boolean postgres;
  /** The lanes' context: statements are sent from it, and the plans computed on its worker threads. */
  private final Context context;
  private final ClientLanes lanes;
  /** The previous epoch close, which the next one waits for (touched on {@link #context} only). */
  private Future<List<SqlLedger.EpochClose>> lastClose = Future.succeededFuture(List.of());
  private final SqlLedger.PriceLookup prices;
  private final LongSupplier clock;
  private final long epochSeconds;
  private final String describe;
  /** An H2 file that writes commits in the background: each transaction is checkpointed before it is acknowledged. */
  private final boolean checkpoint;

  private SqlClientLedgerStore(Vertx vertx, Pool pool, boolean postgres, boolean checkpoint, int laneCount, int maxBatch,
      SqlLedger.PriceLookup prices, LongSupplier clock, long epochSeconds, String describe) {
    this.pool = pool;
    this.postgres = postgres;
    this.checkpoint = checkpoint;
    this.context = vertx.getOrCreateContext();
    this.lanes = new ClientLanes(context, laneCount, maxBatch,
        receipts -> pool.withTransaction(conn -> settleIn(conn, receipts)),
        () -> checkpoint ? checkpointed() : Future.succeededFuture());
    this.prices = prices;
    this.clock = clock;
    this.epochSeconds = epochSeconds;
    this.describe = describe;
  }

  /**
   * On PostgreSQL through the reactive client, {@code lanes} settling at once (≥ 1).
   *
   * @param jdbcUrl the store's URL ({@code jdbc:postgresql://host:port/db?user=…&password=…})
   * @param schema the schema the ledger is in, or null for the server's search path
   */
  public static SqlClientLedgerStore postgres(Vertx vertx, String jdbcUrl, String schema, int lanes, int maxBatch,
      SqlLedger.PriceLookup prices, LongSupplier clock, long epochSeconds) {
    if (lanes < 1) throw new IllegalArgumentException("settlement lanes must be >= 1, not " + lanes);
    PgConnectOptions options = pgOptions(jdbcUrl, schema);
    Pool pool = PgBuilder.pool().with(new PoolOptions().setMaxSize(lanes + 1)).connectingTo(options).using(vertx).build();
    return new SqlClientLedgerStore(vertx, pool, true, false, lanes, maxBatch, prices, clock, epochSeconds,
        "vertx-pg-client, " + lanes + " settlement lane(s)");
  }

  /** On H2 (the store's {@code jdbc:h2:} URL, in this process) through the Vert.x JDBC client, one lane. */
  public static SqlClientLedgerStore h2(Vertx vertx, String jdbcUrl, int maxBatch, SqlLedger.PriceLookup prices,
      LongSupplier clock, long epochSeconds) {
    if (!jdbcUrl.startsWith("jdbc:h2:")) throw new IllegalArgumentException("not an H2 URL: " + jdbcUrl);
    Pool pool = JDBCPool.pool(vertx, new JDBCConnectOptions().setJdbcUrl(jdbcUrl), new PoolOptions().setMaxSize(2));
    return new SqlClientLedgerStore(vertx, pool, false, io.anneal.billing.sql.Database.defersWrites(jdbcUrl), 1, maxBatch,
        prices, clock, epochSeconds,
        "vertx-jdbc-client (H2), one settlement lane");
  }

  /**
   * {@code committed}, once durable: on an H2 file that writes commits in the background, after a
   * {@code CHECKPOINT} (see {@code Database.durable}); elsewhere as it is.
   */
  private <T> Future<T> durable(Future<T> committed) {
    return checkpoint ? committed.compose(r -> checkpointed().map(r)) : committed;
  }

  private final Object checkpointLock = new Object();
  /** Whether a checkpoint is being written (guarded by {@link #checkpointLock}). */
  private boolean checkpointRunning;
  /** Callers waiting for a checkpoint begun after their call, or null (guarded by {@link #checkpointLock}). */
  private Promise<Void> checkpointWaiting;

  /**
   * Completes after a {@code CHECKPOINT SYNC} begun after this call: one at a time, shared by every
   * caller that arrives while one runs (as {@code H2Checkpoints} does for the store's writer), so the
   * lane's next transaction does not queue behind a checkpoint of its own for each batch.
   */
  private Future<Void> checkpointed() {
    synchronized (checkpointLock) {
      if (checkpointWaiting == null) checkpointWaiting = Promise.promise();
      Future<Void> f = checkpointWaiting.future();
      if (!checkpointRunning) startCheckpoint();
      return f;
    }
  }

  /** Writes a checkpoint for the callers waiting now; called holding {@link #checkpointLock}. */
  private void startCheckpoint() {
    Promise<Void> these = checkpointWaiting;
    checkpointWaiting = null;
    checkpointRunning = true;
    pool.query("CHECKPOINT SYNC").execute().onComplete(ar -> {
      synchronized (checkpointLock) {
        checkpointRunning = false;
        if (checkpointWaiting != null) startCheckpoint();
      }
      if (ar.succeeded()) {
        these.complete();
      } else {
        these.fail(ar.cause());
      }
    });
  }

  /** Connection options from a {@code jdbc:postgresql:} URL (host, port, database, user, password). */
  static PgConnectOptions pgOptions(String jdbcUrl, String schema) {
    if (!jdbcUrl.startsWith("jdbc:postgresql://")) {
      throw new IllegalArgumentException("the Vert.x SQL client ledger needs a PostgreSQL URL with a host"
          + " (postgresql://user@host[:port]/database), not " + jdbcUrl.replaceAll("password=[^&;]*", "password=***"));
    }
    java.net.URI uri = java.net.URI.create(jdbcUrl.substring("jdbc:".length()));
    PgConnectOptions o = new PgConnectOptions()
        .setHost(uri.getHost() == null ? "localhost" : uri.getHost())
        .setPort(uri.getPort() < 0 ? 5432 : uri.getPort())
        .setDatabase(uri.getPath() == null || uri.getPath().length() < 2 ? "postgres" : uri.getPath().substring(1));
    Map<String, String> q = new HashMap<>();
    if (uri.getRawQuery() != null) {
      for (String kv : uri.getRawQuery().split("&")) {
        int eq = kv.indexOf('=');
        if (eq > 0) {
          q.put(kv.substring(0, eq), java.net.URLDecoder.decode(kv.substring(eq + 1), java.nio.charset.StandardCharsets.UTF_8));
        }
      }
    }
    for (String k : q.keySet()) {
      // TLS settings are pgjdbc's: the reactive client would connect without them, so refuse rather than downgrade
      if (k.toLowerCase(java.util.Locale.ROOT).startsWith("ssl")) {
        throw new IllegalArgumentException("the Vert.x SQL client ledger does not take the JDBC TLS setting '" + k
            + "'; use --ledger-client jdbc for a PostgreSQL reached over TLS");
      }
    }
    o.setUser(q.getOrDefault("user", "postgres"));
    if (q.containsKey("password")) o.setPassword(q.get("password"));
    String path = schema != null ? schema : q.get("currentSchema");
    if (path != null) o.setProperties(new HashMap<>(Map.of("search_path", path)));
    return o;
  }

  // ---------------------------------------------------------------- settlement

  /** Queued in its job's lane, settled with the lane's next batch (see {@link ClientLanes}). */
  @Override
  public Future<Settlement> settle(SignedReceipt receipt) {
    return lanes.settle(receipt);
  }

  private Future<List<Settlement>> settleIn(SqlConnection conn, List<SignedReceipt> receipts) {
    List<String> jobIds = new ArrayList<>();
    for (SignedReceipt sr : receipts) jobIds.add(sr.receipt().jobId());
    // the barrier first (shared), then the clock: the epoch filed into cannot be closed meanwhile
    Future<?> barrier = conn.query(SqlLedger.barrierSql(postgres, false)).execute();
    return barrier.compose(v -> {
      long nowMs = clock.getAsLong();
      // the escrows first: they tell which receipts may have been settled before (V15), and only those are looked up
      Future<Map<String, SettlementPlan.OpenEscrow>> open = conn.preparedQuery(
              keyed(SqlLedger.OPEN_ESCROW_COLUMNS, "escrow", "job_id", "t.state = 'OPEN'")
              // locked: a release on the store's writer waits for this settlement, or is waited for and then seen
              + " FOR UPDATE").execute(Tuple.of((Object) distinct(jobIds)))
          .map(rows -> {
            Map<String, SettlementPlan.OpenEscrow> m = new HashMap<>();
            for (Row r : rows) {
              m.put(r.getString(0), new SettlementPlan.OpenEscrow(new EscrowHold(r.getString(0), r.getString(1),
                  r.getLong(2), r.getLong(3), r.getString(4), r.getInteger(5), null, r.getString(6), r.getLong(7)),
                  r.getString(8), r.getLong(9), r.getLong(10), r.getInteger(11)));
            }
            return m;
          });
      Future<Map<String, Settlement>> prior = open.compose(o -> {
        List<String> unsure = SettlementPlan.mayHaveSettled(receipts, o);
        if (unsure.isEmpty()) return Future.succeededFuture(Map.of());
        return conn.preparedQuery(keyed("t.receipt_id, t.job_id, t.charge_uact, t.refund_uact, t.tx_id, t.paid_uakt,"
            + " t.billed_gpu_nanos", "settlement", "receipt_id", null)).execute(Tuple.of((Object) distinct(unsure)))
            .map(rows -> {
              Map<String, Settlement> m = new HashMap<>();
              for (Row r : rows) {
                m.put(r.getString(0), new Settlement(r.getString(0), r.getString(1), r.getLong(2), r.getLong(3), r.getLong(4),
                    true, null, r.getLong(5), r.getLong(6)));
              }
              return m;
            });
      });
      // revoked keys of these nodes (usually none), read under the barrier that a revocation takes (ADR 18)
      List<String> nodes = new ArrayList<>();
      for (SignedReceipt sr : receipts) nodes.add(sr.receipt().nodeId());
      Future<Map<String, List<String>>> revoked = prior.compose(p -> conn.preparedQuery(
              keyed("t.node_id, t.public_key", "node_key_history", "node_id", SqlLedger.REVOKED))
          .execute(Tuple.of((Object) distinct(nodes))).map(rows -> {
            Map<String, List<String>> m = new HashMap<>();
            for (Row r : rows) m.computeIfAbsent(r.getString(0), n -> new ArrayList<>()).add(r.getString(1));
            return m;
          }));
      // the plan and what it writes (receipt bodies, leaf hashes, proofs: some ms per batch) are worked
      // out on a worker thread, not on the event loop that the lanes share with other verticles
      return revoked.compose(r -> context.executeBlocking(
              () -> new Planned(SettlementPlan.of(receipts, prior.result(), open.result(), prices, nowMs, epochSeconds,
                  SettlementPlan.signedByRevokedKeys(receipts, r))), false))
          .compose(planned -> planned.plan.writes() ? write(conn, planned) : Future.succeededFuture(planned.plan.settlements(0)));
    });
  }

  /**
   * A plan and everything derived from it that the writes bind, but for the journal entry's id,
   * which only the first write returns (the settlement rows take it in {@link #write}).
   */
  private static final class Planned {
    final SettlementPlan plan;
    final List<Posting> postings;
    final List<Tuple> partial = new ArrayList<>();
    final String[] finals;
    final Object[] settlementColumns;
    final TreeMap<String, String[]> batches;
    final TreeMap<String, Long> uact;
    final TreeMap<String, Long> uakt;

    Planned(SettlementPlan plan) {
      this.plan = plan;
      if (!plan.writes()) {
        postings = List.of();
        finals = new String[0];
        settlementColumns = new Object[0];
        batches = new TreeMap<>();
        uact = new TreeMap<>();
        uakt = new TreeMap<>();
        return;
      }
      postings = plan.postings();
      for (SettlementPlan.Row row : plan.rows()) {
        if (row.partial()) partial.add(Tuple.of(row.escrowUactUsed(), row.escrowUaktUsed(), row.gpuNanos(), row.jobId()));
      }
      finals = plan.finalJobs();
      settlementColumns = plan.settlementColumns(0); // the tx id column is filled in once it is known
      batches = plan.batches();
      uact = plan.deltas("uact");
      uakt = plan.deltas("uakt");
    }

    /** The settlement rows' columns as {@link SqlLedger#INSERT_SETTLEMENTS} binds them, in journal entry {@code tx}. */
    Tuple settlementRows(long tx) {
      List<Object> columns = new ArrayList<>(settlementColumns.length + 1);
      columns.add(OffsetDateTime.ofInstant(Instant.ofEpochMilli(plan.nowMs()), ZoneOffset.UTC));
      for (Object column : settlementColumns) columns.add(column);
      Long[] txIds = (Long[]) columns.get(1 + SettlementPlan.TX_ID_COLUMN);
      java.util.Arrays.fill(txIds, tx);
      return Tuple.tuple(columns);
    }
  }

  /** Writes a plan: the journal entry, the settlement rows, the batch signatures, the escrows, the balances last. */
  private Future<List<Settlement>> write(SqlConnection conn, Planned planned) {
    SettlementPlan plan = planned.plan;
    return insertTx(conn, plan.journalRef()).compose(tx -> {
      List<Posting> postings = planned.postings;
      Future<?> f = postings.isEmpty() ? Future.succeededFuture()
          : conn.preparedQuery("INSERT INTO posting (tx_id, account, denom, amount) SELECT CAST($1 AS BIGINT), u.a, u.d, u.v"
              + " FROM unnest(CAST($2 AS VARCHAR ARRAY), CAST($3 AS VARCHAR ARRAY), CAST($4 AS BIGINT ARRAY)) AS u(a, d, v)")
              .execute(Tuple.of(tx, postings.stream().map(Posting::account).toArray(String[]::new),
                  postings.stream().map(Posting::denom).toArray(String[]::new),
                  postings.stream().map(Posting::amount).toArray(Long[]::new)));
      TreeMap<String, String[]> batches = planned.batches;
      String[] roots = batches.keySet().toArray(new String[0]);
      return f
          .compose(v -> conn.preparedQuery(numbered(SqlLedger.INSERT_SETTLEMENTS)).execute(planned.settlementRows(tx)))
          .compose(v -> conn.preparedQuery(numbered(SqlLedger.insertBatches(postgres)))
              .execute(Tuple.of(roots, batches.values().stream().map(b -> b[0]).toArray(String[]::new),
                  batches.values().stream().map(b -> b[1]).toArray(String[]::new))))
          // a row whose batch is recorded under another signature (signed again, ADR 18) keeps its own
          .compose(v -> conn.preparedQuery(keyed(SqlLedger.RECORDED_SIGNATURES, "receipt_batch", "batch_root", null))
              .execute(Tuple.of((Object) roots)))
          .compose(recorded -> {
            Map<String, String> byRoot = new HashMap<>();
            for (Row r : recorded) byRoot.put(r.getString(0), r.getString(1));
            List<Tuple> own = new ArrayList<>();
            plan.ownSignatures(byRoot).forEach((receipt, signature) -> own.add(Tuple.of(signature, receipt)));
            return own.isEmpty() ? Future.succeededFuture()
                : conn.preparedQuery(numbered(SqlLedger.OWN_SIGNATURE)).executeBatch(own);
          })
          // partial charges first: a final receipt of the same batch settles what remains
          .compose(v -> planned.partial.isEmpty() ? Future.succeededFuture()
              : conn.preparedQuery(numbered(SqlLedger.PARTIAL_ESCROW)).executeBatch(planned.partial))
          .compose(v -> planned.finals.length == 0 ? Future.succeededFuture()
              : conn.preparedQuery(numbered(SqlLedger.settledEscrows(postgres))).execute(Tuple.of((Object) planned.finals)))
          // balances last, in account order: the rows every settlement shares are locked only until the commit
          .compose(v -> applyDeltas(conn, planned.uact, "uact"))
          .compose(v -> applyDeltas(conn, planned.uakt, "uakt"))
          .map(v -> plan.settlements(tx));
    });
  }

  private Future<Long> insertTx(SqlConnection conn, String ref) {
    if (postgres) {
      return conn.preparedQuery("INSERT INTO ledger_tx (kind, ref) VALUES ('settle', $1) RETURNING id").execute(Tuple.of(ref))
          .map(rows -> rows.iterator().next().getLong(0));
    }
    return conn.preparedQuery("INSERT INTO ledger_tx (kind, ref) VALUES ('settle', $1)").execute(Tuple.of(ref))
        .map(rows -> rows.property(JDBCPool.GENERATED_KEYS).getLong(0));
  }

  /** Adds each account's change in one statement, creating the balances new to the ledger, in the map's (account) order. */
  private Future<?> applyDeltas(SqlConnection conn, TreeMap<String, Long> deltas, String denom) {
    if (deltas.isEmpty()) return Future.succeededFuture();
    Tuple args = Tuple.of(deltas.keySet().toArray(new String[0]), denom, deltas.values().toArray(new Long[0]));
    return conn.preparedQuery(postgres
        ? "INSERT INTO balance (account, denom, amount) SELECT u.a, $2, u.v FROM unnest(CAST($1 AS VARCHAR ARRAY),"
            + " CAST($3 AS BIGINT ARRAY)) WITH ORDINALITY AS u(a, v, o) ORDER BY u.o"
            + " ON CONFLICT (account, denom) DO UPDATE SET amount = balance.amount + EXCLUDED.amount"
        : "MERGE INTO balance t USING (SELECT u.a, CAST($2 AS VARCHAR) AS d, u.v FROM unnest(CAST($1 AS VARCHAR ARRAY),"
            + " CAST($3 AS BIGINT ARRAY)) AS u(a, v)) AS s ON t.account = s.a AND t.denom = s.d"
            + " WHEN MATCHED THEN UPDATE SET amount = t.amount + s.v"
            + " WHEN NOT MATCHED THEN INSERT (account, denom, amount) VALUES (s.a, s.d, s.v)").execute(args);
  }

  /** Rows of {@code table} whose {@code key} is in the array bound as {@code $1}, in the form fast on each engine. */
  private String keyed(String columns, String table, String key, String where) {
    return io.anneal.billing.sql.Database.keyed(postgres, "$1", columns, table, key, where);
  }

  private static String[] distinct(List<String> values) {
    return new LinkedHashSet<>(values).toArray(new String[0]);
  }

  /** {@code $} markers numbered {@code $1, $2, …} in order. */
  static String numbered(String sql) {
    StringBuilder b = new StringBuilder();
    int n = 0;
    for (char ch : sql.toCharArray()) {
      if (ch == '$') b.append('$').append(++n);
      else b.append(ch);
    }
    return b.toString();
  }

  // ---------------------------------------------------------------- epochs

  @Override
  public Future<List<SqlLedger.EpochClose>> closeEpochs(long nowMs) {
    // one close at a time (on this adapter's context): two would compute the same epoch
    Promise<List<SqlLedger.EpochClose>> done = Promise.promise();
    context.runOnContext(v -> {
      Future<List<SqlLedger.EpochClose>> next = lastClose.transform(ignored -> closeEndedEpochs(nowMs));
      lastClose = next;
      next.onComplete(done);
    });
    return done.future();
  }

  /**
   * The barrier first, exclusively, in a transaction of its own: settlements in flight finish, and
   * later ones read their time after it, so file into later epochs. Then the ended epochs are read and
   * closed in a second transaction, while settlements go on (ADR 13).
   */
  private Future<List<SqlLedger.EpochClose>> closeEndedEpochs(long nowMs) {
    long current = Math.floorDiv(nowMs, epochSeconds * 1000);
    return pool.withTransaction(conn -> conn.query(SqlLedger.barrierSql(postgres, true)).execute())
        .compose(drained -> durable(pool.withTransaction(conn -> conn.query(SqlLedger.EPOCH_CLOSE_LOCK).execute()
            .compose(locked -> conn.query(SqlLedger.LAST_EPOCH_END).execute())
            .compose(last -> {
              long lastEnd = last.iterator().next().getLong(0);
              java.util.TreeSet<Long> open = new java.util.TreeSet<>();
              return conn.preparedQuery(numbered(SqlLedger.EPOCHS_WITH_SETTLEMENTS))
                  .execute(Tuple.of(SqlLedger.firstUnclosedEpoch(lastEnd, epochSeconds), current))
                  .compose(withSettlements -> {
                    for (Row r : withSettlements) open.add(r.getLong(0));
                    // an epoch with mints or payouts but no settlement closes too, so that its flows count in the totals
                    return conn.preparedQuery(numbered(SqlLedger.BME_FLOW_TIMES))
                        .execute(Tuple.of(lastEnd, current * epochSeconds * 1000));
                  })
                  .map(times -> {
                    for (Row r : times) open.add(Math.floorDiv(r.getLong(0), epochSeconds * 1000));
                    return open;
                  });
            })
            .compose(open -> {
              List<SqlLedger.EpochClose> closed = new ArrayList<>();
              Future<Void> chain = Future.succeededFuture();
              for (long epoch : open) chain = chain.compose(v -> closeEpoch(conn, epoch, nowMs).map(e -> {
                closed.add(e);
                return null;
              }));
              return chain.map(v -> closed);
            }))));
  }

  private Future<SqlLedger.EpochClose> closeEpoch(SqlConnection conn, long epoch, long nowMs) {
    long start = epoch * epochSeconds * 1000;
    long end = start + epochSeconds * 1000;
    Tuple window = Tuple.of(at(start), at(end));
    List<Object> postingArgs = new ArrayList<>(List.of(at(start), at(end)));
    postingArgs.addAll(SqlLedger.FLOW_ACCOUNTS);
    long[] flows = new long[6];
    ChunkedLeaves leaves = new ChunkedLeaves();
    return chunks(conn, epoch, leaves)
        .compose(v -> conn.preparedQuery(numbered(SqlLedger.FLOW_POSTINGS)).execute(Tuple.tuple(postingArgs)))
        .compose(rows -> {
          for (Row r : rows) SqlLedger.addFlow(flows, r.getString(0), r.getString(1), r.getLong(3));
          return conn.preparedQuery(numbered(SqlLedger.FLOW_QUEUED_MINTS)).execute(window);
        })
        .compose(rows -> {
          // queued mints (ADR 8) moved their AKT to the vault at request: counted when the mint executes
          flows[1] += rows.iterator().next().getLong(0);
          return conn.preparedQuery(numbered(SqlLedger.FLOW_PAID_OUT)).execute(window);
        })
        .compose(rows -> {
          flows[2] = rows.iterator().next().getLong(0);
          SqlLedger.EpochClose e = SqlLedger.epochClose(epoch, epochSeconds, leaves.roots, leaves.receipts, leaves.charged, flows);
          return conn.preparedQuery(numbered(SqlLedger.INSERT_EPOCH_CLOSE))
              .execute(Tuple.tuple(java.util.Arrays.asList(SqlLedger.epochCloseRow(e, nowMs)))).map(v -> e);
        });
  }

  /** What an epoch's close keeps of its leaves as it reads them a chunk at a time. */
  private static final class ChunkedLeaves {
    final List<String> roots = new ArrayList<>();
    long receipts;
    long charged;
    String after = "";
  }

  /**
   * Reads an epoch's leaves a page of chunks at a time in receipt-id order (as the JDBC close does),
   * writing each chunk (V14) and keeping only its root, so that the close's memory does not grow with
   * the epoch.
   */
  private Future<Void> chunks(SqlConnection conn, long epoch, ChunkedLeaves into) {
    return conn.preparedQuery(numbered(SqlLedger.EPOCH_LEAVES)).execute(Tuple.of(epoch, into.after, EpochChunks.PAGE))
        .compose(rows -> {
          List<byte[]> leaves = new ArrayList<>(rows.size());
          List<String> receiptIds = new ArrayList<>(rows.size());
          for (Row r : rows) {
            leaves.add(java.util.HexFormat.of().parseHex(r.getString(0)));
            into.charged += r.getLong(1);
            receiptIds.add(r.getString(2));
          }
          if (leaves.isEmpty()) return Future.succeededFuture();
          List<Tuple> chunkRows = new ArrayList<>();
          for (EpochChunks.Chunk k : EpochChunks.ofPage(into.roots.size(), receiptIds, leaves)) {
            into.roots.add(k.root());
            chunkRows.add(Tuple.tuple(java.util.Arrays.asList(SqlLedger.epochChunkRow(epoch, k))));
          }
          into.receipts += leaves.size();
          into.after = receiptIds.get(receiptIds.size() - 1);
          Future<Void> written = conn.preparedQuery(numbered(SqlLedger.INSERT_EPOCH_CHUNK)).executeBatch(chunkRows).mapEmpty();
          return leaves.size() < EpochChunks.PAGE ? written : written.compose(v -> chunks(conn, epoch, into));
        });
  }

  private static OffsetDateTime at(long ms) {
    return OffsetDateTime.ofInstant(Instant.ofEpochMilli(ms), ZoneOffset.UTC);
  }

  // ---------------------------------------------------------------- the rest of the port

  @Override
  public Future<Optional<Settlement>> settlementOf(String receiptId) {
    return one("SELECT job_id, charge_uact, refund_uact, tx_id, paid_uakt, billed_gpu_nanos FROM settlement"
        + " WHERE receipt_id = $1", Tuple.of(receiptId), r -> new Settlement(receiptId, r.getString(0), r.getLong(1),
            r.getLong(2), r.getLong(3), true, null, r.getLong(4), r.getLong(5)));
  }

  @Override
  public Future<Optional<String>> nodeKey(String nodeId) {
    return one("SELECT public_key FROM node_key WHERE node_id = $1", Tuple.of(nodeId), r -> r.getString(0));
  }

  @Override
  public Future<List<NodeKey>> nodeKeys(String nodeId) {
    return pool.preparedQuery(numbered(NodeKey.SELECT)).execute(Tuple.of(nodeId)).map(rows -> {
      List<NodeKey> out = new ArrayList<>();
      for (Row r : rows) {
        out.add(new NodeKey(r.getString(0), r.getString(1), r.getLong(2), r.getLong(3), r.getLong(4), r.getBoolean(5)));
      }
      return out;
    });
  }

  @Override
  public Future<Boolean> registerNode(String nodeId, String publicKeyB64) {
    return durable(pool.withTransaction(conn -> conn.preparedQuery("INSERT INTO node_key (node_id, public_key) SELECT CAST($1 AS VARCHAR),"
            + " CAST($2 AS VARCHAR) WHERE NOT EXISTS (SELECT 1 FROM node_key WHERE node_id = CAST($1 AS VARCHAR))").execute(Tuple.of(nodeId, publicKeyB64))
        .compose(inserted -> inserted.rowCount() == 0 ? Future.succeededFuture()
            : conn.preparedQuery(numbered(NodeKey.INSERT_HISTORY)).execute(Tuple.of(nodeId, publicKeyB64, System.currentTimeMillis())))
        .compose(v -> conn.preparedQuery("SELECT public_key FROM node_key WHERE node_id = $1").execute(Tuple.of(nodeId)))
        .map(rows -> rows.iterator().next().getString(0).equals(publicKeyB64))))
        // registered by another connection at the same moment: the key registered decides
        .recover(e -> "23505".equals(ClientLanes.sqlState(e)) ? nodeKey(nodeId).map(k -> k.map(publicKeyB64::equals).orElse(false))
            : Future.failedFuture(e));
  }

  @Override
  public Future<Void> recordRefused(String receiptId, String nodeId, String reason) {
    return pool.preparedQuery("INSERT INTO refused_receipt (receipt_id, node_id, reason) VALUES ($1, $2, $3)")
        .execute(Tuple.of(receiptId, nodeId, reason)).mapEmpty();
  }

  @Override
  public Future<List<SqlLedger.RefusedReceipt>> refusedReceipts(int limit) {
    return pool.preparedQuery(numbered(SqlLedger.REFUSED_RECEIPTS)).execute(Tuple.of(limit)).map(rows -> {
          List<SqlLedger.RefusedReceipt> out = new ArrayList<>();
          for (Row r : rows) {
            out.add(new SqlLedger.RefusedReceipt(r.getLong(0), r.getString(1), r.getString(2), r.getString(3),
                epochMillis(r.getValue(4)), r.getInteger(5) == 1));
          }
          return out;
        });
  }

  private static long epochMillis(Object t) {
    if (t instanceof OffsetDateTime o) return o.toInstant().toEpochMilli();
    if (t instanceof java.time.LocalDateTime l) return l.toInstant(ZoneOffset.UTC).toEpochMilli();
    if (t instanceof Instant i) return i.toEpochMilli();
    if (t instanceof java.sql.Timestamp ts) return ts.getTime();
    throw new IllegalStateException("not a time: " + t);
  }

  private <T> Future<Optional<T>> one(String sql, Tuple args, Function<Row, T> read) {
    return pool.preparedQuery(sql).execute(args).map((RowSet<Row> rows) -> {
      var it = rows.iterator();
      return it.hasNext() ? Optional.of(read.apply(it.next())) : Optional.<T>empty();
    });
  }

  /** The lanes' commits, retries, splits and failures, for /metrics. */
  public io.anneal.billing.sql.WriterStats stats() {
    return lanes;
  }

  /** Lanes settling at once. */
  public int lanes() {
    return lanes.count();
  }

  @Override
  public String describe() {
    return describe;
  }

  /** Settles what is queued, then closes the pool. */
  @Override
  public void close() {
    lanes.closeAndDrain();
    pool.close().toCompletionStage().toCompletableFuture().join();
  }
}
