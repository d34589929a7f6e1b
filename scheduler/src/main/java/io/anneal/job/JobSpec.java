package io.anneal.job;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.regex.Pattern;

/** A validated job request (CONTRACT.md "Job spec"). */
public record JobSpec(
    String kind, int gpus, String gpuClass, long memoryMiB, int priority, long maxSeconds, long deadlineSeconds,
    Map<String, Object> params, Map<String, String> nodeLabels) {

  public static final Set<String> KINDS = Set.of("train", "infer", "matmul", "sleep");
  private static final Set<String> FIELDS = Set.of("kind", "gpus", "gpuClass", "memoryMiB", "priority", "maxSeconds",
      "deadlineSeconds", "params", "nodeLabels");
  /** Most labels a job may ask for, or an operator give a node. */
  public static final int MAX_LABELS = 16;
  /** A label's name: 1..63 lower-case letters, digits, '.', '_', '-', '/', starting and ending with a letter or digit. */
  private static final Pattern LABEL_NAME = Pattern.compile("[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?");
  /** A label's value: 1..63 letters, digits, '.', '_', '-', starting and ending with a letter or digit. */
  private static final Pattern LABEL_VALUE = Pattern.compile("[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?");
  /** Label names Anneal gives nodes itself (the kinds a node runs): neither asked for nor given by hand. */
  public static final String RESERVED_LABEL_PREFIX = "anneal.";
  /** Longest start-by deadline a job may ask for: 30 days. */
  public static final long MAX_DEADLINE_SECONDS = 30L * 86400;
  private static final Pattern CLASS = Pattern.compile("[A-Za-z0-9_.-]{1,32}");
  private static final Map<String, Set<String>> PARAMS = Map.of(
      "sleep", Set.of("ms"),
      "matmul", Set.of("n", "seed"),
      "train", Set.of("dataset", "data", "layers", "activation", "optimizer", "learningRate", "epochs", "batchSize",
          "seed", "samples"),
      "infer", Set.of("modelId", "inputs"));

  /** Server limits that a spec is checked against. */
  public record Limits(int maxGpus, long maxSeconds) {}

  /** One problem with one field; {@code code} is stable for clients. */
  public record FieldError(String field, String code, String message) {}

  /** Either a spec or the list of what is wrong with the request. */
  public record Parsed(JobSpec spec, List<FieldError> errors) {
    public boolean ok() {
      return spec != null;
    }
  }

  public JobSpec {
    Objects.requireNonNull(kind, "kind");
    params = params == null ? Map.of() : java.util.Collections.unmodifiableMap(new LinkedHashMap<>(params));
    nodeLabels = nodeLabels == null ? Map.of() : java.util.Collections.unmodifiableMap(new java.util.TreeMap<>(nodeLabels));
  }

  /** A job that may run on any node. */
  public JobSpec(String kind, int gpus, String gpuClass, long memoryMiB, int priority, long maxSeconds, long deadlineSeconds,
      Map<String, Object> params) {
    this(kind, gpus, gpuClass, memoryMiB, priority, maxSeconds, deadlineSeconds, params, Map.of());
  }

  /** The same job asking for {@code labels} instead. */
  public JobSpec withNodeLabels(Map<String, String> labels) {
    return new JobSpec(kind, gpus, gpuClass, memoryMiB, priority, maxSeconds, deadlineSeconds, params, labels);
  }

  /**
   * Node labels as a job asks for them ({@code nodeLabels}) or an operator gives them to a node: an
   * object of at most {@link #MAX_LABELS} names to values, each checked; what is wrong goes to
   * {@code errors} under {@code field.name}. Null (absent) is no label.
   */
  public static Map<String, String> labels(Object value, String field, List<FieldError> errors) {
    if (value == null) return Map.of();
    if (!(value instanceof Map<?, ?> m)) {
      errors.add(new FieldError(field, "invalid", field + " must be an object of label names to values, e.g. {\"tier\": \"certified\"}"));
      return Map.of();
    }
    if (m.size() > MAX_LABELS) {
      errors.add(new FieldError(field, "out-of-range", field + " holds " + m.size() + " labels; at most " + MAX_LABELS));
      return Map.of();
    }
    Map<String, String> out = new java.util.TreeMap<>();
    for (Map.Entry<?, ?> e : m.entrySet()) {
      String name = String.valueOf(e.getKey());
      if (!LABEL_NAME.matcher(name).matches()) {
        errors.add(new FieldError(field + "." + name, "invalid", "a label name is 1 to 63 lower-case letters, digits,"
            + " '.', '_', '-' or '/', starting and ending with a letter or digit"));
      } else if (name.startsWith(RESERVED_LABEL_PREFIX)) {
        errors.add(new FieldError(field + "." + name, "invalid", "label names starting with '" + RESERVED_LABEL_PREFIX
            + "' are Anneal's own"));
      } else if (!(e.getValue() instanceof String v) || !LABEL_VALUE.matcher(v).matches()) {
        errors.add(new FieldError(field + "." + name, "invalid", "a label value is a string of 1 to 63 letters, digits,"
            + " '.', '_' or '-', starting and ending with a letter or digit"));
      } else {
        out.put(name, v);
      }
    }
    return out;
  }

  public static Parsed parse(Map<String, Object> json, Limits limits) {
    List<FieldError> errors = new ArrayList<>();
    for (String k : json.keySet()) {
      if (!FIELDS.contains(k)) errors.add(new FieldError(k, "unknown-field", "unknown field '" + k + "'"));
    }
    Object kindV = json.get("kind");
    String kind = null;
    if (!(kindV instanceof String s) || !KINDS.contains(s)) {
      errors.add(new FieldError("kind", "invalid", "kind must be one of train, infer, matmul, sleep"));
    } else {
      kind = s;
    }
    long gpus = integer(json, "gpus", 1, 1, limits.maxGpus(), errors);
    String gpuClass = null;
    Object gc = json.get("gpuClass");
    if (gc != null) {
      if (gc instanceof String s && CLASS.matcher(s).matches()) {
        gpuClass = s;
      } else {
        errors.add(new FieldError("gpuClass", "invalid", "gpuClass must be a class name such as H100"));
      }
    }
    long memoryMiB = integer(json, "memoryMiB", 0, 0, 16L * 1024 * 1024, errors);
    long priority = integer(json, "priority", 0, 0, 1000, errors);
    long maxSeconds = integer(json, "maxSeconds", Math.min(3600, limits.maxSeconds()), 1, limits.maxSeconds(), errors);
    // start-by deadline: a job still queued this many seconds after submission fails with reason "deadline"
    long deadlineSeconds = integer(json, "deadlineSeconds", 0, 1, MAX_DEADLINE_SECONDS, errors);
    Map<String, Object> params = Map.of();
    Object p = json.get("params");
    if (p != null && !(p instanceof Map)) {
      errors.add(new FieldError("params", "invalid", "params must be an object"));
    } else if (p != null) {
      @SuppressWarnings("unchecked")
      Map<String, Object> m = (Map<String, Object>) p;
      params = m;
    }
    if (kind != null) checkParams(kind, params, maxSeconds, errors);
    // placed only on nodes an operator gave every one of these labels (ADR 29)
    Map<String, String> nodeLabels = labels(json.get("nodeLabels"), "nodeLabels", errors);
    if (!errors.isEmpty()) return new Parsed(null, List.copyOf(errors));
    return new Parsed(new JobSpec(kind, (int) gpus, gpuClass, memoryMiB, (int) priority, maxSeconds, deadlineSeconds, params,
        nodeLabels), List.of());
  }

  private static void checkParams(String kind, Map<String, Object> params, long maxSeconds, List<FieldError> errors) {
    Set<String> allowed = PARAMS.get(kind);
    for (String k : params.keySet()) {
      if (!allowed.contains(k)) {
        errors.add(new FieldError("params." + k, "unknown-field", "unknown param '" + k + "' for kind " + kind));
      }
    }
    switch (kind) {
      case "sleep" -> integer(params, "ms", 0, 0, maxSeconds * 1000, errors, "params.");
      case "matmul" -> {
        integer(params, "n", 256, 1, 16384, errors, "params.");
        integer(params, "seed", 1, Long.MIN_VALUE, Long.MAX_VALUE, errors, "params.");
      }
      case "train" -> checkTrain(params, errors);
      case "infer" -> {
        Object id = params.get("modelId");
        if (!(id instanceof String m) || !m.matches("[A-Za-z0-9_.-]{1,100}")) {
          errors.add(new FieldError("params.modelId", "invalid", "params.modelId must name a trained model, e.g. m_j_..."));
        }
        Object in = params.get("inputs");
        if (!(in instanceof List<?> rows) || rows.isEmpty() || rows.size() > 100_000 || !(rows.get(0) instanceof List)) {
          errors.add(new FieldError("params.inputs", "invalid", "params.inputs must be 1..100000 rows of numbers"));
        }
      }
      default -> { }
    }
  }

  private static void checkTrain(Map<String, Object> params, List<FieldError> errors) {
    Object layers = params.get("layers");
    boolean layersOk = layers instanceof List<?> l && l.size() >= 2 && l.size() <= 10;
    if (layersOk) {
      for (Object v : (List<?>) layers) {
        if (!(v instanceof Integer || v instanceof Long) || ((Number) v).longValue() < 1 || ((Number) v).longValue() > 4096) {
          layersOk = false;
        }
      }
    }
    if (!layersOk) {
      errors.add(new FieldError("params.layers", "invalid", "params.layers must list 2..10 layer sizes of 1..4096, e.g. [2,64,64,3]"));
    }
    Object dataset = params.getOrDefault("dataset", "spirals");
    if (!Set.of("spirals", "blobs", "inline").contains(dataset)) {
      errors.add(new FieldError("params.dataset", "invalid", "params.dataset must be spirals, blobs or inline"));
    } else if ("inline".equals(dataset) && !(params.get("data") instanceof Map)) {
      errors.add(new FieldError("params.data", "invalid", "dataset inline needs params.data {x: [[..]], y: [..]}"));
    }
    Object act = params.getOrDefault("activation", "relu");
    if (!Set.of("relu", "tanh").contains(act)) {
      errors.add(new FieldError("params.activation", "invalid", "params.activation must be relu or tanh"));
    }
    Object opt = params.getOrDefault("optimizer", "adam");
    if (!Set.of("sgd", "adam").contains(opt)) {
      errors.add(new FieldError("params.optimizer", "invalid", "params.optimizer must be sgd or adam"));
    }
    Object lr = params.get("learningRate");
    if (lr != null && (!(lr instanceof Number n) || !(n.doubleValue() > 0) || n.doubleValue() > 10)) {
      errors.add(new FieldError("params.learningRate", "out-of-range", "params.learningRate must be > 0 and <= 10"));
    }
    integer(params, "epochs", 100, 1, 100_000, errors, "params.");
    integer(params, "batchSize", 32, 1, 65_536, errors, "params.");
    integer(params, "samples", 100, 1, 100_000, errors, "params.");
    integer(params, "seed", 1, Long.MIN_VALUE, Long.MAX_VALUE, errors, "params.");
  }

  private static long integer(Map<String, Object> m, String key, long dflt, long min, long max, List<FieldError> errors) {
    return integer(m, key, dflt, min, max, errors, "");
  }

  private static long integer(Map<String, Object> m, String key, long dflt, long min, long max, List<FieldError> errors,
      String prefix) {
    Object v = m.get(key);
    if (v == null) return dflt;
    if (!(v instanceof Integer || v instanceof Long || v instanceof Short || v instanceof Byte)) {
      if (v instanceof Number n && n.doubleValue() == Math.rint(n.doubleValue()) && !(v instanceof Float)) {
        v = n.longValue();
      } else {
        errors.add(new FieldError(prefix + key, "invalid", prefix + key + " must be an integer"));
        return dflt;
      }
    }
    long x = ((Number) v).longValue();
    if (x < min || x > max) {
      errors.add(new FieldError(prefix + key, "out-of-range", prefix + key + " must be between " + min + " and " + max));
      return dflt;
    }
    return x;
  }

  /** The spec as plain JSON-friendly values, in a stable order. */
  public Map<String, Object> toMap() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("kind", kind);
    m.put("gpus", gpus);
    if (gpuClass != null) m.put("gpuClass", gpuClass);
    if (memoryMiB > 0) m.put("memoryMiB", memoryMiB);
    m.put("priority", priority);
    m.put("maxSeconds", maxSeconds);
    if (deadlineSeconds > 0) m.put("deadlineSeconds", deadlineSeconds);
    m.put("params", params);
    if (!nodeLabels.isEmpty()) m.put("nodeLabels", nodeLabels);
    return m;
  }
}
