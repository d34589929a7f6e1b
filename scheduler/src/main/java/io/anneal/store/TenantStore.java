package io.anneal.store;

import io.anneal.billing.ledger.SqlLedger;
import io.anneal.job.Ids;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.HexFormat;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/** Tenants and API keys. Keys are stored only as SHA-256 hashes. */
public final class TenantStore {
  /** A tenant; {@code apiKey} is known only right after creation. */
  public record Tenant(String id, String name) {}

  private final JobStore store;

  public TenantStore(JobStore store) {
    this.store = store;
  }

  public static String hashKey(String apiKey) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(apiKey.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Creates a tenant with the given key, or returns the existing one of that name (same key or not: empty). */
  public CompletableFuture<Optional<Tenant>> create(String name, String apiKey) {
    String hash = hashKey(apiKey);
    return store.writer().submit(c -> {
      try (PreparedStatement ps = c.prepareStatement("SELECT id, api_key_hash FROM tenant WHERE name = ?")) {
        ps.setString(1, name);
        try (ResultSet rs = ps.executeQuery()) {
          if (rs.next()) {
            return rs.getString(2).equals(hash) ? Optional.of(new Tenant(rs.getString(1), name)) : Optional.<Tenant>empty();
          }
        }
      }
      try (PreparedStatement ps = c.prepareStatement("SELECT 1 FROM tenant WHERE api_key_hash = ?")) {
        ps.setString(1, hash);
        try (ResultSet rs = ps.executeQuery()) {
          if (rs.next()) return Optional.<Tenant>empty();
        }
      }
      String id = Ids.next("t_");
      JobStore.update(c, "INSERT INTO tenant (id, name, api_key_hash, created_at) VALUES (?, ?, ?, ?)", id, name, hash,
          System.currentTimeMillis());
      SqlLedger.openTenantAccounts(c, id);
      return Optional.of(new Tenant(id, name));
    });
  }

  public CompletableFuture<Optional<Tenant>> byKey(String apiKey) {
    String hash = hashKey(apiKey);
    return store.read(c -> {
      try (PreparedStatement ps = c.prepareStatement("SELECT id, name FROM tenant WHERE api_key_hash = ?")) {
        ps.setString(1, hash);
        try (ResultSet rs = ps.executeQuery()) {
          return rs.next() ? Optional.of(new Tenant(rs.getString(1), rs.getString(2))) : Optional.<Tenant>empty();
        }
      }
    });
  }

  public CompletableFuture<Optional<Tenant>> byId(String id) {
    return store.read(c -> {
      try (PreparedStatement ps = c.prepareStatement("SELECT id, name FROM tenant WHERE id = ?")) {
        ps.setString(1, id);
        try (ResultSet rs = ps.executeQuery()) {
          return rs.next() ? Optional.of(new Tenant(rs.getString(1), rs.getString(2))) : Optional.<Tenant>empty();
        }
      }
    });
  }

  public CompletableFuture<Boolean> isAdminKey(String key) {
    String hash = hashKey(key);
    return store.read(c -> {
      try (PreparedStatement ps = c.prepareStatement("SELECT 1 FROM admin_key WHERE key_hash = ?")) {
        ps.setString(1, hash);
        try (ResultSet rs = ps.executeQuery()) {
          return rs.next();
        }
      }
    });
  }

  /** Adds an admin key (idempotent). */
  public CompletableFuture<Boolean> addAdminKey(String key) {
    String hash = hashKey(key);
    return store.writer().submit(c -> JobStore.update(c,
        "INSERT INTO admin_key (key_hash, created_at) SELECT ?, ? WHERE NOT EXISTS (SELECT 1 FROM admin_key WHERE key_hash = ?)",
        hash, System.currentTimeMillis(), hash) == 1);
  }

  public CompletableFuture<Boolean> anyAdminKey() {
    return store.read(c -> {
      try (PreparedStatement ps = c.prepareStatement("SELECT 1 FROM admin_key");
          ResultSet rs = ps.executeQuery()) {
        return rs.next();
      }
    });
  }
}
