package io.anneal.billing.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.anneal.billing.bme.Bme;
import io.anneal.billing.bme.BmeException;
import io.anneal.billing.bme.BmeParams;
import io.anneal.billing.bme.BreakerState;
import io.anneal.billing.bme.CollateralRatio;
import io.anneal.billing.bme.Dec;
import io.anneal.billing.bme.Direction;
import io.anneal.billing.bme.OracleAggregator;
import io.anneal.billing.bme.OracleSnapshot;
import io.anneal.billing.bme.Quote;
import io.anneal.billing.bme.RemintSplit;
import io.anneal.billing.bme.Status;
import io.anneal.billing.bme.StatusUpdate;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** Computes the {@code expect} of each vector of a bme-spec Appendix B document with the engine. */
public final class VectorReplay {
  private static final JsonNodeFactory F = JsonNodeFactory.instance;

  /** A malformed vector: names the vector and the key. */
  public static final class VectorException extends Exception {
    private static final long serialVersionUID = 1L;

    VectorException(String message) {
      super(message);
    }
  }

  private VectorReplay() {}

  public static ObjectNode replay(JsonNode doc) throws VectorException {
    if (doc == null || !doc.isObject()) throw new VectorException("the document must be a JSON object");
    if (!"anneal-bme-vectors/1".equals(doc.path("schema").asText())) {
      throw new VectorException("schema must be \"anneal-bme-vectors/1\", got " + doc.get("schema"));
    }
    JsonNode vectors = doc.get("vectors");
    if (vectors == null || !vectors.isArray()) throw new VectorException("'vectors' must be an array");
    ObjectNode out = doc.deepCopy();
    ArrayNode outVectors = (ArrayNode) out.get("vectors");
    for (int i = 0; i < vectors.size(); i++) {
      JsonNode v = vectors.get(i);
      String id = v.hasNonNull("id") ? v.get("id").asText() : "#" + i;
      try {
        ((ObjectNode) outVectors.get(i)).set("expect", compute(v));
      } catch (VectorException e) {
        throw new VectorException("vector " + id + ": " + e.getMessage());
      } catch (RuntimeException e) {
        throw new VectorException("vector " + id + ": " + e.getMessage());
      }
    }
    return out;
  }

  static JsonNode compute(JsonNode v) throws VectorException {
    String op = text(v, "op");
    JsonNode in = v.get("input");
    if (in == null || !in.isObject()) throw new VectorException("missing object 'input'");
    switch (op) {
      case "params.validate": {
        var code = params(in).validate();
        ObjectNode o = F.objectNode().put("valid", code.isEmpty());
        code.ifPresent(c -> o.put("error", c));
        return o;
      }
      case "convert.quote": {
        try {
          Quote q = Bme.quote(direction(in), amount(in, "amount"), oracle(in.get("oracle"), "oracle"), params(in),
              in.has("actSupply") ? amount(in, "actSupply") : null);
          return F.objectNode().put("swapRate", q.swapRate().toString()).put("mintAmountDec", q.mintAmountDec().toString())
              .put("mintAmount", q.mintAmount().toString()).put("spreadBps", Long.toString(q.spreadBps()))
              .put("spreadAmountDec", q.spreadAmountDec().toString()).put("spreadAmount", q.spreadAmount().toString())
              .put("userAmount", q.userAmount().toString());
        } catch (BmeException e) {
          return F.objectNode().put("error", e.code().name()).put("fatal", e.code().fatal());
        }
      }
      case "redeem.remintSplit": {
        RemintSplit s = Bme.remintSplit(amount(in, "mintAmount"), amount(in, "spreadAmount"), amount(in, "remintCredits"));
        return F.objectNode().put("remintIssued", s.remintIssued().toString()).put("newlyMintedAkt", s.newlyMintedAkt().toString())
            .put("remintCreditsAfter", s.remintCreditsAfter().toString()).put("userAmount", s.userAmount().toString())
            .put("vaultAktDelta", s.vaultAktDelta().toString());
      }
      case "cr.compute": {
        try {
          CollateralRatio cr = Bme.collateralRatio(amount(in, "vaultAkt"), amount(in, "pendingAkt"), amount(in, "actSupply"),
              oracle(in.get("oracle"), "oracle"));
          return F.objectNode().put("collateralRatio", cr.ratio().toString()).put("crBps", Long.toString(cr.bps()));
        } catch (BmeException e) {
          return F.objectNode().put("error", e.code().name()).put("fatal", e.code().fatal());
        }
      }
      case "status.update": {
        JsonNode st = in.get("stored");
        if (st == null || !st.isObject()) throw new VectorException("missing object 'input.stored'");
        BreakerState stored = new BreakerState(status(st, "status"), status(st, "previousStatus"),
            Long.parseLong(text(st, "epochHeightDiff")));
        StatusUpdate u = Bme.nextStatus(stored, amount(in, "vaultAkt"), amount(in, "pendingAkt"), amount(in, "actSupply"),
            oracle(in.get("oracle"), "oracle"), params(in));
        ObjectNode o = F.objectNode().put("status", u.state().status().name())
            .put("previousStatus", u.state().previousStatus().name())
            .put("epochHeightDiff", Long.toString(u.state().epochHeightDiff())).put("changed", u.changed());
        if (u.cr() == null) {
          o.putNull("crBps");
        } else {
          o.put("crBps", Long.toString(u.cr().bps()));
        }
        return o;
      }
      case "epoch.blocks":
        return F.objectNode().put("blocks", Long.toString(Bme.epochBlocks(Long.parseLong(text(in, "crBps")), params(in))));
      case "request.admit": {
        try {
          Bme.admit(status(in, "status"), direction(in), oracle(in.get("oracle"), "oracle"));
          return F.objectNode().put("accepted", true);
        } catch (BmeException e) {
          return F.objectNode().put("accepted", false).put("error", e.code().name());
        }
      }
      case "oracle.aggregate":
        return aggregate(in);
      case "scenario":
        return ScenarioReplay.run(in);
      default:
        throw new VectorException("unknown op '" + op + "'");
    }
  }

