package io.anneal.billing.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.anneal.billing.bme.BmeEngine;
import io.anneal.billing.bme.BmeException;
import io.anneal.billing.bme.Canceled;
import io.anneal.billing.bme.CollateralRatio;
import io.anneal.billing.bme.Executed;
import io.anneal.billing.bme.OracleSnapshot;
import io.anneal.billing.bme.RequestId;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/** Runs a {@code scenario} vector (bme-spec Appendix B) through {@link BmeEngine}. */
final class ScenarioReplay {
  private static final JsonNodeFactory F = JsonNodeFactory.instance;

  private record Schedule(long fromTick, OracleSnapshot snapshot) {}

  private ScenarioReplay() {}

  static JsonNode run(JsonNode in) throws VectorReplay.VectorException {
    long ticks = VectorReplay.longOf(in, "ticks");
    if (ticks < 1 || ticks > 10_000_000) throw new VectorReplay.VectorException("key 'ticks' must be 1..10000000");
    BmeEngine engine;
    try {
      engine = BmeEngine.genesis(VectorReplay.params(in));
    } catch (IllegalArgumentException e) {
      throw new VectorReplay.VectorException("key 'params': " + e.getMessage());
    }
    List<Schedule> oracle = new ArrayList<>();
    JsonNode o = in.get("oracle");
    if (o == null || !o.isArray() || o.isEmpty()) throw new VectorReplay.VectorException("missing array 'oracle'");
    for (JsonNode e : o) oracle.add(new Schedule(VectorReplay.longOf(e, "fromTick"), VectorReplay.oracle(e, "oracle[]")));
    JsonNode steps = in.path("steps");
    if (!steps.isArray()) throw new VectorReplay.VectorException("'steps' must be an array");
    Set<Long> checkpoints = new TreeSet<>();
    for (JsonNode c : in.path("checkpoints")) checkpoints.add(c.asLong());
    for (JsonNode st : steps) {
      long t = VectorReplay.longOf(st, "tick");
      if (t < 1 || t > ticks) throw new VectorReplay.VectorException("a step's tick " + t + " is outside 1.." + ticks);
    }

    ArrayNode results = F.arrayNode();
    ObjectNode cps = F.objectNode();
    int next = 0;
    List<JsonNode> stepList = new ArrayList<>();
    steps.forEach(stepList::add);
    stepList.sort((a, b) -> Long.compare(a.path("tick").asLong(), b.path("tick").asLong())); // stable: list order kept
    for (long h = 1; h <= ticks; h++) {
      engine.beginTick(h, snapshotAt(oracle, h));
      while (next < stepList.size() && stepList.get(next).path("tick").asLong() == h) {
        results.add(step(engine, stepList.get(next), h));
        next++;
      }
      engine.endTick();
      if (checkpoints.contains(h)) cps.set(Long.toString(h), snapshot(engine));
    }
    ObjectNode out = F.objectNode();
    out.set("stepResults", results);
    out.set("checkpoints", cps);
    return out;
  }

  private static OracleSnapshot snapshotAt(List<Schedule> schedule, long h) throws VectorReplay.VectorException {
    Schedule best = null;
    for (Schedule s : schedule) {
      if (s.fromTick() <= h && (best == null || s.fromTick() >= best.fromTick())) best = s;
    }
    if (best == null) throw new VectorReplay.VectorException("no oracle entry covers tick " + h);
    return best.snapshot();
  }

