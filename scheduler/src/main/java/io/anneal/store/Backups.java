package io.anneal.store;

import io.anneal.billing.receipt.NodeKeys;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

/**
 * A backup of an embedded (H2) data directory taken while the service runs: the database as one
 * consistent snapshot (H2's online {@code BACKUP TO}: jobs, outbox, ledger, epochs), with what else
 * the directory holds that a restored service needs to carry on as the same node (its Ed25519 key,
 * node id, generated admin key, trained models). Restoring is unzipping it into an empty data
 * directory and starting the service there. A PostgreSQL store is backed up by PostgreSQL's own tools.
 */
public final class Backups {
  /** The database file's name inside the data directory and the backup. */
  static final String DATABASE = "anneal.mv.db";
  /** Files of the data directory a restored node needs besides the database. */
  private static final List<String> FILES = List.of(NodeKeys.PRIVATE_FILE, NodeKeys.PUBLIC_FILE, NodeKeys.NEXT_PRIVATE_FILE,
      NodeKeys.NEXT_PUBLIC_FILE, "node-id", "admin.key");
  /** The name {@link #write} gives a backup (its time sorts as text). */
  private static final java.util.regex.Pattern BACKUP_NAME = java.util.regex.Pattern.compile("anneal-\\d{8}-\\d{6}-\\d{3}\\.zip(\\.enc)?");
  private static final DateTimeFormatter STAMP = DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss-SSS").withZone(ZoneOffset.UTC);

  private static final java.util.logging.Logger LOG = java.util.logging.Logger.getLogger(Backups.class.getName());

  private Backups() {}

  /** What a backup wrote. */
  public record Written(Path file, long bytes, List<String> entries) {}

  /**
   * A backup of the running service's embedded store: what has committed made durable in the file
   * first, then {@link #write} on one of the store's connections, then all but the newest {@code keep}
   * backups deleted. Fails with an {@link java.io.UncheckedIOException} when the zip cannot be written
   * (nothing half-written is left).
   */
  public static java.util.concurrent.CompletableFuture<Written> take(JobStore store, Path dataDir, int keep) {
    return take(store, dataDir, keep, "");
  }

  /**
   * As above; with a {@code passphrase}, the backup is sealed with it ({@link BackupCrypto}:
   * {@code anneal-<UTC time>.zip.enc}) and no unsealed copy is left.
   */
  public static java.util.concurrent.CompletableFuture<Written> take(JobStore store, Path dataDir, int keep,
      String passphrase) {
    return store.database().durable().thenCompose(d -> store.read(c -> {
      Written w;
      try {
        w = write(c, dataDir, Instant.now());
        if (!passphrase.isEmpty()) w = seal(w, passphrase);
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
      try {
        prune(dataDir, keep);
      } catch (IOException e) {
        LOG.warning("could not delete old backups: " + e.getMessage());
      }
      return w;
    }));
  }

  /**
   * Writes {@code dataDir/backups/anneal-<UTC time>.zip} from the H2 database on {@code c} (any
   * connection of the running service) and the data directory's other files. The zip holds the node's
   * private key, so it is readable by its owner only.
   */
  public static Written write(Connection c, Path dataDir, Instant now) throws SQLException, IOException {
    // not while a key rotation is between its ledger write and its files (ADR 18)
    NodeKeys.FILES_IN_USE.acquireUninterruptibly();
    try {
      return writeAlone(c, dataDir, now);
    } finally {
      NodeKeys.FILES_IN_USE.release();
    }
  }

  private static Written writeAlone(Connection c, Path dataDir, Instant now) throws SQLException, IOException {
    Path dir = dataDir.resolve("backups");
    Files.createDirectories(dir);
    String name = "anneal-" + STAMP.format(now);
    Path h2 = dir.resolve(name + ".h2.tmp.zip");
    Path tmp = dir.resolve(name + ".tmp.zip");
    Path out = dir.resolve(name + ".zip");
    try {
      // the path is ours (no quote in it); BACKUP takes a literal
      try (Statement st = c.createStatement()) {
        st.execute("BACKUP TO '" + h2.toAbsolutePath().toString().replace("'", "''") + "'");
      }
      List<String> entries = new ArrayList<>();
      try {
        Files.createFile(tmp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
      } catch (UnsupportedOperationException e) {
        Files.createFile(tmp); // not a POSIX file system: the owner's defaults
      }
      try (ZipOutputStream zip = new ZipOutputStream(Files.newOutputStream(tmp)); ZipFile db = new ZipFile(h2.toFile())) {
        ZipEntry snapshot = db.getEntry(DATABASE);
        if (snapshot == null) throw new IOException("H2's backup holds no " + DATABASE);
        try (InputStream in = db.getInputStream(snapshot)) {
          copy(zip, DATABASE, in);
        }
        entries.add(DATABASE);
        for (String f : FILES) {
          Path p = dataDir.resolve(f);
          if (!Files.isRegularFile(p)) continue;
          try (InputStream in = Files.newInputStream(p)) {
            copy(zip, f, in);
          }
          entries.add(f);
        }
        Path models = dataDir.resolve("models");
        if (Files.isDirectory(models)) {
          try (Stream<Path> all = Files.walk(models)) {
            for (Path p : all.filter(Files::isRegularFile).sorted().toList()) {
              String entry = dataDir.relativize(p).toString().replace('\\', '/');
              try (InputStream in = Files.newInputStream(p)) {
                copy(zip, entry, in);
              }
              entries.add(entry);
            }
          }
        }
      }
      Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE);
      return new Written(out, Files.size(out), List.copyOf(entries));
    } finally {
      Files.deleteIfExists(h2);
      Files.deleteIfExists(tmp);
    }
  }

  /** Seals a written backup with a passphrase: {@code NAME.zip} becomes {@code NAME.zip.enc}, owner-only. */
  static Written seal(Written plain, String passphrase) throws IOException {
    Path out = plain.file().resolveSibling(plain.file().getFileName() + ".enc");
    Path tmp = plain.file().resolveSibling(plain.file().getFileName() + ".enc.tmp");
    try {
      try {
        Files.createFile(tmp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
      } catch (UnsupportedOperationException e) {
        Files.createFile(tmp);
      }
      BackupCrypto.seal(plain.file(), tmp, passphrase.toCharArray());
      Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE);
      return new Written(out, Files.size(out), plain.entries());
    } finally {
      Files.deleteIfExists(tmp);
      Files.deleteIfExists(plain.file());
    }
  }

  /**
   * Deletes all but the newest {@code keep} backups in {@code dataDir/backups} (by the UTC time in
   * their names; files that are not backups are left alone). Returns the ones deleted.
   */
  public static List<Path> prune(Path dataDir, int keep) throws IOException {
    if (keep < 1) throw new IllegalArgumentException("keep at least one backup, not " + keep);
    Path dir = dataDir.resolve("backups");
    if (!Files.isDirectory(dir)) return List.of();
    List<Path> backups;
    try (Stream<Path> files = Files.list(dir)) {
      backups = files.filter(p -> BACKUP_NAME.matcher(p.getFileName().toString()).matches())
          .sorted(java.util.Comparator.comparing((Path p) -> p.getFileName().toString()).reversed()).toList();
    }
    List<Path> deleted = new ArrayList<>();
    for (Path old : backups.subList(Math.min(keep, backups.size()), backups.size())) {
      Files.deleteIfExists(old);
      deleted.add(old);
    }
    return deleted;
  }

  private static void copy(ZipOutputStream zip, String entry, InputStream in) throws IOException {
    zip.putNextEntry(new ZipEntry(entry));
    in.transferTo(zip);
    zip.closeEntry();
  }
}