  private static JsonNode aggregate(JsonNode in) throws VectorException {
    long now = longOf(in, "nowNs");
    OracleAggregator.Params d = OracleAggregator.Params.defaults();
    JsonNode op = in.path("oracleParams");
    OracleAggregator.Params params = new OracleAggregator.Params(
        op.has("minPriceSources") ? longOf(op, "minPriceSources") : d.minPriceSources(),
        op.has("maxPriceStaleness") ? longOf(op, "maxPriceStaleness") : d.maxPriceStalenessNs(),
        op.has("twapWindow") ? longOf(op, "twapWindow") : d.twapWindowNs(),
        op.has("maxPriceDeviationBps") ? longOf(op, "maxPriceDeviationBps") : d.maxPriceDeviationBps());
    JsonNode src = in.get("sources");
    if (src == null || !src.isArray()) throw new VectorException("missing array 'sources'");
    List<OracleAggregator.Source> sources = new ArrayList<>();
    for (JsonNode s : src) {
      List<OracleAggregator.PriceRecord> recs = new ArrayList<>();
      for (JsonNode r : s.path("records")) {
        Dec price;
        try {
          price = Dec.parse(text(r, "price"));
        } catch (IllegalArgumentException e) {
          throw new VectorException("key 'sources[].records[].price': " + e.getMessage());
        }
        recs.add(new OracleAggregator.PriceRecord(longOf(r, "tsNs"), r.path("seq").asLong(0), price));
      }
      sources.add(new OracleAggregator.Source(s.path("source").asText(), recs));
    }
    OracleAggregator.Result r = OracleAggregator.aggregate(now, sources, params);
    ObjectNode o = F.objectNode().put("numSources", r.numSources()).put("healthy", r.healthy());
    putDec(o, "twap", r.twap());
    putDec(o, "median", r.median());
    putDec(o, "minPrice", r.minPrice());
    putDec(o, "maxPrice", r.maxPrice());
    if (r.deviationBps() == null) {
      o.putNull("deviationBps");
    } else {
      o.put("deviationBps", Long.toString(r.deviationBps()));
    }
    if (r.failure() != null) o.put("failure", r.failure());
    return o;
  }

  private static void putDec(ObjectNode o, String key, Dec d) {
    if (d == null) {
      o.putNull(key);
    } else {
      o.put(key, d.toString());
    }
  }

  static long longOf(JsonNode n, String key) throws VectorException {
    String s = text(n, key);
    try {
      return Long.parseLong(s);
    } catch (NumberFormatException e) {
      throw new VectorException("key '" + key + "' must be an integer, got " + s);
    }
  }

