package io.anneal.billing.sql;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.concurrent.CompletableFuture;
import javax.sql.DataSource;
import org.flywaydb.core.Flyway;

/**
 * The SQL store: H2 file database by default, PostgreSQL when a URL is given. Same SQL text on
 * both. Schemas are owned by Flyway, one history table per module.
 */
public final class Database implements AutoCloseable {
  private final HikariDataSource ds;
  private final String url;
  private final String schema;
  private final boolean postgres;
  /** For an H2 file that writes commits in the background: the checkpoints that make them durable. */
  private final H2Checkpoints checkpoints;
  private static final CompletableFuture<Void> DONE = CompletableFuture.completedFuture(null);

  private Database(String jdbcUrl, String schema, int poolSize) {
    this.url = jdbcUrl;
    this.schema = schema;
    this.postgres = jdbcUrl.startsWith("jdbc:postgresql:");
    HikariConfig cfg = new HikariConfig();
    cfg.setJdbcUrl(jdbcUrl);
    cfg.setMaximumPoolSize(poolSize);
    cfg.setMinimumIdle(1);
    // a store out of reach fails an operation after 5 s (Hikari's default is 30 s): callers answer 503
    // and retry, rather than hold every request for half a minute
    cfg.setConnectionTimeout(5_000);
    cfg.setPoolName("anneal-db");
    cfg.setAutoCommit(true);
    // pgjdbc turns batched INSERTs into multi-row statements: the set-based write path relies on it
    if (postgres) cfg.addDataSourceProperty("reWriteBatchedInserts", "true");
    if (schema != null) cfg.setSchema(schema); // PostgreSQL takes a search path to a schema not created yet
    this.ds = new HikariDataSource(cfg);
    if (postgres && schema != null) {
      try {
        createSchema(ds, schema);
      } catch (java.sql.SQLException e) {
        ds.close();
        throw new IllegalStateException("could not create schema " + schema + ": " + e.getMessage(), e);
      }
    }
    this.checkpoints = defersWrites(jdbcUrl) ? new H2Checkpoints(ds) : null;
  }

  /**
   * Creates the schema unless it exists. PostgreSQL's {@code CREATE SCHEMA IF NOT EXISTS} is not atomic
   * against another session creating it at the same moment (instances of a cluster starting together
   * on a new schema): the one that loses gets a duplicate key, and the schema is there.
   */
  private static void createSchema(DataSource ds, String schema) throws java.sql.SQLException {
    try (Connection c = ds.getConnection(); var st = c.createStatement()) {
      st.execute("CREATE SCHEMA IF NOT EXISTS \"" + schema + "\"");
    } catch (java.sql.SQLException e) {
      if (!"23505".equals(e.getSQLState())) throw e;
    }
  }

  /**
   * Whether commits to this URL reach the file only later: H2 on a file, unless {@code WRITE_DELAY=0}
   * (H2's default delay is 500 ms). PostgreSQL makes each commit durable itself; H2 in memory keeps
   * nothing anyway.
   */
  public static boolean defersWrites(String jdbcUrl) {
    if (!jdbcUrl.startsWith("jdbc:h2:") || jdbcUrl.startsWith("jdbc:h2:mem:")) return false;
    return !jdbcUrl.toUpperCase(java.util.Locale.ROOT).replace(" ", "").contains(";WRITE_DELAY=0");
  }

  /**
   * Completes once every transaction committed before this call survives the process being killed
   * or the machine crashing: at once on PostgreSQL (which syncs each commit; H2 in memory keeps
   * nothing anyway); on an H2 file after a synced checkpoint begun after the call (shared by the
   * commits that wait meanwhile, {@link H2Checkpoints}). Acknowledge a write to anyone outside the
   * process (a 202, a settlement's ack) only after it.
   */
  public CompletableFuture<Void> durable() {
    return checkpoints == null ? DONE : checkpoints.after();
  }

  /** H2 file database {@code anneal} in {@code dataDir} (commits acknowledged once written: {@link #durable}). */
  public static Database h2File(Path dataDir, int poolSize) {
    String file = dataDir.toAbsolutePath().resolve("anneal").toString();
    return new Database("jdbc:h2:file:" + file
        + ";MODE=PostgreSQL;DATABASE_TO_LOWER=TRUE;DEFAULT_NULL_ORDERING=HIGH;QUERY_CACHE_SIZE=256", null, poolSize);
  }

