package io.anneal;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code anneal ledger verify} finds the ledger as the service would (flags, environment) and refuses
 * what it cannot take with the usage; the audit itself is LedgerCliTest's and LedgerAuditContract's.
 */
class MainLedgerTest {
  @TempDir
  Path dir;

  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private final ByteArrayOutputStream err = new ByteArrayOutputStream();

  private int ledger(Map<String, String> env, String... args) {
    return Main.ledger(args, env, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
  }

  private String err() {
    return err.toString(StandardCharsets.UTF_8);
  }

  @Test
  void withoutVerifyItShowsTheUsage() {
    assertThat(ledger(Map.of())).isEqualTo(2);
    assertThat(ledger(Map.of(), "check"))
        .isEqualTo(2);
    assertThat(err()).contains("usage: anneal ledger verify");
  }

  @Test
  void aBadFindingLimitOrAnUnknownFlagIsRefused() {
    assertThat(ledger(Map.of(), "verify", "--max-findings", "many")).isEqualTo(2);
    assertThat(err()).contains("--max-findings takes a count >= 0, not 'many'");
    assertThat(ledger(Map.of(), "verify", "--no-such-flag")).isEqualTo(2);
    assertThat(err()).contains("--no-such-flag");
  }

  @Test
  void theDataDirComesFromTheFlagOrTheEnvironmentAsForTheService() {
    Path empty = dir.resolve("nowhere");
    assertThat(ledger(Map.of(), "verify", "--data-dir", empty.toString(), "--max-findings=5")).isEqualTo(2);
    assertThat(err()).contains("no ledger in " + empty.toAbsolutePath().normalize());
    Path fromEnv = dir.resolve("elsewhere");
    assertThat(ledger(Map.of("ANNEAL_DATA_DIR", fromEnv.toString()), "verify")).isEqualTo(2);
    assertThat(err()).contains("no ledger in " + fromEnv.toAbsolutePath().normalize());
  }
}
