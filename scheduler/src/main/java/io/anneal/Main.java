package io.anneal;

import io.anneal.config.AnnealConfig;
import io.anneal.config.ConfigLoader;
import io.anneal.gpu.Backends;
import io.anneal.service.AnnealService;
import java.util.Arrays;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * {@code java -jar anneal.jar [options]} runs the service; {@code bme ...} runs the BME tools;
 * {@code ledger verify} audits the ledger; {@code receipt verify} checks a job's receipts offline;
 * {@code backup verify} audits the ledger inside a backup.
 */
public final class Main {
  /** Strong references: java.util.logging keeps loggers weakly, and a collected one forgets its level. */
  private static final java.util.List<java.util.logging.Logger> QUIET = new java.util.ArrayList<>();

  private Main() {}

  public static void main(String[] args) throws Exception {
    System.setProperty("java.util.logging.SimpleFormatter.format", "%1$tF %1$tT %4$-7s %3$s - %5$s%6$s%n");
    // third-party start-up chatter stays out of the operator's way; warnings still show
    for (String quiet : new String[] {"org.flywaydb", "com.zaxxer.hikari", "io.netty"}) {
      java.util.logging.Logger.getLogger(quiet).setLevel(java.util.logging.Level.WARNING);
      QUIET.add(java.util.logging.Logger.getLogger(quiet));
    }
    if (args.length > 0 && args[0].equals("bme")) {
      System.exit(io.anneal.billing.tools.BmeCli.run(Arrays.copyOfRange(args, 1, args.length), System.out, System.err));
    }
    if (args.length > 0 && args[0].equals("receipt")) {
      System.exit(io.anneal.billing.tools.ReceiptCli.run(Arrays.copyOfRange(args, 1, args.length), System.in, System.out, System.err));
    }
    if (args.length > 0 && args[0].equals("backup")) {
      System.exit(backup(Arrays.copyOfRange(args, 1, args.length), System.out, System.err));
    }
    if (args.length > 0 && args[0].equals("ledger")) {
      System.exit(ledger(Arrays.copyOfRange(args, 1, args.length), System.getenv(), System.out, System.err));
    }
    if (args.length > 0 && (args[0].equals("--help") || args[0].equals("-h"))) {
      System.out.println(USAGE);
      return;
    }
    AnnealConfig config;
    try {
      config = ConfigLoader.load(args, System.getenv());
    } catch (ConfigLoader.ConfigException e) {
      System.err.println("anneal: " + e.getMessage());
      System.exit(2);
      return;
    }
    System.out.println("Anneal starting with:");
    config.printable().forEach((k, v) -> System.out.println("  " + k + " = " + v));
    AnnealService service = new AnnealService(config);
    CountDownLatch stopped = new CountDownLatch(1);
    try {
      service.start().toCompletionStage().toCompletableFuture().get(120, TimeUnit.SECONDS);
    } catch (Exception e) {
      Throwable cause = e.getCause() != null ? e.getCause() : e;
      if (cause instanceof Backends.UnavailableException || cause instanceof IllegalStateException) {
        System.err.println("anneal: " + cause.getMessage());
      } else {
        System.err.println("anneal: failed to start: " + cause);
      }
      service.stop();
      System.exit(1);
      return;
    }
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      System.out.println("Anneal stopping (draining up to " + config.drainSeconds() + " s)...");
      service.stop();
      // java.util.logging may already be reset by its own shutdown hook: say it on stdout
      System.out.println("Anneal stopped; the store is flushed.");
      stopped.countDown();
    }, "anneal-shutdown"));
    System.out.println("Anneal is ready at http://localhost:" + service.httpPort() + "/ (node " + service.nodeId() + ")");
    stopped.await();
  }

  static final String BACKUP_USAGE = "usage: anneal backup verify FILE.zip|FILE.zip.enc [--max-findings N] [--json]\n"
      + "       anneal backup open FILE.zip.enc OUT.zip\n"
      + "  a sealed backup (.zip.enc) is opened with the passphrase in ANNEAL_BACKUP_PASSPHRASE";

  /**
   * {@code backup verify FILE.zip}: opens a backup (POST /api/v1/backups, or an automatic one) in a
   * directory of its own and audits the ledger in it as {@code ledger verify} does, so that a backup
   * is known to restore to a consistent ledger before it is needed. Exit status as {@code ledger verify}.
   */
  public static int backup(String[] args, java.io.PrintStream out, java.io.PrintStream err) {
    return backup(args, System.getenv(), out, err);
  }

  public static int backup(String[] args, java.util.Map<String, String> env, java.io.PrintStream out,
      java.io.PrintStream err) {
    if (args.length == 3 && args[0].equals("open")) return openBackup(java.nio.file.Path.of(args[1]),
        java.nio.file.Path.of(args[2]), env, out, err);
    if (args.length < 2 || !args[0].equals("verify")) {
      err.println(BACKUP_USAGE);
      return 2;
    }
    java.nio.file.Path given = java.nio.file.Path.of(args[1]);
    java.nio.file.Path zip = given;
    int maxFindings = 100;
    boolean json = false;
    for (int i = 2; i < args.length; i++) {
      if (args[i].equals("--json")) {
        json = true;
      } else if (args[i].equals("--max-findings") && i + 1 < args.length && args[i + 1].matches("[0-9]{1,9}")) {
        maxFindings = Integer.parseInt(args[++i]);
      } else {
        err.println("backup verify: unexpected argument " + args[i] + "\n" + BACKUP_USAGE);
        return 2;
      }
    }
    java.nio.file.Path dir = null;
    try {
      dir = java.nio.file.Files.createTempDirectory("anneal-backup-verify");
      if (java.nio.file.Files.isRegularFile(given) && io.anneal.store.BackupCrypto.isSealed(given)) {
        String passphrase = env.getOrDefault("ANNEAL_BACKUP_PASSPHRASE", "");
        if (passphrase.isEmpty()) {
          err.println("backup verify: " + given + " is sealed: set ANNEAL_BACKUP_PASSPHRASE to the passphrase it was sealed with");
          return 2;
        }
        zip = dir.resolve("opened.zip");
        io.anneal.store.BackupCrypto.open(given, zip, passphrase.toCharArray());
      }
      java.util.List<String> entries = new java.util.ArrayList<>();
      try (java.util.zip.ZipInputStream in = new java.util.zip.ZipInputStream(java.nio.file.Files.newInputStream(zip))) {
        for (java.util.zip.ZipEntry e; (e = in.getNextEntry()) != null; ) {
          java.nio.file.Path to = dir.resolve(e.getName()).normalize();
          if (!to.startsWith(dir) || e.isDirectory() || to.equals(zip)) continue; // only files inside the directory
          java.nio.file.Files.createDirectories(to.getParent());
          java.nio.file.Files.copy(in, to);
          entries.add(e.getName());
        }
      }
      if (!entries.contains("anneal.mv.db")) {
        err.println("backup verify: " + given + " is not an Anneal backup (no anneal.mv.db in it)");
        return 2;
      }
      if (!json) out.println("backup verify: " + given + " holds " + String.join(", ", entries));
      return io.anneal.billing.tools.LedgerCli.verify(null, dir, maxFindings, json, out, err);
    } catch (java.io.IOException e) {
      err.println("backup verify: cannot read " + given + ": " + io.anneal.billing.tools.ReadFailure.why(e));
      return 2;
    } finally {
      if (dir != null) {
        try (var files = java.nio.file.Files.walk(dir)) {
          files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (java.io.IOException ignored) {
          // a temporary directory left behind
        }
      }
    }
  }

  /** {@code backup open FILE.zip.enc OUT.zip}: a sealed backup opened into a zip (owner-only) to restore from. */
  static int openBackup(java.nio.file.Path sealed, java.nio.file.Path out, java.util.Map<String, String> env,
      java.io.PrintStream o, java.io.PrintStream err) {
    String passphrase = env.getOrDefault("ANNEAL_BACKUP_PASSPHRASE", "");
    if (passphrase.isEmpty()) {
      err.println("backup open: set ANNEAL_BACKUP_PASSPHRASE to the passphrase " + sealed + " was sealed with");
      return 2;
    }
    try {
      if (java.nio.file.Files.exists(out)) {
        err.println("backup open: " + out + " exists; give a new file");
        return 2;
      }
      try {
        java.nio.file.Files.createFile(out, java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
            java.nio.file.attribute.PosixFilePermissions.fromString("rw-------")));
      } catch (UnsupportedOperationException e) {
        java.nio.file.Files.createFile(out);
      }
      io.anneal.store.BackupCrypto.open(sealed, out, passphrase.toCharArray());
      o.println("backup open: " + sealed + " opened into " + out + "; unzip it into an empty data directory to restore");
      return 0;
    } catch (java.io.IOException e) {
      err.println("backup open: " + e.getMessage());
      return 1;
    }
  }

  /**
   * {@code ledger verify [--max-findings N] [service options]}: audits the ledger that the service,
   * started with the same options, configuration file and environment, would open.
   */
  static int ledger(String[] args, java.util.Map<String, String> env, java.io.PrintStream out, java.io.PrintStream err) {
    if (args.length == 0 || !args[0].equals("verify")) {
      err.println(io.anneal.billing.tools.LedgerCli.USAGE);
      return 2;
    }
    int maxFindings = 100;
    boolean json = false;
    java.util.List<String> rest = new java.util.ArrayList<>();
    for (int i = 1; i < args.length; i++) {
      String a = args[i];
      if (a.equals("--json")) {
        json = true;
      } else if (a.equals("--max-findings") || a.startsWith("--max-findings=")) {
        String v = a.contains("=") ? a.substring(a.indexOf('=') + 1) : i + 1 < args.length ? args[++i] : "";
        try {
          maxFindings = Integer.parseInt(v);
          if (maxFindings < 0) throw new NumberFormatException();
        } catch (NumberFormatException e) {
          err.println("ledger verify: --max-findings takes a count >= 0, not '" + v + "'\n" + io.anneal.billing.tools.LedgerCli.USAGE);
          return 2;
        }
      } else {
        rest.add(a);
      }
    }
    AnnealConfig config;
    try {
      config = ConfigLoader.load(rest.toArray(new String[0]), env);
    } catch (ConfigLoader.ConfigException e) {
      err.println("ledger verify: " + e.getMessage() + "\n" + io.anneal.billing.tools.LedgerCli.USAGE);
      return 2;
    }
    return io.anneal.billing.tools.LedgerCli.verify(config.dbUrl(), config.dataDir(), maxFindings, json, out, err);
  }

  static final String USAGE = String.join("\n",
      "usage: java -jar scheduler/target/anneal.jar [options]",
      "       java -jar scheduler/target/anneal.jar bme replay FILE.json [--check]",
      "       java -jar scheduler/target/anneal.jar bme simulate --scenario NAME [--hours N] [--seed S] [--out DIR]",
      "       java -jar scheduler/target/anneal.jar ledger verify [--data-dir DIR | --db-url URL] [--max-findings N] [--json]",
      "       java -jar scheduler/target/anneal.jar receipt verify FILE|- [--node-key [NODE=]KEY] [--epoch-root [EPOCH=]HEX]",
      "       java -jar scheduler/target/anneal.jar backup verify FILE.zip [--max-findings N] [--json]",
      "options (each also --name=value; README \"Configuration\" has every setting):",
      "  --http-port N            HTTP/WebSocket port (default 8080, 0 = any free port)",
      "  --data-dir DIR           H2 database, node key, admin key (default ./data)",
      "  --db-url URL             postgresql://user@host:port/db (default: H2 file in the data dir)",
      "  --settlement-lanes N     receipts settled by N transactions at once (PostgreSQL; default auto = 3)",
      "  --ledger-client C        jdbc or vertx: how billing settles receipts (default jdbc)",
      "  --roles R,...            api, scheduler, worker, billing or all (default all)",
      "  --node-id ID             this node's id (default: generated once, kept in the data dir)",
      "  --gpu-backend B          auto, jcuda, cpu, simulated (default auto)",
      "  --simulated-gpus N[:C]   add N simulated GPUs of class C (default H100)",
      "  --cpu-devices N          devices of the CPU reference backend (default 4)",
      "  --max-queued-jobs N      above it, submits are refused as overloaded (default 1000000)",
      "  --max-queued-jobs-per-tenant N  a tenant's submits are refused with tenant-queue-full at N jobs queued (default 100000)",
      "  --oracle-source S        fixed, file, http or simulated (default fixed)",
      "  --oracle-price-akt P     the fixed price, and where the simulated walk starts (default 0.4823)",
      "  --oracle-file PATH       price file for --oracle-source file",
      "  --oracle-url URL         price feed for --oracle-source http",
      "  --oracle-poll-seconds N  how often the file or feed is read (default 2)",
      "  --oracle-max-staleness-seconds N  an older price is ignored (default 30)",
      "  --tick-seconds N         BME tick (default 6)",
      "  --min-epoch-ticks N      payouts execute every N ticks (default 10)",
      "  --payout-min-act A       automatic payouts from A ACT; 0 = off (default 1)",
      "  --akt-direct B           jobs paid from AKT-direct deposits while halted (default true)",
      "  --epoch-seconds N        accounting epoch (default 3600)",
      "  --price-adjust B         class prices follow utilization (default true)",
      "  --price-window-seconds N pricing and bootstrap window (default 600)",
      "  --bootstrap-fund B       bootstrap fund for small providers (default true)",
      "  --ledger-audit-seconds N the billing role audits the ledger every N s (default 86400, 0 = off)",
      "  --backup-every-seconds N H2 store: a backup into <data dir>/backups every N s (default 0 = off)",
      "  --retention-finished-job-days D  finished jobs are removed D days after they end; receipts stay (default 0 = kept)",
      "  --backup-keep N          the newest N backups are kept (default 7)",
      "  --drain-seconds N        grace for running jobs on SIGTERM (default 10)",
      "  --cluster                join a cluster over Hazelcast (needs --db-url PostgreSQL; README: Cluster mode)",
      "  --cluster-port N         this member's Hazelcast port (default 5701)",
      "  --cluster-members H:P,.. members to join over TCP-IP (default 127.0.0.1:5701)",
      "  --cluster-host H         the address other instances reach this one at (default 127.0.0.1)",
      "  --cluster-tls-cert F, --cluster-tls-key F, --cluster-tls-ca F  PEM files: TLS both ways between instances",
      "  --tls-cert F, --tls-key F  PEM certificate chain and key: the API serves HTTPS and WSS only",
      "  --config FILE            configuration file (default config/application.yaml)",
      "environment: ANNEAL_ADMIN_KEY, ANNEAL_DEMO_TENANT=name:key:akt, ANNEAL_* for every option");
}
