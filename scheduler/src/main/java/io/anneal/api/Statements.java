package io.anneal.api;

import io.anneal.billing.ledger.AccountStatement;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;

/**
 * A statement of account in the API's shape: a tenant's (GET /api/v1/tenants/{id}/statement) or a
 * provider's (GET /api/v1/providers/{nodeId}/statement).
 */
final class Statements {
  static final int DEFAULT_LIMIT = 50;

  private Statements() {}

  /**
   * Whose statement: the field that names the owner ({@code tenantId} or {@code nodeId}), its id, its
   * statement's path, and whether it is a provider's (two balances: ACT earned, AKT paid) or a tenant's (four).
   */
  record Of(String idField, String id, String path, boolean provider) {
    static Of tenant(String tenantId) {
      return new Of("tenantId", tenantId, "/api/v1/tenants/" + tenantId + "/statement", false);
    }

    static Of provider(String nodeId) {
      return new Of("nodeId", nodeId, "/api/v1/providers/" + nodeId + "/statement", true);
    }

    JsonObject amounts(AccountStatement.Amounts a) {
      if (!provider) return Statements.amounts(a);
      return new JsonObject().put("uact", a.uact()).put("uakt", a.uakt())
          .put("act", java.math.BigDecimal.valueOf(a.uact(), 6).toPlainString());
    }
  }

  /** The four balances in base units, and ACT available as a decimal, as the balance endpoint shows them. */
  static JsonObject amounts(AccountStatement.Amounts a) {
    return new JsonObject(a.toMap());
  }

  static JsonObject entry(Of of, AccountStatement.Entry e) {
    JsonObject o = new JsonObject().put("txId", e.txId()).put("kind", e.kind()).put("at", e.at().toString());
    if (e.ref() != null) o.put("ref", e.ref());
    o.put("change", of.amounts(e.change())).put("balanceAfter", of.amounts(e.balanceAfter()));
    if (e.kind().equals("settle")) o.put("settlements", of.path() + "/" + e.txId());
    if (e.kind().equals("escrow.hold") && !of.provider()) o.put("holds", of.path() + "/" + e.txId());
    return o;
  }

  static JsonObject page(Of of, AccountStatement.Page p, int limit) {
    JsonArray entries = new JsonArray();
    p.entries().forEach(e -> entries.add(entry(of, e)));
    JsonObject o = new JsonObject().put(of.idField(), of.id()).put("balance", of.amounts(p.balance()));
    if (p.summary() != null) o.put("period", summary(of, p.summary()));
    o.put("entries", entries);
    if (p.nextBefore() != null) o.put("next", next(of, p, limit, null));
    return o;
  }

  /** A period's opening and closing balances, its number of entries and each kind's change. */
  static JsonObject summary(Of of, AccountStatement.Summary s) {
    JsonObject o = new JsonObject();
    if (s.period().from() != null) o.put("from", s.period().from().toString());
    if (s.period().to() != null) o.put("to", s.period().to().toString());
    JsonArray totals = new JsonArray();
    s.totals().forEach(t -> totals.add(new JsonObject().put("kind", t.kind()).put("entries", t.entries())
        .put("change", of.amounts(t.change()))));
    return o.put("opening", of.amounts(s.opening())).put("closing", of.amounts(s.closing())).put("entries", s.entries())
        .put("totals", totals);
  }

  /**
   * The period the query's {@code from} and {@code to} name, or null when neither is given: each a
   * date ({@code 2026-11-01}, its midnight UTC) or an instant ({@code 2026-11-01T00:00:00Z}, or with an
   * offset); {@code from} must be before {@code to}.
   *
   * @throws IllegalArgumentException saying which is wrong and why
   */
  static AccountStatement.Period period(String from, String to) {
    if (from == null && to == null) return null;
    return new AccountStatement.Period(time("from", from), time("to", to));
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
  static final String PROVIDER_CSV_HEADER = "txId,at,kind,ref,uact,uakt,balanceUact,balanceUakt";

  /** The page as CSV (RFC 4180): one line per entry, newest first, amounts in base units. */
  static String csv(Of of, AccountStatement.Page p) {
    StringBuilder out = new StringBuilder(of.provider() ? PROVIDER_CSV_HEADER : CSV_HEADER).append("\r\n");
    for (AccountStatement.Entry e : p.entries()) {
      AccountStatement.Amounts c = e.change();
      AccountStatement.Amounts b = e.balanceAfter();
      out.append(e.txId()).append(',').append(e.at()).append(',').append(csvField(e.kind())).append(',')
          .append(e.ref() == null ? "" : csvField(e.ref()));
      long[] values = of.provider() ? new long[] {c.uact(), c.uakt(), b.uact(), b.uakt()}
          : new long[] {c.uact(), c.escrowUact(), c.uakt(), c.escrowUakt(), b.uact(), b.escrowUact(), b.uakt(), b.escrowUakt()};
      for (long v : values) out.append(',').append(v);
      out.append("\r\n");
    }
    return out.toString();
  }

  private static String csvField(String v) {
    boolean quote = v.indexOf(',') >= 0 || v.indexOf('"') >= 0 || v.indexOf('\n') >= 0 || v.indexOf('\r') >= 0;
    return quote ? '"' + v.replace("\"", "\"\"") + '"' : v;
  }

  /** The path of the page after {@code p} (of its period, if read for one), or null at the first entry. */
  static String next(Of of, AccountStatement.Page p, int limit, String format) {
    if (p.nextBefore() == null) return null;
    StringBuilder next = new StringBuilder(of.path()).append("?before=").append(p.nextBefore()).append("&limit=").append(limit);
    if (p.summary() != null && p.summary().period().from() != null) next.append("&from=").append(p.summary().period().from());
    if (p.summary() != null && p.summary().period().to() != null) next.append("&to=").append(p.summary().period().to());
    return next.append(format == null ? "" : "&format=" + format).toString();
  }

  static JsonObject detail(Of of, AccountStatement.Detail d) {
    JsonArray runs = new JsonArray();
    d.settlements().forEach(r -> runs.add(new JsonObject().put("receiptId", r.receiptId()).put("jobId", r.jobId())
        .put("nodeId", r.nodeId()).put("chargeUact", r.chargeUact()).put("refundUact", r.refundUact())
        .put("paidUakt", r.paidUakt()).put("receipts", "/api/v1/receipts/" + r.jobId())));
    JsonObject o = entry(of, d.entry()).put(of.idField(), of.id());
    o.remove("settlements");
    o.remove("holds");
    o.put("settlements", runs);
    if (d.entry().kind().equals("escrow.hold") && !of.provider()) {
      JsonArray holds = new JsonArray();
      d.holds().forEach(h -> holds.add(new JsonObject().put("jobId", h.jobId()).put("uact", h.uact()).put("uakt", h.uakt())
          .put("job", "/api/v1/jobs/" + h.jobId())));
      o.put("holds", holds);
    }
    return o;
  }
}
