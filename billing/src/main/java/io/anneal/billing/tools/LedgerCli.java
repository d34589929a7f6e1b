package io.anneal.billing.tools;

import io.anneal.billing.ledger.LedgerAudit;
import io.anneal.billing.sql.Database;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.SQLException;

/**
 * {@code anneal ledger verify}: audits the ledger the service would open ({@link LedgerAudit}) and
 * prints what it checked and what it found. Exit status 0 when nothing is wrong, 1 when something is,
 * 2 when the ledger cannot be audited (not found, in use, not migrated, unreachable).
 */
public final class LedgerCli {
  private LedgerCli() {}

  public static final String USAGE =
      "usage: anneal ledger verify [--data-dir DIR | --db-url URL] [--config FILE] [--max-findings N] [--json]";

  /** Where the ledger is: the H2 file in {@code dataDir} unless {@code dbUrl} is set (as the service decides). */
  public static int verify(String dbUrl, Path dataDir, int maxFindings, PrintStream out, PrintStream err) {
    return verify(dbUrl, dataDir, maxFindings, false, out, err);
  }

  /** As above; {@code json}: the report as one JSON object on stdout (as {@code GET /api/v1/ledger/audit} answers). */
  public static int verify(String dbUrl, Path dataDir, int maxFindings, boolean json, PrintStream out, PrintStream err) {
    Database db;
    String where;
    try {
      if (dbUrl == null || dbUrl.isEmpty()) {
        // never create an empty database where the operator expected theirs
        Path file = dataDir.resolve("anneal.mv.db");
        if (!Files.exists(file)) {
          err.println("ledger verify: no ledger in " + dataDir.toAbsolutePath().normalize() + " (" + file.getFileName()
              + " not found); give the service's --data-dir or --db-url");
          return 2;
        }
        where = "H2 " + file.toAbsolutePath().normalize();
        db = Database.h2File(dataDir, 2); // Flyway reads the schema history on a connection of its own
      } else {
        where = dbUrl.replaceAll(":[^:@/]*@", ":***@");
        db = Database.open(dbUrl, null, 2);
      }
    } catch (RuntimeException e) {
      err.println("ledger verify: cannot open the ledger: " + openFailure(e));
      return 2;
    }
    try (db) {
      int pending = db.pendingMigrations("db/ledger", "flyway_ledger_history");
      if (pending > 0) {
        err.println("ledger verify: the ledger's schema is " + pending + " migration(s) behind this version of Anneal;"
            + " start the service of this version once to migrate it, then verify");
        return 2;
      }
      LedgerAudit.Report report;
      try (Connection c = db.connection()) {
        report = LedgerAudit.run(c, maxFindings);
      }
      if (json) {
        out.println(new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(report.toMap()));
        return report.clean() ? 0 : 1;
      }
      out.println("ledger verify: " + where);
      report.checked().forEach((check, what) -> out.println("  " + check + ": " + what));
      for (LedgerAudit.Finding f : report.findings()) out.println("FOUND " + f);
      if (report.findingCount() > report.findings().size()) {
        out.println("... and " + (report.findingCount() - report.findings().size()) + " more (--max-findings)");
      }
      out.println(report.clean() ? "ledger verify: nothing wrong found" : "ledger verify: " + report.findingCount() + " finding(s)");
      return report.clean() ? 0 : 1;
    } catch (SQLException | java.io.IOException | RuntimeException e) {
      err.println("ledger verify: " + openFailure(e));
      return 2;
    }
  }

  /** The cause worth telling: an H2 file held by a running service says so plainly. */
  private static String openFailure(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof SQLException s && s.getErrorCode() == 90020) { // H2: DATABASE_ALREADY_OPEN_1
        return "the H2 database is in use by a running service; stop it first (a PostgreSQL ledger can be verified while"
            + " the service runs)";
      }
    }
    Throwable root = e;
    while (root.getCause() != null) root = root.getCause();
    return root.getMessage() == null ? root.toString() : root.getMessage();
  }
}
