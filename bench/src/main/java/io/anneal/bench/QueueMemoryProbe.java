package io.anneal.bench;

import io.anneal.placement.Device;
import io.anneal.placement.JobRequest;
import io.anneal.placement.PlacementEngine;
import io.vertx.core.json.JsonObject;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Heap held by N queued jobs in the scheduler: the placement engine's entry plus the bus form the
 * scheduler verticle keeps per job, measured after a full GC.
 *
 * <p>{@code java -Xmx2g -cp bench/target/benchmarks.jar io.anneal.bench.QueueMemoryProbe [jobs]}
 */
public final class QueueMemoryProbe {
  private QueueMemoryProbe() {}

  private static long usedAfterGc() throws InterruptedException {
    for (int i = 0; i < 3; i++) {
      System.gc();
      Thread.sleep(200);
    }
    return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
  }

  public static void main(String[] args) throws Exception {
    int n = args.length > 0 ? Integer.parseInt(args[0]) : 1_000_000;
    PlacementEngine engine = new PlacementEngine(PlacementEngine.Config.defaults());
    for (int node = 0; node < 1250; node++) {
      List<Device> ds = new ArrayList<>();
      for (int i = 0; i < 8; i++) ds.add(new Device("n" + node, i, "H100", 81_559, true));
      engine.addNode("n" + node, ds, Map.of());
    }
    long before = usedAfterGc();
    Map<String, JsonObject> jobs = new HashMap<>(); // what SchedulerVerticle keeps per queued job
    for (int i = 0; i < n; i++) {
      String id = String.format("j_%032x", i);
      JsonObject job = new JsonObject().put("id", id).put("tenantId", "t_" + (i % 100)).put("kind", "sleep").put("gpus", 1)
          .put("gpuClass", (String) null).put("memoryMiB", 0L).put("priority", 0).put("maxSeconds", 60L)
          .put("params", new JsonObject().put("ms", 0)).put("submittedAt", 1_795_000_000_000L + i).put("attempt", 0);
      jobs.put(id, job);
      engine.enqueue(JobRequest.simple(id, "t_" + (i % 100), 0, 1 + (i % 4 == 3 ? 7 : 0), null, 60), 0);
    }
    long after = usedAfterGc();
    System.out.printf("%,d queued jobs hold %.0f MiB of heap (%.0f bytes per job); engine queue %,d, max heap %,d MiB%n",
        n, (after - before) / 1048576.0, (after - before) / (double) n, engine.queuedCount(),
        Runtime.getRuntime().maxMemory() / 1048576);
  }
}
