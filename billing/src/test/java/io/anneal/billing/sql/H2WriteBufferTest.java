package io.anneal.billing.sql;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import org.h2.engine.SessionLocal;
import org.h2.jdbc.JdbcConnection;
import org.h2.mvstore.MVStore;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The H2 file store writes changed pages out on its own only past the larger buffer ({@link H2WriteBuffer}). */
class H2WriteBufferTest {
  @TempDir Path dir;

  private static MVStore store(Connection c) throws Exception {
    return ((SessionLocal) c.unwrap(JdbcConnection.class).getSession()).getDatabase().getStore().getMvStore();
  }

  @Test
  void theServicesH2FileStoreGetsTheLargerBuffer() throws Exception {
    try (Database db = Database.h2File(dir, 2); Connection c = db.connection()) {
      assertThat(H2WriteBuffer.target()).isGreaterThan(19 << 20); // H2's own is at most 19 MB
      assertThat(store(c).getAutoCommitMemory()).isEqualTo(H2WriteBuffer.target());
    }
  }

  @Test
  void aStoreOpenedWithH2sDefaultIsRaisedAndAnInMemoryOneLeftAlone() throws Exception {
    try (Connection c = DriverManager.getConnection("jdbc:h2:file:" + dir.resolve("plain"))) {
      int before = store(c).getAutoCommitMemory();
      assertThat(before).isLessThan(H2WriteBuffer.target());
      assertThat(H2WriteBuffer.raise(c)).isEqualTo(H2WriteBuffer.target());
      assertThat(store(c).getAutoCommitMemory()).isEqualTo(H2WriteBuffer.target());
    }
    try (Connection c = DriverManager.getConnection("jdbc:h2:mem:buffer")) {
      assertThat(H2WriteBuffer.raise(c)).isZero(); // a store in memory never writes out on its own
      assertThat(store(c).getAutoCommitMemory()).isZero();
    }
  }
}
