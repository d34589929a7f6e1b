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
 */
public final class FilePriceFeed implements PriceFeed {
  private final Path file;
  private long seq;

  public FilePriceFeed(Path file) {
    this.file = file;
  }

  @Override
  public String name() {
    return "file:" + file.getFileName();
  }

  @Override
  public Optional<OracleAggregator.PriceRecord> poll(long nowNs) throws IOException {
    String text;
    long mtimeNs;
    try {
      text = Files.readString(file).trim();
      mtimeNs = Files.getLastModifiedTime(file).toMillis() * 1_000_000L;
    } catch (NoSuchFileException e) {
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
