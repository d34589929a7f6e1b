package io.anneal.bench;

/** Runs the placement benchmark's operation in a plain loop and prints how much work each pass does. */
public final class PlacementProbe {
  private PlacementProbe() {}

  public static void main(String[] args) throws Exception {
    PlacementBenchmark b = new PlacementBenchmark();
    b.gpus = 10_000;
    b.queued = 100_000;
    long t0 = System.nanoTime();
    b.setUp();
    System.out.printf("setup %.1f s%n", (System.nanoTime() - t0) / 1e9);
    PlacementBenchmark.Placed placed = new PlacementBenchmark.Placed();
    int ops = args.length > 0 ? Integer.parseInt(args[0]) : 200_000;
    long[] before = b.engine().workCounters();
    long start = System.nanoTime();
    for (int i = 1; i <= ops; i++) {
      b.decision(placed);
      if (i % 20_000 == 0) {
        long[] w = b.engine().workCounters();
        double s = (System.nanoTime() - start) / 1e9;
        System.out.printf("%7d ops  %8.0f ops/s  scanned/op %.1f  attempts/op %.1f  tenants visited/op %.1f"
                + " (backfill-only %.1f)  passes/op %.2f  placed %d%n", i, 20_000 / s, (w[0] - before[0]) / 20_000.0,
            (w[1] - before[1]) / 20_000.0, (w[2] - before[2]) / 20_000.0, (w[4] - before[4]) / 20_000.0,
            (w[3] - before[3]) / 20_000.0, placed.placements);
        before = w;
        start = System.nanoTime();
      }
    }
  }
}
