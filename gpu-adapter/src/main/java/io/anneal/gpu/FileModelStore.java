package io.anneal.gpu;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Optional;
import java.util.regex.Pattern;

/** Models as files under {@code <dir>/<owner>/<modelId>.mlp}, written atomically. */
public final class FileModelStore implements ModelStore {
  private static final Pattern SAFE = Pattern.compile("[A-Za-z0-9_.-]{1,100}");
  private final Path dir;

  public FileModelStore(Path dir) {
    this.dir = dir;
  }

  private Path file(String owner, String modelId) {
    if (!SAFE.matcher(owner).matches() || !SAFE.matcher(modelId).matches() || modelId.startsWith(".")) {
      throw new IllegalArgumentException("bad model id '" + modelId + "'");
    }
    return dir.resolve(owner).resolve(modelId + ".mlp");
  }

  @Override
  public void put(String owner, String modelId, byte[] model) {
    Path f = file(owner, modelId);
    try {
      Files.createDirectories(f.getParent());
      Path tmp = Files.createTempFile(f.getParent(), modelId, ".tmp");
      Files.write(tmp, model);
      Files.move(tmp, f, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot store model " + modelId, e);
    }
  }

  @Override
  public Optional<byte[]> get(String owner, String modelId) {
    Path f;
    try {
      f = file(owner, modelId);
    } catch (IllegalArgumentException e) {
      return Optional.empty();
    }
    try {
      return Files.exists(f) ? Optional.of(Files.readAllBytes(f)) : Optional.empty();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read model " + modelId, e);
    }
  }
}
