package io.anneal.billing.sql;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A commit the group-commit writer has acknowledged survives the process being killed right after:
 * H2 writes commits to its file only later by itself, so the writer acknowledges them after a
 * checkpoint ({@link Database#durable}).
 */
class DurableCommitTest {
  @TempDir Path dir;

  @Test
  void everyAcknowledgedCommitIsInTheFileWhenTheProcessIsKilledRightAfter() throws Exception {
    Process writer = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp",
        System.getProperty("java.class.path"), Writer.class.getName(), dir.toString()).redirectErrorStream(true).start();
    String out = new String(writer.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(writer.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(out).as(out).contains("acknowledged 200");
    try (Database db = Database.h2File(dir, 2); Connection c = db.connection(); Statement st = c.createStatement();
        ResultSet rs = st.executeQuery("SELECT COUNT(*) FROM t")) {
      rs.next();
      assertThat(rs.getInt(1)).as("rows acknowledged before the process was killed").isEqualTo(200);
    }
  }

  @Test
  void onlyAnH2FileThatWritesInTheBackgroundNeedsCheckpoints() {
    assertThat(Database.defersWrites("jdbc:h2:file:/data/anneal;MODE=PostgreSQL")).isTrue();
    assertThat(Database.defersWrites("jdbc:h2:/data/anneal")).isTrue();
    assertThat(Database.defersWrites("jdbc:h2:file:/data/anneal;write_delay=0")).isFalse();
    assertThat(Database.defersWrites("jdbc:h2:file:/data/anneal;WRITE_DELAY=0;MODE=PostgreSQL")).isFalse();
    assertThat(Database.defersWrites("jdbc:h2:file:/data/anneal;WRITE_DELAY=100")).isTrue();
    assertThat(Database.defersWrites("jdbc:h2:mem:x")).isFalse();
    assertThat(Database.defersWrites("jdbc:postgresql://localhost/test")).isFalse();
  }

  /**
   * Commits 200 rows through the writer, each acknowledged before the next is sent, then ends at once
   * as a killed process does (no shutdown hooks, nothing closed).
   */
  public static final class Writer {
    public static void main(String[] args) throws Exception {
      Database db = Database.h2File(Path.of(args[0]), 2);
      try (Connection c = db.connection(); Statement st = c.createStatement()) {
        st.execute("CREATE TABLE t (id INT PRIMARY KEY)");
      }
      GroupCommitWriter w = new GroupCommitWriter(db, "test-writer", 100);
      for (int i = 0; i < 200; i++) {
        int id = i;
        w.submit(c -> {
          try (Statement st = c.createStatement()) {
            return st.executeUpdate("INSERT INTO t VALUES (" + id + ")");
          }
        }).get(30, TimeUnit.SECONDS);
      }
      System.out.println("acknowledged 200");
      System.out.flush();
      Runtime.getRuntime().halt(0);
    }
  }
}
