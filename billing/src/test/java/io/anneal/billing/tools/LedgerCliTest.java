package io.anneal.billing.tools;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.bme.BmeParams;
import io.anneal.billing.bme.OracleSnapshot;
import io.anneal.billing.ledger.SqlLedger;
import io.anneal.billing.ledger.TestDatabases;
import io.anneal.billing.sql.Database;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code anneal ledger verify} as an operator meets it: its exit status and what it prints. */
class LedgerCliTest {
  @TempDir
  Path dir;

  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private final ByteArrayOutputStream err = new ByteArrayOutputStream();

  private int verify(String dbUrl, Path dataDir) {
    return LedgerCli.verify(dbUrl, dataDir, 10, new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
  }

  private String out() {
    return out.toString(StandardCharsets.UTF_8);
  }

  private String err() {
    return err.toString(StandardCharsets.UTF_8);
  }

  /** A ledger as the service leaves it in its data dir: migrated, with a funded tenant. */
  private static void ledgerIn(Database db) throws Exception {
    db.migrate("db/ledger", "flyway_ledger_history");
    try (Connection c = db.connection()) {
      c.setAutoCommit(false);
      OracleSnapshot oracle = OracleSnapshot.healthy("0.5");
      SqlLedger.fundVault(c, "seed", 1_000_000_000L);
      SqlLedger.updateBreaker(c, oracle, BmeParams.defaults());
      SqlLedger.openTenantAccounts(c, "t1");
      SqlLedger.depositAndMint(c, "t1", "d1", 1_000_000L, oracle, BmeParams.defaults());
      c.commit();
    }
  }

  @Test
  void aSoundLedgerExitsZeroAndSaysWhatWasChecked() throws Exception {
    try (Database db = Database.h2File(dir, 2)) {
      ledgerIn(db);
    }
    assertThat(verify("", dir)).as(err()).isZero();
    assertThat(out()).contains("ledger verify: H2 " + dir.resolve("anneal.mv.db").toAbsolutePath().normalize())
        .contains("  journal: ").contains("  balance: ").contains("  receipts: 0 settled receipts")
        .contains("  entries: ").contains("  epochs: ").endsWith("ledger verify: nothing wrong found\n");
  }

  @Test
  void findingsExitOneAndAreListed() throws Exception {
    try (Database db = Database.h2File(dir, 2)) {
      ledgerIn(db);
      try (Connection c = db.connection(); var st = c.createStatement()) {
        st.executeUpdate("UPDATE balance SET amount = amount + 5 WHERE account = 'tenant:t1' AND denom = 'uact'");
      }
    }
    assertThat(verify(null, dir)).isEqualTo(1);
    assertThat(out()).contains("FOUND balance tenant:t1 uact: balance ").endsWith("ledger verify: 1 finding(s)\n");
  }

  @Test
  void withJsonTheReportIsOneObjectAsTheApiAnswers() throws Exception {
    try (Database db = Database.h2File(dir, 2)) {
      ledgerIn(db);
      try (Connection c = db.connection(); var st = c.createStatement()) {
        st.executeUpdate("UPDATE balance SET amount = amount + 5 WHERE account = 'tenant:t1' AND denom = 'uact'");
      }
    }
    assertThat(LedgerCli.verify("", dir, 10, true, new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8))).isEqualTo(1);
    var report = new com.fasterxml.jackson.databind.ObjectMapper().readTree(out());
    assertThat(report.get("clean").asBoolean()).isFalse();
    assertThat(report.get("findingCount").asLong()).isEqualTo(1);
    assertThat(report.get("findings").get(0).get("check").asText()).isEqualTo("balance");
    assertThat(report.get("findings").get(0).get("subject").asText()).isEqualTo("tenant:t1 uact");
    assertThat(report.get("checked").get("receipts").asText()).startsWith("0 settled receipts");
  }

  @Test
  void aDirectoryWithoutALedgerIsRefusedAndNothingIsCreated() throws Exception {
    assertThat(verify("", dir)).isEqualTo(2);
    assertThat(err()).contains("no ledger in " + dir.toAbsolutePath().normalize());
    try (var files = Files.list(dir)) {
      assertThat(files).isEmpty();
    }
  }

  @Test
  void anH2LedgerInUseByTheServiceIsRefusedPlainly() throws Exception {
    try (Database db = Database.h2File(dir, 2)) {
      ledgerIn(db);
    }
    // another process holds the file, as a running service does (within one JVM, H2 would share it)
    Process holder = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp",
        System.getProperty("java.class.path"), Holder.class.getName(), dir.toString()).redirectErrorStream(true).start();
    try {
      var lines = new java.io.BufferedReader(new java.io.InputStreamReader(holder.getInputStream(), StandardCharsets.UTF_8));
      for (String line = lines.readLine(); !"open".equals(line); line = lines.readLine()) {
        assertThat(line).as("the holder process ended before it opened the ledger").isNotNull();
      }
      assertThat(verify("", dir)).isEqualTo(2);
    } finally {
      holder.destroy();
      holder.waitFor();
    }
    assertThat(err()).contains("the H2 database is in use by a running service; stop it first");
  }

  /** Holds the H2 ledger in {@code args[0]} open until its standing input ends (the test destroys it). */
  public static final class Holder {
    public static void main(String[] args) throws Exception {
      try (Database db = Database.h2File(Path.of(args[0]), 1); Connection c = db.connection()) {
        System.out.println("open");
        while (System.in.read() >= 0) {
          // held until the parent closes the pipe or kills this process
        }
      }
    }
  }

  @Test
  void aLedgerNotMigratedToThisVersionIsRefused() throws Exception {
    try (Database db = Database.h2File(dir, 2)) {
      db.migrate("db/ledger", "flyway_ledger_history", "14");
    }
    assertThat(verify("", dir)).isEqualTo(2);
    assertThat(err()).contains("migration(s) behind this version of Anneal");
  }

  @Test
  void aPostgresLedgerIsVerifiedThroughItsUrl() throws Exception {
    TestDatabases.requirePostgres();
    Database db = TestDatabases.freshPostgres(TestDatabases.localPostgresUrl());
    try {
      ledgerIn(db);
      assertThat(verify(TestDatabases.localPostgresUrl() + "&currentSchema=" + db.schema(), null)).as(err()).isZero();
      assertThat(out()).contains("nothing wrong found");
    } finally {
      db.dropSchema();
      db.close();
    }
  }
}
