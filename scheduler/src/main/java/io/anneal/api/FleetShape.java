package io.anneal.api;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What the API knows of the fleet to refuse, at submit, a job that can never run: per class, the largest
 * gang one node offers with its GPUs in service and with all of them ({@code classes}: {in service,
 * installed}), the largest device memory, the job kinds and parameter limits; and the same per set of
 * labels an operator gave nodes ({@code labelled}, ADR 29).
 */
record FleetShape(Map<String, int[]> classes, Map<String, Long> memoryMiB, Set<String> kinds, Map<String, Long> limits,
    List<Labelled> labelled) {
  static final FleetShape EMPTY = new FleetShape(Map.of(), Map.of(), Set.of(), Map.of(), List.of());

  /** The classes of the nodes carrying exactly {@code labels}, as {@link FleetShape#classes} and {@link FleetShape#memoryMiB}. */
  record Labelled(Map<String, String> labels, Map<String, int[]> classes, Map<String, Long> memoryMiB) {}

  static FleetShape from(JsonObject o) {
    Map<String, int[]> classes = new java.util.TreeMap<>();
    Map<String, Long> mem = new java.util.TreeMap<>();
    readClasses(o.getJsonObject("classes", new JsonObject()), classes, mem);
    Set<String> kinds = new java.util.TreeSet<>();
    o.getJsonArray("kinds").forEach(k -> kinds.add((String) k));
    Map<String, Long> limits = new java.util.TreeMap<>();
    o.getJsonObject("limits", new JsonObject()).forEach(e -> limits.put(e.getKey(), ((Number) e.getValue()).longValue()));
    List<Labelled> labelled = new java.util.ArrayList<>();
    for (Object l : o.getJsonArray("labelled", new JsonArray())) {
      JsonObject one = (JsonObject) l;
      Map<String, String> labels = io.anneal.store.NodeLabels.fromJson(one.getJsonObject("labels"));
      Map<String, int[]> lc = new java.util.TreeMap<>();
      Map<String, Long> lm = new java.util.TreeMap<>();
      readClasses(one.getJsonObject("classes", new JsonObject()), lc, lm);
      labelled.add(new Labelled(labels, lc, lm));
    }
    return new FleetShape(classes, mem, kinds, limits, labelled);
  }

  private static void readClasses(JsonObject c, Map<String, int[]> classes, Map<String, Long> mem) {
    for (String cls : c.fieldNames()) {
      JsonObject one = c.getJsonObject(cls);
      // {in service, installed}; an instance of a version before installedPerNode counts only the first
      classes.put(cls, new int[] {one.getInteger("maxPerNode"), one.getInteger("installedPerNode", one.getInteger("maxPerNode"))});
      mem.put(cls, one.getLong("memoryMiB"));
    }
  }

  boolean empty() {
    return classes.isEmpty();
  }

  /**
   * The shape of the nodes carrying every one of {@code asked} (the fleet itself when none is asked),
   * or null when no node of the fleet carries them all.
   */
  FleetShape carrying(Map<String, String> asked) {
    if (asked.isEmpty()) return this;
    Map<String, int[]> cs = new java.util.TreeMap<>();
    Map<String, Long> mem = new java.util.TreeMap<>();
    boolean any = false;
    for (Labelled l : labelled) {
      if (!l.labels().entrySet().containsAll(asked.entrySet())) continue;
      any = true;
      l.classes().forEach((cls, v) -> cs.merge(cls, v.clone(), (a, b) -> new int[] {Math.max(a[0], b[0]), Math.max(a[1], b[1])}));
      l.memoryMiB().forEach((cls, m) -> mem.merge(cls, m, Math::max));
    }
    return any ? new FleetShape(cs, mem, kinds, limits, List.of()) : null;
  }
}
