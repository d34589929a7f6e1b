package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A backup of the embedded store taken while the service runs restores, into an empty data
 * directory, the same node with the same jobs, receipts, balances and ledger, and nothing done after it.
 */
class BackupTest {
  @TempDir Path dir;
  @TempDir Path restored;

  private static String sleepJob(TestService s) {
    return sleepJob(s, 20);
  }

  private static String sleepJob(TestService s, int ms) {
    var r = s.post("/api/v1/jobs", TestService.DEMO_KEY, new JsonObject().put("kind", "sleep").put("gpus", 1).put("maxSeconds", 30)
        .put("params", new JsonObject().put("ms", ms)).encode());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(202);
    return s.json(r).getString("id");
  }

  @Test
  void aBackupTakenWhileTheServiceRunsRestoresTheSameNodeJobsAndLedger() throws Exception {
    String before;
    String after;
    long balance;
    String nodeId;
    JsonObject receipts;
    Path zip;
    try (TestService s = TestService.start(dir)) {
      before = sleepJob(s);
      s.await(Duration.ofSeconds(30), () -> "SETTLED".equals(s.job(before).getString("state")));
      balance = s.balanceUact();
      nodeId = s.service.nodeId();
      receipts = s.json(s.get("/api/v1/receipts/" + before, TestService.DEMO_KEY));
      assertThat(s.post("/api/v1/backups", TestService.DEMO_KEY, "").statusCode()).as("admin only").isEqualTo(403);
      var r = s.post("/api/v1/backups", TestService.ADMIN_KEY, "");
      assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
      JsonObject written = s.json(r);
      zip = Path.of(written.getString("file"));
      assertThat(zip).exists().hasParent(dir.resolve("backups").toAbsolutePath());
      assertThat(written.getJsonArray("entries").getList()).contains("anneal.mv.db", "node-ed25519.pk8", "node-ed25519.pub", "node-id");
      assertThat(Files.getPosixFilePermissions(zip)).as("it holds the node's private key")
          .isEqualTo(PosixFilePermissions.fromString("rw-------"));
      assertThat(written.getLong("bytes")).isEqualTo(Files.size(zip));
      // the backup is known good before it is needed: its ledger audits clean
      var out = new java.io.ByteArrayOutputStream();
      var err = new java.io.ByteArrayOutputStream();
      assertThat(io.anneal.Main.backup(new String[] {"verify", zip.toString()}, new java.io.PrintStream(out, true),
          new java.io.PrintStream(err, true))).as(out + " " + err).isZero();
      assertThat(out.toString()).contains("anneal.mv.db", "node-ed25519.pk8", "nothing wrong found");
      Path notABackup = dir.resolve("not-a-backup.zip");
      Files.writeString(notABackup, "this is not a zip");
      assertThat(io.anneal.Main.backup(new String[] {"verify", notABackup.toString()}, new java.io.PrintStream(out, true),
          new java.io.PrintStream(err, true))).isEqualTo(2);
      assertThat(err.toString()).contains("not an Anneal backup");
      Path missing = dir.resolve("missing.zip");
      assertThat(io.anneal.Main.backup(new String[] {"verify", missing.toString()}, new java.io.PrintStream(out, true),
          new java.io.PrintStream(err, true))).isEqualTo(2);
      assertThat(err.toString()).contains("cannot read " + missing + ": no such file");
      // what happens after the backup is not in it
      after = sleepJob(s);
      s.await(Duration.ofSeconds(30), () -> "SETTLED".equals(s.job(after).getString("state")));
    }
    unzip(zip, restored);
    try (TestService s = TestService.start(restored)) {
      assertThat(s.service.nodeId()).as("the same node, with its key").isEqualTo(nodeId);
      assertThat(s.job(before).getString("state")).isEqualTo("SETTLED");
      assertThat(s.get("/api/v1/jobs/" + after, TestService.DEMO_KEY).statusCode()).isEqualTo(404);
      assertThat(s.balanceUact()).isEqualTo(balance);
      assertThat(s.json(s.get("/api/v1/receipts/" + before, TestService.DEMO_KEY))).isEqualTo(receipts);
      JsonObject audit = s.json(s.get("/api/v1/ledger/audit", TestService.ADMIN_KEY));
      assertThat(audit.getBoolean("clean")).as(audit.encode()).isTrue();
      // and it goes on working
      String next = sleepJob(s);
      s.await(Duration.ofSeconds(30), () -> "SETTLED".equals(s.job(next).getString("state")));
    }
  }

