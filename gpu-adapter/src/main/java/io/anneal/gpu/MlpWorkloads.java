package io.anneal.gpu;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@code train} and {@code infer} workloads: parameters, data, the epoch loop, progress and the
 * model artifact, the same on every backend. Where the math runs is an {@link Engine}: the CPU
 * network ({@link #CPU}) or a {@link KernelMlp} on a backend's {@link Kernels} ({@link #onKernels}).
 */
final class MlpWorkloads {
  /** Upper bound of progress events per job: loss is streamed every ceil(steps / this) steps. */
  static final int MAX_PROGRESS_EVENTS = 200;
  /** Rows per forward pass when predicting. */
  static final int INFER_BATCH = 4096;

  /** A network being trained or run on some device. */
  interface Trainer extends AutoCloseable {
    /** One optimizer step on the first {@code rows} examples of x and y; the batch's mean loss. */
    float step(float[] x, int[] y, int rows) throws WorkloadException;

    /** Softmax probabilities, rows × classes. */
    float[] predict(float[] x, int rows) throws WorkloadException;

    /** The current parameters as a CPU network (for the artifact). */
    Mlp model() throws WorkloadException;

    /** Device time used so far (see {@link WorkloadResult#deviceNanos()}). */
    long deviceNanos() throws WorkloadException;

    /** Most memory held at once for this network. */
    long peakBytes();

    @Override
    void close();
  }

  /** Opens a trainer for a network; {@code optimizer} null means predict only. */
  @FunctionalInterface
  interface Engine {
    Trainer open(Mlp init, String optimizer, float learningRate, int maxBatch) throws WorkloadException;

    /**
     * Bytes a job may hold on this engine's device, checked against an estimate before anything is
     * allocated; engines whose allocator refuses by itself (CUDA) need no budget.
     */
    default long memoryBudgetBytes() {
      return Long.MAX_VALUE;
    }
  }

  /** The CPU reference, refusing jobs whose estimate exceeds {@code budgetBytes} (its device's memory). */
  static Engine cpu(long budgetBytes) {
    return new Engine() {
      @Override
      public Trainer open(Mlp init, String optimizer, float learningRate, int maxBatch) throws WorkloadException {
        return CPU.open(init, optimizer, learningRate, maxBatch);
      }

      @Override
      public long memoryBudgetBytes() {
        return budgetBytes;
      }
    };
  }

  /**
   * Most bytes a network of {@code sizes} holds while training on batches of {@code batch} (or, with
   * {@code optimizer} null, predicting): parameters, their gradients and Adam's two moments, and a
   * batch of activations with their gradients.
   */
  static long estimateBytes(int[] sizes, int batch, String optimizer) {
    long params = 0;
    long units = 0;
    for (int l = 0; l < sizes.length; l++) {
      units += sizes[l];
      if (l > 0) params += (long) sizes[l - 1] * sizes[l] + sizes[l];
    }
    int copies = optimizer == null ? 1 : optimizer.equals("adam") ? 4 : 2;
    return Float.BYTES * (params * copies + units * batch * (optimizer == null ? 1L : 2L));
  }

  private static void checkMemory(Engine engine, int[] sizes, int batch, String optimizer) throws WorkloadException {
    long need = estimateBytes(sizes, batch, optimizer);
    if (need > engine.memoryBudgetBytes()) {
      throw new WorkloadException(WorkloadException.Reason.OUT_OF_MEMORY, "the network needs about " + (need >> 20)
          + " MiB (parameters, gradients, optimizer state and a batch of activations) and this device has "
          + (engine.memoryBudgetBytes() >> 20) + " MiB; lower batchSize or the layer sizes", 0);
    }
  }

  /** The reference: {@link Mlp}'s own loops, metered by the thread's CPU time. */
  static final Engine CPU = (init, optimizer, lr, maxBatch) -> {
    long cpuStart = CpuBackend.threadCpu();
    Mlp.Optimizer opt = optimizer == null ? null : new Mlp.Optimizer(init, optimizer, lr);
    return new Trainer() {
      @Override
      public float step(float[] x, int[] y, int rows) {
        return init.step(x, y, rows, opt);
      }

      @Override
      public float[] predict(float[] x, int rows) {
        return init.predict(x, rows);
      }

      @Override
      public Mlp model() {
        return init;
      }

      @Override
      public long deviceNanos() {
        return CpuBackend.threadCpu() - cpuStart;
      }

      @Override
      public long peakBytes() {
        return estimateBytes(init.sizes(), maxBatch, optimizer); // the CPU holds what the estimate counts
      }

      @Override
      public void close() {}
    };
  };

  /** An engine that runs {@link KernelMlp} on fresh kernels per job; closing the trainer closes them. */
  static Engine onKernels(java.util.function.Supplier<Kernels<?>> kernels) {
    return (init, optimizer, lr, maxBatch) -> open(kernels.get(), init, optimizer, lr, maxBatch);
  }

  private static <B> Trainer open(Kernels<B> k, Mlp init, String optimizer, float lr, int maxBatch)
      throws WorkloadException {
    KernelMlp<B> net;
    try {
      net = new KernelMlp<>(k, init, maxBatch, optimizer, lr);
    } catch (WorkloadException | RuntimeException e) {
      k.close();
      throw e;
    }
    return new Trainer() {
      @Override
      public float step(float[] x, int[] y, int rows) throws WorkloadException {
        return net.step(x, y, rows);
      }

      @Override
      public float[] predict(float[] x, int rows) throws WorkloadException {
        return net.predict(x, rows);
      }

      @Override
      public Mlp model() throws WorkloadException {
        return net.toMlp();
      }

      @Override
      public long deviceNanos() throws WorkloadException {
        return k.deviceNanos();
      }

      @Override
      public long peakBytes() {
        return k.peakBytes();
      }

      @Override
      public void close() {
        k.close();
      }
    };
  }

  private MlpWorkloads() {}

  static WorkloadResult train(Workload w, RunControl control, long deadline, ModelStore models, Engine engine)
      throws WorkloadException {
    Map<String, Object> p = w.params();
    int[] layers = intList(p.get("layers"), "layers");
    if (layers.length < 2) throw jobError("layers needs at least an input and an output size, e.g. [2,64,3]");
    String datasetName = str(p, "dataset", "spirals");
    long seed = num(p, "seed", 1).longValue();
    Datasets.Data data = switch (datasetName) {
      case "spirals" -> Datasets.spirals(num(p, "samples", 100).intValue(), layers[layers.length - 1], seed);
      case "blobs" -> Datasets.blobs(num(p, "samples", 100).intValue(), layers[layers.length - 1], seed);
      case "inline" -> inline(p.get("data"), layers);
      default -> throw jobError("dataset must be spirals, blobs or inline");
    };
    if (data.features() != layers[0]) {
      throw jobError("the first layer has " + layers[0] + " inputs but the data has " + data.features() + " features");
    }
    Mlp.Activation act = switch (str(p, "activation", "relu")) {
      case "relu" -> Mlp.Activation.RELU;
      case "tanh" -> Mlp.Activation.TANH;
      default -> throw jobError("activation must be relu or tanh");
    };
    String optName = str(p, "optimizer", "adam");
    float lr = num(p, "learningRate", optName.equals("adam") ? 0.01 : 0.1).floatValue();
    int epochs = num(p, "epochs", 100).intValue();
    int batch = Math.min(num(p, "batchSize", 32).intValue(), data.rows());
    if (epochs < 1 || batch < 1 || !(lr > 0)) throw jobError("epochs, batchSize and learningRate must be > 0");

    long wallStart = System.nanoTime();
    if (!optName.equals("adam") && !optName.equals("sgd")) throw jobError("optimizer must be sgd or adam");
    checkMemory(engine, layers, batch, optName); // before the weights are allocated
    Mlp init = new Mlp(layers, act, seed);
    try (Trainer net = engine.open(init, optName, lr, batch)) {
      int rows = data.rows();
      int f = data.features();
      int[] order = new int[rows];
      for (int i = 0; i < rows; i++) order[i] = i;
      SeededData shuffle = new SeededData(seed ^ 0x5DEECE66DL);
      int stepsPerEpoch = (rows + batch - 1) / batch;
      long totalSteps = (long) stepsPerEpoch * epochs;
      long every = Math.max(1, (totalSteps + MAX_PROGRESS_EVENTS - 1) / MAX_PROGRESS_EVENTS);
      float[] bx = new float[batch * f];
      int[] by = new int[batch];
      double epochLoss = 0;
      long step = 0;
      for (int e = 0; e < epochs; e++) {
        for (int i = rows - 1; i > 0; i--) {
          int j = (int) Long.remainderUnsigned(shuffle.nextLong(), i + 1);
          int t = order[i];
          order[i] = order[j];
          order[j] = t;
        }
        epochLoss = 0;
        for (int s = 0; s < rows; s += batch) {
          if (control.cancelled()) throw new WorkloadException(WorkloadException.Reason.CANCELLED, "cancelled", used(net));
          if (System.nanoTime() - deadline > 0) {
            throw new WorkloadException(WorkloadException.Reason.TIMEOUT, "exceeded maxSeconds", used(net));
          }
          int n = Math.min(batch, rows - s);
          for (int r = 0; r < n; r++) {
            System.arraycopy(data.x(), order[s + r] * f, bx, r * f, f);
            by[r] = data.y()[order[s + r]];
          }
          float loss = net.step(bx, by, n);
          if (!Float.isFinite(loss)) {
            throw new WorkloadException(WorkloadException.Reason.JOB_ERROR,
                "training diverged (loss " + loss + "); lower learningRate", used(net));
          }
          epochLoss += loss * n;
          step++;
          if (step % every == 0 || step == totalSteps) {
            Map<String, Object> ev = new LinkedHashMap<>();
            ev.put("step", step);
            ev.put("epoch", e + 1);
            ev.put("loss", Math.round(loss * 1e6) / 1e6);
            control.progress(ev);
          }
        }
        epochLoss /= rows;
      }
      double accuracy = accuracy(net.predict(data.x(), rows), data.y(), data.classes());
      byte[] model = net.model().toBytes();
      String modelId = "m_" + w.jobId();
      models.put(w.owner(), modelId, model);
      long device = net.deviceNanos();
      Map<String, Object> summary = new LinkedHashMap<>();
      summary.put("modelId", modelId);
      summary.put("finalLoss", Math.round(epochLoss * 1e6) / 1e6);
      summary.put("accuracy", Math.round(accuracy * 1e4) / 1e4);
      summary.put("steps", step);
      summary.put("parameters", init.parameterCount());
      return new WorkloadResult(device, System.nanoTime() - wallStart, net.peakBytes(), Digests.sha256(model), summary);
    }
  }

  private static double accuracy(float[] probs, int[] y, int classes) {
    int[] pred = Mlp.argmax(probs, y.length, classes);
    int ok = 0;
    for (int i = 0; i < y.length; i++) ok += pred[i] == y[i] ? 1 : 0;
    return ok / (double) y.length;
  }

  /** Device time so far for a job that stops early; 0 if the device cannot say. */
  private static long used(Trainer net) {
    try {
      return net.deviceNanos();
    } catch (WorkloadException e) {
      return 0;
    }
  }

  static WorkloadResult infer(Workload w, RunControl control, ModelStore models, Engine engine) throws WorkloadException {
    long wallStart = System.nanoTime();
    String modelId = str(w.params(), "modelId", null);
    if (modelId == null) throw jobError("infer needs params.modelId");
    byte[] bytes = models.get(w.owner(), modelId).orElseThrow(() -> jobError("no model " + modelId + " for this tenant"));
    Mlp net = Mlp.fromBytes(bytes);
    checkMemory(engine, net.sizes(), Math.min(Math.max(1, w.params().get("inputs") instanceof List<?> l ? l.size() : 1),
        INFER_BATCH), null);
    Object in = w.params().get("inputs");
    if (!(in instanceof List<?> rowsList) || rowsList.isEmpty()) throw jobError("inputs must be a non-empty list of rows");
    int f = net.inputs();
    float[] x = new float[rowsList.size() * f];
    for (int r = 0; r < rowsList.size(); r++) {
      if (!(rowsList.get(r) instanceof List<?> row) || row.size() != f) {
        throw jobError("input row " + r + " must have " + f + " numbers");
      }
      for (int c = 0; c < f; c++) {
        if (!(row.get(c) instanceof Number num)) throw jobError("input row " + r + " has a non-number");
        x[r * f + c] = num.floatValue();
      }
    }
    int rows = rowsList.size();
    float[] probs;
    long device;
    long peak;
    try (Trainer onDevice = engine.open(net, null, 0f, Math.min(rows, INFER_BATCH))) {
      probs = onDevice.predict(x, rows);
      device = onDevice.deviceNanos();
      peak = onDevice.peakBytes();
    }
    int[] classes = Mlp.argmax(probs, rows, net.classes());
    List<List<Double>> outputs = new ArrayList<>();
    List<Integer> cls = new ArrayList<>();
    for (int r = 0; r < rows; r++) {
      List<Double> o = new ArrayList<>();
      for (int k = 0; k < net.classes(); k++) o.add(Math.round(probs[r * net.classes() + k] * 1e6) / 1e6);
      outputs.add(o);
      cls.add(classes[r]);
    }
    Map<String, Object> summary = new LinkedHashMap<>();
    summary.put("modelId", modelId);
    summary.put("outputs", outputs);
    summary.put("classes", cls);
    return new WorkloadResult(device, System.nanoTime() - wallStart, peak, Digests.sha256(probs), summary);
  }

  private static Datasets.Data inline(Object data, int[] layers) throws WorkloadException {
    if (!(data instanceof Map<?, ?> m)) throw jobError("dataset inline needs params.data {x: [[..]], y: [..]}");
    if (!(m.get("x") instanceof List<?> xs) || !(m.get("y") instanceof List<?> ys) || xs.size() != ys.size() || xs.isEmpty()) {
      throw jobError("data.x and data.y must be non-empty lists of the same length");
    }
    int f = layers[0];
    int k = layers[layers.length - 1];
    float[] x = new float[xs.size() * f];
    int[] y = new int[ys.size()];
    for (int r = 0; r < xs.size(); r++) {
      if (!(xs.get(r) instanceof List<?> row) || row.size() != f) throw jobError("data.x[" + r + "] must have " + f + " numbers");
      for (int c = 0; c < f; c++) {
        if (!(row.get(c) instanceof Number num)) throw jobError("data.x[" + r + "] has a non-number");
        x[r * f + c] = num.floatValue();
      }
      if (!(ys.get(r) instanceof Number label) || label.intValue() < 0 || label.intValue() >= k
          || label.doubleValue() != label.intValue()) {
        throw jobError("data.y[" + r + "] must be a class index 0.." + (k - 1));
      }
      y[r] = label.intValue();
    }
    return new Datasets.Data(x, y, f, k);
  }

  private static int[] intList(Object v, String name) throws WorkloadException {
    if (!(v instanceof List<?> l)) throw jobError(name + " must be a list of integers");
    int[] out = new int[l.size()];
    for (int i = 0; i < out.length; i++) {
      if (!(l.get(i) instanceof Number n) || n.doubleValue() != n.intValue() || n.intValue() < 1 || n.intValue() > 4096) {
        throw jobError(name + " must hold integers 1..4096");
      }
      out[i] = n.intValue();
    }
    return out;
  }

  private static String str(Map<String, Object> p, String key, String dflt) throws WorkloadException {
    Object v = p.get(key);
    if (v == null) return dflt;
    if (!(v instanceof String s)) throw jobError(key + " must be a string");
    return s;
  }

  private static Number num(Map<String, Object> p, String key, Number dflt) throws WorkloadException {
    Object v = p.get(key);
    if (v == null) return dflt;
    if (!(v instanceof Number n)) throw jobError(key + " must be a number");
    return n;
  }

  private static WorkloadException jobError(String message) {
    return new WorkloadException(WorkloadException.Reason.JOB_ERROR, message, 0);
  }
}
