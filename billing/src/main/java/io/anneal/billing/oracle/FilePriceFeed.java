package io.anneal.billing.oracle;

import io.anneal.billing.bme.Dec;
import io.anneal.billing.bme.OracleAggregator;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Optional;

/**
 * A price file that something else keeps current: {@code PRICE} or {@code PRICE TIMESTAMP_NS}. Without
 * a timestamp the file's modification time stamps the price, so a file nobody updates goes stale.
 *
 * <p>A publisher that rewrites the file in place (truncate, then write) leaves it empty for an instant;
 * a read that finds it empty reads again after a short pause, a few times, before it counts as no new
 * price. Publishers should still replace the file (write a temporary file, rename it over this one).
 */
public final class FilePriceFeed implements PriceFeed {
  /** Reads of an empty file before it counts as no price, and the pause between them. */
  static final int EMPTY_READS = 5;
  static final long EMPTY_PAUSE_MS = 10;

  /** A pause of some milliseconds (a hook so that a test can fill the file during it). */
  interface Pause {
    void millis(long ms) throws InterruptedException;
  }

  private final Path file;
  private final Pause pause;
  private long seq;

  public FilePriceFeed(Path file) {
    this(file, Thread::sleep);
  }

  FilePriceFeed(Path file, Pause pause) {
    this.file = file;
    this.pause = pause;
  }

  @Override
  public String name() {
    return "file:" + file.getFileName();
  }

  @Override
  public Optional<OracleAggregator.PriceRecord> poll(long nowNs) throws IOException {
    String text;
    long mtimeNs;
    int reads = 0;
    try {
      while (true) {
        text = Files.readString(file).trim();
        mtimeNs = Files.getLastModifiedTime(file).toMillis() * 1_000_000L;
        if (!text.isEmpty() || ++reads >= EMPTY_READS) break;
        pause.millis(EMPTY_PAUSE_MS);
      }
    } catch (NoSuchFileException e) {
      return Optional.empty();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return Optional.empty();
    }
    if (text.isEmpty()) return Optional.empty();
    String[] parts = text.split("\\s+");
    Dec price = Dec.parse(parts[0]);
    if (price.signum() <= 0) throw new IOException("price must be > 0 in " + file);
    long ts = parts.length > 1 ? Long.parseLong(parts[1]) : mtimeNs;
    return Optional.of(new OracleAggregator.PriceRecord(ts, seq++, price));
  }
}
