package io.anneal.billing.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.anneal.billing.receipt.ReceiptCheck;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code anneal receipt verify FILE|-}: checks a job's settled runs from the answer of {@code GET
 * /api/v1/receipts/{jobId}} saved to a file (or read from stdin), offline ({@link ReceiptCheck}).
 * Node keys and epoch roots may be pinned from elsewhere, so that nothing rests on the service's word.
 * Exit status 0 when every check passed (an epoch still open is pending, not failed), 1 when one
 * failed, 2 when the input cannot be checked.
 */
public final class ReceiptCli {
  private static final ObjectMapper JSON = new ObjectMapper();

  public static final String USAGE = "usage: anneal receipt verify FILE|- [--node-key [NODE=]KEY] [--epoch-root [EPOCH=]HEX]\n"
      + "  FILE: the answer of GET /api/v1/receipts/{jobId}; - reads it from stdin\n"
      + "  --node-key: the node's Ed25519 public key (X.509, Base64, or the node's node-ed25519.pub file), as the\n"
      + "              provider gives it; without it the key shown in the answer is used\n"
      + "  --epoch-root: an epoch's Merkle root as published elsewhere; compared with the answer's\n"
      + "  both may be repeated, one per node or epoch; without NODE= or EPOCH= they apply to every run;\n"
      + "  a node whose key was rotated may be given several keys (one --node-key each): a run passes with any of them";

  private ReceiptCli() {}

  /** Input the checks cannot run on: which key of which run, and why. */
  static final class BadInput extends Exception {
    BadInput(String message) {
      super(message);
    }
  }

  public static int run(String[] args, InputStream stdin, PrintStream out, PrintStream err) {
    if (args.length < 2 || !args[0].equals("verify")) {
      err.println(USAGE);
      return 2;
    }
    String file = null;
    Map<String, List<String>> nodeKeys = new HashMap<>();
    Map<String, String> epochRoots = new HashMap<>();
    try {
      for (int i = 1; i < args.length; i++) {
        String a = args[i];
        if ((a.equals("--node-key") || a.equals("--epoch-root")) && i + 1 < args.length) {
          String v = args[++i];
          // NODE=KEY or EPOCH=HEX; a Base64 key alone ends in '=' padding, which is no scope
          int eq = v.indexOf('=');
          if (eq > 0 && v.substring(eq).matches("=+")) eq = -1;
          String scope = eq > 0 ? v.substring(0, eq) : "*";
          String value = eq > 0 ? v.substring(eq + 1) : v;
          if (a.equals("--node-key")) nodeKeys.computeIfAbsent(scope, k -> new ArrayList<>()).add(readKey(value));
          else epochRoots.put(scope, value.toLowerCase(java.util.Locale.ROOT));
        } else if ((a.equals("-") || !a.startsWith("--")) && file == null) {
          file = a;
        } else {
          err.println("receipt verify: unexpected argument " + a + "\n" + USAGE);
          return 2;
        }
      }
      if (file == null) throw new BadInput("no file given\n" + USAGE);
      JsonNode doc;
      try {
        doc = JSON.readTree(file.equals("-") ? new String(stdin.readAllBytes(), StandardCharsets.UTF_8) : Files.readString(Path.of(file)));
      } catch (IOException e) {
        throw new BadInput("cannot read " + file + ": " + ReadFailure.why(e));
      }
      return verify(doc, nodeKeys, epochRoots, out);
    } catch (BadInput e) {
      err.println("receipt verify: " + e.getMessage());
      return 2;
    }
  }

