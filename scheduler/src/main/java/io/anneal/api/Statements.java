package io.anneal.api;

import io.anneal.billing.ledger.TenantStatement;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;

/** A tenant's statement of account in the API's shape (GET /api/v1/tenants/{id}/statement). */
final class Statements {
  static final int DEFAULT_LIMIT = 50;

  private Statements() {}

  static String path(String tenantId) {
    return "/api/v1/tenants/" + tenantId + "/statement";
  }

  /** The four balances in base units, and ACT available as a decimal, as the balance endpoint shows them. */
  static JsonObject amounts(TenantStatement.Amounts a) {
    return new JsonObject(a.toMap());
  }

  static JsonObject entry(String tenantId, TenantStatement.Entry e) {
    JsonObject o = new JsonObject().put("txId", e.txId()).put("kind", e.kind()).put("at", e.at().toString());
    if (e.ref() != null) o.put("ref", e.ref());
    o.put("change", amounts(e.change())).put("balanceAfter", amounts(e.balanceAfter()));
    if (e.kind().equals("settle")) o.put("settlements", path(tenantId) + "/" + e.txId());
    return o;
  }

  static JsonObject page(String tenantId, TenantStatement.Page p, int limit) {
    JsonArray entries = new JsonArray();
    p.entries().forEach(e -> entries.add(entry(tenantId, e)));
    JsonObject o = new JsonObject().put("tenantId", tenantId).put("balance", amounts(p.balance()));
    if (p.summary() != null) o.put("period", summary(p.summary()));
    o.put("entries", entries);
    if (p.nextBefore() != null) o.put("next", next(tenantId, p, limit, null));
    return o;
  }

  /** A period's opening and closing balances, its number of entries and each kind's change. */
  static JsonObject summary(TenantStatement.Summary s) {
    JsonObject o = new JsonObject();
    if (s.period().from() != null) o.put("from", s.period().from().toString());
    if (s.period().to() != null) o.put("to", s.period().to().toString());
    JsonArray totals = new JsonArray();
    s.totals().forEach(t -> totals.add(new JsonObject().put("kind", t.kind()).put("entries", t.entries()).put("change", amounts(t.change()))));
    return o.put("opening", amounts(s.opening())).put("closing", amounts(s.closing())).put("entries", s.entries()).put("totals", totals);
  }

  /**
   * The period the query's {@code from} and {@code to} name, or null when neither is given: each a
   * date ({@code 2026-11-01}, its midnight UTC) or an instant ({@code 2026-11-01T00:00:00Z}, or with an
   * offset); {@code from} must be before {@code to}.
   *
   * @throws IllegalArgumentException saying which is wrong and why
   */
  static TenantStatement.Period period(String from, String to) {
    if (from == null && to == null) return null;
    return new TenantStatement.Period(time("from", from), time("to", to));
  }

  private static java.time.Instant time(String name, String raw) {
    if (raw == null) return null;
    try {
      if (raw.length() == 10) return java.time.LocalDate.parse(raw).atStartOfDay(java.time.ZoneOffset.UTC).toInstant();
      return java.time.OffsetDateTime.parse(raw).toInstant();
    } catch (java.time.format.DateTimeParseException e) {
      throw new IllegalArgumentException(name + " must be a date (2026-11-01) or an instant (2026-11-01T00:00:00Z), not '"
          + raw + "'");
    }
  }

  static final String CSV_HEADER = "txId,at,kind,ref,uact,escrowUact,uakt,escrowUakt,balanceUact,balanceEscrowUact,"
      + "balanceUakt,balanceEscrowUakt";

  /** The page as CSV (RFC 4180): one line per entry, newest first, amounts in base units. */
  static String csv(TenantStatement.Page p) {
    StringBuilder out = new StringBuilder(CSV_HEADER).append("\r\n");
    for (TenantStatement.Entry e : p.entries()) {
      TenantStatement.Amounts c = e.change();
      TenantStatement.Amounts b = e.balanceAfter();
      out.append(e.txId()).append(',').append(e.at()).append(',').append(csvField(e.kind())).append(',')
          .append(e.ref() == null ? "" : csvField(e.ref()));
      for (long v : new long[] {c.uact(), c.escrowUact(), c.uakt(), c.escrowUakt(), b.uact(), b.escrowUact(), b.uakt(),
          b.escrowUakt()}) {
        out.append(',').append(v);
      }
      out.append("\r\n");
    }
    return out.toString();
  }

  private static String csvField(String v) {
    boolean quote = v.indexOf(',') >= 0 || v.indexOf('"') >= 0 || v.indexOf('\n') >= 0 || v.indexOf('\r') >= 0;
    return quote ? '"' + v.replace("\"", "\"\"") + '"' : v;
  }

  /** The path of the page after {@code p} (of its period, if read for one), or null at the first entry. */
  static String next(String tenantId, TenantStatement.Page p, int limit, String format) {
    if (p.nextBefore() == null) return null;
    StringBuilder next = new StringBuilder(path(tenantId)).append("?before=").append(p.nextBefore()).append("&limit=").append(limit);
    if (p.summary() != null && p.summary().period().from() != null) next.append("&from=").append(p.summary().period().from());
    if (p.summary() != null && p.summary().period().to() != null) next.append("&to=").append(p.summary().period().to());
    return next.append(format == null ? "" : "&format=" + format).toString();
  }

  static JsonObject detail(String tenantId, TenantStatement.Detail d) {
    JsonArray runs = new JsonArray();
    d.settlements().forEach(r -> runs.add(new JsonObject().put("receiptId", r.receiptId()).put("jobId", r.jobId())
        .put("nodeId", r.nodeId()).put("chargeUact", r.chargeUact()).put("refundUact", r.refundUact())
        .put("paidUakt", r.paidUakt()).put("receipts", "/api/v1/receipts/" + r.jobId())));
    JsonObject o = entry(tenantId, d.entry()).put("tenantId", tenantId);
    o.remove("settlements");
    return o.put("settlements", runs);
  }
}
