package io.anneal.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Builds {@link AnnealConfig} from {@code config/application.yaml} (or the copy inside the jar),
 * then {@code ANNEAL_*} environment variables, then command-line flags.
 */
public final class ConfigLoader {
  /** A configuration key with its environment variable and flag (flag null: file/env only). */
  private record Key(String path, String env, String flag) {}

  private static final List<Key> KEYS = List.of(
      new Key("http.port", "ANNEAL_HTTP_PORT", "--http-port"),
      new Key("dataDir", "ANNEAL_DATA_DIR", "--data-dir"),
      new Key("db.url", "ANNEAL_DB_URL", "--db-url"),
      new Key("db.poolSize", "ANNEAL_DB_POOL_SIZE", null),
      new Key("db.settlementLanes", "ANNEAL_SETTLEMENT_LANES", "--settlement-lanes"),
      new Key("db.ledgerClient", "ANNEAL_LEDGER_CLIENT", "--ledger-client"),
      new Key("roles", "ANNEAL_ROLES", "--roles"),
      new Key("node.id", "ANNEAL_NODE_ID", "--node-id"),
      new Key("cluster.port", "ANNEAL_CLUSTER_PORT", "--cluster-port"),
      new Key("cluster.members", "ANNEAL_CLUSTER_MEMBERS", "--cluster-members"),
      new Key("cluster.host", "ANNEAL_CLUSTER_HOST", "--cluster-host"),
      new Key("cluster.name", "ANNEAL_CLUSTER_NAME", null),
      new Key("cluster.config", "ANNEAL_CLUSTER_CONFIG", null),
      new Key("cluster.takeoverGraceSeconds", "ANNEAL_CLUSTER_TAKEOVER_GRACE_SECONDS", null),
      new Key("cluster.nodeTimeoutSeconds", "ANNEAL_CLUSTER_NODE_TIMEOUT_SECONDS", null),
      new Key("cluster.reconcileAfterSeconds", "ANNEAL_CLUSTER_RECONCILE_AFTER_SECONDS", null),
      new Key("cluster.quorum", "ANNEAL_CLUSTER_QUORUM", null),
      new Key("cluster.tenantRecheckSeconds", "ANNEAL_CLUSTER_TENANT_RECHECK_SECONDS", null),
      new Key("cluster.sweepMarginSeconds", "ANNEAL_CLUSTER_SWEEP_MARGIN_SECONDS", null),
      new Key("gpu.backend", "ANNEAL_GPU_BACKEND", "--gpu-backend"),
      new Key("gpu.cpuDevices", "ANNEAL_CPU_DEVICES", "--cpu-devices"),
      new Key("gpu.simulated", "ANNEAL_SIMULATED_GPUS", "--simulated-gpus"),
      new Key("limits.maxGpusPerJob", "ANNEAL_MAX_GPUS_PER_JOB", null),
      new Key("limits.maxSecondsPerJob", "ANNEAL_MAX_SECONDS_PER_JOB", null),
      new Key("limits.maxQueuedJobs", "ANNEAL_MAX_QUEUED_JOBS", "--max-queued-jobs"),
      new Key("limits.maxQueuedJobsPerTenant", "ANNEAL_MAX_QUEUED_JOBS_PER_TENANT", "--max-queued-jobs-per-tenant"),
      new Key("limits.maxRequestBytes", "ANNEAL_MAX_REQUEST_BYTES", null),
      new Key("bme.oraclePriceAkt", "ANNEAL_ORACLE_PRICE_AKT", "--oracle-price-akt"),
      new Key("bme.vaultSeedAkt", "ANNEAL_VAULT_SEED_AKT", null),
      new Key("shutdown.drainSeconds", "ANNEAL_DRAIN_SECONDS", "--drain-seconds"),
      new Key("billing.epochSeconds", "ANNEAL_EPOCH_SECONDS", "--epoch-seconds"),
      new Key("billing.priceAdjust", "ANNEAL_PRICE_ADJUST", "--price-adjust"),
      new Key("billing.priceWindowSeconds", "ANNEAL_PRICE_WINDOW_SECONDS", "--price-window-seconds"),
      new Key("billing.bootstrapFund", "ANNEAL_BOOTSTRAP_FUND", "--bootstrap-fund"),
      new Key("billing.auditSeconds", "ANNEAL_LEDGER_AUDIT_SECONDS", "--ledger-audit-seconds"),
      new Key("backup.everySeconds", "ANNEAL_BACKUP_EVERY_SECONDS", "--backup-every-seconds"),
      new Key("retention.finishedJobDays", "ANNEAL_RETENTION_FINISHED_JOB_DAYS", "--retention-finished-job-days"),
      new Key("backup.keep", "ANNEAL_BACKUP_KEEP", "--backup-keep"),
      new Key("billing.bootstrapFloorPercent", "ANNEAL_BOOTSTRAP_FLOOR_PERCENT", null),
      new Key("billing.bootstrapEndsAt", "ANNEAL_BOOTSTRAP_ENDS_AT", null),
      new Key("bme.tickSeconds", "ANNEAL_TICK_SECONDS", "--tick-seconds"),
      new Key("bme.minEpochTicks", "ANNEAL_MIN_EPOCH_TICKS", "--min-epoch-ticks"),
      new Key("bme.payoutMinAct", "ANNEAL_PAYOUT_MIN_ACT", "--payout-min-act"),
      new Key("bme.aktDirect", "ANNEAL_AKT_DIRECT", "--akt-direct"),
      new Key("bme.fifoQueue", "ANNEAL_BME_FIFO_QUEUE", null),
      new Key("bme.restartThresholdBps", "ANNEAL_BME_RESTART_THRESHOLD_BPS", null),
      new Key("bme.maxQueueDepth", "ANNEAL_BME_MAX_QUEUE_DEPTH", null),
      new Key("bme.exactUsd", "ANNEAL_BME_EXACT_USD", null),
      new Key("oracle.source", "ANNEAL_ORACLE_SOURCE", "--oracle-source"),
      new Key("oracle.file", "ANNEAL_ORACLE_FILE", "--oracle-file"),
      new Key("oracle.url", "ANNEAL_ORACLE_URL", "--oracle-url"),
      new Key("oracle.seed", "ANNEAL_ORACLE_SEED", null),
      new Key("oracle.pollSeconds", "ANNEAL_ORACLE_POLL_SECONDS", "--oracle-poll-seconds"),
      new Key("oracle.maxStalenessSeconds", "ANNEAL_ORACLE_MAX_STALENESS_SECONDS", "--oracle-max-staleness-seconds"),
      new Key("http.tlsCert", "ANNEAL_TLS_CERT", "--tls-cert"),
      new Key("http.tlsKey", "ANNEAL_TLS_KEY", "--tls-key"),
      new Key("http.tlsReloadSeconds", "ANNEAL_TLS_RELOAD_SECONDS", null),
      new Key("cluster.tlsCert", "ANNEAL_CLUSTER_TLS_CERT", "--cluster-tls-cert"),
      new Key("cluster.tlsKey", "ANNEAL_CLUSTER_TLS_KEY", "--cluster-tls-key"),
      new Key("cluster.tlsCa", "ANNEAL_CLUSTER_TLS_CA", "--cluster-tls-ca"),
      new Key("config", "ANNEAL_CONFIG", "--config"));

