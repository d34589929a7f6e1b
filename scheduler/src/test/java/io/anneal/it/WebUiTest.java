package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.By;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.support.ui.WebDriverWait;

/** The web UI in a real headless Chromium: fleet and supply load, a tenant submits a job and sees it settle. */
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
    try (TestService s = TestService.start(dir)) {
      ChromeOptions options = new ChromeOptions();
      options.setBinary(CHROMIUM);
      options.addArguments("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
          "--window-size=1300,900", "--user-data-dir=" + profile);
      ChromeDriverService service = new ChromeDriverService.Builder().usingDriverExecutable(CHROMEDRIVER).build();
      WebDriver driver = new ChromeDriver(service, options);
      try {
        WebDriverWait wait = new WebDriverWait(driver, Duration.ofSeconds(20));
        driver.get(s.base() + "/");
        wait.until(d -> "4".equals(d.findElement(By.id("gpus-total")).getText()));
        wait.until(d -> "HEALTHY".equals(d.findElement(By.id("status")).getText()));
        wait.until(d -> "0".equals(d.findElement(By.id("pending-payouts")).getText()));
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
        Path shot = Path.of("target", "web-ui.png");
        Files.createDirectories(shot.getParent());
        Files.write(shot, ((TakesScreenshot) driver).getScreenshotAs(OutputType.BYTES));
      } finally {
        driver.quit();
      }
    }
  }
}
