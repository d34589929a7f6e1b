package io.anneal.billing;

import io.anneal.billing.ledger.SqlLedger;
import io.anneal.billing.receipt.Receipt;
import io.anneal.billing.receipt.SignedReceipt;
import io.vertx.core.json.JsonObject;
import java.util.Base64;
import java.util.HexFormat;

/** The versioned JSON form of a signed receipt, as it travels on the bus and sits in the outbox. */
public final class ReceiptJson {
  public static final int VERSION = 1;
  private static final HexFormat HEX = HexFormat.of();

  private ReceiptJson() {}

  public static JsonObject encode(SignedReceipt sr) {
    Receipt r = sr.receipt();
    return new JsonObject()
        .put("v", VERSION)
        .put("receiptId", r.receiptId())
        .put("jobId", r.jobId())
        .put("tenantId", r.tenantId())
        .put("nodeId", r.nodeId())
        .put("gpuClass", r.gpuClass())
        .put("gpus", r.gpus())
        .put("simulated", r.simulated())
        .put("deviceNanos", r.deviceNanos())
        .put("wallNanos", r.wallNanos())
        .put("peakMemoryBytes", r.peakMemoryBytes())
        .put("startedAtMs", r.startedAtMs())
        .put("endedAtMs", r.endedAtMs())
        .put("outcome", r.outcome())
        .put("resultDigest", r.resultDigest())
        .put("batchRoot", HEX.formatHex(sr.batchRoot()))
        .put("proof", SqlLedger.encodeProof(sr.proof()))
        .put("signature", Base64.getEncoder().encodeToString(sr.signature()));
  }

  /** Decodes; throws IllegalArgumentException naming what is missing or malformed. */
  public static SignedReceipt decode(JsonObject j) {
    if (j == null) throw new IllegalArgumentException("empty receipt message");
    Integer v = j.getInteger("v");
    if (v == null || v != VERSION) throw new IllegalArgumentException("unsupported receipt version " + v);
    try {
      Receipt r = new Receipt(j.getString("receiptId"), j.getString("jobId"), j.getString("tenantId"),
          j.getString("nodeId"), j.getString("gpuClass"), j.getInteger("gpus"), j.getBoolean("simulated"),
          j.getLong("deviceNanos"), j.getLong("wallNanos"), j.getLong("peakMemoryBytes"), j.getLong("startedAtMs"),
          j.getLong("endedAtMs"), j.getString("outcome"), j.getString("resultDigest"));
      return new SignedReceipt(r, HEX.parseHex(j.getString("batchRoot")), SqlLedger.decodeProof(j.getString("proof")),
          Base64.getDecoder().decode(j.getString("signature")));
    } catch (NullPointerException | ClassCastException e) {
      throw new IllegalArgumentException("malformed receipt: " + e.getMessage(), e);
    }
  }
}
