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
  /**
   * A tenant with its scheduling policy: fair-share {@code weight} (> 0), hard {@code gpuQuota} (GPUs held
   * at once; null = none), {@code maxQueuedJobs} (jobs it may have queued; null = the service's limit) and
   * {@code nodeLabels}, the node labels every job of it asks for (ADR 29; none: any node).
   */
  public record Tenant(String id, String name, double weight, Integer gpuQuota, Integer maxQueuedJobs,
      java.util.Map<String, String> nodeLabels) {
    public Tenant {
      nodeLabels = nodeLabels == null ? java.util.Map.of() : java.util.Collections.unmodifiableMap(new java.util.TreeMap<>(nodeLabels));
    }

    public Tenant(String id, String name, double weight, Integer gpuQuota, Integer maxQueuedJobs) {
      this(id, name, weight, gpuQuota, maxQueuedJobs, java.util.Map.of());
    }

    public Tenant(String id, String name) {
      this(id, name, 1.0, null, null);
    }

    /** The same tenant with another policy. */
    public Tenant withPolicy(double weight, Integer gpuQuota, Integer maxQueuedJobs, java.util.Map<String, String> nodeLabels) {
      return new Tenant(id, name, weight, gpuQuota, maxQueuedJobs, nodeLabels);
    }
  }

  private final JobStore store;
  /** When each key (by hash) last authenticated a request on this instance: the latest time seen. */
  private final java.util.concurrent.ConcurrentHashMap<String, Long> keysSeen = new java.util.concurrent.ConcurrentHashMap<>();
  /** The part of {@link #keysSeen} not yet written to {@code key_use}. */
  private final java.util.concurrent.ConcurrentHashMap<String, Long> keysUnwritten = new java.util.concurrent.ConcurrentHashMap<>();

  public TenantStore(JobStore store) {
    this.store = store;
  }

  /**
   * The key hashed {@code keyHash} authenticated a request at {@code atMs}: kept in memory (a map update,
   * nothing written per request) until {@link #writeKeyUses}.
   */
  public void keyUsed(String keyHash, long atMs) {
    keysSeen.merge(keyHash, atMs, Math::max);
    keysUnwritten.merge(keyHash, atMs, Math::max);
  }

  /**
   * Writes the key uses seen since the last call, in one transaction; a later time another instance
   * wrote is kept. Uses seen while it runs wait for the next call; a failed write is taken up again then.
   * Completes with the number of keys written.
   */
  public CompletableFuture<Integer> writeKeyUses() {
    java.util.Map<String, Long> batch = new java.util.TreeMap<>(); // in key order: two instances lock rows alike
    for (String hash : java.util.List.copyOf(keysUnwritten.keySet())) {
      Long at = keysUnwritten.remove(hash);
      if (at != null) batch.put(hash, at);
    }
    if (batch.isEmpty()) return CompletableFuture.completedFuture(0);
    return store.writer().submit(c -> {
      boolean h2 = io.anneal.billing.sql.Database.isH2(c);
      try (PreparedStatement ps = c.prepareStatement(h2
          ? "MERGE INTO key_use t USING (VALUES (CAST(? AS VARCHAR(64)), CAST(? AS BIGINT))) s(h, a) ON t.key_hash = s.h"
              + " WHEN MATCHED AND t.last_used_at < s.a THEN UPDATE SET last_used_at = s.a"
              + " WHEN NOT MATCHED THEN INSERT (key_hash, last_used_at) VALUES (s.h, s.a)"
          : "INSERT INTO key_use (key_hash, last_used_at) VALUES (?, ?) ON CONFLICT (key_hash) DO UPDATE"
              + " SET last_used_at = GREATEST(key_use.last_used_at, EXCLUDED.last_used_at)")) {
        for (var e : batch.entrySet()) {
          ps.setString(1, e.getKey());
          ps.setLong(2, e.getValue());
          ps.addBatch();
        }
        ps.executeBatch();
      }
      return batch.size();
    }).whenComplete((n, e) -> {
      if (e != null) batch.forEach((hash, at) -> keysUnwritten.merge(hash, at, Math::max));
    });
  }

  /** When the key hashed {@code keyHash} last authenticated a request: the store's time or this instance's, the later. */
  Long lastUsed(String keyHash, long stored, boolean wasNull) {
    Long seen = keyHash == null ? null : keysSeen.get(keyHash);
    if (wasNull) return seen;
    return seen == null ? stored : Math.max(stored, seen);
  }

  public static String hashKey(String apiKey) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(apiKey.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static final String TENANT_KEY = "SELECT 1 FROM tenant WHERE api_key_hash = ?";
  private static final String ADMIN_KEY = "SELECT 1 FROM admin_key WHERE key_hash = ?";

  /** Whether {@code query} ({@link #TENANT_KEY} or {@link #ADMIN_KEY}) finds the key hashed {@code hash}. */
  private static boolean exists(java.sql.Connection c, String query, String hash) throws java.sql.SQLException {
    try (PreparedStatement ps = c.prepareStatement(query)) {
      ps.setString(1, hash);
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next();
      }
    }
  }

  /** Whether the key hashed {@code hash} is a tenant's replaced key still in its grace. */
  private static boolean inGrace(java.sql.Connection c, String hash) throws java.sql.SQLException {
    try (PreparedStatement ps = c.prepareStatement("SELECT 1 FROM tenant WHERE previous_key_hash = ? AND previous_key_until > ?")) {
      ps.setString(1, hash);
      ps.setLong(2, System.currentTimeMillis());
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next();
      }
    }
  }

  /**
   * Whether the key hashed {@code hash} authenticates anyone now: a tenant's, one in its grace, an admin's,
   * a read-only key or a provider account's. A key is one thing only.
   */
  static boolean keyInUse(java.sql.Connection c, String hash) throws java.sql.SQLException {
    return exists(c, TENANT_KEY, hash) || inGrace(c, hash) || exists(c, ADMIN_KEY, hash) || exists(c, READ_KEY, hash)
        || exists(c, PROVIDER_KEY, hash);
  }

  private static final String PROVIDER_KEY = "SELECT 1 FROM provider_account WHERE key_hash = ?";

  private static final String READ_KEY = "SELECT 1 FROM tenant_read_key WHERE key_hash = ?";

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
      if (keyInUse(c, hash)) return Optional.<Tenant>empty();
      String id = Ids.next("t_");
      JobStore.update(c, "INSERT INTO tenant (id, name, api_key_hash, created_at) VALUES (?, ?, ?, ?)", id, name, hash,
          System.currentTimeMillis());
      SqlLedger.openTenantAccounts(c, id);
      return Optional.of(new Tenant(id, name));
    });
  }

  /** What {@link #rotateKey} did. */
  public enum KeyChange {
    /** The tenant's key is the new one; the old one no longer authenticates. */
    ROTATED,
    /** The new key was already the tenant's (a rotation sent again): nothing changed. */
    UNCHANGED,
    NO_TENANT,
    /** The new key is another tenant's, or an admin key: refused, nothing changed. */
    KEY_TAKEN,
    /** Another rotation of the same tenant committed first: this one changed nothing. */
    RACED
  }

  /** Replaces tenant {@code id}'s API key with {@code apiKey} at once, in one transaction. */
  public CompletableFuture<KeyChange> rotateKey(String id, String apiKey) {
    return rotateKey(id, apiKey, 0).thenApply(Rotation::change);
  }

  /**
   * What {@link #rotateKey(String, String, long)} did, and the replaced key's hash and until when it still
   * authenticates (ms; 0: no longer).
   */
  public record Rotation(KeyChange change, String previousHash, long previousUntilMs) {}

  /**
   * Replaces tenant {@code id}'s API key with {@code apiKey}, in one transaction; the replaced key goes on
   * authenticating for {@code graceMs} (0: stops now). A key replaced earlier and still in its grace stops
   * now: a tenant has at most two keys at once.
   */
  public CompletableFuture<Rotation> rotateKey(String id, String apiKey, long graceMs) {
    String hash = hashKey(apiKey);
    return store.writer().submit(c -> {
      String current;
      try (PreparedStatement ps = c.prepareStatement("SELECT api_key_hash FROM tenant WHERE id = ?")) {
        ps.setString(1, id);
        try (ResultSet rs = ps.executeQuery()) {
          if (!rs.next()) return new Rotation(KeyChange.NO_TENANT, null, 0);
          current = rs.getString(1);
        }
      }
      if (current.equals(hash)) return new Rotation(KeyChange.UNCHANGED, null, 0);
      boolean ownPrevious;
      try (PreparedStatement ps = c.prepareStatement("SELECT 1 FROM tenant WHERE id = ? AND previous_key_hash = ?")) {
        ps.setString(1, id);
        ps.setString(2, hash);
        try (ResultSet rs = ps.executeQuery()) {
          ownPrevious = rs.next(); // going back to the key just replaced: its own grace does not make it taken
        }
      }
      if (exists(c, TENANT_KEY, hash) || exists(c, ADMIN_KEY, hash) || exists(c, READ_KEY, hash)
          || (!ownPrevious && inGrace(c, hash))) {
        return new Rotation(KeyChange.KEY_TAKEN, null, 0);
      }
      long until = graceMs > 0 ? System.currentTimeMillis() + graceMs : 0;
      // the old hash in the condition: a rotation that raced this one and won leaves this one changing nothing
      int n = JobStore.update(c, "UPDATE tenant SET api_key_hash = ?, previous_key_hash = ?, previous_key_until = ?"
          + " WHERE id = ? AND api_key_hash = ?", hash, until > 0 ? current : null, until > 0 ? until : null, id, current);
      return n == 1 ? new Rotation(KeyChange.ROTATED, until > 0 ? current : null, until) : new Rotation(KeyChange.RACED, null, 0);
    });
  }

  public CompletableFuture<Optional<Tenant>> byKey(String apiKey) {
    return ownerOf(apiKey).thenApply(o -> o.map(KeyOwner::tenant));
  }

  /**
   * The tenant a key authenticates, and until when (ms): {@link Long#MAX_VALUE} for its current key;
   * {@code readOnly}: one of its read-only keys (ADR 30), which changes nothing.
   */
  public record KeyOwner(Tenant tenant, long validUntilMs, boolean readOnly) {
    public KeyOwner(Tenant tenant, long validUntilMs) {
      this(tenant, validUntilMs, false);
    }
  }

  /** The tenant whose current key, or whose replaced key still in its grace, {@code apiKey} is. */
  public CompletableFuture<Optional<KeyOwner>> ownerOf(String apiKey) {
    String hash = hashKey(apiKey);
    return store.read(c -> {
      try (PreparedStatement ps = c.prepareStatement("SELECT " + COLUMNS + " FROM tenant WHERE api_key_hash = ?")) {
        ps.setString(1, hash);
        try (ResultSet rs = ps.executeQuery()) {
          if (rs.next()) return Optional.of(new KeyOwner(row(rs), Long.MAX_VALUE));
        }
      }
      try (PreparedStatement ps = c.prepareStatement("SELECT " + COLUMNS + ", previous_key_until FROM tenant"
          + " WHERE previous_key_hash = ? AND previous_key_until > ?")) {
        ps.setString(1, hash);
        ps.setLong(2, System.currentTimeMillis());
        try (ResultSet rs = ps.executeQuery()) {
          if (rs.next()) return Optional.of(new KeyOwner(row(rs), rs.getLong(7)));
        }
      }
      try (PreparedStatement ps = c.prepareStatement("SELECT t." + COLUMNS.replace(", ", ", t.") + ", r.expires_at"
          + " FROM tenant_read_key r JOIN tenant t ON t.id = r.tenant_id WHERE r.key_hash = ? AND r.revoked_at IS NULL"
          + " AND (r.expires_at IS NULL OR r.expires_at > ?)")) {
        ps.setString(1, hash);
        ps.setLong(2, System.currentTimeMillis());
        try (ResultSet rs = ps.executeQuery()) {
          if (!rs.next()) return Optional.<KeyOwner>empty();
          long expires = rs.getLong(7);
          long until = rs.wasNull() ? Long.MAX_VALUE : expires; // before row(), whose reads would answer wasNull
          return Optional.of(new KeyOwner(row(rs), until, true));
        }
      }
    });
  }

  /**
   * A tenant as an operator lists it: its policy, when it was made (ms), when its key last authenticated a
   * request (null: not since this was recorded) and, while a rotation's grace lasts, until when its
   * previous key works and when that one was last used.
   */
  public record Listed(Tenant tenant, long createdAtMs, Long keyLastUsedAtMs, Long previousKeyUntilMs,
      Long previousKeyLastUsedAtMs) {}

  /**
   * The query a {@link Listed} is read with: the tenant's {@link #COLUMNS}, when it was made, and the last
   * uses of its key and, while a grace lasts (the two parameters: now), of its previous key.
   */
  private static final String LISTED = "SELECT t." + TenantStore.COLUMNS.replace(", ", ", t.")
      + ", t.created_at, t.api_key_hash, u.last_used_at, CASE WHEN t.previous_key_until > ? THEN t.previous_key_hash END,"
      + " CASE WHEN t.previous_key_until > ? THEN t.previous_key_until END, p.last_used_at"
      + " FROM tenant t LEFT JOIN key_use u ON u.key_hash = t.api_key_hash LEFT JOIN key_use p ON p.key_hash = t.previous_key_hash";

  private Listed listedRow(ResultSet rs) throws java.sql.SQLException {
    Tenant t = row(rs);
    long created = rs.getLong(7);
    String keyHash = rs.getString(8);
    long used = rs.getLong(9);
    Long keyUsed = lastUsed(keyHash, used, rs.wasNull());
    String previousHash = rs.getString(10);
    Long previousUntil = rs.getObject(11, Long.class);
    long previousUsed = rs.getLong(12);
    Long previousKeyUsed = previousHash == null ? null : lastUsed(previousHash, previousUsed, rs.wasNull());
    return new Listed(t, created, keyUsed, previousUntil, previousKeyUsed);
  }

  /** A page of tenants by id (ids grow with time: oldest first), and the id to continue after, or null at the end. */
  public record Page(java.util.List<Listed> tenants, String next) {}

  /** Up to {@code limit} tenants with an id above {@code after} (null: from the first), in id order. */
  public CompletableFuture<Page> list(String after, int limit) {
    return store.read(c -> {
      java.util.List<Listed> out = new java.util.ArrayList<>();
      try (PreparedStatement ps = c.prepareStatement(LISTED + " WHERE t.id > ? ORDER BY t.id FETCH FIRST " + (limit + 1) + " ROWS ONLY")) {
        long now = System.currentTimeMillis();
        ps.setLong(1, now);
        ps.setLong(2, now);
        ps.setString(3, after == null ? "" : after);
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) out.add(listedRow(rs));
        }
      }
      String next = out.size() > limit ? out.get(limit - 1).tenant().id() : null;
      return new Page(out.size() > limit ? java.util.List.copyOf(out.subList(0, limit)) : out, next);
    });
  }

  /** Tenant {@code id} with when it was made, if it exists. */
  public CompletableFuture<Optional<Listed>> listed(String id) {
    return store.read(c -> {
      try (PreparedStatement ps = c.prepareStatement(LISTED + " WHERE t.id = ?")) {
        long now = System.currentTimeMillis();
        ps.setLong(1, now);
        ps.setLong(2, now);
        ps.setString(3, id);
        try (ResultSet rs = ps.executeQuery()) {
          return rs.next() ? Optional.of(listedRow(rs)) : Optional.<Listed>empty();
        }
      }
    });
  }

  /** A read-only key of a tenant as it is listed (its hash is never shown; its fingerprint names it). */
  public record ReadKey(String fingerprint, String name, long createdAtMs, Long expiresAtMs, Long revokedAtMs, Long lastUsedAtMs) {}

  /**
   * A new read-only key for tenant {@code tenantId} (ADR 30), expiring at {@code expiresAtMs} (null: never);
   * empty when there is no such tenant; {@link KeyChange#KEY_TAKEN} as the error when the key authenticates
   * anyone already.
   */
  public CompletableFuture<Optional<ReadKey>> addReadKey(String tenantId, String apiKey, String name, Long expiresAtMs) {
    String hash = hashKey(apiKey);
    return store.writer().submit(c -> {
      if (!exists(c, "SELECT 1 FROM tenant WHERE id = ?", tenantId)) return Optional.<ReadKey>empty();
      if (keyInUse(c, hash)) throw new IllegalStateException(KeyChange.KEY_TAKEN.name());
      long now = System.currentTimeMillis();
      JobStore.update(c, "INSERT INTO tenant_read_key (key_hash, tenant_id, name, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
          hash, tenantId, name, now, expiresAtMs);
      return Optional.of(new ReadKey(fingerprint(apiKey), name, now, expiresAtMs, null, null));
    });
  }

  /** A tenant's read-only keys, oldest first, revoked and expired ones too. */
  public CompletableFuture<java.util.List<ReadKey>> readKeys(String tenantId) {
    return store.read(c -> {
      java.util.List<ReadKey> out = new java.util.ArrayList<>();
      try (PreparedStatement ps = c.prepareStatement("SELECT r.key_hash, r.name, r.created_at, r.expires_at, r.revoked_at,"
          + " u.last_used_at FROM tenant_read_key r LEFT JOIN key_use u ON u.key_hash = r.key_hash WHERE r.tenant_id = ?"
          + " ORDER BY r.created_at, r.key_hash")) {
        ps.setString(1, tenantId);
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            String hash = rs.getString(1);
            long used = rs.getLong(6);
            Long lastUsed = lastUsed(hash, used, rs.wasNull());
            out.add(new ReadKey("sha256:" + hash.substring(0, 16), rs.getString(2), rs.getLong(3),
                (Long) rs.getObject(4, Long.class), (Long) rs.getObject(5, Long.class), lastUsed));
          }
        }
      }
      return out;
    });
  }

  /**
   * Revokes the tenant's read-only key whose fingerprint is {@code fingerprint} (its {@code sha256:} prefix
   * optional): the key's hash, or empty when it has no such key; revoking it again answers the same.
   * {@link IllegalStateException} when the fingerprint names two of its keys.
   */
  public CompletableFuture<Optional<String>> revokeReadKey(String tenantId, String fingerprint) {
    String prefix = fingerprint.startsWith("sha256:") ? fingerprint.substring(7) : fingerprint;
    // at least 8 hex digits of the key's SHA-256 (the fingerprint shows 16)
    if (prefix.length() < 8 || !prefix.matches("[0-9a-f]{8,64}")) return CompletableFuture.completedFuture(Optional.empty());
    return store.writer().submit(c -> {
      java.util.List<String> hashes = new java.util.ArrayList<>();
      try (PreparedStatement ps = c.prepareStatement("SELECT key_hash FROM tenant_read_key WHERE tenant_id = ? AND key_hash LIKE ?")) {
        ps.setString(1, tenantId);
        ps.setString(2, prefix + "%");
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) hashes.add(rs.getString(1));
        }
      }
      if (hashes.isEmpty()) return Optional.<String>empty();
      if (hashes.size() > 1) throw new IllegalStateException("more than one read-only key of this tenant starts with " + fingerprint);
      JobStore.update(c, "UPDATE tenant_read_key SET revoked_at = ? WHERE key_hash = ? AND revoked_at IS NULL",
          System.currentTimeMillis(), hashes.get(0));
      return Optional.of(hashes.get(0));
    });
  }

  /** Of the read-only keys hashed {@code hashes}, those that authenticate now (not revoked, not expired). */
  public CompletableFuture<java.util.Set<String>> validReadKeys(java.util.Collection<String> hashes) {
    java.util.List<String> list = java.util.List.copyOf(hashes);
    return store.read(c -> {
      java.util.Set<String> out = new java.util.HashSet<>();
      long now = System.currentTimeMillis();
      for (String h : list) {
        try (PreparedStatement ps = c.prepareStatement("SELECT 1 FROM tenant_read_key WHERE key_hash = ? AND revoked_at IS NULL"
            + " AND (expires_at IS NULL OR expires_at > ?)")) {
          ps.setString(1, h);
          ps.setLong(2, now);
          try (ResultSet rs = ps.executeQuery()) {
            if (rs.next()) out.add(h);
          }
        }
      }
      return out;
    });
  }

  /**
   * A tenant with the SHA-256 (hex) of its current key and of its replaced key still in its grace (null when
   * none), and until when that one authenticates (ms).
   */
  public record Keys(Tenant tenant, String currentHash, String previousHash, long previousUntilMs) {}

  /** The tenants of {@code ids} that exist, with their keys' hashes, by id. */
  public CompletableFuture<java.util.Map<String, Keys>> withKeyHashes(java.util.Collection<String> ids) {
    java.util.List<String> list = java.util.List.copyOf(ids);
    return store.read(c -> {
      java.util.Map<String, Keys> out = new java.util.HashMap<>();
      long now = System.currentTimeMillis();
      for (int from = 0; from < list.size(); from += 500) {
        java.util.List<String> part = list.subList(from, Math.min(list.size(), from + 500));
        String marks = String.join(", ", java.util.Collections.nCopies(part.size(), "?"));
        try (PreparedStatement ps = c.prepareStatement("SELECT " + COLUMNS + ", api_key_hash, previous_key_hash, previous_key_until"
            + " FROM tenant WHERE id IN (" + marks + ")")) {
          for (int i = 0; i < part.size(); i++) ps.setString(i + 1, part.get(i));
          try (ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
              Tenant t = row(rs);
              long until = rs.getLong(9);
              boolean grace = rs.getString(8) != null && until > now;
              out.put(t.id(), new Keys(t, rs.getString(7), grace ? rs.getString(8) : null, grace ? until : 0));
            }
          }
        }
      }
      return out;
    });
  }

  public CompletableFuture<Optional<Tenant>> byId(String id) {
    return store.read(c -> {
      try (PreparedStatement ps = c.prepareStatement("SELECT " + COLUMNS + " FROM tenant WHERE id = ?")) {
        ps.setString(1, id);
        try (ResultSet rs = ps.executeQuery()) {
          return rs.next() ? Optional.of(row(rs)) : Optional.<Tenant>empty();
        }
      }
    });
  }

  private static final String COLUMNS = "id, name, weight, gpu_quota, max_queued_jobs, node_labels";

  private static Tenant row(ResultSet rs) throws java.sql.SQLException {
    return new Tenant(rs.getString(1), rs.getString(2), rs.getDouble(3), intOrNull(rs, 4), intOrNull(rs, 5), labels(rs.getString(6)));
  }

  /** Node labels as stored (a JSON object; null: none). */
  private static java.util.Map<String, String> labels(String json) {
    return json == null ? java.util.Map.of() : NodeLabels.fromJson(new io.vertx.core.json.JsonObject(json));
  }

  private static Integer intOrNull(ResultSet rs, int column) throws java.sql.SQLException {
    int v = rs.getInt(column);
    return rs.wasNull() ? null : v; // wasNull refers to the column read last
  }

  /**
   * Sets a tenant's weight, GPU quota, queue bound (null: none / the service's) and the node labels its jobs
   * ask for (empty: none); false if there is no such tenant.
   */
  public CompletableFuture<Boolean> setPolicy(String id, double weight, Integer gpuQuota, Integer maxQueuedJobs,
      java.util.Map<String, String> nodeLabels) {
    if (!(weight > 0) || weight > 1000) throw new IllegalArgumentException("weight must be in (0, 1000]");
    if (gpuQuota != null && gpuQuota < 0) throw new IllegalArgumentException("gpuQuota must be >= 0");
    if (maxQueuedJobs != null && maxQueuedJobs < 1) throw new IllegalArgumentException("maxQueuedJobs must be >= 1");
    String labels = nodeLabels.isEmpty() ? null : NodeLabels.toJson(nodeLabels).encode();
    return store.writer().submit(c -> JobStore.update(c, "UPDATE tenant SET weight = ?, gpu_quota = ?, max_queued_jobs = ?,"
        + " node_labels = ? WHERE id = ?", weight, gpuQuota, maxQueuedJobs, labels, id) == 1);
  }

  /** Every tenant whose policy differs from the default (weight 1, no quota), for the scheduler at start. */
  public static java.util.List<Tenant> policiesBlocking(java.sql.Connection c) throws java.sql.SQLException {
    java.util.List<Tenant> out = new java.util.ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT " + COLUMNS + " FROM tenant WHERE weight <> 1 OR gpu_quota IS NOT NULL"
        + " OR max_queued_jobs IS NOT NULL");
        ResultSet rs = ps.executeQuery()) {
      while (rs.next()) out.add(row(rs));
    }
    return out;
  }

  /** Whether {@code key} is an admin key that authenticates; a yes counts as the key's use ({@link #keyUsed}). */
  public CompletableFuture<Boolean> isAdminKey(String key) {
    String hash = hashKey(key);
    return store.read(c -> {
      try (PreparedStatement ps = c.prepareStatement("SELECT 1 FROM admin_key WHERE key_hash = ? AND revoked_at IS NULL")) {
        ps.setString(1, hash);
        try (ResultSet rs = ps.executeQuery()) {
          if (!rs.next()) return false;
          keyUsed(hash, System.currentTimeMillis()); // every caller asks to authenticate a request
          return true;
        }
      }
    });
  }

  /** What {@link #addAdminKey} found. */
  public enum AdminKeyAdded {
    ADDED,
    /** Already an admin key: nothing changed. */
    EXISTS,
    /** An admin key that was revoked: it stays revoked. */
    REVOKED,
    /** Another kind of key (a tenant's, a read-only or a provider account's): refused. */
    TENANT_KEY
  }

  /** Adds an admin key (idempotent); a revoked one is not brought back. */
  public CompletableFuture<AdminKeyAdded> addAdminKey(String key) {
    String hash = hashKey(key);
    return store.writer().submit(c -> {
      try (PreparedStatement ps = c.prepareStatement("SELECT revoked_at FROM admin_key WHERE key_hash = ?")) {
        ps.setString(1, hash);
        try (ResultSet rs = ps.executeQuery()) {
          if (rs.next()) {
            rs.getLong(1);
            return rs.wasNull() ? AdminKeyAdded.EXISTS : AdminKeyAdded.REVOKED;
          }
        }
      }
      if (exists(c, TENANT_KEY, hash) || inGrace(c, hash) || exists(c, READ_KEY, hash) || exists(c, PROVIDER_KEY, hash)) {
        return AdminKeyAdded.TENANT_KEY;
      }
      JobStore.update(c, "INSERT INTO admin_key (key_hash, created_at) VALUES (?, ?)", hash, System.currentTimeMillis());
      return AdminKeyAdded.ADDED;
    });
  }

  /** Whether an admin key that is not revoked exists. */
  public CompletableFuture<Boolean> anyAdminKey() {
    return store.read(c -> {
      try (PreparedStatement ps = c.prepareStatement("SELECT 1 FROM admin_key WHERE revoked_at IS NULL");
          ResultSet rs = ps.executeQuery()) {
        return rs.next();
      }
    });
  }

  /**
   * An admin key as listed: its fingerprint ({@code sha256:} and the first 16 hex digits of the key's
   * SHA-256; the key itself is not stored), when it was added, when revoked (null: it authenticates).
   */
  public record AdminKey(String fingerprint, long createdAtMs, Long revokedAtMs, Long lastUsedAtMs) {}

  /** The fingerprint of a key, as {@link AdminKey} shows it. */
  public static String fingerprint(String key) {
    return "sha256:" + hashKey(key).substring(0, 16);
  }

  /** Every admin key, oldest first. */
  public CompletableFuture<java.util.List<AdminKey>> adminKeys() {
    return store.read(c -> {
      java.util.List<AdminKey> out = new java.util.ArrayList<>();
      try (PreparedStatement ps = c.prepareStatement("SELECT a.key_hash, a.created_at, a.revoked_at, u.last_used_at FROM admin_key a"
          + " LEFT JOIN key_use u ON u.key_hash = a.key_hash ORDER BY a.created_at, a.key_hash");
          ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          String hash = rs.getString(1);
          long revokedAt = rs.getLong(3);
          Long revoked = rs.wasNull() ? null : revokedAt; // wasNull refers to the column read last
          long used = rs.getLong(4);
          Long lastUsed = lastUsed(hash, used, rs.wasNull());
          out.add(new AdminKey("sha256:" + hash.substring(0, 16), rs.getLong(2), revoked, lastUsed));
        }
      }
      return out;
    });
  }

  /** What {@link #revokeAdminKey} did. */
  public enum AdminKeyRevoked {
    REVOKED,
    /** Revoked before: nothing changed. */
    ALREADY,
    NONE,
    /** The only admin key that authenticates: revoking it would leave no admin. Nothing changed. */
    LAST,
    /** More than one key has that fingerprint (give more of the hash). Nothing changed. */
    AMBIGUOUS
  }

  /**
   * Revokes the admin key whose SHA-256 (hex) starts with {@code hashPrefix}, unless it is the last one
   * that authenticates. The keys that authenticate are locked first (on PostgreSQL): two revocations at
   * once cannot each leave the other's key as the last and revoke it.
   */
  public CompletableFuture<AdminKeyRevoked> revokeAdminKey(String hashPrefix, long nowMs) {
    return store.writer().submit(c -> {
      java.util.List<String> active = new java.util.ArrayList<>();
      try (PreparedStatement ps = c.prepareStatement("SELECT key_hash FROM admin_key WHERE revoked_at IS NULL ORDER BY key_hash FOR UPDATE");
          ResultSet rs = ps.executeQuery()) {
        while (rs.next()) active.add(rs.getString(1));
      }
      java.util.List<String> matching = new java.util.ArrayList<>();
      boolean revokedBefore = false;
      try (PreparedStatement ps = c.prepareStatement("SELECT key_hash, revoked_at FROM admin_key WHERE key_hash LIKE ?")) {
        ps.setString(1, hashPrefix + "%");
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            matching.add(rs.getString(1));
            rs.getLong(2);
            revokedBefore = !rs.wasNull();
          }
        }
      }
      if (matching.isEmpty()) return AdminKeyRevoked.NONE;
      if (matching.size() > 1) return AdminKeyRevoked.AMBIGUOUS;
      if (revokedBefore) return AdminKeyRevoked.ALREADY;
      if (active.size() <= 1) return AdminKeyRevoked.LAST;
      JobStore.update(c, "UPDATE admin_key SET revoked_at = ? WHERE key_hash = ? AND revoked_at IS NULL", nowMs, matching.get(0));
      return AdminKeyRevoked.REVOKED;
    });
  }
}