  @Test
  void aBackupTakenWhileJobsRunAndSettleRestoresAConsistentLedgerThatSettlesEachOnce() throws Exception {
    java.util.List<String> jobs = new java.util.ArrayList<>();
    long start;
    Path zip;
    try (TestService s = TestService.start(dir)) {
      start = s.balanceUact();
      for (int i = 0; i < 24; i++) jobs.add(sleepJob(s, 300)); // 4 devices: most wait, some run, some settle
      s.await(Duration.ofSeconds(30), () -> jobs.stream().anyMatch(j -> "SETTLED".equals(s.job(j).getString("state"))));
      var r = s.post("/api/v1/backups", TestService.ADMIN_KEY, "");
      assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
      zip = Path.of(s.json(r).getString("file"));
      // the snapshot was taken mid-flight: some jobs had not settled even after it
      assertThat(jobs.stream().filter(j -> !"SETTLED".equals(s.job(j).getString("state"))).count()).isPositive();
    }
    unzip(zip, restored);
    try (TestService s = TestService.start(restored)) {
      JsonObject audit = s.json(s.get("/api/v1/ledger/audit", TestService.ADMIN_KEY));
      assertThat(audit.getBoolean("clean")).as(audit.encode()).isTrue();
      // what the snapshot holds runs on: every job it knew settles, once
      java.util.List<String> known = jobs.stream().filter(j -> s.get("/api/v1/jobs/" + j, TestService.DEMO_KEY).statusCode() == 200)
          .toList();
      assertThat(known).isNotEmpty();
      s.await(Duration.ofSeconds(60), () -> known.stream().allMatch(j -> "SETTLED".equals(s.job(j).getString("state"))));
      long charged = known.stream().mapToLong(j -> s.job(j).getLong("chargeUact")).sum();
      assertThat(s.balanceUact()).as("each job charged once").isEqualTo(start - charged);
      assertThat(s.json(s.get("/api/v1/me", TestService.DEMO_KEY)).getJsonObject("balance").getLong("escrowUact")).isZero();
    }
  }

  @Test
  void aBackupSealedWithAPassphraseOpensOnlyWithItAndRestoresTheSameNode() throws Exception {
    String passphrase = "a passphrase of the operator's";
    Map<String, String> env = Map.of("ANNEAL_BACKUP_PASSPHRASE", passphrase);
    String job;
    String nodeId;
    Path sealed;
    try (TestService s = TestService.start(dir, null, env)) {
      job = sleepJob(s);
      s.await(Duration.ofSeconds(30), () -> "SETTLED".equals(s.job(job).getString("state")));
      nodeId = s.service.nodeId();
      var r = s.post("/api/v1/backups", TestService.ADMIN_KEY, "");
      assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
      sealed = Path.of(s.json(r).getString("file"));
    }
    assertThat(sealed.getFileName().toString()).endsWith(".zip.enc");
    assertThat(io.anneal.store.BackupCrypto.isSealed(sealed)).isTrue();
    assertThat(Files.getPosixFilePermissions(sealed)).isEqualTo(PosixFilePermissions.fromString("rw-------"));
    try (var files = Files.list(dir.resolve("backups"))) {
      assertThat(files.map(f -> f.getFileName().toString())).as("no unsealed copy left").containsExactly(sealed.getFileName().toString());
    }
    var out = new java.io.ByteArrayOutputStream();
    var err = new java.io.ByteArrayOutputStream();
    var o = new java.io.PrintStream(out, true);
    var e = new java.io.PrintStream(err, true);
    assertThat(io.anneal.Main.backup(new String[] {"verify", sealed.toString()}, env, o, e)).as(out + " " + err).isZero();
    assertThat(out.toString()).contains("nothing wrong found");
    assertThat(io.anneal.Main.backup(new String[] {"verify", sealed.toString()}, Map.of(), o, e)).isEqualTo(2);
    assertThat(err.toString()).contains("set ANNEAL_BACKUP_PASSPHRASE");
    assertThat(io.anneal.Main.backup(new String[] {"verify", sealed.toString()},
        Map.of("ANNEAL_BACKUP_PASSPHRASE", "not the passphrase"), o, e)).isEqualTo(2);
    assertThat(err.toString()).contains("wrong passphrase");
    Path zip = dir.resolve("opened.zip");
    assertThat(io.anneal.Main.backup(new String[] {"open", sealed.toString(), zip.toString()}, env, o, e)).isZero();
    assertThat(Files.getPosixFilePermissions(zip)).isEqualTo(PosixFilePermissions.fromString("rw-------"));
    unzip(zip, restored);
    try (TestService s = TestService.start(restored)) {
      assertThat(s.service.nodeId()).isEqualTo(nodeId);
      assertThat(s.job(job).getString("state")).isEqualTo("SETTLED");
    }
  }

