package io.anneal.bench;

import io.anneal.placement.Assignment;
import io.anneal.placement.Device;
import io.anneal.placement.JobRequest;
import io.anneal.placement.PlacementEngine;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Placement decisions per second on one core, in steady state: a saturated fleet of 10,000 GPUs
 * (1,250 nodes × 8) with 100,000 queued jobs of 1/2/4/8 GPUs from 100 tenants. Each operation ends
 * the oldest running job, queues a new one (the queue stays at 100,000) and runs one placement pass.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx4g"})
@Threads(1)
public class PlacementBenchmark {
  @Param({"10000"})
  int gpus;

  @Param({"100000"})
  int queued;

  private PlacementEngine engine;
  private final ArrayDeque<String> running = new ArrayDeque<>();
  private final SplittableRandom rnd = new SplittableRandom(42);
  private long now;
  private long seq;

  /** Placements made, reported next to the operations. */
  @AuxCounters(AuxCounters.Type.OPERATIONS)
  @State(Scope.Thread)
  public static class Placed {
    public long placements;
  }

  @Setup(Level.Trial)
  public void setUp() {
    engine = new PlacementEngine(new PlacementEngine.Config(3600, 30_000, 4096));
    for (int n = 0; n < gpus / 8; n++) {
      List<Device> ds = new ArrayList<>(8);
      for (int i = 0; i < 8; i++) ds.add(new Device("n" + n, i, "H100", 81_559, true));
      engine.addNode("n" + n, ds, Map.of());
    }
    for (int i = 0; i < 100; i++) engine.setTenant("t" + i, 1 + (i % 4), Integer.MAX_VALUE);
    while (engine.queuedCount() < queued || engine.freeGpus() > 0) {
      engine.enqueue(next(), now);
      if (engine.queuedCount() >= queued) {
        for (Assignment a : engine.schedule(now, Integer.MAX_VALUE)) running.add(a.jobId());
        if (engine.freeGpus() > 0 && engine.queuedCount() >= queued) engine.enqueue(next(), now);
        if (engine.freeGpus() == 0) break;
      }
    }
  }

  PlacementEngine engine() {
    return engine;
  }

  private JobRequest next() {
    int r = rnd.nextInt(100);
    int g = r < 50 ? 1 : r < 75 ? 2 : r < 90 ? 4 : 8;
    return JobRequest.simple("j" + seq++, "t" + rnd.nextInt(100), rnd.nextInt(10) == 0 ? 1 : 0, g, null,
        60 + rnd.nextInt(3600));
  }

  @Benchmark
  public int decision(Placed placed) {
    now += 1;
    String done = running.pollFirst();
    if (done != null) engine.release(done, now);
    engine.enqueue(next(), now);
    List<Assignment> out = engine.schedule(now, 64);
    for (Assignment a : out) running.addLast(a.jobId());
    placed.placements += out.size();
    return out.size();
  }
}
