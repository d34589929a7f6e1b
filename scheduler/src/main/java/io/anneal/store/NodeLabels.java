package io.anneal.store;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.Map;
import java.util.TreeMap;

/** The labels operators gave nodes (ADR 29), on the job store's database, so that they outlive restarts. */
public final class NodeLabels {
  private NodeLabels() {}

  /** Labels as JSON carries them (an object of names to values; null: none), sorted by name. */
  public static Map<String, String> fromJson(io.vertx.core.json.JsonObject o) {
    Map<String, String> out = new TreeMap<>();
    if (o != null) o.forEach(e -> out.put(e.getKey(), String.valueOf(e.getValue())));
    return out;
  }

  /** Labels as a JSON object, by name. */
  public static io.vertx.core.json.JsonObject toJson(Map<String, String> labels) {
    return new io.vertx.core.json.JsonObject(new java.util.LinkedHashMap<>(new TreeMap<String, Object>(labels)));
  }

  /** The node's labels, by name. */
  public static Map<String, String> of(Connection c, String nodeId) throws SQLException {
    Map<String, String> out = new TreeMap<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT name, val FROM node_label WHERE node_id = ?")) {
      ps.setString(1, nodeId);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) out.put(rs.getString(1), rs.getString(2));
      }
    }
    return out;
  }

  /** Every labelled node's labels: node → name → value. */
  public static Map<String, Map<String, String>> all(Connection c) throws SQLException {
    Map<String, Map<String, String>> out = new TreeMap<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT node_id, name, val FROM node_label");
        ResultSet rs = ps.executeQuery()) {
      while (rs.next()) out.computeIfAbsent(rs.getString(1), k -> new TreeMap<>()).put(rs.getString(2), rs.getString(3));
    }
    return out;
  }

  /** Replaces the node's labels with {@code labels} (none: the node has no label); true if they changed. */
  public static boolean replace(Connection c, String nodeId, Map<String, String> labels) throws SQLException {
    Map<String, String> before = of(c, nodeId);
    if (before.equals(new TreeMap<>(labels))) return false;
    try (PreparedStatement del = c.prepareStatement("DELETE FROM node_label WHERE node_id = ?")) {
      del.setString(1, nodeId);
      del.executeUpdate();
    }
    if (!labels.isEmpty()) {
      try (PreparedStatement ins = c.prepareStatement("INSERT INTO node_label (node_id, name, val) VALUES (?, ?, ?)")) {
        for (Map.Entry<String, String> l : labels.entrySet()) {
          ins.setString(1, nodeId);
          ins.setString(2, l.getKey());
          ins.setString(3, l.getValue());
          ins.addBatch();
        }
        ins.executeBatch();
      }
    }
    return true;
  }
}
