package io.anneal.api;

import io.vertx.core.json.JsonObject;
import java.util.Map;
import java.util.Set;

/**
 * What the API knows of the fleet to refuse, at submit, a job that can never run: per class, the largest
 * gang one node offers with its GPUs in service and with all of them ({@code classes}: {in service,
 * installed}), the largest device memory, the job kinds and parameter limits.
 */
record FleetShape(Map<String, int[]> classes, Map<String, Long> memoryMiB, Set<String> kinds, Map<String, Long> limits) {
  static final FleetShape EMPTY = new FleetShape(Map.of(), Map.of(), Set.of(), Map.of());

  static FleetShape from(JsonObject o) {
    Map<String, int[]> classes = new java.util.TreeMap<>();
    Map<String, Long> mem = new java.util.TreeMap<>();
    JsonObject c = o.getJsonObject("classes", new JsonObject());
    for (String cls : c.fieldNames()) {
      JsonObject one = c.getJsonObject(cls);
      // {in service, installed}; an instance of a version before installedPerNode counts only the first
      classes.put(cls, new int[] {one.getInteger("maxPerNode"), one.getInteger("installedPerNode", one.getInteger("maxPerNode"))});
      mem.put(cls, c.getJsonObject(cls).getLong("memoryMiB"));
    }
    Set<String> kinds = new java.util.TreeSet<>();
    o.getJsonArray("kinds").forEach(k -> kinds.add((String) k));
    Map<String, Long> limits = new java.util.TreeMap<>();
    o.getJsonObject("limits", new JsonObject()).forEach(e -> limits.put(e.getKey(), ((Number) e.getValue()).longValue()));
    return new FleetShape(classes, mem, kinds, limits);
  }

  boolean empty() {
    return classes.isEmpty();
  }
}
