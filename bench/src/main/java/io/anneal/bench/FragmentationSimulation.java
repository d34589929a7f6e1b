package io.anneal.bench;

import io.anneal.placement.Assignment;
import io.anneal.placement.Device;
import io.anneal.placement.JobRequest;
import io.anneal.placement.PlacementEngine;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.SplittableRandom;

/**
 * Utilization of a saturated fleet of 8-GPU nodes under a mix of 1/2/4/8-GPU jobs, in simulated
 * time: Anneal's placement engine against plain first-fit (FIFO, each job on the first node with
 * room, jobs that do not fit are skipped) and strict FIFO first-fit (the head blocks the queue).
 *
 * <p>{@code java -cp bench/target/benchmarks.jar io.anneal.bench.FragmentationSimulation [nodes] [seconds] [seed] [queueDepth]}
 */
public final class FragmentationSimulation {
  private static double queueDepth = 4.0;

  private FragmentationSimulation() {}

  /** A job of the workload: size and true duration; maxSeconds is what the user declared. */
  record Job(int id, int gpus, int seconds, int maxSeconds, int tenant) {}

  /** A placement policy under test. */
  interface Policy {
    /** Places what it can now; returns ids placed. */
    List<Integer> place(long now);

    void release(int jobId, long now);

    void enqueue(Job j, long now);

    int queued();
  }

  public static void main(String[] args) {
    int nodes = args.length > 0 ? Integer.parseInt(args[0]) : 64;
    int seconds = args.length > 1 ? Integer.parseInt(args[1]) : 20_000;
    long seed = args.length > 2 ? Long.parseLong(args[2]) : 7;
    double depth = args.length > 3 ? Double.parseDouble(args[3]) : 4.0;
    queueDepth = depth;
    System.out.printf("fleet: %d nodes x 8 GPUs; job sizes 1/2/4/8 GPUs at 40/30/20/10 %%; durations 30..1800 s;"
        + " queue kept >= %.2fx the fleet's GPUs in jobs; %d simulated seconds (first 10 %% excluded)%n", nodes, depth, seconds);
    report("anneal best-fit + backfill", run(new Engine(nodes), nodes, seconds, seed));
    report("plain first-fit (skip)", run(new FirstFit(nodes, false), nodes, seconds, seed));
    report("strict FIFO first-fit", run(new FirstFit(nodes, true), nodes, seconds, seed));
  }

  private static void report(String name, double[] r) {
    System.out.printf("%-28s utilization %.2f %%  jobs done %.0f  mean wait of 8-GPU jobs %.0f s%n", name, r[0] * 100, r[1], r[2]);
  }

  /** Returns {utilization, jobs finished, mean wait of 8-GPU jobs}. */
  static double[] run(Policy p, int nodes, int seconds, long seed) {
    SplittableRandom rnd = new SplittableRandom(seed);
    int total = nodes * 8;
    PriorityQueue<long[]> ends = new PriorityQueue<>((a, b) -> Long.compare(a[0], b[0]));
    Map<Integer, Job> jobs = new java.util.HashMap<>();
    Map<Integer, Long> arrived = new java.util.HashMap<>();
    int next = 0;
    long busyGpuSeconds = 0;
    int busy = 0;
    int done = 0;
    double waitBig = 0;
    int bigStarted = 0;
    int warm = seconds / 10;
    for (long now = 0; now < seconds; now++) {
      while (!ends.isEmpty() && ends.peek()[0] <= now) {
        long[] e = ends.poll();
        p.release((int) e[1], now);
        busy -= jobs.get((int) e[1]).gpus();
        done++;
      }
      while (p.queued() < total * queueDepth) {
        int r = rnd.nextInt(100);
        int g = r < 40 ? 1 : r < 70 ? 2 : r < 90 ? 4 : 8;
        int dur = 30 + rnd.nextInt(1771);
        Job j = new Job(next++, g, dur, dur + rnd.nextInt(dur / 2 + 1), rnd.nextInt(4));
        jobs.put(j.id(), j);
        arrived.put(j.id(), now);
        p.enqueue(j, now);
      }
      for (int id : p.place(now)) {
        Job j = jobs.get(id);
        busy += j.gpus();
        ends.add(new long[] {now + j.seconds(), id});
        if (j.gpus() == 8 && now >= warm) {
          waitBig += now - arrived.get(id);
          bigStarted++;
        }
      }
      if (now >= warm) busyGpuSeconds += busy;
    }
    return new double[] {busyGpuSeconds / (double) ((long) total * (seconds - warm)), done,
        bigStarted == 0 ? Double.NaN : waitBig / bigStarted};
  }

  /** Anneal's engine. */
  static final class Engine implements Policy {
    final PlacementEngine e = new PlacementEngine(new PlacementEngine.Config(3600, 600_000, 100_000));

    Engine(int nodes) {
      for (int n = 0; n < nodes; n++) {
        List<Device> ds = new ArrayList<>();
        for (int i = 0; i < 8; i++) ds.add(new Device("n" + n, i, "H100", 80_000, true));
        e.addNode("n" + n, ds, Map.of());
      }
    }

    @Override
    public List<Integer> place(long now) {
      List<Integer> out = new ArrayList<>();
      for (Assignment a : e.schedule(now * 1000, Integer.MAX_VALUE)) out.add(Integer.parseInt(a.jobId()));
      return out;
    }

    @Override
    public void release(int id, long now) {
      e.release(Integer.toString(id), now * 1000);
    }

    @Override
    public void enqueue(Job j, long now) {
      e.enqueue(JobRequest.simple(Integer.toString(j.id()), "t" + j.tenant(), 0, j.gpus(), null, j.maxSeconds()), now * 1000);
    }

    @Override
    public int queued() {
      return e.queuedCount();
    }
  }

  /** First-fit over nodes in a fixed order; {@code strict} stops at the first job that does not fit. */
  static final class FirstFit implements Policy {
    final int[] free;
    final boolean strict;
    final ArrayDeque<Job> queue = new ArrayDeque<>();
    final Map<Integer, int[]> where = new java.util.HashMap<>();

    FirstFit(int nodes, boolean strict) {
      this.free = new int[nodes];
      java.util.Arrays.fill(free, 8);
      this.strict = strict;
    }

    @Override
    public List<Integer> place(long now) {
      List<Integer> out = new ArrayList<>();
      for (Iterator<Job> it = queue.iterator(); it.hasNext(); ) {
        Job j = it.next();
        int node = -1;
        for (int n = 0; n < free.length; n++) {
          if (free[n] >= j.gpus()) {
            node = n;
            break;
          }
        }
        if (node < 0) {
          if (strict) break;
          continue;
        }
        free[node] -= j.gpus();
        where.put(j.id(), new int[] {node, j.gpus()});
        it.remove();
        out.add(j.id());
      }
      return out;
    }

    @Override
    public void release(int id, long now) {
      int[] w = where.remove(id);
      free[w[0]] += w[1];
    }

    @Override
    public void enqueue(Job j, long now) {
      queue.addLast(j);
    }

    @Override
    public int queued() {
      return queue.size();
    }
  }
}
