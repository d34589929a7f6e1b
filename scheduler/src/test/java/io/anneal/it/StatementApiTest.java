package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A tenant's statement of account: every journal entry that moved its balances (deposit, mint, holds at
 * admission, settlements, releases), newest first, page by page, each line's balance following from the
 * one before, the newest equal to the balance now; a settlement entry lists the tenant's runs in it.
 * Read by the tenant and the admin only; bad queries are refused.
 */
class StatementApiTest {
  @TempDir Path dir;

  private static String sleepJob(long ms) {
    return new JsonObject().put("kind", "sleep").put("gpus", 1).put("maxSeconds", 60)
        .put("params", new JsonObject().put("ms", ms)).encode();
  }

  private static final List<String> BALANCES = List.of("uact", "escrowUact", "uakt", "escrowUakt");

  @Test
  void aTenantsStatementAddsUpToItsBalanceAndTracesEachChargeToItsJob() throws Exception {
    try (TestService s = TestService.start(dir, "--cpu-devices", "1")) {
      String tenant = s.json(s.get("/api/v1/me", TestService.DEMO_KEY)).getString("id");
      String path = "/api/v1/tenants/" + tenant + "/statement";
      String done = s.json(s.post("/api/v1/jobs", TestService.DEMO_KEY, sleepJob(20))).getString("id");
      s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(done).getString("state")));
      String blocker = s.json(s.post("/api/v1/jobs", TestService.DEMO_KEY, sleepJob(60_000))).getString("id");
      s.await(Duration.ofSeconds(10), () -> "RUNNING".equals(s.job(blocker).getString("state")));
      String waiting = s.json(s.post("/api/v1/jobs", TestService.DEMO_KEY, sleepJob(20))).getString("id");
      assertThat(s.job(waiting).getString("state")).isEqualTo("QUEUED");
      assertThat(s.delete("/api/v1/jobs/" + waiting, TestService.DEMO_KEY).statusCode()).isEqualTo(202);
      s.await(Duration.ofSeconds(10), () -> s.json(s.get(path, TestService.DEMO_KEY)).getJsonArray("entries")
          .stream().anyMatch(e -> ("release:" + waiting).equals(((JsonObject) e).getString("ref"))));

      // the whole statement, three lines a page: each page continues the one before
      List<JsonObject> lines = new ArrayList<>();
      JsonObject first = s.json(s.get(path + "?limit=3", TestService.DEMO_KEY));
      JsonObject balanceNow = s.json(s.get("/api/v1/tenants/" + tenant + "/balance", TestService.DEMO_KEY));
      for (String b : BALANCES) assertThat(first.getJsonObject("balance").getLong(b)).as(b).isEqualTo(balanceNow.getLong(b));
      String next = null;
      for (JsonObject page = first; ; page = s.json(s.get(next, TestService.DEMO_KEY))) {
        assertThat(page.getJsonArray("entries").size()).isBetween(1, 3);
        page.getJsonArray("entries").forEach(e -> lines.add((JsonObject) e));
        next = page.getString("next");
        if (next == null) break;
      }
      long[] after = BALANCES.stream().mapToLong(b -> balanceNow.getLong(b)).toArray();
      for (JsonObject line : lines) {
        for (int i = 0; i < BALANCES.size(); i++) {
          assertThat(line.getJsonObject("balanceAfter").getLong(BALANCES.get(i))).as("%s after %s", BALANCES.get(i), line)
              .isEqualTo(after[i]);
          after[i] -= line.getJsonObject("change").getLong(BALANCES.get(i));
        }
      }
      assertThat(after).as("before the first entry, nothing").containsOnly(0L);
      List<String> kinds = lines.stream().map(l -> l.getString("kind")).toList();
      assertThat(kinds).contains("deposit", "bme.mint", "escrow.hold", "settle", "escrow.release");
      assertThat(kinds.get(kinds.size() - 1)).isEqualTo("deposit");

