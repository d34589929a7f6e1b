package io.anneal.api;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;

/**
 * An RFC 9457 problem with a stable {@code type}. Thrown inside handlers; the API turns it into
 * {@code application/problem+json} (REST) or an {@code error} message (WebSocket).
 */
public final class Problem extends RuntimeException {
  private static final long serialVersionUID = 1L;
  public static final String BASE = "https://anneal.dev/problems/";

  private final String slug;
  private final int status;
  private final String title;
  private final transient JsonObject extra;

  public Problem(String slug, int status, String title, String detail) {
    this(slug, status, title, detail, null);
  }

  public Problem(String slug, int status, String title, String detail, JsonObject extra) {
    super(detail, null, false, false);
    this.slug = slug;
    this.status = status;
    this.title = title;
    this.extra = extra;
  }

  public int status() {
    return status;
  }

  public String slug() {
    return slug;
  }

  public JsonObject toJson() {
    JsonObject o = new JsonObject().put("type", BASE + slug).put("title", title).put("status", status);
    if (getMessage() != null) o.put("detail", getMessage());
    if (extra != null) o.mergeIn(extra);
    return o;
  }

  public static Problem malformedJson(String detail) {
    return new Problem("malformed-json", 400, "Malformed JSON", detail);
  }

  public static Problem unauthorized() {
    return new Problem("unauthorized", 401, "Missing or unknown API key",
        "send Authorization: Bearer <api key>");
  }

  public static Problem forbidden(String detail) {
    return new Problem("forbidden", 403, "Not allowed", detail);
  }

  public static Problem notFound(String what) {
    return new Problem("not-found", 404, "Not found", what);
  }

  public static Problem invalid(String slug, String title, JsonArray errors) {
    StringBuilder detail = new StringBuilder();
    for (Object e : errors) {
      if (detail.length() > 0) detail.append("; ");
      detail.append(((JsonObject) e).getString("message"));
    }
    return new Problem(slug, 422, title, detail.toString(), new JsonObject().put("errors", errors));
  }
}
