package io.anneal.store;

import io.anneal.job.Ids;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * Provider accounts (ADR 32): the operator of some nodes, with an API key of its own. The key reads what
 * those nodes earned (their statements and payouts) and asks for their payouts; it authenticates nothing
 * else. Keys are stored as SHA-256 hashes and are never cached, so a replaced key is refused at once on
 * every instance; a node belongs to at most one account.
 */
public final class ProviderStore {
  /** An account as it is shown: its nodes in id order, and when its key last authenticated a request (null: never). */
  public record Account(String id, String name, List<String> nodes, long createdAtMs, Long keyLastUsedAtMs) {}

  /** Why a change was refused; the message of the {@link IllegalStateException} a future fails with starts with it. */
  public enum Refusal {
    NAME_TAKEN,
    KEY_TAKEN,
    NODE_TAKEN
  }

  private final JobStore store;
  private final TenantStore keys;

  public ProviderStore(JobStore store, TenantStore keys) {
    this.store = store;
    this.keys = keys;
  }

  private static IllegalStateException refused(Refusal r, String detail) {
    return new IllegalStateException(r.name() + ": " + detail);
  }

  /**
   * A new account named {@code name} with key {@code apiKey} and nodes {@code nodes}; fails with {@link
   * Refusal#NAME_TAKEN}, {@link Refusal#KEY_TAKEN} (the key authenticates someone) or {@link
   * Refusal#NODE_TAKEN} (a node is another account's).
   */
  public CompletableFuture<Account> create(String name, String apiKey, List<String> nodes) {
    String hash = TenantStore.hashKey(apiKey);
    return store.writer().submit(c -> {
      try (PreparedStatement ps = c.prepareStatement("SELECT 1 FROM provider_account WHERE name = ?")) {
        ps.setString(1, name);
        try (ResultSet rs = ps.executeQuery()) {
          if (rs.next()) throw refused(Refusal.NAME_TAKEN, "a provider account is named " + name + " already");
        }
      }
      if (TenantStore.keyInUse(c, hash)) throw refused(Refusal.KEY_TAKEN, "that key authenticates someone already");
      String id = Ids.next("pa_");
      long now = System.currentTimeMillis();
      JobStore.update(c, "INSERT INTO provider_account (id, name, key_hash, created_at) VALUES (?, ?, ?, ?)", id, name, hash, now);
      assign(c, id, nodes);
      return read(c, "a.id = ?", id).orElseThrow();
    });
  }

  /** Makes {@code nodes} the account's nodes (others it had are no longer its); empty when there is no such account. */
  public CompletableFuture<Optional<Account>> setNodes(String id, List<String> nodes) {
    return store.writer().submit(c -> {
      if (read(c, "a.id = ?", id).isEmpty()) return Optional.<Account>empty();
      JobStore.update(c, "DELETE FROM provider_node WHERE account_id = ?", id);
      assign(c, id, nodes);
      return read(c, "a.id = ?", id);
    });
  }

  private static void assign(Connection c, String id, List<String> nodes) throws SQLException {
    for (String node : new java.util.TreeSet<>(nodes)) { // in order: two changes lock nodes alike
      try (PreparedStatement ps = c.prepareStatement("SELECT account_id FROM provider_node WHERE node_id = ?")) {
        ps.setString(1, node);
        try (ResultSet rs = ps.executeQuery()) {
          if (rs.next()) throw refused(Refusal.NODE_TAKEN, "node " + node + " belongs to provider account " + rs.getString(1));
        }
      }
      JobStore.update(c, "INSERT INTO provider_node (node_id, account_id) VALUES (?, ?)", node, id);
    }
  }

  /**
   * Replaces the account's key with {@code apiKey}: the old one is refused from now on, on every instance.
   * Empty when there is no such account; fails with {@link Refusal#KEY_TAKEN} when the key authenticates
   * someone (the account's own current key included: nothing to replace).
   */
  public CompletableFuture<Optional<Account>> replaceKey(String id, String apiKey) {
    String hash = TenantStore.hashKey(apiKey);
    return store.writer().submit(c -> {
      if (read(c, "a.id = ?", id).isEmpty()) return Optional.<Account>empty();
      if (TenantStore.keyInUse(c, hash)) throw refused(Refusal.KEY_TAKEN, "that key authenticates someone already");
      JobStore.update(c, "UPDATE provider_account SET key_hash = ? WHERE id = ?", hash, id);
      return read(c, "a.id = ?", id);
    });
  }

  /** The account key {@code apiKey} authenticates, if any: a yes counts as the key's use. */
  public CompletableFuture<Optional<Account>> byKey(String apiKey) {
    String hash = TenantStore.hashKey(apiKey);
    return store.read(c -> {
      long now = System.currentTimeMillis();
      // used now: the account as it answers this request shows so, as a tenant's own view does
      return read(c, "a.key_hash = ?", hash).map(a -> {
        keys.keyUsed(hash, now);
        return new Account(a.id(), a.name(), a.nodes(), a.createdAtMs(), now);
      });
    });
  }

  public CompletableFuture<Optional<Account>> byId(String id) {
    return store.read(c -> read(c, "a.id = ?", id));
  }

  /** Every account, in the order they were made. */
  public CompletableFuture<List<Account>> list() {
    return store.read(c -> {
      List<Account> out = new ArrayList<>();
      List<String> ids = new ArrayList<>();
      try (PreparedStatement ps = c.prepareStatement("SELECT id FROM provider_account ORDER BY id"); ResultSet rs = ps.executeQuery()) {
        while (rs.next()) ids.add(rs.getString(1));
      }
      for (String id : ids) read(c, "a.id = ?", id).ifPresent(out::add);
      return out;
    });
  }

  private Optional<Account> read(Connection c, String where, String value) throws SQLException {
    String id;
    String name;
    long created;
    Long used;
    try (PreparedStatement ps = c.prepareStatement("SELECT a.id, a.name, a.created_at, a.key_hash, u.last_used_at"
        + " FROM provider_account a LEFT JOIN key_use u ON u.key_hash = a.key_hash WHERE " + where)) {
      ps.setString(1, value);
      try (ResultSet rs = ps.executeQuery()) {
        if (!rs.next()) return Optional.empty();
        id = rs.getString(1);
        name = rs.getString(2);
        created = rs.getLong(3);
        String hash = rs.getString(4);
        long at = rs.getLong(5);
        used = keys.lastUsed(hash, at, rs.wasNull());
      }
    }
    List<String> nodes = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT node_id FROM provider_node WHERE account_id = ? ORDER BY node_id")) {
      ps.setString(1, id);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) nodes.add(rs.getString(1));
      }
    }
    return Optional.of(new Account(id, name, List.copyOf(nodes), created, used));
  }
}