  private static ObjectNode step(BmeEngine e, JsonNode st, long h) throws VectorReplay.VectorException {
    String type = VectorReplay.text(st, "type");
    ObjectNode r = F.objectNode();
    try {
      switch (type) {
        case "credit" -> {
          String denom = st.path("denom").asText("uakt");
          if (!denom.equals("uakt")) throw new VectorReplay.VectorException("credit supports denom uakt only");
          e.credit(VectorReplay.text(st, "account"), VectorReplay.amount(st, "amount").longValueExact());
        }
        case "fundVault" -> e.fundVault(VectorReplay.text(st, "source"), VectorReplay.amount(st, "amount").longValueExact());
        case "transferAct" -> e.transferAct(VectorReplay.text(st, "from"), VectorReplay.text(st, "to"),
            VectorReplay.amount(st, "amount").longValueExact());
        case "request" -> {
          RequestId id = e.request(VectorReplay.text(st, "owner"), VectorReplay.direction(st),
              VectorReplay.amount(st, "amount").longValueExact());
          r.put("id", id.toString());
        }
        case "requestUsd" -> {
          java.math.BigDecimal usd;
          try {
            usd = new java.math.BigDecimal(VectorReplay.text(st, "usd"));
          } catch (NumberFormatException ex) {
            throw new VectorReplay.VectorException("key 'usd' of the step of tick " + h + " is not a decimal");
          }
          r.put("id", e.requestUsd(VectorReplay.text(st, "owner"), usd).toString());
        }
        default -> throw new VectorReplay.VectorException("unknown step type '" + type + "'");
      }
      r.put("ok", true);
    } catch (BmeException ex) {
      r.put("ok", false).put("error", ex.code().name());
    } catch (ArithmeticException ex) {
      throw new VectorReplay.VectorException("an amount beyond 64 bits in step of tick " + h);
    }
    r.put("tick", h).put("type", type);
    return r;
  }

  static ObjectNode snapshot(BmeEngine e) {
    ObjectNode s = F.objectNode();
    s.put("status", e.breaker().status().name());
    s.put("previousStatus", e.breaker().previousStatus().name());
    s.put("epochHeightDiff", Long.toString(e.breaker().epochHeightDiff()));
    CollateralRatio cr = e.collateralRatioOrNull();
    if (cr == null) {
      s.putNull("collateralRatio");
      s.putNull("crBps");
    } else {
      s.put("collateralRatio", cr.ratio().toString());
      s.put("crBps", Long.toString(cr.bps()));
    }
    s.put("mintEpoch", e.mintEpoch());
    s.put("burnEpoch", e.burnEpoch());
    s.put("vaultAkt", Long.toString(e.vaultAkt()));
    s.put("pendingAkt", Long.toString(e.pendingAkt()));
    s.put("pendingAct", Long.toString(e.pendingAct()));
    s.put("remintCredits", Long.toString(e.remintCredits()));
    s.put("actSupply", Long.toString(e.actSupply()));
    s.put("engineAct", Long.toString(e.engineAct()));
    s.set("totalMinted", F.objectNode().put("uact", Long.toString(e.totalMintedUact()))
        .put("uakt", Long.toString(e.totalMintedUakt())));
    s.set("totalBurned", F.objectNode().put("uact", Long.toString(e.totalBurnedUact())).put("uakt", "0"));
    ArrayNode ex = s.putArray("executed");
    for (Executed x : e.executed()) {
      ex.add(F.objectNode().put("id", x.id().toString()).put("direction", x.direction().name())
          .put("burned", Long.toString(x.burned())).put("swapRate", x.swapRate().toString())
          .put("mintAmount", Long.toString(x.mintAmount())).put("spread", Long.toString(x.spread()))
          .put("userAmount", Long.toString(x.userAmount())).put("remintAccrued", Long.toString(x.remintAccrued()))
          .put("remintIssued", Long.toString(x.remintIssued())).put("newlyMinted", Long.toString(x.newlyMinted())));
    }
    ArrayNode ca = s.putArray("canceled");
    for (Canceled c : e.canceled()) {
      ca.add(F.objectNode().put("id", c.id().toString()).put("reason", c.reason().name())
          .put("refund", Long.toString(c.amount())).put("denom", c.denom()));
    }
    ArrayNode pe = s.putArray("pending");
    for (BmeEngine.Pending p : e.pending()) pe.add(F.objectNode().put("id", p.id().toString()).put("attempts", p.attempts()));
    ObjectNode bal = s.putObject("balances");
    for (Map.Entry<String, long[]> b : e.balances().entrySet()) {
      bal.set(b.getKey(), F.objectNode().put("uact", Long.toString(b.getValue()[0])).put("uakt", Long.toString(b.getValue()[1])));
    }
    return s;
  }
}
