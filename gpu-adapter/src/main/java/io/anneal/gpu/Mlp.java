package io.anneal.gpu;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.Arrays;

/**
 * A multi-layer perceptron classifier in plain Java, FP32, row-major: hidden layers with ReLU or
 * tanh, a softmax cross-entropy head, SGD or Adam. The CPU reference for the GPU kernels (bias +
 * activation, softmax cross-entropy, their backward passes, SGEMM, SGD and Adam updates).
 */
public final class Mlp {
  /** Hidden-layer activation. */
  public enum Activation { RELU, TANH }

  private final int[] sizes;
  private final Activation activation;
  private final float[][] w;
  private final float[][] b;

  /** Weights drawn from a seeded uniform (He for ReLU, Glorot for tanh); biases zero. */
  public Mlp(int[] sizes, Activation activation, long seed) {
    if (sizes.length < 2) throw new IllegalArgumentException("an MLP needs at least an input and an output layer");
    for (int s : sizes) {
      if (s < 1) throw new IllegalArgumentException("layer sizes must be >= 1");
    }
    this.sizes = sizes.clone();
    this.activation = activation;
    this.w = new float[sizes.length - 1][];
    this.b = new float[sizes.length - 1][];
    SeededData rnd = new SeededData(seed);
    for (int l = 0; l < sizes.length - 1; l++) {
      int in = sizes[l];
      int out = sizes[l + 1];
      double limit = activation == Activation.RELU ? Math.sqrt(6.0 / in) : Math.sqrt(6.0 / (in + out));
      w[l] = new float[in * out];
      for (int i = 0; i < w[l].length; i++) w[l][i] = (float) (rnd.nextSignedUnit() * limit);
      b[l] = new float[out];
    }
  }

  private Mlp(int[] sizes, Activation activation, float[][] w, float[][] b) {
    this.sizes = sizes;
    this.activation = activation;
    this.w = w;
    this.b = b;
  }

  public int inputs() {
    return sizes[0];
  }

  public int classes() {
    return sizes[sizes.length - 1];
  }

  public int[] sizes() {
    return sizes.clone();
  }

  Activation activation() {
    return activation;
  }

  /** Layer {@code l}'s weights, in×out row-major (live array: callers copy before changing). */
  float[] weights(int l) {
    return w[l];
  }

  /** Layer {@code l}'s biases (live array). */
  float[] biases(int l) {
    return b[l];
  }

  /** A network from trained parameters (e.g. downloaded from a device). */
  static Mlp of(int[] sizes, Activation activation, float[][] w, float[][] b) {
    return new Mlp(sizes.clone(), activation, w, b);
  }

  public long parameterCount() {
    long n = 0;
    for (int l = 0; l < w.length; l++) n += w[l].length + b[l].length;
    return n;
  }

  // ------------------------------------------------------------------ forward

  /** Activations of every layer for a batch of {@code rows} inputs; the last entry is the logits. */
  float[][] forward(float[] x, int rows) {
    float[][] a = new float[sizes.length][];
    a[0] = x;
    for (int l = 0; l < w.length; l++) {
      int in = sizes[l];
      int out = sizes[l + 1];
      float[] z = new float[rows * out];
      CpuMath.sgemm(rows, out, in, a[l], w[l], z, r -> null);
      boolean hidden = l < w.length - 1;
      for (int r = 0; r < rows; r++) {
        for (int j = 0; j < out; j++) {
          float v = z[r * out + j] + b[l][j];
          if (hidden) v = activation == Activation.RELU ? Math.max(v, 0f) : (float) Math.tanh(v);
          z[r * out + j] = v;
        }
      }
      a[l + 1] = z;
    }
    return a;
  }

  /** Softmax probabilities, rows × classes. */
  public float[] predict(float[] x, int rows) {
    float[] logits = forward(x, rows)[sizes.length - 1];
    softmaxInPlace(logits, rows, classes());
    return logits;
  }

  static void softmaxInPlace(float[] z, int rows, int k) {
    for (int r = 0; r < rows; r++) {
      float max = Float.NEGATIVE_INFINITY;
      for (int j = 0; j < k; j++) max = Math.max(max, z[r * k + j]);
      double sum = 0;
      for (int j = 0; j < k; j++) {
        float e = (float) Math.exp(z[r * k + j] - max);
        z[r * k + j] = e;
        sum += e;
      }
      for (int j = 0; j < k; j++) z[r * k + j] = (float) (z[r * k + j] / sum);
    }
  }

  public static int[] argmax(float[] p, int rows, int k) {
    int[] out = new int[rows];
    for (int r = 0; r < rows; r++) {
      int best = 0;
      for (int j = 1; j < k; j++) {
        if (p[r * k + j] > p[r * k + best]) best = j;
      }
      out[r] = best;
    }
    return out;
  }

  public double accuracy(float[] x, int[] y) {
    int rows = y.length;
    int[] pred = argmax(predict(x, rows), rows, classes());
    int ok = 0;
    for (int i = 0; i < rows; i++) ok += pred[i] == y[i] ? 1 : 0;
    return ok / (double) rows;
  }

  // ------------------------------------------------------------------ training

  /** Optimizer state for every parameter tensor. */
  public static final class Optimizer {
    final boolean adam;
    final float lr;
    final float[][] mw;
    final float[][] vw;
    final float[][] mb;
    final float[][] vb;
    int t;

