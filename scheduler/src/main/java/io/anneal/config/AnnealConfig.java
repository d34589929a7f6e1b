package io.anneal.config;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/** The whole runtime configuration, read once at start (file, then environment, then flags). */
public record AnnealConfig(
    int httpPort,
    Path dataDir,
    String dbUrl,
    int dbPoolSize,
    int settlementLanes,
    String ledgerClient,
    Set<String> roles,
    String nodeId,
    boolean cluster,
    int clusterPort,
    String clusterMembers,
    String clusterHost,
    String clusterName,
    String clusterConfig,
    long takeoverGraceMs,
    long nodeTimeoutMs,
    long reconcileAfterMs,
    int clusterQuorum,
    long tenantRecheckMs,
    long sweepMarginMs,
    String gpuBackend,
    int cpuDevices,
    String simulatedGpus,
    int maxGpusPerJob,
    long maxSecondsPerJob,
    int maxQueuedJobs,
    int maxQueuedJobsPerTenant,
    int maxRequestBytes,
    Map<String, Long> pricesUactPerGpuHour,
    String oraclePriceAkt,
    long vaultSeedAkt,
    int drainSeconds,
    long epochSeconds,
    boolean priceAdjust,
    long priceWindowSeconds,
    boolean bootstrapFund,
    long ledgerAuditSeconds,
    long backupEverySeconds,
    int backupKeep,
    long finishedJobRetentionMs,
    int bootstrapFloorPercent,
    long bootstrapEndsAtMs,
    long tickSeconds,
    long minEpochTicks,
    long payoutMinUact,
    boolean aktDirect,
    io.anneal.billing.bme.BmeParams.Options bmeOptions,
    String oracleSource,
    String oracleFile,
    String oracleUrl,
    long oracleSeed,
    long oraclePollSeconds,
    long oracleMaxStalenessSeconds,
    String adminKey,
    String demoTenant,
    String backupPassphrase,
    Tls httpTls,
    Tls clusterTls) {

  public static final Set<String> ALL_ROLES = Set.of("api", "scheduler", "worker", "billing");

  /**
   * PEM files of a TLS endpoint (ADR 27): its certificate chain, its private key, and for the cluster's
   * event bus the certificate authority every peer's certificate must chain to (null for HTTP);
   * {@code reloadCheckMs}: how often the files are looked at for a renewal (0: read at start only).
   */
  public record Tls(Path certPath, Path keyPath, Path caPath, long reloadCheckMs) {}

  public AnnealConfig {
    roles = Set.copyOf(roles);
    pricesUactPerGpuHour = Map.copyOf(pricesUactPerGpuHour);
  }

  public boolean hasRole(String role) {
    return roles.contains(role);
  }

  /** The configuration as printed at start: secrets are replaced by whether they are set. */
  public Map<String, Object> printable() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("http.port", httpPort);
    m.put("dataDir", dataDir.toAbsolutePath().normalize());
    m.put("db.url", dbUrl.isEmpty() ? "(H2 file in dataDir)" : dbUrl.replaceAll(":[^:@/]*@", ":***@"));
    m.put("db.poolSize", dbPoolSize);
    m.put("db.settlementLanes", settlementLanes < 0 ? "auto" : settlementLanes);
    m.put("db.ledgerClient", ledgerClient);
    m.put("roles", String.join(",", new java.util.TreeSet<>(roles)));
    m.put("node.id", nodeId.isEmpty() ? "(from dataDir)" : nodeId);
    m.put("http.tls", httpTls == null ? "off" : httpTls.certPath().toString());
    if (httpTls != null) m.put("http.tlsReloadSeconds", httpTls.reloadCheckMs() / 1000);
    m.put("cluster", cluster);
    if (cluster) {
      m.put("cluster.tls", clusterTls == null ? "off" : clusterTls.certPath() + " (peers signed by " + clusterTls.caPath() + ")");
      m.put("cluster.port", clusterPort);
      m.put("cluster.members", clusterMembers);
      m.put("cluster.host", clusterHost);
      m.put("cluster.name", clusterName);
      m.put("cluster.config", clusterConfig);
      m.put("cluster.takeoverGraceSeconds", takeoverGraceMs / 1000.0);
      m.put("cluster.nodeTimeoutSeconds", nodeTimeoutMs / 1000.0);
      m.put("cluster.reconcileAfterSeconds", reconcileAfterMs / 1000.0);
      m.put("cluster.quorum", clusterQuorum);
      m.put("cluster.tenantRecheckSeconds", tenantRecheckMs / 1000.0);
      m.put("cluster.sweepMarginSeconds", sweepMarginMs / 1000.0);
    }
    m.put("gpu.backend", gpuBackend);
    m.put("gpu.cpuDevices", cpuDevices);
    m.put("gpu.simulated", simulatedGpus.isEmpty() ? "-" : simulatedGpus);
    m.put("limits.maxGpusPerJob", maxGpusPerJob);
    m.put("limits.maxSecondsPerJob", maxSecondsPerJob);
    m.put("limits.maxQueuedJobs", maxQueuedJobs);
    m.put("limits.maxQueuedJobsPerTenant", maxQueuedJobsPerTenant);
    m.put("limits.maxRequestBytes", maxRequestBytes);
    m.put("pricing", new java.util.TreeMap<>(pricesUactPerGpuHour));
    m.put("bme.oraclePriceAkt", oraclePriceAkt);
    m.put("bme.vaultSeedAkt", vaultSeedAkt);
    m.put("shutdown.drainSeconds", drainSeconds);
    m.put("billing.epochSeconds", epochSeconds);
    m.put("billing.priceAdjust", priceAdjust);
    m.put("billing.priceWindowSeconds", priceWindowSeconds);
    m.put("billing.bootstrapFund", bootstrapFund);
    m.put("billing.auditSeconds", ledgerAuditSeconds == 0 ? "0 (off)" : ledgerAuditSeconds);
    m.put("backup.everySeconds", backupEverySeconds == 0 ? "0 (off)" : backupEverySeconds);
    m.put("backup.keep", backupKeep);
    m.put("retention.finishedJobDays", finishedJobRetentionMs == 0 ? "0 (off)" : finishedJobRetentionMs / 86_400_000.0);
    m.put("billing.bootstrapFloorPercent", bootstrapFloorPercent);
    m.put("billing.bootstrapEndsAt", bootstrapEndsAtMs == Long.MAX_VALUE ? "never" : java.time.Instant.ofEpochMilli(bootstrapEndsAtMs));
    m.put("bme.tickSeconds", tickSeconds);
    m.put("bme.minEpochTicks", minEpochTicks);
    m.put("bme.aktDirect", aktDirect);
    m.put("bme.fifoQueue", bmeOptions.fifoQueue());
    m.put("bme.restartThresholdBps", bmeOptions.restartThresholdBps() == 0 ? "0 (off)" : bmeOptions.restartThresholdBps());
    m.put("bme.maxQueueDepth", bmeOptions.maxQueueDepth() == 0 ? "0 (off)" : bmeOptions.maxQueueDepth());
    m.put("bme.exactUsd", bmeOptions.exactUsd());
    m.put("bme.payoutMinAct", payoutMinUact == 0 ? "0 (automatic payouts off)" : java.math.BigDecimal.valueOf(payoutMinUact, 6).toPlainString());
    m.put("oracle.source", oracleSource + (oracleSource.equals("file") ? " (" + oracleFile + ")"
        : oracleSource.equals("http") ? " (" + oracleUrl.replaceAll("//[^/@]*@", "//***@") + ")" : ""));
    m.put("oracle.pollSeconds", oraclePollSeconds);
    m.put("oracle.maxStalenessSeconds", oracleMaxStalenessSeconds);
    m.put("ANNEAL_ADMIN_KEY", adminKey.isEmpty() ? "not set" : "set");
    m.put("ANNEAL_BACKUP_PASSPHRASE", backupPassphrase.isEmpty() ? "not set (backups are not sealed)" : "set (backups are sealed)");
    m.put("ANNEAL_DEMO_TENANT", demoTenant.isEmpty() ? "not set" : "set (" + demoTenant.split(":", 2)[0] + ")");
    return m;
  }
}