      // the settlement that charged the finished job names it, with the charge its job shows
      JsonObject job = s.job(done);
      JsonObject charged = null;
      for (JsonObject line : lines) {
        if (!line.getString("kind").equals("settle")) continue;
        JsonObject detail = s.json(s.get(line.getString("settlements"), TestService.DEMO_KEY));
        assertThat(detail.getJsonObject("change")).isEqualTo(line.getJsonObject("change"));
        for (Object r : detail.getJsonArray("settlements")) {
          if (((JsonObject) r).getString("jobId").equals(done)) charged = (JsonObject) r;
        }
      }
      assertThat(charged).as("a settlement entry with the job " + done).isNotNull();
      assertThat(charged.getLong("chargeUact")).isEqualTo(job.getLong("chargeUact"));
      assertThat(s.get(charged.getString("receipts"), TestService.DEMO_KEY).statusCode()).isEqualTo(200);
      assertThat(lines.stream().filter(l -> List.of("settle", "escrow.hold").contains(l.getString("kind"))))
          .as("entries of a batch across tenants name no job of another").allMatch(l -> !l.containsKey("ref"));
      // the hold lines list the jobs they held: each of the three jobs, with the escrow its job shows
      Map<String, Long> held = new java.util.HashMap<>();
      for (JsonObject line : lines) {
        if (!line.getString("kind").equals("escrow.hold")) continue;
        JsonObject d = s.json(s.get(line.getString("holds"), TestService.DEMO_KEY));
        long sum = 0;
        for (Object h : d.getJsonArray("holds")) {
          held.put(((JsonObject) h).getString("jobId"), ((JsonObject) h).getLong("uact"));
          sum += ((JsonObject) h).getLong("uact");
        }
        assertThat(sum).as("a hold line's jobs add up to its change").isEqualTo(-line.getJsonObject("change").getLong("uact"));
      }
      assertThat(held).containsOnlyKeys(done, blocker, waiting);
      assertThat(held.get(done)).isEqualTo(job.getLong("escrowUact"));

      // the same lines as CSV, for a spreadsheet: a header, one line per entry, pages linked
      var csv = s.get(path + "?format=csv&limit=3", TestService.DEMO_KEY);
      assertThat(csv.statusCode()).isEqualTo(200);
      assertThat(csv.headers().firstValue("content-type")).hasValueSatisfying(t -> assertThat(t).startsWith("text/csv"));
      assertThat(csv.headers().firstValue("Link")).hasValueSatisfying(l -> assertThat(l).contains("format=csv", "rel=\"next\""));
      String[] rows = csv.body().split("\r\n");
      assertThat(rows[0]).isEqualTo("txId,at,kind,ref,uact,escrowUact,uakt,escrowUakt,balanceUact,balanceEscrowUact,balanceUakt,"
          + "balanceEscrowUakt");
      assertThat(rows).hasSize(4);
      for (int i = 1; i < rows.length; i++) {
        String[] f = rows[i].split(",", -1);
        JsonObject line = lines.get(i - 1);
        assertThat(Long.parseLong(f[0])).isEqualTo(line.getLong("txId"));
        assertThat(f[2]).isEqualTo(line.getString("kind"));
        assertThat(Long.parseLong(f[4])).isEqualTo(line.getJsonObject("change").getLong("uact"));
        assertThat(Long.parseLong(f[8])).isEqualTo(line.getJsonObject("balanceAfter").getLong("uact"));
      }
      assertThat(s.get(path + "?format=xml", TestService.DEMO_KEY).statusCode()).isEqualTo(422);