  /** In-memory H2, for tests. */
  public static Database h2Memory(String name, int poolSize) {
    return new Database("jdbc:h2:mem:" + name
        + ";MODE=PostgreSQL;DATABASE_TO_LOWER=TRUE;DEFAULT_NULL_ORDERING=HIGH;DB_CLOSE_DELAY=-1;QUERY_CACHE_SIZE=256", null, poolSize);
  }

  /**
   * Opens a database from a user-facing URL: {@code postgresql://user@host:port/db},
   * {@code jdbc:postgresql:...} or {@code jdbc:h2:...}. {@code schema} may be null.
   */
  public static Database open(String url, String schema, int poolSize) {
    String jdbc = toJdbc(url);
    if (schema == null) {
      // a PostgreSQL URL may name its schema: ...?currentSchema=anneal (created by the migrations)
      java.util.regex.Matcher m = java.util.regex.Pattern.compile("[?&]currentSchema=([A-Za-z0-9_]+)").matcher(jdbc);
      if (m.find()) schema = m.group(1);
    }
    return new Database(jdbc, schema, poolSize);
  }

  static String toJdbc(String url) {
    if (url.startsWith("jdbc:")) return url;
    if (url.startsWith("postgresql://") || url.startsWith("postgres://")) {
      String rest = url.substring(url.indexOf("://") + 3);
      String user = null;
      int at = rest.indexOf('@');
      if (at >= 0) {
        user = rest.substring(0, at);
        rest = rest.substring(at + 1);
      }
      String jdbc = "jdbc:postgresql://" + rest;
      if (user != null && !user.isEmpty()) {
        String password = null;
        int colon = user.indexOf(':');
        if (colon >= 0) {
          password = user.substring(colon + 1);
          user = user.substring(0, colon);
        }
        jdbc += (jdbc.contains("?") ? "&" : "?") + "user=" + user + (password != null ? "&password=" + password : "");
      }
      return jdbc;
    }
    throw new IllegalArgumentException("unsupported --db-url '" + url
        + "': use postgresql://user@host:port/db or a jdbc: URL");
  }

  /** Applies the migrations under {@code classpath:<location>}, tracked in {@code historyTable}. */
  public void migrate(String location, String historyTable) {
    flyway(location, historyTable).load().migrate();
  }

  /** Migrates up to version {@code target} only (upgrade tests start from an earlier schema). */
  public void migrate(String location, String historyTable, String target) {
    flyway(location, historyTable).target(target).load().migrate();
  }

  /** How many of the migrations under {@code classpath:<location>} this database has not had yet. */
  public int pendingMigrations(String location, String historyTable) {
    return flyway(location, historyTable).load().info().pending().length;
  }

  private org.flywaydb.core.api.configuration.FluentConfiguration flyway(String location, String historyTable) {
    // ${postgresOnly} starts a statement that only PostgreSQL needs (H2 gets it as a comment)
    var cfg = Flyway.configure().dataSource(ds).locations("classpath:" + location).table(historyTable)
        .baselineOnMigrate(true).baselineVersion("0")
        .placeholders(java.util.Map.of("postgresOnly", postgres ? "" : "-- "));
    return schema == null ? cfg : cfg.schemas(schema).defaultSchema(schema).createSchemas(true);
  }

  public DataSource dataSource() {
    return ds;
  }

  public Connection connection() throws SQLException {
    return ds.getConnection();
  }

  /** Whether a connection is to H2 (SQL forms that are fast on one engine can be slow on the other). */
  /**
   * Binds an array parameter ({@code CAST(? AS ... ARRAY)}, {@code = ANY(?)}). H2 takes the Java
   * array as it is: through {@code createArrayOf} and {@code setArray} it converts every element three
   * times (into the {@code java.sql.Array}, back out of it, and into the parameter), a tenth of the H2
   * settlement writer's time in a profile of the settlement benchmark. PostgreSQL's driver needs a
   * {@code java.sql.Array} of the named type ({@code varchar}, {@code bigint}).
   */
  public static void setArray(java.sql.PreparedStatement ps, int index, String sqlType, Object[] values)
      throws java.sql.SQLException {
    if (ps.isWrapperFor(org.h2.jdbc.JdbcPreparedStatement.class)) {
      ps.setObject(index, values);
    } else {
      ps.setArray(index, ps.getConnection().createArrayOf(sqlType, values));
    }
  }