  /** Every command-line flag that sets a configuration key, plus {@code --cluster}. */
  public static List<String> flags() {
    List<String> out = new java.util.ArrayList<>();
    for (Key k : KEYS) {
      if (k.flag() != null) out.add(k.flag());
    }
    out.add("--cluster");
    return out;
  }

  /** A configuration error meant for the operator. */
  public static final class ConfigException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public ConfigException(String message) {
      super(message);
    }
  }

  private ConfigLoader() {}

  public static AnnealConfig load(String[] args, Map<String, String> env) {
    Map<String, String> flags = new HashMap<>();
    boolean cluster = false;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (a.equals("--cluster")) {
        cluster = true;
        continue;
      }
      String name = a;
      String value = null;
      int eq = a.indexOf('=');
      if (a.startsWith("--") && eq > 0) {
        name = a.substring(0, eq);
        value = a.substring(eq + 1);
      }
      Key key = null;
      for (Key k : KEYS) {
        if (name.equals(k.flag())) key = k;
      }
      if (key == null) throw new ConfigException("unknown option '" + a + "' (see README: Configuration)");
      if (value == null) {
        if (i + 1 >= args.length) throw new ConfigException("option " + name + " needs a value");
        value = args[++i];
      }
      flags.put(key.path(), value);
    }
    String configPath = flags.getOrDefault("config", env.getOrDefault("ANNEAL_CONFIG", "config/application.yaml"));
    Map<String, String> values = readYaml(configPath);
    Map<String, Long> prices = new LinkedHashMap<>();
    for (Iterator<Map.Entry<String, String>> it = values.entrySet().iterator(); it.hasNext(); ) {
      Map.Entry<String, String> e = it.next();
      if (e.getKey().startsWith("pricing.")) {
        prices.put(e.getKey().substring("pricing.".length()), parseLong("pricing." + e.getKey(), e.getValue()));
        it.remove();
      }
    }
    for (Key k : KEYS) {
      String v = env.get(k.env());
      if (v != null) values.put(k.path(), v);
    }
    values.putAll(flags);
    if (env.get("ANNEAL_CLUSTER") != null) cluster = cluster || Boolean.parseBoolean(env.get("ANNEAL_CLUSTER"));

    Set<String> roles = new TreeSet<>();
    for (String r : values.getOrDefault("roles", "all").split(",")) {
      String role = r.trim();
      if (role.equals("all")) {
        roles.addAll(AnnealConfig.ALL_ROLES);
      } else if (AnnealConfig.ALL_ROLES.contains(role)) {
        roles.add(role);
      } else {
        throw new ConfigException("unknown role '" + role + "' (api, scheduler, worker, billing, all)");
      }
    }
    String ledgerClient = values.getOrDefault("db.ledgerClient", "jdbc");
    if (!Set.of("jdbc", "vertx").contains(ledgerClient)) {
      throw new ConfigException("--ledger-client must be jdbc or vertx, not '" + ledgerClient + "'");
    }
    String backend = values.getOrDefault("gpu.backend", "auto");
    if (!Set.of("auto", "jcuda", "cpu", "simulated").contains(backend)) {
      throw new ConfigException("--gpu-backend must be auto, jcuda, cpu or simulated, not '" + backend + "'");
    }
    String demo = env.getOrDefault("ANNEAL_DEMO_TENANT", "");
    if (!demo.isEmpty() && demo.split(":", -1).length != 3) {
      throw new ConfigException("ANNEAL_DEMO_TENANT must be name:key:akt, e.g. demo:demo-key:100");
    }
    int port = (int) range("http.port", values.getOrDefault("http.port", "8080"), 0, 65535);
    return new AnnealConfig(
        port,
        Path.of(values.getOrDefault("dataDir", "./data")),
        values.getOrDefault("db.url", ""),
        (int) range("db.poolSize", values.getOrDefault("db.poolSize", "6"), 2, 200),
        "auto".equals(values.getOrDefault("db.settlementLanes", "auto")) ? -1
            : (int) range("db.settlementLanes", values.get("db.settlementLanes"), 0, 16),
        ledgerClient,
        roles,
        values.getOrDefault("node.id", ""),
        cluster,
        (int) range("cluster.port", values.getOrDefault("cluster.port", "5701"), 1, 65535),
        clusterMembers(values.getOrDefault("cluster.members", "127.0.0.1:5701")),
        values.getOrDefault("cluster.host", "127.0.0.1").trim(),
        clusterName(values.getOrDefault("cluster.name", "anneal")),
        values.getOrDefault("cluster.config", "config/cluster.xml"),
        range("cluster.takeoverGraceSeconds", values.getOrDefault("cluster.takeoverGraceSeconds", "5"), 1, 600) * 1000,
        // workers answer every 2 s: a few missed heartbeats, not one
        range("cluster.nodeTimeoutSeconds", values.getOrDefault("cluster.nodeTimeoutSeconds", "10"), 3, 3600) * 1000,
        range("cluster.reconcileAfterSeconds", values.getOrDefault("cluster.reconcileAfterSeconds", "30"), 3, 3600) * 1000,
        clusterQuorum(values.getOrDefault("cluster.quorum", "majority"), clusterMembers(values.getOrDefault("cluster.members",
            "127.0.0.1:5701"))),
        range("cluster.tenantRecheckSeconds", values.getOrDefault("cluster.tenantRecheckSeconds", "60"), 1, 3600) * 1000,
        range("cluster.sweepMarginSeconds", values.getOrDefault("cluster.sweepMarginSeconds", "60"), 0, 3600) * 1000,
        backend,
        (int) range("gpu.cpuDevices", values.getOrDefault("gpu.cpuDevices", "4"), 1, 1024),
        values.getOrDefault("gpu.simulated", ""),
        (int) range("limits.maxGpusPerJob", values.getOrDefault("limits.maxGpusPerJob", "64"), 1, 100_000),
        range("limits.maxSecondsPerJob", values.getOrDefault("limits.maxSecondsPerJob", "86400"), 1, 30L * 86400),
        (int) range("limits.maxQueuedJobs", values.getOrDefault("limits.maxQueuedJobs", "1000000"), 1, 100_000_000),
        (int) range("limits.maxQueuedJobsPerTenant", values.getOrDefault("limits.maxQueuedJobsPerTenant", "100000"), 1,
            100_000_000),
        (int) range("limits.maxRequestBytes", values.getOrDefault("limits.maxRequestBytes", "1048576"), 1024, 64 << 20),
        prices,
        values.getOrDefault("bme.oraclePriceAkt", "0.4823"),
        range("bme.vaultSeedAkt", values.getOrDefault("bme.vaultSeedAkt", "300000"), 0, 1_000_000_000L),
        (int) range("shutdown.drainSeconds", values.getOrDefault("shutdown.drainSeconds", "10"), 0, 3600),
        range("billing.epochSeconds", values.getOrDefault("billing.epochSeconds", "3600"), 1, 31L * 86400),
        bool("billing.priceAdjust", values.getOrDefault("billing.priceAdjust", "true")),
        range("billing.priceWindowSeconds", values.getOrDefault("billing.priceWindowSeconds", "600"), 1, 86400),
        bool("billing.bootstrapFund", values.getOrDefault("billing.bootstrapFund", "true")),
        range("billing.auditSeconds", values.getOrDefault("billing.auditSeconds", "86400"), 0, 31L * 86400),
        range("backup.everySeconds", values.getOrDefault("backup.everySeconds", "0"), 0, 31L * 86400),
        (int) range("backup.keep", values.getOrDefault("backup.keep", "7"), 1, 1000),
        days("retention.finishedJobDays", values.getOrDefault("retention.finishedJobDays", "0"), 36_500),
        (int) range("billing.bootstrapFloorPercent", values.getOrDefault("billing.bootstrapFloorPercent", "45"), 0, 100),
        instantOrNever("billing.bootstrapEndsAt", values.getOrDefault("billing.bootstrapEndsAt", "")),
        range("bme.tickSeconds", values.getOrDefault("bme.tickSeconds", "6"), 1, 3600),
        range("bme.minEpochTicks", values.getOrDefault("bme.minEpochTicks", "10"), 1, 14_400),
        payoutMinUact(values.getOrDefault("bme.payoutMinAct", "1")),
        bool("bme.aktDirect", values.getOrDefault("bme.aktDirect", "true")),
        bmeOptions(values),
        oracleSource(values.getOrDefault("oracle.source", "fixed"), values.getOrDefault("oracle.file", ""),
            values.getOrDefault("oracle.url", "")),
        values.getOrDefault("oracle.file", ""),
        values.getOrDefault("oracle.url", ""),
        parseLong("oracle.seed", values.getOrDefault("oracle.seed", "1")),
        range("oracle.pollSeconds", values.getOrDefault("oracle.pollSeconds", "2"), 1, 3600),
        range("oracle.maxStalenessSeconds", values.getOrDefault("oracle.maxStalenessSeconds", "30"), 1, 86400),
        env.getOrDefault("ANNEAL_ADMIN_KEY", ""),
        demo,
        backupPassphrase(env.getOrDefault("ANNEAL_BACKUP_PASSPHRASE", "")),
        tls(values, "http", "--tls-cert and --tls-key", false),
        clusterTls(values, cluster));
  }

  /**
   * A TLS endpoint's PEM files under {@code prefix}.tlsCert/.tlsKey (and .tlsCa when {@code withCa}): all
   * or none given, each a readable file; null when none.
   */
  static AnnealConfig.Tls tls(Map<String, String> values, String prefix, String what, boolean withCa) {
    List<String> keys = withCa ? List.of("tlsCert", "tlsKey", "tlsCa") : List.of("tlsCert", "tlsKey");
    List<Path> paths = new java.util.ArrayList<>();
    for (String k : keys) {
      String v = values.getOrDefault(prefix + "." + k, "").trim();
      if (!v.isEmpty()) {
        Path p = Path.of(v);
        if (!Files.isRegularFile(p) || !Files.isReadable(p)) {
          throw new ConfigException(prefix + "." + k + ": no readable file " + p.toAbsolutePath());
        }
        paths.add(p);
      }
    }
    if (paths.isEmpty()) return null;
    if (paths.size() != keys.size()) throw new ConfigException(what + " are given together (PEM files), or not at all");
    // the API's certificate is looked at for renewals (ADR 27 addendum); the event bus's is read at start
    long reloadMs = withCa ? 0 : range(prefix + ".tlsReloadSeconds", values.getOrDefault(prefix + ".tlsReloadSeconds", "60"), 0,
        86_400) * 1000;
    return new AnnealConfig.Tls(paths.get(0), paths.get(1), withCa ? paths.get(2) : null, reloadMs);
  }

  private static AnnealConfig.Tls clusterTls(Map<String, String> values, boolean cluster) {
    AnnealConfig.Tls t = tls(values, "cluster", "--cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca", true);
    if (t != null && !cluster) throw new ConfigException("cluster TLS is set, but this instance is not in cluster mode (--cluster)");
    return t;
  }

  /** {@code H:P,...}: each member a host and a port (TCP-IP join, ADR 19). */
  static String clusterMembers(String v) {
    for (String m : v.split(",")) {
      String t = m.trim();
      int colon = t.lastIndexOf(':');
      boolean ok = colon > 0 && colon < t.length() - 1;
      if (ok) {
        try {
          int port = Integer.parseInt(t.substring(colon + 1));
          ok = port >= 1 && port <= 65535;
        } catch (NumberFormatException e) {
          ok = false;
        }
      }
      if (!ok) throw new ConfigException("--cluster-members must be host:port,... (e.g. 127.0.0.1:5701,127.0.0.1:5702), not '" + v + "'");
    }
    return v.trim();
  }

  /**
   * How many members an instance must see to play a singleton role (ADR 19): {@code majority} (of the
   * members listed in cluster.members, the default) or a number; 1 is no quorum.
   */
  static int clusterQuorum(String v, String members) {
    String t = v.trim();
    if (t.equals("majority")) return members.split(",").length / 2 + 1;
    return (int) range("cluster.quorum", t, 1, 1000);
  }

  /** The Hazelcast cluster name: instances join only a cluster of their name. */
  static String clusterName(String v) {
    if (!v.matches("[A-Za-z0-9._-]{1,64}")) {
      throw new ConfigException("cluster.name must be 1-64 letters, digits, '.', '_' or '-', not '" + v + "'");
    }
    return v;
  }

  /** Backups hold the node's private key: a passphrase that seals them is at least 12 characters. */
  static String backupPassphrase(String p) {
    if (!p.isEmpty() && p.length() < 12) {
      throw new ConfigException("ANNEAL_BACKUP_PASSPHRASE must be at least 12 characters (it seals backups that hold the"
          + " node's private key)");
    }
    return p;
  }

  private static long instantOrNever(String key, String v) {
    if (v.isBlank()) return Long.MAX_VALUE;
    try {
      return java.time.Instant.parse(v.trim()).toEpochMilli();
    } catch (java.time.format.DateTimeParseException e) {
      throw new ConfigException(key + " must be an ISO-8601 instant such as 2027-01-01T00:00:00Z, or empty, not '" + v + "'");
    }
  }

  /**
   * bme-spec 16.4 engine options, off by default. The service always refuses a top-up below the
   * minimum mint at request (ADR 0008), so that option is on here whatever is configured.
   */
  private static io.anneal.billing.bme.BmeParams.Options bmeOptions(Map<String, String> values) {
    long restart = range("bme.restartThresholdBps", values.getOrDefault("bme.restartThresholdBps", "0"), 0, 10_000);
    long halt = io.anneal.billing.bme.BmeParams.defaults().circuitBreakerHaltThreshold();
    if (restart != 0 && restart <= halt) {
      throw new ConfigException("bme.restartThresholdBps must be 0 (off) or above the halt threshold (" + halt
          + " bps) and at most 10000, not " + restart);
    }
    return new io.anneal.billing.bme.BmeParams.Options(
        bool("bme.fifoQueue", values.getOrDefault("bme.fifoQueue", "false")), true,
        bool("bme.exactUsd", values.getOrDefault("bme.exactUsd", "false")), restart,
        range("bme.maxQueueDepth", values.getOrDefault("bme.maxQueueDepth", "0"), 0, 100_000_000));
  }

  private static boolean bool(String key, String v) {
    return switch (v.trim().toLowerCase(java.util.Locale.ROOT)) {
      case "true", "on", "yes" -> true;
      case "false", "off", "no" -> false;
      default -> throw new ConfigException(key + " must be true or false, not '" + v + "'");
    };
  }

  /** ACT with up to 6 decimals, to uact; 0 turns automatic provider payouts off. */
  private static long payoutMinUact(String act) {
    try {
      java.math.BigDecimal v = new java.math.BigDecimal(act.trim());
      if (v.signum() < 0 || v.scale() > 6 || v.compareTo(java.math.BigDecimal.valueOf(1_000_000_000L)) > 0) {
        throw new NumberFormatException();
      }
      return v.movePointRight(6).longValueExact();
    } catch (NumberFormatException | ArithmeticException e) {
      throw new ConfigException("bme.payoutMinAct must be an ACT amount between 0 and 1e9 with at most 6 decimals, not '"
          + act + "'");
    }
  }

  private static String oracleSource(String source, String file, String url) {
    if (source.equals("http")) {
      try {
        URI u = new URI(url.trim());
        if (!"http".equals(u.getScheme()) && !"https".equals(u.getScheme())) throw new URISyntaxException(url, "not http(s)");
      } catch (URISyntaxException e) {
        throw new ConfigException("oracle.source http needs --oracle-url http(s)://..., not '" + url + "'");
      }
      return source;
    }
    if (!Set.of("fixed", "file", "simulated").contains(source)) {
      throw new ConfigException("oracle.source must be fixed, file, http or simulated, not '" + source + "'");
    }
    if (source.equals("file") && file.isBlank()) throw new ConfigException("oracle.source file needs --oracle-file PATH");
    return source;
  }

  private static Map<String, String> readYaml(String path) {
    JsonNode root;
    ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
    try {
      Path p = Path.of(path);
      if (Files.exists(p)) {
        root = yaml.readTree(p.toFile());
      } else {
        try (InputStream in = ConfigLoader.class.getResourceAsStream("/application.yaml")) {
          if (in == null) throw new ConfigException("no configuration file at " + path + " and none in the jar");
          root = yaml.readTree(in);
        }
      }
    } catch (IOException e) {
      throw new ConfigException("cannot read configuration " + path + ": " + io.anneal.billing.tools.ReadFailure.why(e, "YAML"));
    }
    Map<String, String> out = new LinkedHashMap<>();
    flatten("", root, out);
    return out;
  }

  private static void flatten(String prefix, JsonNode node, Map<String, String> out) {
    if (node == null || node.isNull()) return;
    if (node.isObject()) {
      node.fields().forEachRemaining(e -> flatten(prefix.isEmpty() ? e.getKey() : prefix + "." + e.getKey(), e.getValue(), out));
    } else {
      out.put(prefix, node.asText());
    }
  }

  private static long parseLong(String key, String v) {
    try {
      return Long.parseLong(v.trim());
    } catch (NumberFormatException e) {
      throw new ConfigException(key + " must be an integer, not '" + v + "'");
    }
  }

  /** A number of days, fractions allowed (0.5 = 12 h), from 0 to {@code max}, in milliseconds. */
  private static long days(String key, String v, int max) {
    double d;
    try {
      d = Double.parseDouble(v.trim());
    } catch (NumberFormatException e) {
      throw new ConfigException(key + " must be a number of days, not '" + v + "'");
    }
    if (!(d >= 0 && d <= max)) throw new ConfigException(key + " must be between 0 and " + max + " days, not " + v.trim());
    return Math.round(d * 86_400_000);
  }

  private static long range(String key, String v, long min, long max) {
    long x = parseLong(key, v);
    if (x < min || x > max) throw new ConfigException(key + " must be between " + min + " and " + max + ", not " + x);
    return x;
  }
}