      // a period: from the settlement of the finished job on; and the period before it, which closes where it opens
      String settledAt = lines.stream().filter(l -> l.getString("kind").equals("settle")).reduce((a, b) -> b).orElseThrow()
          .getString("at");
      List<JsonObject> inPeriod = lines.stream()
          .filter(l -> !Instant.parse(l.getString("at")).isBefore(Instant.parse(settledAt))).toList();
      JsonObject since = s.json(s.get(path + "?limit=2&from=" + settledAt, TestService.DEMO_KEY));
      JsonObject period = since.getJsonObject("period");
      assertThat(period.getString("from")).isEqualTo(settledAt);
      assertThat(period.containsKey("to")).isFalse();
      assertThat(period.getLong("entries")).isEqualTo(inPeriod.size());
      JsonObject lastBefore = lines.get(inPeriod.size());
      for (String b : BALANCES) {
        assertThat(period.getJsonObject("closing").getLong(b)).as("closing " + b).isEqualTo(balanceNow.getLong(b));
        assertThat(period.getJsonObject("opening").getLong(b)).as("opening " + b)
            .isEqualTo(lastBefore.getJsonObject("balanceAfter").getLong(b));
        long byKind = period.getJsonArray("totals").stream().mapToLong(t -> ((JsonObject) t).getJsonObject("change").getLong(b)).sum();
        long byLine = inPeriod.stream().mapToLong(l -> l.getJsonObject("change").getLong(b)).sum();
        assertThat(byKind).as("totals of " + b).isEqualTo(byLine);
      }
      List<JsonObject> periodLines = new ArrayList<>();
      for (JsonObject page = since; ; page = s.json(s.get(page.getString("next"), TestService.DEMO_KEY))) {
        assertThat(page.getJsonObject("period")).isEqualTo(period);
        page.getJsonArray("entries").forEach(e -> periodLines.add((JsonObject) e));
        if (page.getString("next") == null) break;
        assertThat(page.getString("next")).contains("from=" + settledAt);
      }
      assertThat(periodLines).isEqualTo(inPeriod);
      JsonObject before = s.json(s.get(path + "?to=" + settledAt, TestService.DEMO_KEY)).getJsonObject("period");
      assertThat(before.getJsonObject("closing")).isEqualTo(period.getJsonObject("opening"));
      assertThat(before.getLong("entries")).isEqualTo(lines.size() - inPeriod.size());
      JsonObject longAgo = s.json(s.get(path + "?from=2020-01-01&to=2020-02-01", TestService.DEMO_KEY));
      assertThat(longAgo.getJsonArray("entries")).isEmpty();
      assertThat(longAgo.getJsonObject("period").getLong("entries")).isZero();
      assertThat(longAgo.getJsonObject("period").getString("to")).isEqualTo("2020-02-01T00:00:00Z");
      var periodCsv = s.get(path + "?format=csv&from=" + settledAt, TestService.DEMO_KEY);
      assertThat(periodCsv.body().split("\r\n")).hasSize(inPeriod.size() + 1);

