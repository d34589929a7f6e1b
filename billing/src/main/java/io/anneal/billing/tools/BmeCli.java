package io.anneal.billing.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import io.anneal.billing.sim.BmeSimulator;
import io.anneal.billing.sim.Scenario;
import io.anneal.billing.sim.SimulationResult;

/** {@code anneal bme replay FILE.json [--check]}: recompute (or check) a vector document. */
public final class BmeCli {
  private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private BmeCli() {}

  static final String USAGE = "usage: anneal bme replay FILE.json [--check]\n"
      + "       anneal bme simulate --scenario NAME [--hours N] [--seed S] [--out DIR] [--no-pricing] [--no-bootstrap]\n"
      + "         scenarios: " + Scenario.ids();

  public static int run(String[] args, PrintStream out, PrintStream err) {
    if (args.length > 0 && args[0].equals("simulate")) return simulate(args, out, err);
    if (args.length < 2 || !args[0].equals("replay")) {
      err.println(USAGE);
      return 2;
    }
    // one file and an optional --check, in either order
    boolean check = false;
    String file = null;
    for (int i = 1; i < args.length; i++) {
      if (args[i].equals("--check") && !check) {
        check = true;
      } else if (!args[i].startsWith("--") && file == null) {
        file = args[i];
      } else {
        err.println("bme replay: unexpected argument " + args[i] + "\n" + USAGE);
        return 2;
      }
    }
    if (file == null) {
      err.println("bme replay: no vector file given\n" + USAGE);
      return 2;
    }
    JsonNode doc;
    try {
      doc = JSON.readTree(Files.readString(Path.of(file)));
    } catch (IOException e) {
      err.println("bme replay: cannot read " + file + ": " + ReadFailure.why(e));
      return 2;
    }
    try {
      ObjectNode result = VectorReplay.replay(doc);
      if (!check) {
        out.println(JSON.writeValueAsString(result));
        return 0;
      }
      List<String> diffs = new ArrayList<>();
      Iterator<JsonNode> computed = result.get("vectors").elements();
      for (JsonNode v : (ArrayNode) doc.get("vectors")) {
        JsonNode got = computed.next().get("expect");
        compare(v.path("id").asText(), "expect", v.get("expect"), got, diffs);
      }
      if (diffs.isEmpty()) {
        out.println("bme replay: all " + doc.get("vectors").size() + " vectors match");
        return 0;
      }
      diffs.forEach(err::println);
      err.println("bme replay: " + diffs.size() + " difference(s)");
      return 1;
    } catch (VectorReplay.VectorException e) {
      err.println("bme replay: " + e.getMessage());
      return 2;
    } catch (IOException e) {
      err.println("bme replay: " + e.getMessage());
      return 2;
    }
  }

  /** {@code bme simulate}: runs a scenario, writes NAME.csv and NAME-summary.json, prints the summary. */
  static int simulate(String[] args, PrintStream out, PrintStream err) {
    String scenario = null;
    int hours = 96;
    long seed = 1;
    Path dir = Path.of(".");
    boolean pricing = true;
    boolean bootstrap = true;
    try {
      for (int i = 1; i < args.length; i++) {
        switch (args[i]) {
          case "--scenario" -> scenario = value(args, ++i);
          case "--hours" -> hours = Integer.parseInt(value(args, ++i));
          case "--seed" -> seed = Long.parseLong(value(args, ++i));
          case "--out" -> dir = Path.of(value(args, ++i));
          case "--no-pricing" -> pricing = false;
          case "--no-bootstrap" -> bootstrap = false;
          default -> throw new IllegalArgumentException("unknown option " + args[i]);
        }
      }
      if (scenario == null) throw new IllegalArgumentException("--scenario is required");
      String name = scenario;
      Scenario sc = Scenario.byId(name).orElseThrow(
          () -> new IllegalArgumentException("unknown scenario '" + name + "' (one of " + Scenario.ids() + ")"));
      SimulationResult result = new BmeSimulator(new BmeSimulator.Config(sc, hours, seed, pricing, bootstrap)).run();
      Files.createDirectories(dir);
      Path csv = dir.resolve(sc.id() + ".csv");
      Path summary = dir.resolve(sc.id() + "-summary.json");
      Files.writeString(csv, result.csv());
      Files.writeString(summary, JSON.writeValueAsString(result.summary()) + "\n");
      out.print(result.text());
      out.println("wrote " + csv + " and " + summary);
      return 0;
    } catch (IllegalArgumentException e) {
      err.println("bme simulate: " + e.getMessage());
      err.println(USAGE);
      return 2;
    } catch (IOException | io.anneal.billing.bme.BmeException e) {
      err.println("bme simulate: " + e.getMessage());
      return 1;
    }
  }

  private static String value(String[] args, int i) {
    if (i >= args.length) throw new IllegalArgumentException(args[i - 1] + " needs a value");
    return args[i];
  }

  /** Compares every key present in {@code want}, exactly. */
  static void compare(String id, String path, JsonNode want, JsonNode got, List<String> diffs) {
    if (want == null) return;
    if (want.isObject()) {
      for (Iterator<String> it = want.fieldNames(); it.hasNext(); ) {
        String k = it.next();
        compare(id, path + "." + k, want.get(k), got == null ? null : got.get(k), diffs);
      }
    } else if (want.isArray()) {
      if (got == null || !got.isArray() || got.size() != want.size()) {
        diffs.add(id + " " + path + ": expected " + want + ", got " + got);
        return;
      }
      for (int i = 0; i < want.size(); i++) compare(id, path + "[" + i + "]", want.get(i), got.get(i), diffs);
    } else if (want.isNumber() && got != null && got.isNumber()) {
      if (want.decimalValue().compareTo(got.decimalValue()) != 0) diffs.add(id + " " + path + ": expected " + want + ", got " + got);
    } else if (got == null || !want.equals(got)) {
      diffs.add(id + " " + path + ": expected " + want + ", got " + got);
    }
  }
}
