package io.anneal.gpu;

import java.util.ArrayList;
import java.util.List;

/**
 * An {@link Mlp} held on a device and trained only through {@link Kernels}: forward (SGEMM, bias +
 * activation), softmax cross-entropy forward and backward, the backward SGEMMs with transposition by
 * strides, bias gradients by column sums, loss by reduction, and SGD or Adam updates. Everything
 * stays on the device between steps; a step copies in one mini-batch and copies out one float (the
 * loss). The math is {@link Mlp#step}'s, so the CPU network is the oracle for this one. The
 * caller owns the kernels and closes them, which frees the network's buffers.
 *
 * @param <B> the buffer handle of the kernels
 */
final class KernelMlp<B> {
  private static final float B1 = 0.9f;
  private static final float B2 = 0.999f;
  private static final float EPS = 1e-8f;

  private final Kernels<B> k;
  private final int[] sizes;
  private final Mlp.Activation activation;
  private final int act;
  private final int layers;
  private final int maxBatch;
  private final boolean adam;
  private final float lr;
  private final List<B> w = new ArrayList<>();
  private final List<B> b = new ArrayList<>();
  private final List<B> gw = new ArrayList<>();
  private final List<B> gb = new ArrayList<>();
  private final List<B> mw = new ArrayList<>();
  private final List<B> vw = new ArrayList<>();
  private final List<B> mb = new ArrayList<>();
  private final List<B> vb = new ArrayList<>();
  /** a[0] is the input batch, a[l] layer l's output; a[layers] holds the logits. */
  private final List<B> a = new ArrayList<>();
  /** d[l] is the gradient of the loss with respect to a[l] (d[0] unused). */
  private final List<B> d = new ArrayList<>();
  private final B labels;
  private final B lossRows;
  private final B lossSum;
  private final float[] one = new float[1];
  private int t;

  /**
   * Uploads {@code net}'s parameters. {@code optimizer} is {@code sgd}, {@code adam}, or null for a
   * network that only predicts (no gradient or optimizer buffers).
   */
  KernelMlp(Kernels<B> kernels, Mlp net, int maxBatch, String optimizer, float learningRate) throws WorkloadException {
    this.k = kernels;
    this.sizes = net.sizes();
    this.activation = net.activation();
    this.act = activation == Mlp.Activation.RELU ? Kernels.ACT_RELU : Kernels.ACT_TANH;
    this.layers = sizes.length - 1;
    this.maxBatch = maxBatch;
    boolean trains = optimizer != null;
    this.adam = "adam".equals(optimizer);
    if (trains && !adam && !"sgd".equals(optimizer)) throw new IllegalArgumentException("optimizer must be sgd or adam");
    this.lr = learningRate;
    for (int l = 0; l < layers; l++) {
      int n = sizes[l] * sizes[l + 1];
      w.add(k.floats(n));
      k.upload(w.get(l), net.weights(l), n);
      b.add(k.floats(sizes[l + 1]));
      k.upload(b.get(l), net.biases(l), sizes[l + 1]);
      if (trains) {
        gw.add(k.floats(n));
        gb.add(k.floats(sizes[l + 1]));
      }
      if (adam) {
        mw.add(k.floats(n));
        vw.add(k.floats(n));
        mb.add(k.floats(sizes[l + 1]));
        vb.add(k.floats(sizes[l + 1]));
      }
    }
    for (int l = 0; l <= layers; l++) {
      a.add(k.floats((long) maxBatch * sizes[l]));
      d.add(trains && l > 0 ? k.floats((long) maxBatch * sizes[l]) : null);
    }
    labels = trains ? k.ints(maxBatch) : null;
    lossRows = trains ? k.floats(maxBatch) : null;
    lossSum = trains ? k.floats(1) : null;
  }

