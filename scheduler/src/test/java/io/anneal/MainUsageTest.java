package io.anneal;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.config.ConfigLoader;
import org.junit.jupiter.api.Test;

/** {@code --help} names every flag the launcher takes, so that it cannot fall behind the configuration. */
class MainUsageTest {
  @Test
  void usageNamesEveryFlag() {
    assertThat(ConfigLoader.flags()).hasSizeGreaterThan(20);
    for (String flag : ConfigLoader.flags()) {
      assertThat(Main.USAGE).as("--help mentions %s", flag).containsPattern(java.util.regex.Pattern.quote(flag) + "\\b");
    }
    assertThat(Main.USAGE).contains("bme replay").contains("bme simulate").contains("ledger verify");
  }
}
