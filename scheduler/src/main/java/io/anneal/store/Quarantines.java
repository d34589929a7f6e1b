package io.anneal.store;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.LinkedHashMap;
import java.util.Map;

/** Quarantined devices on the job store's database, so that a quarantine outlives a restart. */
public final class Quarantines {
  private Quarantines() {}

  /** Records a quarantine; a device already quarantined keeps its first reason. */
  public static void add(Connection c, String nodeId, int device, String reason, long since) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("INSERT INTO device_quarantine (node_id, device, reason, since)"
        + " SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM device_quarantine WHERE node_id = ? AND device = ?)")) {
      ps.setString(1, nodeId);
      ps.setInt(2, device);
      ps.setString(3, reason.length() > 1000 ? reason.substring(0, 1000) : reason);
      ps.setLong(4, since);
      ps.setString(5, nodeId);
      ps.setInt(6, device);
      ps.executeUpdate();
    }
  }

  /** The node's quarantined devices and why. */
  public static Map<Integer, String> of(Connection c, String nodeId) throws SQLException {
    Map<Integer, String> out = new LinkedHashMap<>();
    try (PreparedStatement ps = c.prepareStatement(
        "SELECT device, reason FROM device_quarantine WHERE node_id = ? ORDER BY device")) {
      ps.setString(1, nodeId);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) out.put(rs.getInt(1), rs.getString(2));
      }
    }
    return out;
  }

  /** Every quarantined device: node → device → why. */
  public static Map<String, Map<Integer, String>> all(Connection c) throws SQLException {
    Map<String, Map<Integer, String>> out = new LinkedHashMap<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT node_id, device, reason FROM device_quarantine ORDER BY node_id, device");
        ResultSet rs = ps.executeQuery()) {
      while (rs.next()) out.computeIfAbsent(rs.getString(1), k -> new LinkedHashMap<>()).put(rs.getInt(2), rs.getString(3));
    }
    return out;
  }

  /** Lifts a quarantine; false when the device was not quarantined. */
  public static boolean lift(Connection c, String nodeId, int device) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("DELETE FROM device_quarantine WHERE node_id = ? AND device = ?")) {
      ps.setString(1, nodeId);
      ps.setInt(2, device);
      return ps.executeUpdate() == 1;
    }
  }
}