  static int verify(JsonNode doc, Map<String, List<String>> nodeKeys, Map<String, String> epochRoots, PrintStream out)
      throws BadInput {
    if (doc == null || !doc.isObject()) throw new BadInput("not a JSON object (expected the answer of GET /api/v1/receipts/{jobId})");
    String jobId = text(doc, "jobId", "");
    if (!doc.path("settled").asBoolean(false)) {
      throw new BadInput("job " + jobId + " has no settled receipt yet (state " + doc.path("state").asText("?") + "): nothing to verify");
    }
    List<JsonNode> runs = new ArrayList<>();
    if (doc.has("runs")) {
      if (!doc.get("runs").isArray() || doc.get("runs").isEmpty()) throw new BadInput("runs: expected a non-empty array");
      doc.get("runs").forEach(runs::add);
    } else {
      runs.add(doc); // an answer from before runs were listed: its one run at the top level
    }
    Map<ReceiptCheck.Outcome, Integer> totals = new EnumMap<>(ReceiptCheck.Outcome.class);
    for (int i = 0; i < runs.size(); i++) {
      String where = doc.has("runs") ? "runs[" + i + "]." : "";
      JsonNode run = runs.get(i);
      JsonNode receipt = object(run, "receipt", where);
      String node = text(receipt, "nodeId", where + "receipt.");
      String shownKey = receipt.hasNonNull("nodePublicKey") ? receipt.get("nodePublicKey").asText() : null;
      String batchRoot = text(receipt, "batchRoot", where + "receipt.");
      String signature = text(receipt, "signature", where + "receipt.");
      List<String> pinned = nodeKeys.getOrDefault(node, nodeKeys.get("*"));
      String pinnedKey = pinned == null ? null : pinnedFor(pinned, shownKey, batchRoot, signature);
      if (shownKey == null && pinnedKey == null) {
        throw new BadInput(where + "receipt.nodePublicKey: missing; give the node's key with --node-key " + node + "=KEY");
      }
      JsonNode epoch = run.path("epoch");
      String epochNumber = epoch.path("epoch").asText("");
      ReceiptCheck.Run r = new ReceiptCheck.Run(jobId, text(receipt, "receiptId", where + "receipt."), node,
          text(receipt, "body", where + "receipt."), batchRoot, text(receipt, "proof", where + "receipt."), signature,
          pinnedKey != null ? pinnedKey : shownKey, nullable(epoch, "leafHash"), epoch.path("closed").asBoolean(false),
          nullable(epoch, "proof"), nullable(epoch, "merkleRoot"));
      List<ReceiptCheck.Check> checks = new ArrayList<>(ReceiptCheck.run(r));
      if (pinnedKey == null) {
        checks.add(new ReceiptCheck.Check("node key", ReceiptCheck.Outcome.PASS, "taken from the answer itself ("
            + ReceiptCheck.fingerprint(shownKey) + "); pin the provider's key with --node-key to rely on the service for nothing"));
      } else if (shownKey != null && !shownKey.equals(pinnedKey)) {
        checks.add(new ReceiptCheck.Check("node key", ReceiptCheck.Outcome.FAIL, "the service shows key "
            + ReceiptCheck.fingerprint(shownKey) + " for node " + node + ", not " + (pinned.size() == 1 ? "the pinned "
                + ReceiptCheck.fingerprint(pinnedKey) : "one of the " + pinned.size() + " pinned")));
      } else {
        String state = receipt.path("nodeKeyState").asText("");
        checks.add(new ReceiptCheck.Check("node key", ReceiptCheck.Outcome.PASS, "pinned " + ReceiptCheck.fingerprint(pinnedKey)
            + (state.equals("retired") || state.equals("revoked") ? " (the node has " + state + " it since; ADR 18)" : "")));
      }
      String pinnedRoot = epochRoots.getOrDefault(epochNumber, epochRoots.get("*"));
      if (pinnedRoot != null) {
        String shownRoot = nullable(epoch, "merkleRoot");
        boolean same = pinnedRoot.equalsIgnoreCase(shownRoot == null ? "" : shownRoot);
        checks.add(new ReceiptCheck.Check("epoch root", same ? ReceiptCheck.Outcome.PASS : ReceiptCheck.Outcome.FAIL,
            same ? "epoch " + epochNumber + "'s root is the pinned " + pinnedRoot
                : "epoch " + epochNumber + "'s root is " + (shownRoot == null ? "not known yet" : shownRoot) + ", not the pinned " + pinnedRoot));
      }
      out.println("run " + r.receiptId() + (epochNumber.isEmpty() ? "" : " (epoch " + epochNumber + ")"));
      for (ReceiptCheck.Check c : checks) {
        out.printf("  %-8s %s: %s%n", c.outcome(), c.name(), c.detail());
        totals.merge(c.outcome(), 1, Integer::sum);
      }
    }
    int failed = totals.getOrDefault(ReceiptCheck.Outcome.FAIL, 0);
    out.println("job " + jobId + ": " + runs.size() + " run(s), " + totals.getOrDefault(ReceiptCheck.Outcome.PASS, 0) + " check(s) passed, "
        + failed + " failed, " + totals.getOrDefault(ReceiptCheck.Outcome.PENDING, 0) + " pending");
    return failed == 0 ? 0 : 1;
  }

  /**
   * Of the keys pinned for a node, the one to check a run with: the answer's own if it is pinned, else
   * the pinned one that signed the batch, else the first (whose check then fails and says so).
   */
  static String pinnedFor(List<String> pinned, String shownKey, String batchRootHex, String signatureB64) {
    if (shownKey != null && pinned.contains(shownKey)) return shownKey;
    for (String k : pinned) {
      if (io.anneal.billing.receipt.ReceiptVerifier.rootSigned(batchRootHex, signatureB64, k)) return k;
    }
    return pinned.get(0);
  }

  /** A key given inline (Base64) or as a file: the node's {@code node-ed25519.pub} (DER) or a text file holding the Base64. */
  static String readKey(String value) throws BadInput {
    Path p = Path.of(value.isEmpty() ? "." : value);
    if (Files.isRegularFile(p)) {
      try {
        byte[] b = Files.readAllBytes(p);
        String text = new String(b, StandardCharsets.US_ASCII).trim();
        return text.matches("[A-Za-z0-9+/=]+") ? text : Base64.getEncoder().encodeToString(b);
      } catch (IOException e) {
        throw new BadInput("--node-key: cannot read " + value + ": " + ReadFailure.why(e));
      }
    }
    try {
      Base64.getDecoder().decode(value);
    } catch (IllegalArgumentException e) {
      throw new BadInput("--node-key: not Base64 and not a file: " + value);
    }
    return value;
  }

  private static JsonNode object(JsonNode n, String key, String where) throws BadInput {
    JsonNode v = n.get(key);
    if (v == null || !v.isObject()) throw new BadInput(where + key + ": missing or not an object");
    return v;
  }

  private static String text(JsonNode n, String key, String where) throws BadInput {
    JsonNode v = n.get(key);
    if (v == null || !v.isTextual()) throw new BadInput(where + key + ": missing or not a string");
    return v.asText();
  }

  private static String nullable(JsonNode n, String key) {
    JsonNode v = n.get(key);
    return v == null || v.isNull() ? null : v.asText();
  }
}