      // another tenant: its own statement only; the admin reads any; bad queries change nothing and say why
      JsonObject other = s.json(s.post("/api/v1/tenants", TestService.ADMIN_KEY,
          "{\"name\":\"other\",\"apiKey\":\"other-key-0123456789\"}"));
      String otherPath = "/api/v1/tenants/" + other.getString("id") + "/statement";
      assertThat(s.post(otherPath.replace("/statement", "/deposits"), TestService.ADMIN_KEY,
          "{\"akt\":\"100\",\"reference\":\"o-1\"}").statusCode()).isEqualTo(202);
      assertThat(s.get(path, "other-key-0123456789").statusCode()).isEqualTo(403);
      assertThat(s.get(path, null).statusCode()).isEqualTo(401);
      JsonArray otherLines = s.json(s.get(otherPath, TestService.ADMIN_KEY)).getJsonArray("entries");
      assertThat(otherLines).isNotEmpty();
      long otherDeposit = otherLines.getJsonObject(otherLines.size() - 1).getLong("txId");
      assertThat(s.get(path + "/" + otherDeposit, TestService.DEMO_KEY).statusCode()).isEqualTo(404);
      assertThat(s.get(otherPath + "/" + otherDeposit, "other-key-0123456789").statusCode()).isEqualTo(200);
      assertThat(s.get(path, TestService.ADMIN_KEY).statusCode()).isEqualTo(200);
      assertThat(s.get("/api/v1/tenants/t_nobody/statement", TestService.ADMIN_KEY).statusCode()).isEqualTo(404);
      for (String bad : List.of("?limit=0", "?limit=501", "?limit=x", "?before=0", "?before=abc", "?from=2026-13-01",
          "?to=yesterday", "?from=2026-11-02&to=2026-11-01", "?from=2026-11-01&to=2026-11-01T00:00:00Z")) {
        var r = s.get(path + bad, TestService.DEMO_KEY);
        assertThat(r.statusCode()).as(bad).isEqualTo(422);
        assertThat(s.json(r).getString("type")).endsWith("invalid-query");
      }
      assertThat(s.get(path + "/x1", TestService.DEMO_KEY).statusCode()).isEqualTo(422);
      s.delete("/api/v1/jobs/" + blocker, TestService.DEMO_KEY);
    }
  }
  /**
   * A provider's statement (admin): the settlement that paid the node for a job, with the run it settled,
   * then the payout it asked for; the lines add up to the node's balance; periods and CSV as a tenant's.
   */
  @Test
  void aProvidersStatementShowsWhatItsNodeEarnedAndRedeemed() throws Exception {
    try (TestService s = TestService.start(dir, "--cpu-devices", "1")) {
      String node = s.service.nodeId();
      String path = "/api/v1/providers/" + node + "/statement";
      String done = s.json(s.post("/api/v1/jobs", TestService.DEMO_KEY, sleepJob(200))).getString("id");
      s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(done).getString("state")));
      long charge = s.job(done).getLong("chargeUact");
      assertThat(charge).isPositive();
      JsonObject page = s.json(s.get(path, TestService.ADMIN_KEY));
      assertThat(page.getString("nodeId")).isEqualTo(node);
      assertThat(page.getJsonObject("balance").fieldNames()).containsExactlyInAnyOrder("uact", "uakt", "act");
      JsonObject settled = page.getJsonArray("entries").getJsonObject(0);
      assertThat(settled.getString("kind")).isEqualTo("settle");
      assertThat(settled.getJsonObject("change").getLong("uact")).isEqualTo(charge);
      JsonObject detail = s.json(s.get(settled.getString("settlements"), TestService.ADMIN_KEY));
      assertThat(detail.getJsonArray("settlements")).singleElement()
          .satisfies(r -> assertThat(((JsonObject) r).getString("jobId")).isEqualTo(done));

      // the node asks for its ACT to be paid out: a redemption request takes it off its balance
      assertThat(s.post("/api/v1/providers/" + node + "/payouts", TestService.ADMIN_KEY, new JsonObject()
          .put("act", java.math.BigDecimal.valueOf(charge, 6).toPlainString()).put("reference", "pay-1").encode()).statusCode())
          .isEqualTo(202);
      JsonObject after = s.json(s.get(path, TestService.ADMIN_KEY));
      JsonObject request = after.getJsonArray("entries").getJsonObject(0);
      assertThat(request.getString("kind")).isEqualTo("bme.redeem-request");
      assertThat(request.getString("ref")).isEqualTo("redeem-request:api:pay-1");
      assertThat(request.getJsonObject("change").getLong("uact")).isEqualTo(-charge);
      long[] balance = {after.getJsonObject("balance").getLong("uact"), after.getJsonObject("balance").getLong("uakt")};
      JsonObject payouts = s.json(s.get("/api/v1/providers/" + node + "/payouts", TestService.ADMIN_KEY));
      assertThat(balance).containsExactly(payouts.getLong("uact"), payouts.getLong("uakt"));
      for (Object o : after.getJsonArray("entries")) {
        JsonObject line = (JsonObject) o;
        assertThat(line.getJsonObject("balanceAfter").getLong("uact")).isEqualTo(balance[0]);
        assertThat(line.getJsonObject("balanceAfter").getLong("uakt")).isEqualTo(balance[1]);
        balance[0] -= line.getJsonObject("change").getLong("uact");
        balance[1] -= line.getJsonObject("change").getLong("uakt");
      }
      assertThat(balance).as("before the first entry, nothing").containsOnly(0L);

      JsonObject period = s.json(s.get(path + "?from=2020-01-01", TestService.ADMIN_KEY)).getJsonObject("period");
      assertThat(period.getJsonObject("opening").getLong("uact")).isZero();
      assertThat(period.getJsonArray("totals").stream().map(t -> ((JsonObject) t).getString("kind")).toList())
          .contains("bme.redeem-request", "settle");
      var csv = s.get(path + "?format=csv", TestService.ADMIN_KEY);
      assertThat(csv.body().split("\r\n")[0]).isEqualTo("txId,at,kind,ref,uact,uakt,balanceUact,balanceUakt");

      // the admin's only; a node the ledger does not know; bad queries
      assertThat(s.get(path, TestService.DEMO_KEY).statusCode()).isEqualTo(403);
      assertThat(s.get(path, null).statusCode()).isEqualTo(401);
      assertThat(s.get("/api/v1/providers/no-such-node/statement", TestService.ADMIN_KEY).statusCode()).isEqualTo(404);
      assertThat(s.get(path + "/" + Long.MAX_VALUE, TestService.ADMIN_KEY).statusCode()).isEqualTo(404);
      assertThat(s.get(path + "?from=nope", TestService.ADMIN_KEY).statusCode()).isEqualTo(422);
    }
  }
}
