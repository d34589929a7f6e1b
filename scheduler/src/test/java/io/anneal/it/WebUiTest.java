package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import io.vertx.core.json.JsonObject;
import org.openqa.selenium.By;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * The web UI in a real headless Chromium: fleet and supply load, a tenant submits a job, sees it settle,
 * sees the epoch that holds it close, and checks its receipt in the browser (and the browser's checks
 * fail on a tampered answer).
 */
class WebUiTest {
  private static final File CHROMIUM = new File("/usr/bin/chromium");
  private static final File CHROMEDRIVER = new File("/usr/bin/chromedriver");

  @TempDir Path dir;
  @TempDir Path profile;

  @Test
  void aTenantSeesTheFleetSubmitsAJobAndWatchesItSettle() throws Exception {
    boolean present = CHROMIUM.canExecute() && CHROMEDRIVER.canExecute();
    if ("true".equalsIgnoreCase(System.getenv("CI")) && !present) {
      throw new IllegalStateException("CI=true but Chromium/ChromeDriver are missing (.ci/run installs them)");
    }
    Assumptions.assumeTrue(present, "Debian chromium and chromium-driver are not installed");
    try (TestService s = TestService.start(dir, "--epoch-seconds", "2")) {
      ChromeOptions options = new ChromeOptions();
      options.setBinary(CHROMIUM);
      options.addArguments("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
          "--window-size=1300,900", "--user-data-dir=" + profile);
      ChromeDriverService service = new ChromeDriverService.Builder().usingDriverExecutable(CHROMEDRIVER).build();
      WebDriver driver = new ChromeDriver(service, options);
      try {
        // the page re-renders its tables as events arrive: an element found a moment ago may be gone
        WebDriverWait wait = new WebDriverWait(driver, Duration.ofSeconds(20));
        wait.ignoring(org.openqa.selenium.StaleElementReferenceException.class);
        driver.get(s.base() + "/");
        wait.until(d -> "4".equals(d.findElement(By.id("gpus-total")).getText()));
        wait.until(d -> "HEALTHY".equals(d.findElement(By.id("status")).getText()));
        // the key the node signs with, as its key file holds it
        String fingerprint = io.anneal.billing.receipt.ReceiptCheck.fingerprint(java.util.Base64.getEncoder().encodeToString(
            java.nio.file.Files.readAllBytes(dir.resolve(io.anneal.billing.receipt.NodeKeys.PUBLIC_FILE))));
        wait.until(d -> d.findElement(By.id("node-keys")).getText().equals(s.service.nodeId() + " signs receipts with " + fingerprint));
        wait.until(d -> "0".equals(d.findElement(By.id("pending-payouts")).getText()));
        // the bootstrap fund is on by default; its first window closes after 600 s
        wait.until(d -> d.findElement(By.id("bootstrap")).getText().endsWith(" ACT held; no window closed yet (every 600 s)"));
        // the week's flows from closed epochs (the genesis mint's epoch closes within the epoch length)
        wait.until(d -> !"–".equals(d.findElement(By.id("week-flows")).getText()));
        assertThat(driver.findElement(By.id("submit")).isDisplayed()).as("no submit form before a key is given").isFalse();

        driver.findElement(By.id("apiKey")).sendKeys(TestService.DEMO_KEY);
        driver.findElement(By.cssSelector("#auth button")).click();
        wait.until(d -> d.findElement(By.id("who")).getText().contains("demo"));
        wait.until(d -> d.findElement(By.id("submit")).isDisplayed());
        var param = driver.findElement(By.id("param"));
        param.clear();
        param.sendKeys("50");
        driver.findElement(By.cssSelector("#submit button")).click();
        wait.until(d -> d.findElement(By.id("submit-msg")).getText().startsWith("accepted j_"));
        String jobId = driver.findElement(By.id("submit-msg")).getText().substring("accepted ".length());
        wait.until(d -> d.findElements(By.cssSelector("#jobs td.state.SETTLED")).size() == 1);
        assertThat(driver.findElement(By.id("jobs")).getText()).contains(jobId).contains("SETTLED");
        assertThat(s.job(jobId).getString("state")).isEqualTo("SETTLED");
        wait.until(d -> d.findElement(By.id("balance")).getText().toLowerCase(java.util.Locale.ROOT).contains("act available"));

        // the epoch holding the job's settlement closes and is listed with its root
        var closedRoot = new java.util.concurrent.atomic.AtomicReference<String>();
        s.await(Duration.ofSeconds(20), () -> {
          JsonObject epoch = s.json(s.get("/api/v1/receipts/" + jobId, TestService.DEMO_KEY)).getJsonObject("epoch");
          if (epoch != null && epoch.getBoolean("closed")) closedRoot.set(epoch.getString("merkleRoot"));
          return closedRoot.get() != null;
        });
        String root = closedRoot.get();
        wait.until(d -> d.findElements(By.cssSelector("#epochs td.hash")).stream()
            .anyMatch(td -> root.equals(td.getAttribute("title"))));
        // its receipt, checked in the browser: body, signed batch, Ed25519 signature, epoch root
        driver.findElement(By.xpath("//table[@id='jobs']//tr[td[1]='" + jobId + "']//a[text()='receipt']")).click();
        wait.until(d -> d.findElements(By.cssSelector("#receipt-runs .checks li")).size() == 4);
        assertThat(driver.findElements(By.cssSelector("#receipt-runs .checks li.PASS"))).as(
            driver.findElement(By.id("receipt-runs")).getText()).hasSize(4);
        assertThat(driver.findElement(By.id("receipt-runs")).getText()).contains("run " + jobId + "/", "epoch root " + root,
            "key sha256:");
        Path shot = Path.of("target", "web-ui-receipt.png");
        Files.createDirectories(shot.getParent());
        Files.write(shot, ((TakesScreenshot) driver).getScreenshotAs(OutputType.BYTES));
        // the same checks on a tampered answer: more device time, then another signature
        Object tampered = ((JavascriptExecutor) driver).executeAsyncScript(
            "const done = arguments[arguments.length - 1];"
                + "getJson('/api/v1/receipts/' + arguments[0], true).then(async (a) => {"
                + "  const run = a.runs[0];"
                + "  const body = run.receipt.body.split('\\n'); body[8] = String(Number(body[8]) * 10 + 1);"
                + "  const inflated = JSON.parse(JSON.stringify(run)); inflated.receipt.body = body.join('\\n');"
                + "  const forged = JSON.parse(JSON.stringify(run));"
                + "  forged.receipt.signature = btoa(String.fromCharCode(...atob(run.receipt.signature).split('').map((c, i) =>"
                + "    i === 5 ? c.charCodeAt(0) ^ 1 : c.charCodeAt(0))));"
                + "  const outcomes = async (r) => (await window.anneal.checkRun(arguments[0], r)).map((c) => c.outcome).join(',');"
                + "  done([await outcomes(run), await outcomes(inflated), await outcomes(forged)]);"
                + "}).catch((e) => done(String(e)));", jobId);
        assertThat(tampered).asList().containsExactly("PASS,PASS,PASS,PASS", "PASS,FAIL,PASS,FAIL", "PASS,PASS,FAIL,PASS");
        driver.findElement(By.id("receipt-close")).click();
        wait.until(d -> !d.findElement(By.id("receipt-dialog")).isDisplayed());

        // the tenant's statement: the settlement that charged the job, its runs opened from the page
        wait.until(d -> d.findElement(By.id("statement-card")).isDisplayed()
            && d.findElements(By.xpath("//table[@id='statement']//tr[td[2]='runs settled']//a[text()='runs']")).size() > 0);
        assertThat(driver.findElement(By.id("statement")).getText()).contains("AKT deposit", "held for admitted jobs");
        long charge = s.job(jobId).getLong("chargeUact");
        // one job ran: one settlement entry
        assertThat(driver.findElements(By.xpath("//table[@id='statement']//tr[td[2]='runs settled']"))).hasSize(1);
        driver.findElement(By.xpath("//table[@id='statement']//tr[td[2]='runs settled']//a[text()='runs']")).click();
        wait.until(d -> d.findElements(By.xpath("//table[@id='statement']//tr[@class='run'][td[2][starts-with(., 'job "
            + jobId + " ')]]")).size() == 1);
        assertThat(driver.findElement(By.xpath("//table[@id='statement']//tr[@class='run'][td[2][starts-with(., 'job " + jobId
            + " ')]]")).getText()).contains("charged " + java.math.BigDecimal.valueOf(charge, 6).stripTrailingZeros().toPlainString()
            + " ACT");

        // the hold line lists the job it held
        driver.findElement(By.xpath("//table[@id='statement']//tr[td[2]='held for admitted jobs']//a[text()='jobs']")).click();
        wait.until(d -> d.findElements(By.xpath("//table[@id='statement']//tr[@class='held'][td[2]='job " + jobId + "']")).size() == 1);
        assertThat(driver.findElement(By.xpath("//table[@id='statement']//tr[@class='held']")).getText()).contains("ACT at admission");

        // the statement for this month (UTC): its summary names the settlement and where the month opened and
        // closed; last month has no entry of this new service
        var period = new org.openqa.selenium.support.ui.Select(driver.findElement(By.id("statement-period")));
        assertThat(period.getOptions()).hasSize(13);
        period.selectByIndex(1);
        wait.until(d -> d.findElement(By.id("statement-summary")).getText().contains("runs settled ×1"));
        assertThat(driver.findElement(By.id("statement-summary")).getText()).startsWith("opened at 0 ACT available, 0 in escrow;")
            .contains("AKT deposit ×1", "closed at ");
        assertThat(driver.findElements(By.xpath("//table[@id='statement']//tr[td[2]='runs settled']"))).hasSize(1);
        period.selectByIndex(2);
        wait.until(d -> d.findElement(By.id("statement-summary")).getText().contains("0 entries"));
        assertThat(driver.findElements(By.xpath("//table[@id='statement']//tr[@class='entry']"))).isEmpty();
        period.selectByIndex(0);
        wait.until(d -> d.findElement(By.id("statement-summary")).getText().isEmpty()
            && d.findElements(By.xpath("//table[@id='statement']//tr[@class='entry']")).size() > 0);

        // an operator labels the node (ADR 29): the page shows it, and a job asking for labels from the form
        // runs where they are and is refused where no node has them
        String node = s.service.nodeId();
        assertThat(s.put("/api/v1/nodes/" + node + "/labels", TestService.ADMIN_KEY, "{\"labels\":{\"tier\":\"certified\"}}")
            .statusCode()).isEqualTo(200);
        wait.until(d -> d.findElement(By.id("node-labels")).getText().contains(node + ": tier=certified"));
        var labels = driver.findElement(By.id("nodeLabels"));
        labels.sendKeys("tier=gold");
        driver.findElement(By.cssSelector("#submit button")).click();
        wait.until(d -> d.findElement(By.id("submit-msg")).getText().contains("no node carries the labels tier=gold"));
        labels.clear();
        labels.sendKeys("tier=certified");
        driver.findElement(By.cssSelector("#submit button")).click();
        wait.until(d -> d.findElement(By.id("submit-msg")).getText().startsWith("accepted j_")
            && !d.findElement(By.id("submit-msg")).getText().equals("accepted " + jobId));
        String labelledJob = driver.findElement(By.id("submit-msg")).getText().substring("accepted ".length());
        assertThat(s.job(labelledJob).getJsonObject("nodeLabels").getString("tier")).isEqualTo("certified");
        wait.until(d -> d.findElements(By.cssSelector("#jobs td.state.SETTLED")).size() == 2);
        labels.clear();
        // a tenant policy keeping the tenant's jobs there shows beside its name
        String tenantId = s.json(s.get("/api/v1/me", TestService.DEMO_KEY)).getString("id");
        assertThat(s.patch("/api/v1/tenants/" + tenantId, TestService.ADMIN_KEY, "{\"nodeLabels\":{\"tier\":\"certified\"}}")
            .statusCode()).isEqualTo(200);
        wait.until(d -> d.findElement(By.id("who")).getText().contains("jobs run only on nodes labelled tier=certified"));

        // the tenant makes a read-only key from the page (shown once, listed), and revokes it there
        driver.findElement(By.id("read-key")).click();
        driver.switchTo().alert().sendKeys("board");
        driver.switchTo().alert().accept();
        wait.until(d -> !d.findElements(By.id("new-read-key")).isEmpty());
        String boardKey = driver.findElement(By.id("new-read-key")).getText();
        assertThat(boardKey).startsWith("rk_");
        assertThat(s.get("/api/v1/me", boardKey).statusCode()).isEqualTo(200);
        wait.until(d -> d.findElements(By.cssSelector("#read-keys li.active")).size() == 1);
        assertThat(driver.findElement(By.id("read-keys")).getText()).contains("read-only key \"board\" sha256:");
        // the key read /me above: the list (read again every 5 s) says when it was last used
        wait.until(d -> d.findElement(By.id("read-keys")).getText().contains("last used "));
        driver.findElement(By.cssSelector("#read-keys li.active button")).click();
        wait.until(d -> d.findElements(By.cssSelector("#read-keys li.revoked")).size() == 1);
        assertThat(s.get("/api/v1/me", boardKey).statusCode()).isEqualTo(401);

        // the 10x demand spike simulated from the UI: its phases and charts
        wait.until(d -> d.findElement(By.id("scenario-form")).isDisplayed());
        new org.openqa.selenium.support.ui.Select(driver.findElement(By.id("scenario"))).selectByValue("spike10x");
        driver.findElement(By.cssSelector("#scenario-form button")).click();
        new WebDriverWait(driver, Duration.ofSeconds(60)).until(d -> d.findElement(By.id("scenario-out")).isDisplayed());
        assertThat(driver.findElements(By.cssSelector("#scenario-phases tbody tr")).stream().map(tr -> tr.findElement(By.tagName("td")).getText()))
            .containsExactly("warmup", "baseline", "event", "after", "all");
        assertThat(driver.findElement(By.id("scenario-breaker")).getText()).contains("ticks healthy", "ACT conserved every hour: yes");
        for (String chart : new String[] {"chart-flows", "chart-cr", "chart-income"}) {
          var lines = driver.findElements(By.cssSelector("#" + chart + " polyline"));
          assertThat(lines).as(chart).isNotEmpty();
          // one point per simulated hour
          assertThat(lines.get(0).getAttribute("points").trim().split(" ")).as(chart).hasSize(96);
        }
        ((JavascriptExecutor) driver).executeScript("document.getElementById('scenarios-card').scrollIntoView()");
        Files.write(Path.of("target", "web-ui-scenario.png"), ((TakesScreenshot) driver).getScreenshotAs(OutputType.BYTES));
        shot = Path.of("target", "web-ui.png");
        Files.write(shot, ((TakesScreenshot) driver).getScreenshotAs(OutputType.BYTES));

        // the tenant makes itself a new key from the page: shown once, and the page goes on with it (on
        // one new connection: the page counts the sockets it opens from here)
        ((JavascriptExecutor) driver).executeScript("window.__opened = 0; const W = window.WebSocket;"
            + " window.WebSocket = function (...a) { window.__opened++; return new W(...a); };");
        driver.findElement(By.id("rotate-key")).click();
        driver.switchTo().alert().accept();
        wait.until(d -> !d.findElements(By.id("new-key")).isEmpty());
        String newKey = driver.findElement(By.id("new-key")).getText();
        assertThat(newKey).startsWith("ak_");
        assertThat(s.get("/api/v1/me", TestService.DEMO_KEY).statusCode()).isEqualTo(401);
        assertThat(s.get("/api/v1/me", newKey).statusCode()).isEqualTo(200);
        assertThat(((JavascriptExecutor) driver).executeScript("return sessionStorage.getItem('anneal.apiKey')")).isEqualTo(newKey);
        param.clear();
        param.sendKeys("20");
        driver.findElement(By.cssSelector("#submit button")).click();
        wait.until(d -> d.findElement(By.id("submit-msg")).getText().startsWith("accepted j_")
            && !d.findElement(By.id("submit-msg")).getText().equals("accepted " + labelledJob));
        // one connection, not a reconnection every 2 s (the replaced socket used to reconnect, and so on)
        Thread.sleep(4_500);
        assertThat(((JavascriptExecutor) driver).executeScript("return window.__opened")).isEqualTo(1L);
        assertThat(s.get("/metrics", null).body()).contains("anneal_api_websocket_sessions 1.0");

        // the tenant's key is rotated elsewhere: the page says so and asks for the new one
        String demo = s.json(s.get("/api/v1/me", newKey)).getString("id");
        assertThat(s.post("/api/v1/tenants/" + demo + "/keys", TestService.ADMIN_KEY, "").statusCode()).isEqualTo(201);
        wait.until(d -> d.findElement(By.id("jobs-hint")).getText()
            .equals("API key rotated: enter the tenant's current API key."));
        assertThat(driver.findElement(By.id("submit")).isDisplayed()).isFalse();
        assertThat(((JavascriptExecutor) driver).executeScript("return sessionStorage.getItem('anneal.apiKey')")).isNull();

        // a read-only key (ADR 30): the page shows the tenant's jobs, without the submit form or key buttons
        String readKey = s.json(s.post("/api/v1/tenants/" + demo + "/read-keys", TestService.ADMIN_KEY, "{\"name\":\"board\"}"))
            .getString("apiKey");
        driver.findElement(By.id("apiKey")).clear();
        driver.findElement(By.id("apiKey")).sendKeys(readKey);
        driver.findElement(By.cssSelector("#auth button")).click();
        wait.until(d -> d.findElement(By.id("read-only")).isDisplayed()
            && d.findElement(By.id("read-only")).getText().startsWith("Read-only key"));
        wait.until(d -> d.findElements(By.cssSelector("#jobs td.state.SETTLED")).size() >= 2);
        assertThat(driver.findElement(By.id("submit")).isDisplayed()).isFalse();
        assertThat(driver.findElement(By.id("key-row")).isDisplayed()).isFalse();

        // a provider account's key (ADR 32): its node's earnings, this month's income, and a payout from the page
        String providerKey = s.json(s.post("/api/v1/provider-accounts", TestService.ADMIN_KEY,
            new JsonObject().put("name", "acme-gpu").put("nodes", new io.vertx.core.json.JsonArray().add(node)).encode()))
            .getString("apiKey");
        long earned = s.json(s.get("/api/v1/providers/" + node + "/payouts", TestService.ADMIN_KEY)).getLong("uact");
        assertThat(earned).isPositive();
        driver.findElement(By.id("apiKey")).clear();
        driver.findElement(By.id("apiKey")).sendKeys(providerKey);
        driver.findElement(By.cssSelector("#auth button")).click();
        wait.until(d -> d.findElement(By.id("provider-card")).isDisplayed()
            && d.findElements(By.cssSelector("#provider-nodes tr.provider-node")).size() == 1);
        assertThat(driver.findElement(By.id("jobs-card")).isDisplayed()).isFalse();
        assertThat(driver.findElement(By.id("who")).getText()).isEqualTo("provider account acme-gpu");
        String act = java.math.BigDecimal.valueOf(earned, 6).stripTrailingZeros().toPlainString();
        wait.until(d -> d.findElement(By.cssSelector("#provider-nodes tr.provider-node")).getText().contains("earned "));
        assertThat(driver.findElement(By.cssSelector("#provider-nodes tr.provider-node")).getText())
            .startsWith(node + " " + act + " ");
        Files.write(Path.of("target", "web-ui-provider.png"), ((TakesScreenshot) driver).getScreenshotAs(OutputType.BYTES));
        driver.findElement(By.xpath("//tr[@class='provider-node']//button[text()='Request payout']")).click();
        wait.until(d -> d.findElement(By.id("provider-msg")).getText().contains("queued for the next redemption epoch"));
        assertThat(driver.findElement(By.id("provider-msg")).getText()).contains(act + " ACT from " + node);
        assertThat(s.json(s.get("/api/v1/providers/" + node + "/statement", TestService.ADMIN_KEY)).getJsonArray("entries")
            .getJsonObject(0).getString("kind")).isEqualTo("bme.redeem-request");
        // the node's statement lines: the payout asked for, newest, above the runs that earned it
        driver.findElement(By.xpath("//tr[@class='provider-node']//button[text()='Statement']")).click();
        wait.until(d -> d.findElements(By.cssSelector("#provider-statement tr.provider-entry")).size() >= 2);
        var lines = driver.findElements(By.cssSelector("#provider-statement tr.provider-entry"));
        assertThat(lines.get(0).getText()).contains("payout requested (ACT burned)", "-" + act);
        assertThat(lines.get(lines.size() - 1).getText()).contains("runs settled (earned)");
        Files.write(Path.of("target", "web-ui-provider-statement.png"), ((TakesScreenshot) driver).getScreenshotAs(OutputType.BYTES));
      } finally {
        driver.quit();
      }
    }
  }
}
