package io.anneal.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/** The temporary directories the benchmarks' H2 files live in, removed when a run ends (they reach gigabytes). */
final class TempDirs {
  private TempDirs() {}

  /** Deletes {@code dir} and everything in it; nothing when it is null. */
  static void delete(Path dir) throws IOException {
    if (dir == null) return;
    try (Stream<Path> files = Files.walk(dir)) {
      for (Path f : (Iterable<Path>) files.sorted(Comparator.reverseOrder())::iterator) Files.delete(f);
    }
  }
}