  static String text(JsonNode n, String key) throws VectorException {
    JsonNode v = n.get(key);
    if (v == null || v.isNull()) throw new VectorException("missing key '" + key + "'");
    return v.asText();
  }

  static BigInteger amount(JsonNode in, String key) throws VectorException {
    String s = text(in, key);
    try {
      BigInteger b = new BigInteger(s);
      if (b.signum() < 0) throw new VectorException("key '" + key + "' must be >= 0, got " + s);
      return b;
    } catch (NumberFormatException e) {
      throw new VectorException("key '" + key + "' must be an integer string, got " + s);
    }
  }

  static Direction direction(JsonNode in) throws VectorException {
    String d = text(in, "direction");
    try {
      return Direction.valueOf(d);
    } catch (IllegalArgumentException e) {
      throw new VectorException("key 'direction' must be AKT_TO_ACT or ACT_TO_AKT, got " + d);
    }
  }

  private static Status status(JsonNode in, String key) throws VectorException {
    String s = text(in, key);
    try {
      return Status.valueOf(s);
    } catch (IllegalArgumentException e) {
      throw new VectorException("key '" + key + "' is not a status: " + s);
    }
  }

  static OracleSnapshot oracle(JsonNode o, String key) throws VectorException {
    if (o == null || !o.isObject()) throw new VectorException("missing object '" + key + "'");
    try {
      return new OracleSnapshot(o.path("healthy").asBoolean(false), Dec.parse(text(o, "priceAkt")));
    } catch (IllegalArgumentException e) {
      throw new VectorException("key '" + key + ".priceAkt': " + e.getMessage());
    }
  }

  static BmeParams params(JsonNode in) throws VectorException {
    BmeParams d = BmeParams.defaults();
    JsonNode p = in.get("params");
    if (p == null) return d;
    if (!p.isObject()) throw new VectorException("'params' must be an object");
    Map<String, BigInteger> minMint = d.minMint();
    if (p.has("minMint")) {
      minMint = new TreeMap<>();
      for (Iterator<Map.Entry<String, JsonNode>> it = p.get("minMint").fields(); it.hasNext(); ) {
        var e = it.next();
        minMint.put(e.getKey(), new BigInteger(e.getValue().asText()));
      }
    }
    for (Iterator<String> it = p.fieldNames(); it.hasNext(); ) {
      String k = it.next();
      if (!java.util.Set.of("circuitBreakerWarnThreshold", "circuitBreakerHaltThreshold", "minEpochBlocks",
          "epochBlocksBackoffPercent", "mintSpreadBps", "settleSpreadBps", "maxEndblockerRecords", "minMint",
          "maxPendingAttempts", "fifoQueue", "rejectBelowMinMint", "exactUsd", "restartThresholdBps",
          "maxQueueDepth").contains(k)) {
        throw new VectorException("unknown parameter 'params." + k + "'");
      }
      JsonNode v = p.get(k);
      boolean flag = java.util.Set.of("fifoQueue", "rejectBelowMinMint", "exactUsd").contains(k);
      if (flag ? !v.isBoolean() : !k.equals("minMint") && !v.canConvertToLong()) {
        throw new VectorException("'params." + k + "' must be " + (flag ? "true or false" : "an integer"));
      }
    }
    BmeParams.Options options = new BmeParams.Options(p.path("fifoQueue").asBoolean(false),
        p.path("rejectBelowMinMint").asBoolean(false), p.path("exactUsd").asBoolean(false),
        p.path("restartThresholdBps").asLong(0), p.path("maxQueueDepth").asLong(0));
    return new BmeParams(
        p.path("circuitBreakerWarnThreshold").asLong(d.circuitBreakerWarnThreshold()),
        p.path("circuitBreakerHaltThreshold").asLong(d.circuitBreakerHaltThreshold()),
        p.path("minEpochBlocks").asLong(d.minEpochBlocks()),
        p.path("epochBlocksBackoffPercent").asLong(d.epochBlocksBackoffPercent()),
        p.path("mintSpreadBps").asLong(d.mintSpreadBps()),
        p.path("settleSpreadBps").asLong(d.settleSpreadBps()),
        p.path("maxEndblockerRecords").asLong(d.maxEndblockerRecords()),
        minMint,
        p.path("maxPendingAttempts").asLong(d.maxPendingAttempts()),
        options);
  }
}