  private void forward(int rows) throws WorkloadException {
    for (int l = 0; l < layers; l++) {
      int in = sizes[l];
      int out = sizes[l + 1];
      k.sgemm(rows, out, in, a.get(l), in, 1, w.get(l), out, 1, a.get(l + 1));
      k.biasActFwd(rows, out, a.get(l + 1), b.get(l), l < layers - 1 ? act : Kernels.ACT_NONE);
    }
  }

  /** One optimizer step on {@code rows} ≤ maxBatch examples; returns the batch's mean loss. */
  float step(float[] x, int[] y, int rows) throws WorkloadException {
    if (labels == null) throw new IllegalStateException("this network was loaded for prediction only");
    if (rows < 1 || rows > maxBatch) throw new IllegalArgumentException("rows must be 1.." + maxBatch);
    int classes = sizes[layers];
    k.upload(a.get(0), x, rows * sizes[0]);
    k.uploadInts(labels, y, rows);
    forward(rows);
    k.softmaxXent(rows, classes, a.get(layers), labels, d.get(layers), lossRows);
    k.zero(lossSum, 1);
    k.reduceSum(rows, lossRows, lossSum);
    t++;
    float c1 = (float) (1 - Math.pow(B1, t));
    float c2 = (float) (1 - Math.pow(B2, t));
    for (int l = layers - 1; l >= 0; l--) {
      int in = sizes[l];
      int out = sizes[l + 1];
      // dW = a[l]^T · d[l+1]  (in × out, summed over the batch)
      k.sgemm(in, out, rows, a.get(l), 1, in, d.get(l + 1), out, 1, gw.get(l));
      k.columnSums(rows, out, d.get(l + 1), gb.get(l));
      if (l > 0) {
        // d[l] = d[l+1] · W^T, then through the activation's derivative; before W changes
        k.sgemm(rows, in, out, d.get(l + 1), out, 1, w.get(l), 1, out, d.get(l));
        k.actBwd((long) rows * in, d.get(l), a.get(l), act);
      }
      if (adam) {
        k.adamUpdate((long) in * out, w.get(l), gw.get(l), mw.get(l), vw.get(l), lr, B1, B2, EPS, c1, c2);
        k.adamUpdate(out, b.get(l), gb.get(l), mb.get(l), vb.get(l), lr, B1, B2, EPS, c1, c2);
      } else {
        k.sgdUpdate((long) in * out, w.get(l), gw.get(l), lr);
        k.sgdUpdate(out, b.get(l), gb.get(l), lr);
      }
    }
    k.download(lossSum, one, 1);
    return one[0] / rows;
  }

  /** Softmax probabilities for {@code rows} inputs, rows × classes, computed maxBatch rows at a time. */
  float[] predict(float[] x, int rows) throws WorkloadException {
    int in = sizes[0];
    int classes = sizes[layers];
    float[] out = new float[rows * classes];
    float[] chunkX = new float[maxBatch * in];
    float[] chunkP = new float[maxBatch * classes];
    for (int s = 0; s < rows; s += maxBatch) {
      int n = Math.min(maxBatch, rows - s);
      System.arraycopy(x, s * in, chunkX, 0, n * in);
      k.upload(a.get(0), chunkX, n * in);
      forward(n);
      k.softmaxRows(n, classes, a.get(layers));
      k.download(a.get(layers), chunkP, n * classes);
      System.arraycopy(chunkP, 0, out, s * classes, n * classes);
    }
    return out;
  }

  /** The current parameters, downloaded into a CPU network (for the model artifact). */
  Mlp toMlp() throws WorkloadException {
    float[][] ws = new float[layers][];
    float[][] bs = new float[layers][];
    for (int l = 0; l < layers; l++) {
      ws[l] = new float[sizes[l] * sizes[l + 1]];
      k.download(w.get(l), ws[l], ws[l].length);
      bs[l] = new float[sizes[l + 1]];
      k.download(b.get(l), bs[l], bs[l].length);
    }
    return Mlp.of(sizes, activation, ws, bs);
  }
}
