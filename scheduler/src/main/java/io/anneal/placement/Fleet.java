package io.anneal.placement;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * Free and used GPUs of every node, and the first-cut placement rule: a job gets all its GPUs at
 * once on one node (gang), and among the nodes that fit, the one with the fewest free matching
 * GPUs wins (best fit), so whole nodes stay free for large jobs. Not thread-safe: one owner.
 */
public final class Fleet {
  private static final class Node {
    final String id;
    final List<Device> devices;
    final BitSet free;

    Node(String id, List<Device> devices) {
      this.id = id;
      this.devices = List.copyOf(devices);
      this.free = new BitSet(devices.size());
      this.free.set(0, devices.size());
    }
  }

  private final Map<String, Node> nodes = new LinkedHashMap<>();

  public void addNode(String nodeId, List<Device> devices) {
    for (int i = 0; i < devices.size(); i++) {
      if (devices.get(i).index() != i) throw new IllegalArgumentException("device indices must be 0..n-1 in order");
    }
    nodes.put(nodeId, new Node(nodeId, devices));
  }

  public boolean hasNode(String nodeId) {
    return nodes.containsKey(nodeId);
  }

  /** True when some node could hold the demand if it were idle. */
  public boolean couldEverFit(Demand d) {
    for (Node n : nodes.values()) {
      Map<String, Integer> byClass = new TreeMap<>();
      for (Device dev : n.devices) {
        if (d.accepts(dev)) byClass.merge(dev.gpuClass(), 1, Integer::sum);
      }
      for (int count : byClass.values()) {
        if (count >= d.gpus()) return true;
      }
    }
    return false;
  }

  /** Places the demand now if it fits somewhere; marks the GPUs used. */
  public Optional<Placement> place(Demand d) {
    Placement best = null;
    int bestFree = Integer.MAX_VALUE;
    for (Node n : nodes.values()) {
      Map<String, List<Integer>> freeByClass = new TreeMap<>();
      for (int i = n.free.nextSetBit(0); i >= 0; i = n.free.nextSetBit(i + 1)) {
        Device dev = n.devices.get(i);
        if (d.accepts(dev)) freeByClass.computeIfAbsent(dev.gpuClass(), k -> new ArrayList<>()).add(i);
      }
      for (Map.Entry<String, List<Integer>> e : freeByClass.entrySet()) {
        int free = e.getValue().size();
        if (free >= d.gpus() && free < bestFree) {
          bestFree = free;
          best = new Placement(n.id, e.getKey(), e.getValue().subList(0, d.gpus()));
        }
      }
    }
    if (best == null) return Optional.empty();
    Node n = nodes.get(best.nodeId());
    for (int i : best.devices()) n.free.clear(i);
    return Optional.of(best);
  }

  /** Marks GPUs used again after a restart put a job back on them. */
  public boolean claim(Placement p) {
    Node n = nodes.get(p.nodeId());
    if (n == null) return false;
    for (int i : p.devices()) {
      if (i >= n.devices.size() || !n.free.get(i)) return false;
    }
    for (int i : p.devices()) n.free.clear(i);
    return true;
  }

  public void release(Placement p) {
    Node n = nodes.get(p.nodeId());
    if (n == null) return;
    for (int i : p.devices()) {
      if (n.free.get(i)) throw new IllegalStateException("GPU " + p.nodeId() + "/" + i + " released twice");
      n.free.set(i);
    }
  }

  public int totalGpus() {
    int t = 0;
    for (Node n : nodes.values()) t += n.devices.size();
    return t;
  }

  public int freeGpus() {
    int t = 0;
    for (Node n : nodes.values()) t += n.free.cardinality();
    return t;
  }

  public boolean isFree(String nodeId, int index) {
    Node n = nodes.get(nodeId);
    return n != null && n.free.get(index);
  }

  public List<Device> devices() {
    List<Device> out = new ArrayList<>();
    for (Node n : nodes.values()) out.addAll(n.devices);
    return out;
  }

  /** Free and total GPUs per class. */
  public Map<String, int[]> byClass() {
    Map<String, int[]> out = new TreeMap<>();
    for (Node n : nodes.values()) {
      for (Device d : n.devices) {
        int[] ft = out.computeIfAbsent(d.gpuClass(), k -> new int[2]);
        ft[1]++;
        if (n.free.get(d.index())) ft[0]++;
      }
    }
    return out;
  }
}
