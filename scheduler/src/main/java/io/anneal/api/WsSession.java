package io.anneal.api;

import io.anneal.store.TenantStore.Tenant;
import io.vertx.core.http.ServerWebSocket;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonObject;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * One WebSocket connection (CONTRACT.md): authenticates by header or by a first {@code auth}
 * message, then takes {@code submit}, {@code subscribe} and {@code cancel} messages.
 */
final class WsSession {
  private final ServerWebSocket ws;
  private final ApiVerticle api;
  private Tenant tenant;
  /** The SHA-256 of the key it authenticated with: a rotation of the tenant's key closes it. */
  private String keyHash;
  /** Until when its key authenticates (ms): a replaced key in its grace; else MAX_VALUE. */
  private long keyValidUntilMs = Long.MAX_VALUE;
  /** Opened with one of the tenant's read-only keys (ADR 30): it subscribes, but neither submits nor cancels. */
  private boolean readOnly;
  /** The timer that closes it when its key's grace ends, or -1. */
  private long graceTimer = -1;
  private boolean all;
  private final Set<String> jobs = new HashSet<>();

  WsSession(ServerWebSocket ws, ApiVerticle api) {
    this.ws = ws;
    this.api = api;
    ws.textMessageHandler(this::onText);
    ws.binaryMessageHandler(b -> sendError(null, new Problem("malformed-message", 400, "Binary frames are not accepted",
        "send JSON text frames")));
    ws.closeHandler(v -> {
      if (graceTimer >= 0) api.cancelTimer(graceTimer);
      api.unregister(this);
    });
  }

  Tenant tenant() {
    return tenant;
  }

  void authenticated(io.anneal.store.TenantStore.KeyOwner owner, String apiKey) {
    Tenant t = owner.tenant();
    this.tenant = t;
    this.keyHash = io.anneal.store.TenantStore.hashKey(apiKey);
    this.readOnly = owner.readOnly();
    validUntil(owner.validUntilMs());
    api.register(this);
    JsonObject msg = new JsonObject().put("type", "authenticated").put("tenantId", t.id()).put("name", t.name());
    if (readOnly) msg.put("readOnly", true);
    if (owner.validUntilMs() != Long.MAX_VALUE) msg.put("keyValidUntil", owner.validUntilMs());
    ws.writeTextMessage(msg.encode());
  }

  /**
   * Its tenant's key is now the one hashed {@code newKeyHash}, and the one hashed {@code previousHash} (or
   * none) authenticates until {@code previousUntilMs}: a session opened with another key says so and is
   * closed (1008), as a request with that key is refused from now on; one opened with the previous key is
   * closed so when its grace ends.
   */
  void keyRotated(String newKeyHash, String previousHash, long previousUntilMs) {
    if (keyHash == null || ws.isClosed() || readOnly) return; // a read-only key outlives the tenant key's rotation
    if (keyHash.equals(newKeyHash)) {
      validUntil(Long.MAX_VALUE);
    } else if (keyHash.equals(previousHash) && previousUntilMs > System.currentTimeMillis()) {
      validUntil(Math.min(keyValidUntilMs, previousUntilMs));
    } else {
      closeRotated();
    }
  }

  /** The SHA-256 of the key it authenticated with (null before it did). */
  String keyHash() {
    return keyHash;
  }

  /** Opened with a read-only key, and the SHA-256 of that key (null before it authenticated). */
  String readOnlyKeyHash() {
    return readOnly ? keyHash : null;
  }

  /** The read-only key hashed {@code hash} was revoked (or has expired): a session opened with it is closed. */
  void readKeyEnded(String hash) {
    if (!readOnly || ws.isClosed() || !hash.equals(keyHash)) return;
    close("API key revoked", "the read-only key this session authenticated with was revoked or has expired");
  }

  private void validUntil(long untilMs) {
    keyValidUntilMs = untilMs;
    if (graceTimer >= 0) api.cancelTimer(graceTimer);
    graceTimer = untilMs == Long.MAX_VALUE ? -1 : api.timer(untilMs - System.currentTimeMillis(), () -> {
      graceTimer = -1;
      if (ws.isClosed()) return;
      if (System.currentTimeMillis() >= keyValidUntilMs) {
        closeRotated();
      } else {
        validUntil(keyValidUntilMs); // the timer's clock ran ahead of the wall clock: wait the rest
      }
    });
  }

  private void closeRotated() {
    if (readOnly) {
      close("API key expired", "the read-only key this session authenticated with has expired");
    } else {
      close("API key rotated", "the key this session authenticated with was replaced; connect again with the new key");
    }
  }

