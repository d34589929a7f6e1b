package io.anneal.billing.oracle;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.anneal.billing.bme.Dec;
import io.anneal.billing.bme.OracleAggregator;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The price file source: its format, and a file caught between a publisher's truncate and write. */
class FilePriceFeedTest {
  @TempDir Path dir;

  @Test
  void readsThePriceAndItsTimestampOrTheFileTime() throws IOException {
    Path f = dir.resolve("price.txt");
    Files.writeString(f, "0.48 1700000000000000000\n");
    FilePriceFeed feed = new FilePriceFeed(f);
    OracleAggregator.PriceRecord r = feed.poll(0).orElseThrow();
    assertThat(r.price()).isEqualTo(Dec.parse("0.48"));
    assertThat(r.tsNs()).isEqualTo(1_700_000_000_000_000_000L);

    Files.writeString(f, "0.5\n");
    OracleAggregator.PriceRecord next = feed.poll(0).orElseThrow();
    assertThat(next.tsNs()).isEqualTo(Files.getLastModifiedTime(f).toMillis() * 1_000_000L);
    assertThat(next.seq()).isGreaterThan(r.seq());
  }

  @Test
  void aFileFoundEmptyIsReadAgainAndThePriceWrittenMeanwhileCounts() throws IOException {
    Path f = dir.resolve("price.txt");
    Files.writeString(f, ""); // truncated by a publisher that has not written yet
    List<Long> pauses = new ArrayList<>();
    FilePriceFeed feed = new FilePriceFeed(f, ms -> {
      pauses.add(ms);
      if (pauses.size() == 2) write(f, "0.4\n"); // the publisher's write lands
    });
    Optional<OracleAggregator.PriceRecord> r = feed.poll(0);
    assertThat(r).map(OracleAggregator.PriceRecord::price).contains(Dec.parse("0.4"));
    assertThat(pauses).containsExactly(FilePriceFeed.EMPTY_PAUSE_MS, FilePriceFeed.EMPTY_PAUSE_MS);
  }

  private static void write(Path f, String text) {
    try {
      Files.writeString(f, text);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  @Test
  void aFileThatStaysEmptyIsNoPriceAfterAFewReadsAndAMissingOneAtOnce() throws IOException {
    Path f = dir.resolve("price.txt");
    Files.writeString(f, "\n");
    List<Long> pauses = new ArrayList<>();
    assertThat(new FilePriceFeed(f, pauses::add).poll(0)).isEmpty();
    assertThat(pauses).hasSize(FilePriceFeed.EMPTY_READS - 1);

    pauses.clear();
    assertThat(new FilePriceFeed(dir.resolve("none.txt"), pauses::add).poll(0)).isEmpty();
    assertThat(pauses).isEmpty();
  }

  @Test
  void aPriceThatIsNotPositiveIsAnError() throws IOException {
    Path f = dir.resolve("price.txt");
    Files.writeString(f, "0\n");
    assertThatThrownBy(() -> new FilePriceFeed(f).poll(0)).isInstanceOf(IOException.class).hasMessageContaining("> 0");
  }
}
