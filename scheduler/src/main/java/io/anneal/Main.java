package io.anneal;

import io.anneal.config.AnnealConfig;
import io.anneal.config.ConfigLoader;
import io.anneal.gpu.Backends;
import io.anneal.service.AnnealService;
import java.util.Arrays;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/** {@code java -jar anneal.jar [options]} runs the service; {@code bme ...} runs the BME tools. */
public final class Main {
  /** Strong references: java.util.logging keeps loggers weakly, and a collected one forgets its level. */
  private static final java.util.List<java.util.logging.Logger> QUIET = new java.util.ArrayList<>();

  private Main() {}

  public static void main(String[] args) throws Exception {
    System.setProperty("java.util.logging.SimpleFormatter.format", "%1$tF %1$tT %4$-7s %3$s - %5$s%6$s%n");
    // third-party start-up chatter stays out of the operator's way; warnings still show
    for (String quiet : new String[] {"org.flywaydb", "com.zaxxer.hikari", "io.netty"}) {
      java.util.logging.Logger.getLogger(quiet).setLevel(java.util.logging.Level.WARNING);
      QUIET.add(java.util.logging.Logger.getLogger(quiet));
    }
    if (args.length > 0 && args[0].equals("bme")) {
      System.exit(io.anneal.billing.tools.BmeCli.run(Arrays.copyOfRange(args, 1, args.length), System.out, System.err));
    }
    if (args.length > 0 && (args[0].equals("--help") || args[0].equals("-h"))) {
      System.out.println(USAGE);
      return;
    }
    AnnealConfig config;
    try {
      config = ConfigLoader.load(args, System.getenv());
    } catch (ConfigLoader.ConfigException e) {
      System.err.println("anneal: " + e.getMessage());
      System.exit(2);
      return;
    }
    System.out.println("Anneal starting with:");
    config.printable().forEach((k, v) -> System.out.println("  " + k + " = " + v));
    AnnealService service = new AnnealService(config);
    CountDownLatch stopped = new CountDownLatch(1);
    try {
      service.start().toCompletionStage().toCompletableFuture().get(120, TimeUnit.SECONDS);
    } catch (Exception e) {
      Throwable cause = e.getCause() != null ? e.getCause() : e;
      if (cause instanceof Backends.UnavailableException || cause instanceof IllegalStateException) {
        System.err.println("anneal: " + cause.getMessage());
      } else {
        System.err.println("anneal: failed to start: " + cause);
      }
      service.stop();
      System.exit(1);
      return;
    }
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      System.out.println("Anneal stopping (draining up to " + config.drainSeconds() + " s)...");
      service.stop();
      // java.util.logging may already be reset by its own shutdown hook: say it on stdout
      System.out.println("Anneal stopped; the store is flushed.");
      stopped.countDown();
    }, "anneal-shutdown"));
    System.out.println("Anneal is ready at http://localhost:" + service.httpPort() + "/ (node " + service.nodeId() + ")");
    stopped.await();
  }

  static final String USAGE = String.join("\n",
      "usage: java -jar scheduler/target/anneal.jar [options]",
      "       java -jar scheduler/target/anneal.jar bme replay FILE.json [--check]",
      "options:",
      "  --http-port N            HTTP/WebSocket port (default 8080, 0 = any free port)",
      "  --data-dir DIR           H2 database, node key, admin key (default ./data)",
      "  --db-url URL             postgresql://user@host:port/db (default: H2 file in the data dir)",
      "  --roles R,...            api, scheduler, worker, billing or all (default all)",
      "  --gpu-backend B          auto, jcuda, cpu, simulated (default auto)",
      "  --simulated-gpus N[:C]   add N simulated GPUs of class C (default H100)",
      "  --cpu-devices N          devices of the CPU reference backend (default 4)",
      "  --node-id ID             this node's id (default: generated once, kept in the data dir)",
      "  --config FILE            configuration file (default config/application.yaml)",
      "environment: ANNEAL_ADMIN_KEY, ANNEAL_DEMO_TENANT=name:key:akt, ANNEAL_* for every option");
}
