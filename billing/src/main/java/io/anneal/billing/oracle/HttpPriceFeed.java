package io.anneal.billing.oracle;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.anneal.billing.bme.Dec;
import io.anneal.billing.bme.OracleAggregator;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Optional;

/**
 * An HTTP price source polled on a schedule: {@code GET url} answers either JSON
 * {@code {"price": "0.4823", "timestampNs": 1764...}} (timestamp optional) or a plain
 * {@code PRICE [TIMESTAMP_NS]} line. Without a timestamp the price is stamped with the time it was
 * fetched. A failed request, a non-2xx status or a malformed body throws: the oracle records the
 * failure and, once the last good price is older than the staleness limit, halts the BME.
 */
public final class HttpPriceFeed implements PriceFeed {
  private static final ObjectMapper JSON = new ObjectMapper();
  private final URI url;
  private final HttpClient http;
  private final Duration timeout;
  private long seq;

  public HttpPriceFeed(URI url, Duration timeout) {
    if (!"http".equals(url.getScheme()) && !"https".equals(url.getScheme())) {
      throw new IllegalArgumentException("oracle URL must be http or https: " + url);
    }
    this.url = url;
    this.timeout = timeout;
    this.http = HttpClient.newBuilder().connectTimeout(timeout).build();
  }

  @Override
  public String name() {
    return "http:" + url.getHost() + (url.getPort() > 0 ? ":" + url.getPort() : "");
  }

  @Override
  public Optional<OracleAggregator.PriceRecord> poll(long nowNs) throws IOException, InterruptedException {
    HttpResponse<String> r = http.send(HttpRequest.newBuilder(url).timeout(timeout).GET().build(),
        HttpResponse.BodyHandlers.ofString());
    if (r.statusCode() / 100 != 2) throw new IOException(url + " answered " + r.statusCode());
    String body = r.body().trim();
    String priceText;
    long ts = nowNs;
    if (body.startsWith("{")) {
      JsonNode n = JSON.readTree(body);
      JsonNode p = n.get("price");
      if (p == null || p.isNull()) throw new IOException(url + ": no \"price\" in " + abbreviate(body));
      priceText = p.asText();
      if (n.hasNonNull("timestampNs")) ts = n.get("timestampNs").asLong();
    } else {
      String[] parts = body.split("\\s+");
      priceText = parts[0];
      if (parts.length > 1) ts = parseLong(parts[1], body);
    }
    Dec price;
    try {
      price = Dec.parse(priceText);
    } catch (IllegalArgumentException e) {
      throw new IOException(url + ": not a price: " + abbreviate(priceText));
    }
    if (price.signum() <= 0) throw new IOException(url + ": price must be > 0, got " + priceText);
    return Optional.of(new OracleAggregator.PriceRecord(ts, seq++, price));
  }

  private long parseLong(String s, String body) throws IOException {
    try {
      return Long.parseLong(s);
    } catch (NumberFormatException e) {
      throw new IOException(url + ": not a timestamp in " + abbreviate(body));
    }
  }

  private static String abbreviate(String s) {
    return s.length() <= 80 ? s : s.substring(0, 80) + "...";
  }
}
