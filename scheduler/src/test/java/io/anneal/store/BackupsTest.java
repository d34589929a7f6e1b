package io.anneal.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Retention: the newest backups by the time in their names are kept; other files are not touched. */
class BackupsTest {
  @TempDir Path dataDir;

  @Test
  void allButTheNewestAreDeletedAndNothingElse() throws Exception {
    Path dir = Files.createDirectories(dataDir.resolve("backups"));
    List<String> names = List.of("anneal-20261126-090000-000.zip", "anneal-20261126-100000-000.zip",
        "anneal-20261127-080000-000.zip", "anneal-20261126-235959-999.zip");
    for (String n : names) Files.writeString(dir.resolve(n), n);
    Files.writeString(dir.resolve("notes.txt"), "mine");
    Files.writeString(dir.resolve("anneal-20260101-000000-000.tmp.zip"), "a backup being written");

    assertThat(Backups.prune(dataDir, 2)).extracting(p -> p.getFileName().toString())
        .containsExactlyInAnyOrder("anneal-20261126-090000-000.zip", "anneal-20261126-100000-000.zip");
    try (Stream<Path> left = Files.list(dir)) {
      assertThat(left.map(p -> p.getFileName().toString())).containsExactlyInAnyOrder("anneal-20261127-080000-000.zip",
          "anneal-20261126-235959-999.zip", "notes.txt", "anneal-20260101-000000-000.tmp.zip");
    }
    assertThat(Backups.prune(dataDir, 2)).isEmpty();
    assertThat(Backups.prune(dataDir.resolve("elsewhere"), 1)).as("no backups yet").isEmpty();
    assertThatThrownBy(() -> Backups.prune(dataDir, 0)).isInstanceOf(IllegalArgumentException.class);
  }
}
