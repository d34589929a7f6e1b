package io.anneal.service;

import com.hazelcast.config.Config;
import com.hazelcast.config.JoinConfig;
import com.hazelcast.config.NetworkConfig;
import com.hazelcast.config.XmlConfigBuilder;
import io.anneal.config.AnnealConfig;
import io.vertx.core.eventbus.EventBusOptions;
import io.vertx.core.http.ClientAuth;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.core.net.PemTrustOptions;
import io.vertx.spi.cluster.hazelcast.ConfigUtil;
import io.vertx.spi.cluster.hazelcast.HazelcastClusterManager;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Cluster mode (ADR 19): the Hazelcast member this instance runs, from {@code config/cluster.xml}
 * (or vertx-hazelcast's defaults when there is none), with the launcher's name, port, members and
 * interface set over it. TCP-IP join only: no multicast, no auto-detection.
 */
final class ClusterSetup {
  private ClusterSetup() {}

  static HazelcastClusterManager manager(AnnealConfig config) {
    return new HazelcastClusterManager(hazelcast(config));
  }

  static Config hazelcast(AnnealConfig config) {
    Path file = Path.of(config.clusterConfig());
    Config hz;
    if (Files.isRegularFile(file)) {
      try (InputStream in = Files.newInputStream(file)) {
        hz = new XmlConfigBuilder(in).build();
      } catch (IOException | RuntimeException e) {
        throw new IllegalStateException("cluster.config " + file + ": " + e.getMessage(), e);
      }
    } else {
      hz = ConfigUtil.loadConfig();
    }
    hz.setClusterName(config.clusterName());
    for (String[] p : new String[][] {{"hazelcast.phone.home.enabled", "false"}, {"hazelcast.shutdownhook.enabled", "false"},
        {"hazelcast.logging.type", "jdk"}, {"hazelcast.health.monitoring.level", "OFF"},
        // a member cut off (not stopped) is given up on in 15 s, not 60 (ADR 19): until then the event bus
        // still routes to it and map entries it owns cannot be read
        {"hazelcast.heartbeat.interval.seconds", "1"}, {"hazelcast.max.no.heartbeat.seconds", "15"},
        // the two sides of a healed partition merge within ~15 s, not 5 minutes
        {"hazelcast.merge.first.run.delay.seconds", "15"}, {"hazelcast.merge.next.run.delay.seconds", "15"}}) {
      if (hz.getProperty(p[0]) == null) hz.setProperty(p[0], p[1]);
    }
    NetworkConfig net = hz.getNetworkConfig();
    net.setPort(config.clusterPort()).setPortAutoIncrement(false);
    if (config.clusterHost().matches("[0-9.]+")) {
      net.getInterfaces().setEnabled(true).setInterfaces(List.of(config.clusterHost()));
    }
    net.setPublicAddress(null);
    JoinConfig join = net.getJoin();
    join.getMulticastConfig().setEnabled(false);
    join.getAutoDetectionConfig().setEnabled(false);
    List<String> members = new ArrayList<>();
    for (String m : config.clusterMembers().split(",")) members.add(m.trim());
    join.getTcpIpConfig().setEnabled(true).setMembers(members);
    return hz;
  }

  /**
   * The clustered event bus listens on the cluster host, on a port of the system's choosing. With
   * cluster TLS (ADR 27) every connection between instances is TLS both ways: each side presents its
   * certificate and accepts only one that chains to the cluster's CA (no host name check: the CA is the
   * cluster's own, and instances reach each other by address).
   */
  static EventBusOptions eventBus(AnnealConfig config) {
    EventBusOptions o = new EventBusOptions().setHost(config.clusterHost()).setPort(0);
    AnnealConfig.Tls tls = config.clusterTls();
    if (tls == null) return o;
    return o.setSsl(true)
        .setKeyCertOptions(new PemKeyCertOptions().setCertPath(tls.certPath().toString()).setKeyPath(tls.keyPath().toString()))
        .setTrustOptions(new PemTrustOptions().addCertPath(tls.caPath().toString()))
        .setClientAuth(ClientAuth.REQUIRED);
  }
}