  private void close(String title, String detail) {
    if (graceTimer >= 0) api.cancelTimer(graceTimer);
    sendError(null, new Problem("unauthorized", 401, title, detail));
    ws.close((short) 1008, title);
  }

  /** Its tenant's weight, GPU quota or queue bound changed: submits from now on are checked against the new ones. */
  void policyChanged(double weight, Integer gpuQuota, Integer maxQueuedJobs, Map<String, String> nodeLabels) {
    if (tenant != null) tenant = tenant.withPolicy(weight, gpuQuota, maxQueuedJobs, nodeLabels);
  }

  void maybeSend(String jobId, String text) {
    if (all || jobs.contains(jobId)) ws.writeTextMessage(text);
  }

  void sendError(String requestId, Throwable t) {
    if (t instanceof java.util.concurrent.CompletionException && t.getCause() != null) t = t.getCause();
    Problem p = t instanceof Problem pr ? pr : ApiVerticle.storeFailure(t) ? ApiVerticle.storeUnavailable()
        : new Problem("internal", 500, "Internal error", "the request failed inside the service");
    JsonObject o = new JsonObject().put("type", "error").put("requestId", requestId).put("error", p.toJson());
    if (!ws.isClosed()) ws.writeTextMessage(o.encode());
  }

  private void onText(String text) {
    JsonObject msg;
    try {
      msg = new JsonObject(text);
    } catch (DecodeException | ClassCastException e) {
      sendError(null, Problem.malformedJson("the message is not a JSON object: " + e.getMessage()));
      return;
    }
    String type = msg.getValue("type") instanceof String s ? s : null;
    String requestId = msg.getValue("requestId") instanceof String s ? s : null;
    if ("auth".equals(type)) {
      String key = msg.getValue("apiKey") instanceof String s ? s : null;
      api.authenticate(key).onSuccess(o -> authenticated(o, key)).onFailure(e -> sendError(requestId, e));
      return;
    }
    if (tenant == null) {
      sendError(requestId, Problem.unauthorized());
      return;
    }
    if (type == null) {
      sendError(requestId, new Problem("malformed-message", 400, "Unknown message", "a message needs a string 'type'"));
      return;
    }
    if (readOnly && ("submit".equals(type) || "cancel".equals(type))) {
      sendError(requestId, ApiVerticle.readOnlyKey(type + " over the WebSocket"));
      return;
    }
    switch (type) {
      case "submit" -> {
        Object job = msg.getValue("job");
        if (!(job instanceof JsonObject j)) {
          sendError(requestId, new Problem("malformed-message", 400, "Missing job", "submit needs a 'job' object"));
          return;
        }
        String idem = msg.getValue("idempotencyKey") instanceof String s ? s : null;
        api.submit(tenant, j, idem).onSuccess(out -> {
          JsonObject ack = new JsonObject().put("type", "accepted").put("requestId", requestId).put("jobId", out.getString("id"))
              .put("state", out.getString("state"));
          if (out.containsKey("escrowUact")) ack.put("escrowUact", out.getLong("escrowUact"));
          if (out.containsKey("waiting")) ack.put("waiting", out.getString("waiting"));
          if (Boolean.TRUE.equals(msg.getValue("subscribe"))) jobs.add(out.getString("id"));
          ws.writeTextMessage(ack.encode());
        }).onFailure(e -> sendError(requestId, e));
      }
      case "subscribe" -> {
        Object jobId = msg.getValue("jobId");
        if (jobId == null) {
          all = true;
        } else if (jobId instanceof String s) {
          jobs.add(s);
        } else {
          sendError(requestId, new Problem("malformed-message", 400, "Bad jobId", "jobId must be a string"));
          return;
        }
        ws.writeTextMessage(new JsonObject().put("type", "subscribed").put("requestId", requestId)
            .put("jobId", jobId).encode());
      }
      case "cancel" -> {
        if (!(msg.getValue("jobId") instanceof String jobId)) {
          sendError(requestId, new Problem("malformed-message", 400, "Bad jobId", "cancel needs a string jobId"));
          return;
        }
        api.cancelFor(tenant, jobId).onSuccess(out -> ws.writeTextMessage(new JsonObject().put("type", "cancel")
            .put("requestId", requestId).put("jobId", jobId).put("result", out.getString("result")).encode()))
            .onFailure(e -> sendError(requestId, e));
      }
      default -> sendError(requestId, new Problem("malformed-message", 400, "Unknown message type",
          "type must be auth, submit, subscribe or cancel, not '" + type + "'"));
    }
  }
}