  public static boolean isH2(java.sql.Connection c) throws java.sql.SQLException {
    return "H2".equals(c.getMetaData().getDatabaseProductName());
  }

  /** A read on a connection. */
  @FunctionalInterface
  public interface Read<T> {
    T apply(Connection c) throws SQLException;
  }

  /**
   * Runs {@code read} in one read-only snapshot of the store, so that everything it reads belongs to
   * the same moment although writers commit meanwhile: PostgreSQL's REPEATABLE READ is one snapshot;
   * H2's is not (rows committed meanwhile appear in tables not read yet), its SNAPSHOT level is. The
   * connection's settings are restored afterwards.
   */
  public static <T> T inSnapshot(Connection c, Read<T> read) throws SQLException {
    boolean autoCommit = c.getAutoCommit();
    int isolation = c.getTransactionIsolation();
    boolean readOnly = c.isReadOnly();
    c.setAutoCommit(false);
    c.setTransactionIsolation(isH2(c) ? org.h2.engine.Constants.TRANSACTION_SNAPSHOT : Connection.TRANSACTION_REPEATABLE_READ);
    c.setReadOnly(true);
    try {
      return read.apply(c);
    } finally {
      c.rollback();
      c.setReadOnly(readOnly);
      c.setTransactionIsolation(isolation);
      c.setAutoCommit(autoCommit);
    }
  }

  /**
   * Rows whose key is in a set bound as one array: {@code key = ANY(?)} on PostgreSQL, which plans it
   * as an index scan; on H2 a join against {@code unnest(?)}, because H2 re-checks every row found by
   * {@code = ANY(?)} with a linear scan of the array (O(n²) per batch). Measured on the settlement
   * benchmark: the join is +12 % on H2 and −13 % on PostgreSQL, hence one form per database.
   * {@code table} is aliased {@code t}; {@code where} may add conditions on it.
   */
  public static String keyed(java.sql.Connection c, String columns, String table, String key, String where)
      throws java.sql.SQLException {
    return keyed(!Database.isH2(c), "?", columns, table, key, where);
  }

  /** As above, for either engine, with the array bound at {@code marker} ({@code ?} for JDBC, {@code $1} for the Vert.x clients). */
  public static String keyed(boolean postgres, String marker, String columns, String table, String key, String where) {
    if (!postgres) {
      return "SELECT " + columns + " FROM unnest(CAST(" + marker + " AS VARCHAR ARRAY)) AS k(v) JOIN " + table + " t ON t."
          + key + " = k.v" + (where == null ? "" : " WHERE " + where);
    }
    return "SELECT " + columns + " FROM " + table + " t WHERE t." + key + " = ANY(" + marker + ")"
        + (where == null ? "" : " AND " + where);
  }

  /**
   * Deletes the rows of {@code table} whose {@code key} is in a set bound as one array, in the form
   * that is fast on each engine (see {@link #keyed}).
   */
  public static String keyedDelete(java.sql.Connection c, String table, String key) throws java.sql.SQLException {
    if (isH2(c)) {
      return "MERGE INTO " + table + " t USING unnest(CAST(? AS VARCHAR ARRAY)) AS k(v) ON t." + key
          + " = k.v WHEN MATCHED THEN DELETE";
    }
    return "DELETE FROM " + table + " WHERE " + key + " = ANY(?)";
  }

  public boolean postgres() {
    return postgres;
  }

  /** The JDBC URL, credentials included (for another client of the same store; log {@link #describe()}). */
  public String jdbcUrl() {
    return url;
  }

  /** The schema the store's tables are in, or null for the default. */
  public String schema() {
    return schema;
  }

  /** URL without credentials, for logs. */
  public String describe() {
    return url.replaceAll("password=[^&;]*", "password=***") + (schema != null ? " (schema " + schema + ")" : "");
  }

  /** Drops the schema (tests on a shared PostgreSQL). */
  public void dropSchema() throws SQLException {
    if (schema == null || !postgres) return;
    try (Connection c = ds.getConnection(); var st = c.createStatement()) {
      st.execute("DROP SCHEMA IF EXISTS \"" + schema + "\" CASCADE");
    }
  }

  @Override
  public void close() {
    if (checkpoints != null) checkpoints.close();
    ds.close();
  }
}