    public Optimizer(Mlp net, String kind, float learningRate) {
      this.adam = kind.equals("adam");
      if (!adam && !kind.equals("sgd")) throw new IllegalArgumentException("optimizer must be sgd or adam");
      this.lr = learningRate;
      mw = new float[net.w.length][];
      vw = new float[net.w.length][];
      mb = new float[net.w.length][];
      vb = new float[net.w.length][];
      for (int l = 0; l < net.w.length; l++) {
        mw[l] = new float[net.w[l].length];
        vw[l] = new float[net.w[l].length];
        mb[l] = new float[net.b[l].length];
        vb[l] = new float[net.b[l].length];
      }
    }
  }

  /** One step on a mini-batch: forward, softmax cross-entropy, backward, update. Returns the mean loss. */
  public float step(float[] x, int[] y, int rows, Optimizer opt) {
    float[][] a = forward(x, rows);
    int k = classes();
    float[] dz = a[sizes.length - 1].clone();
    softmaxInPlace(dz, rows, k);
    double loss = 0;
    for (int r = 0; r < rows; r++) {
      loss -= Math.log(Math.max(dz[r * k + y[r]], 1e-12f));
      dz[r * k + y[r]] -= 1f;
    }
    for (int i = 0; i < dz.length; i++) dz[i] /= rows;
    opt.t++;
    for (int l = w.length - 1; l >= 0; l--) {
      int in = sizes[l];
      int out = sizes[l + 1];
      float[] gw = new float[in * out];
      float[] gb = new float[out];
      float[] prev = a[l];
      for (int r = 0; r < rows; r++) {
        for (int j = 0; j < out; j++) gb[j] += dz[r * out + j];
        for (int i = 0; i < in; i++) {
          float p = prev[r * in + i];
          if (p == 0f) continue;
          int gi = i * out;
          int zr = r * out;
          for (int j = 0; j < out; j++) gw[gi + j] += p * dz[zr + j];
        }
      }
      float[] dprev = null;
      if (l > 0) {
        dprev = new float[rows * in];
        for (int r = 0; r < rows; r++) {
          for (int i = 0; i < in; i++) {
            float s = 0f;
            int wi = i * out;
            int zr = r * out;
            for (int j = 0; j < out; j++) s += dz[zr + j] * w[l][wi + j];
            float act = prev[r * in + i];
            float d = activation == Activation.RELU ? (act > 0f ? 1f : 0f) : 1f - act * act;
            dprev[r * in + i] = s * d;
          }
        }
      }
      update(w[l], gw, opt, opt.mw[l], opt.vw[l]);
      update(b[l], gb, opt, opt.mb[l], opt.vb[l]);
      dz = dprev;
    }
    return (float) (loss / rows);
  }

  private static void update(float[] p, float[] g, Optimizer o, float[] m, float[] v) {
    if (!o.adam) {
      for (int i = 0; i < p.length; i++) p[i] -= o.lr * g[i];
      return;
    }
    final float b1 = 0.9f;
    final float b2 = 0.999f;
    final float eps = 1e-8f;
    float c1 = (float) (1 - Math.pow(b1, o.t));
    float c2 = (float) (1 - Math.pow(b2, o.t));
    for (int i = 0; i < p.length; i++) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      p[i] -= o.lr * (m[i] / c1) / ((float) Math.sqrt(v[i] / c2) + eps);
    }
  }

  // ------------------------------------------------------------------ artifact

  private static final int MAGIC = 0x414e4d31; // "ANM1"

  public byte[] toBytes() {
    try {
      ByteArrayOutputStream bos = new ByteArrayOutputStream();
      DataOutputStream out = new DataOutputStream(bos);
      out.writeInt(MAGIC);
      out.writeByte(activation.ordinal());
      out.writeInt(sizes.length);
      for (int s : sizes) out.writeInt(s);
      for (int l = 0; l < w.length; l++) {
        for (float f : w[l]) out.writeFloat(f);
        for (float f : b[l]) out.writeFloat(f);
      }
      out.flush();
      return bos.toByteArray();
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  public static Mlp fromBytes(byte[] bytes) {
    try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(bytes))) {
      if (in.readInt() != MAGIC) throw new IllegalArgumentException("not an Anneal model artifact");
      Activation act = Activation.values()[in.readByte()];
      int n = in.readInt();
      if (n < 2 || n > 64) throw new IllegalArgumentException("corrupt model artifact");
      int[] sizes = new int[n];
      for (int i = 0; i < n; i++) sizes[i] = in.readInt();
      float[][] w = new float[n - 1][];
      float[][] b = new float[n - 1][];
      for (int l = 0; l < n - 1; l++) {
        w[l] = new float[sizes[l] * sizes[l + 1]];
        for (int i = 0; i < w[l].length; i++) w[l][i] = in.readFloat();
        b[l] = new float[sizes[l + 1]];
        for (int i = 0; i < b[l].length; i++) b[l][i] = in.readFloat();
      }
      return new Mlp(sizes, act, w, b);
    } catch (IOException e) {
      throw new IllegalArgumentException("corrupt model artifact", e);
    }
  }

  @Override
  public String toString() {
    return "Mlp" + Arrays.toString(sizes) + " " + activation;
  }
}