  private static void unzip(Path zip, Path into) throws Exception {
    try (ZipInputStream in = new ZipInputStream(Files.newInputStream(zip))) {
      for (ZipEntry e; (e = in.getNextEntry()) != null; ) {
        Path to = into.resolve(e.getName()).normalize();
        assertThat(to.startsWith(into)).as(e.getName()).isTrue();
        Files.createDirectories(to.getParent());
        Files.copy((InputStream) in, to);
      }
    }
  }

  @Test
  void automaticBackupsAreWrittenOnScheduleAndOnlyTheNewestAreKept() throws Exception {
    try (TestService s = TestService.start(dir, "--backup-every-seconds", "1", "--backup-keep", "2")) {
      Path backups = dir.resolve("backups");
      s.await(Duration.ofSeconds(20), () -> zips(backups).size() == 2);
      List<String> first = zips(backups);
      // later backups replace the older ones: still two
      s.await(Duration.ofSeconds(20), () -> !zips(backups).contains(first.get(0)) && !zips(backups).contains(first.get(1)));
      assertThat(zips(backups)).hasSize(2);
      String metrics = s.get("/metrics", null).body();
      assertThat(metrics).containsPattern("anneal_backup_last_ended_seconds [0-9.E]+");
      assertThat(metrics).containsPattern("anneal_backup_last_size_bytes [0-9.E]+");
    }
  }

  private static List<String> zips(Path dir) {
    if (!Files.isDirectory(dir)) return List.of();
    try (var files = Files.list(dir)) {
      return files.map(p -> p.getFileName().toString()).filter(n -> n.matches("anneal-.*[0-9]\\.zip")).sorted().toList();
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  @Test
  void automaticBackupsOfAPostgresStoreAreRefusedAtStart() throws Exception {
    io.anneal.billing.ledger.TestDatabases.requirePostgres();
    String schema = "e2e_" + Long.toHexString(System.nanoTime());
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> TestService.start(dir, "--backup-every-seconds", "3600", "--db-url",
        io.anneal.billing.ledger.TestDatabases.localPostgresUrl() + "&currentSchema=" + schema))
        .hasStackTraceContaining("automatic backups are of the embedded store");
    try (var db = io.anneal.billing.sql.Database.open(io.anneal.billing.ledger.TestDatabases.localPostgresUrl(), schema, 2)) {
      db.dropSchema(); // if the refused start made it
    }
  }

  @Test
  void aPostgresStoreIsBackedUpByPostgresTools() throws Exception {
    io.anneal.billing.ledger.TestDatabases.requirePostgres();
    String schema = "e2e_" + Long.toHexString(System.nanoTime());
    try (TestService s = TestService.start(dir, "--db-url",
        io.anneal.billing.ledger.TestDatabases.localPostgresUrl() + "&currentSchema=" + schema)) {
      var r = s.post("/api/v1/backups", TestService.ADMIN_KEY, "");
      assertThat(r.statusCode()).isEqualTo(409);
      assertThat(s.json(r).getString("type")).endsWith("/backup-unsupported");
      assertThat(s.json(r).getString("detail")).contains("pg_dump");
      assertThat(dir.resolve("backups")).doesNotExist();
      s.service.database().dropSchema();
    }
  }
}
