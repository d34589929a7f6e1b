package io.anneal.bench;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.lang.management.ThreadMXBean;
import java.util.HashMap;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Where a timed run's CPU went: the process's CPU time over the run (every thread, the JIT
 * compilers and the collector included), and the Java threads that used most of it, their
 * numbered siblings added up under one name ({@code vert.x-eventloop-thread-*}).
 *
 * <p>On a machine of {@code cores} cores the process can settle at most {@code cores / (CPU per
 * receipt)} receipts per second, whatever it waits on: this is what the benchmarks print it for.
 */
final class CpuAccount {
  private static final int SHOWN = 4;

  private final com.sun.management.OperatingSystemMXBean os =
      (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
  private final ThreadMXBean threads = ManagementFactory.getThreadMXBean();
  private final long processStart;
  private final Map<Long, Long> threadStart = new HashMap<>();

  private CpuAccount() {
    for (long id : threads.getAllThreadIds()) threadStart.put(id, threads.getThreadCpuTime(id));
    processStart = os.getProcessCpuTime();
  }

  static CpuAccount start() {
    return new CpuAccount();
  }

  /**
   * One line: CPU seconds, cores busy on average, CPU µs per receipt, and the busiest threads. With
   * {@code storeInProcess} false (PostgreSQL) the store's own CPU is in other processes, not here, and
   * no bound is drawn from it.
   */
  String report(double wallSeconds, long receipts, boolean storeInProcess) {
    long process = os.getProcessCpuTime() - processStart;
    Map<String, Long> byName = new HashMap<>();
    long javaThreads = 0;
    long[] ids = threads.getAllThreadIds();
    ThreadInfo[] infos = threads.getThreadInfo(ids);
    for (int i = 0; i < ids.length; i++) {
      long now = threads.getThreadCpuTime(ids[i]);
      if (now < 0 || infos[i] == null) continue; // ended meanwhile
      long used = now - threadStart.getOrDefault(ids[i], 0L);
      javaThreads += used;
      byName.merge(infos[i].getThreadName().replaceAll("-?\\d+$", "-*"), used, Long::sum);
    }
    String busiest = byName.entrySet().stream()
        .sorted(Map.Entry.<String, Long>comparingByValue().reversed())
        .limit(SHOWN)
        .map(e -> String.format("%s %.2f s", e.getKey(), e.getValue() / 1e9))
        .collect(Collectors.joining(", "));
    int cores = os.getAvailableProcessors();
    double perReceiptMicros = process / 1e3 / receipts;
    String bound = storeInProcess
        ? String.format(", so at most %.0f receipts/s on %d cores", cores * 1e6 / perReceiptMicros, cores)
        : " in this JVM (the database server's not counted)";
    return String.format("CPU %.2f s (%.2f of %d cores busy), %.1f µs per receipt%s; busiest threads: %s;"
            + " JIT, collector and other VM threads %.2f s",
        process / 1e9, process / 1e9 / wallSeconds, cores, perReceiptMicros, bound, busiest, (process - javaThreads) / 1e9);
  }
}
