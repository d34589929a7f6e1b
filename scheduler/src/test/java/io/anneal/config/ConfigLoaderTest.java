package io.anneal.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Map;
import org.junit.jupiter.api.Test;

class ConfigLoaderTest {
  @Test
  void flagsBeatEnvironmentWhichBeatsTheFile() {
    AnnealConfig file = ConfigLoader.load(new String[0], Map.of());
    assertThat(file.httpPort()).isEqualTo(8080);
    assertThat(file.roles()).containsExactlyInAnyOrder("api", "scheduler", "worker", "billing");
    assertThat(file.pricesUactPerGpuHour()).containsEntry("H100", 2_500_000L);
    AnnealConfig env = ConfigLoader.load(new String[0], Map.of("ANNEAL_HTTP_PORT", "9000", "ANNEAL_GPU_BACKEND", "cpu"));
    assertThat(env.httpPort()).isEqualTo(9000);
    AnnealConfig flags = ConfigLoader.load(new String[] {"--http-port", "9100", "--roles=api,billing"},
        Map.of("ANNEAL_HTTP_PORT", "9000"));
    assertThat(flags.httpPort()).isEqualTo(9100);
    assertThat(flags.roles()).containsExactlyInAnyOrder("api", "billing");
  }

  @Test
  void aConfigurationFileThatCannotBeReadIsNamedWithWhy(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
      throws Exception {
    java.nio.file.Path bad = dir.resolve("bad.yaml");
    java.nio.file.Files.writeString(bad, "http:\n  port: 8080\n roles: [api\n");
    assertThatThrownBy(() -> ConfigLoader.load(new String[] {"--config", bad.toString()}, Map.of()))
        .hasMessageContaining("cannot read configuration " + bad + ": not valid YAML at line");
  }

  @Test
  void theLedgerClientIsJdbcUnlessVertxIsAsked() {
    assertThat(ConfigLoader.load(new String[0], Map.of()).ledgerClient()).isEqualTo("jdbc");
    assertThat(ConfigLoader.load(new String[] {"--ledger-client", "vertx"}, Map.of()).ledgerClient()).isEqualTo("vertx");
    assertThat(ConfigLoader.load(new String[0], Map.of("ANNEAL_LEDGER_CLIENT", "vertx")).ledgerClient()).isEqualTo("vertx");
    assertThatThrownBy(() -> ConfigLoader.load(new String[] {"--ledger-client", "r2dbc"}, Map.of()))
        .hasMessageContaining("--ledger-client must be jdbc or vertx, not 'r2dbc'");
  }

  @Test
  void settlementLanesAreAutomaticUnlessSet() {
    assertThat(ConfigLoader.load(new String[0], Map.of()).settlementLanes()).as("auto").isEqualTo(-1);
    assertThat(ConfigLoader.load(new String[] {"--settlement-lanes", "2"}, Map.of()).settlementLanes()).isEqualTo(2);
    assertThat(ConfigLoader.load(new String[0], Map.of("ANNEAL_SETTLEMENT_LANES", "0")).settlementLanes()).isZero();
    assertThatThrownBy(() -> ConfigLoader.load(new String[] {"--settlement-lanes", "17"}, Map.of()))
        .hasMessageContaining("db.settlementLanes must be between 0 and 16");
  }

  @Test
  void secretsAreNotPrinted() {
    AnnealConfig c = ConfigLoader.load(new String[0], Map.of("ANNEAL_ADMIN_KEY", "s3cret-admin",
        "ANNEAL_DEMO_TENANT", "demo:s3cret-key:100", "ANNEAL_DB_URL", "postgresql://u:pw@h:5432/db"));
    String printed = c.printable().toString();
    assertThat(printed).doesNotContain("s3cret").doesNotContain(":pw@").contains("set (demo)");
  }

  @Test
  void mistakesAreClearErrors() {
    assertThatThrownBy(() -> ConfigLoader.load(new String[] {"--http-prot", "1"}, Map.of()))
        .hasMessageContaining("unknown option '--http-prot'");
    assertThatThrownBy(() -> ConfigLoader.load(new String[] {"--http-port", "70000"}, Map.of()))
        .hasMessageContaining("http.port must be between 0 and 65535");
    assertThatThrownBy(() -> ConfigLoader.load(new String[] {"--roles", "api,chef"}, Map.of()))
        .hasMessageContaining("unknown role 'chef'");
    assertThatThrownBy(() -> ConfigLoader.load(new String[0], Map.of("ANNEAL_DEMO_TENANT", "demo")))
        .hasMessageContaining("name:key:akt");
    assertThatThrownBy(() -> ConfigLoader.load(new String[] {"--data-dir"}, Map.of())).hasMessageContaining("needs a value");
    assertThatThrownBy(() -> ConfigLoader.load(new String[] {"--oracle-source", "http"}, Map.of()))
        .hasMessageContaining("--oracle-url http(s)://");
    assertThatThrownBy(() -> ConfigLoader.load(new String[] {"--price-adjust", "maybe"}, Map.of()))
        .hasMessageContaining("billing.priceAdjust must be true or false");
    assertThatThrownBy(() -> ConfigLoader.load(new String[] {"--payout-min-act", "0.0000001"}, Map.of()))
        .hasMessageContaining("bme.payoutMinAct");
    assertThatThrownBy(() -> ConfigLoader.load(new String[0], Map.of("ANNEAL_BOOTSTRAP_ENDS_AT", "tomorrow")))
        .hasMessageContaining("ISO-8601");
    assertThatThrownBy(() -> ConfigLoader.load(new String[0], Map.of("ANNEAL_BME_RESTART_THRESHOLD_BPS", "9000")))
        .hasMessageContaining("bme.restartThresholdBps").hasMessageContaining("above the halt threshold (9000 bps)");
    assertThatThrownBy(() -> ConfigLoader.load(new String[] {"--ledger-audit-seconds", "-1"}, Map.of()))
        .hasMessageContaining("billing.auditSeconds must be between 0 and");
    assertThat(ConfigLoader.load(new String[0], Map.of()).ledgerAuditSeconds()).as("daily by default").isEqualTo(86400);
    assertThat(ConfigLoader.load(new String[0], Map.of("ANNEAL_LEDGER_AUDIT_SECONDS", "0")).ledgerAuditSeconds()).isZero();
    assertThatThrownBy(() -> ConfigLoader.load(new String[0], Map.of("ANNEAL_BME_FIFO_QUEUE", "sometimes")))
        .hasMessageContaining("bme.fifoQueue must be true or false");
    var options = ConfigLoader.load(new String[0], Map.of("ANNEAL_BME_RESTART_THRESHOLD_BPS", "9300",
        "ANNEAL_BME_MAX_QUEUE_DEPTH", "500")).bmeOptions();
    assertThat(options.restartThresholdBps()).isEqualTo(9300);
    assertThat(options.maxQueueDepth()).isEqualTo(500);
    assertThat(options.fifoQueue()).as("off by default").isFalse();
    assertThat(options.exactUsd()).as("off by default").isFalse();
    var http = ConfigLoader.load(new String[] {"--oracle-source", "http", "--oracle-url", "http://user:pw@oracle.local/p"},
        Map.of());
    assertThat(http.oracleUrl()).isEqualTo("http://user:pw@oracle.local/p");
    assertThat(String.valueOf(http.printable().get("oracle.source"))).contains("http").doesNotContain("pw");
  }

  @Test
  void clusterSettingsAreReadAndBadOnesRefusedWithTheirRightForm() {
    AnnealConfig c = ConfigLoader.load(new String[] {"--cluster", "--cluster-port", "5801", "--cluster-members",
        "10.0.0.1:5801,10.0.0.2:5801", "--cluster-host", "10.0.0.1"}, Map.of("ANNEAL_CLUSTER_NAME", "prod-1",
        "ANNEAL_CLUSTER_TAKEOVER_GRACE_SECONDS", "7"));
    assertThat(c.cluster()).isTrue();
    assertThat(c.clusterPort()).isEqualTo(5801);
    assertThat(c.clusterMembers()).isEqualTo("10.0.0.1:5801,10.0.0.2:5801");
    assertThat(c.clusterHost()).isEqualTo("10.0.0.1");
    assertThat(c.clusterName()).isEqualTo("prod-1");
    assertThat(c.takeoverGraceMs()).isEqualTo(7_000);
    assertThat(c.clusterQuorum()).as("a majority of the two members listed").isEqualTo(2);
    String[] five = {"--cluster-members", "a:1,b:2,c:3,d:4,e:5"};
    assertThat(ConfigLoader.load(five, Map.of()).clusterQuorum()).isEqualTo(3);
    assertThat(ConfigLoader.load(five, Map.of("ANNEAL_CLUSTER_QUORUM", "1")).clusterQuorum()).isEqualTo(1);
    assertThatThrownBy(() -> ConfigLoader.load(five, Map.of("ANNEAL_CLUSTER_QUORUM", "0")))
        .isInstanceOf(ConfigLoader.ConfigException.class).hasMessageContaining("cluster.quorum");
    assertThatThrownBy(() -> ConfigLoader.load(five, Map.of("ANNEAL_CLUSTER_QUORUM", "most")))
        .isInstanceOf(ConfigLoader.ConfigException.class).hasMessageContaining("cluster.quorum");
    assertThatThrownBy(() -> ConfigLoader.load(new String[] {"--cluster-members", "10.0.0.1"}, Map.of()))
        .isInstanceOf(ConfigLoader.ConfigException.class).hasMessageContaining("host:port");
    assertThatThrownBy(() -> ConfigLoader.load(new String[] {"--cluster-members", "a:1,b:99999"}, Map.of()))
        .isInstanceOf(ConfigLoader.ConfigException.class).hasMessageContaining("host:port");
    assertThatThrownBy(() -> ConfigLoader.load(new String[0], Map.of("ANNEAL_CLUSTER_NAME", "no spaces")))
        .isInstanceOf(ConfigLoader.ConfigException.class).hasMessageContaining("cluster.name");
  }
}
