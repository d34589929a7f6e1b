package io.anneal.gpu;

import java.util.IdentityHashMap;
import java.util.Map;

/**
 * {@link Kernels} in plain Java: each method is the CUDA kernel of the same name written as a loop
 * over its threads, in FP32 with the same operation order (SGEMM accumulates with fused
 * multiply-adds in k order, as each CUDA thread does), so GPU results can be compared with it
 * element by element. Device time is the calling thread's CPU time.
 */
public final class CpuKernels implements Kernels<CpuKernels.Buf> {
  /** A host buffer standing in for device memory. */
  public static final class Buf {
    final float[] f;
    final int[] i;

    private Buf(float[] f, int[] i) {
      this.f = f;
      this.i = i;
    }

    long bytes() {
      return 4L * (f != null ? f.length : i.length);
    }
  }

  private final Map<Buf, Boolean> live = new IdentityHashMap<>();
  private final long cpuStart = CpuBackend.threadCpu();
  private long held;
  private long peak;

  private static int size(long n) throws WorkloadException {
    if (n < 0 || n > Integer.MAX_VALUE - 8) {
      throw new WorkloadException(WorkloadException.Reason.OUT_OF_MEMORY, "buffer of " + n + " elements is too large", 0);
    }
    return (int) n;
  }

  private Buf track(Buf b) {
    live.put(b, Boolean.TRUE);
    held += b.bytes();
    peak = Math.max(peak, held);
    return b;
  }

  @Override
  public Buf floats(long n) throws WorkloadException {
    return track(new Buf(new float[size(n)], null));
  }

  @Override
  public Buf ints(long n) throws WorkloadException {
    return track(new Buf(null, new int[size(n)]));
  }

  @Override
  public void free(Buf buffer) {
    if (live.remove(buffer) != null) held -= buffer.bytes();
  }

  @Override
  public void upload(Buf dst, float[] src, int n) {
    System.arraycopy(src, 0, dst.f, 0, n);
  }

  @Override
  public void uploadInts(Buf dst, int[] src, int n) {
    System.arraycopy(src, 0, dst.i, 0, n);
  }

  @Override
  public void download(Buf src, float[] dst, int n) {
    System.arraycopy(src.f, 0, dst, 0, n);
  }

  @Override
  public void zero(Buf buffer, long n) {
    java.util.Arrays.fill(buffer.f, 0, (int) n, 0f);
  }

  @Override
  public void sgemm(int m, int n, int k, Buf a, int sai, int sak, Buf b, int sbk, int sbj, Buf c) {
    float[] af = a.f;
    float[] bf = b.f;
    float[] cf = c.f;
    for (int i = 0; i < m; i++) {
      for (int j = 0; j < n; j++) {
        float acc = 0f;
        long ai = (long) i * sai;
        long bj = (long) j * sbj;
        for (int p = 0; p < k; p++) acc = Math.fma(af[(int) (ai + (long) p * sak)], bf[(int) ((long) p * sbk + bj)], acc);
        cf[i * n + j] = acc;
      }
    }
  }

  @Override
  public void biasActFwd(int rows, int cols, Buf z, Buf bias, int act) {
    float[] zf = z.f;
    float[] bf = bias.f;
    long n = (long) rows * cols;
    for (int i = 0; i < n; i++) {
      float v = zf[i] + bf[i % cols];
      if (act == ACT_RELU) v = Math.max(v, 0f);
      else if (act == ACT_TANH) v = (float) Math.tanh(v);
      zf[i] = v;
    }
  }

  @Override
  public void actBwd(long n, Buf dz, Buf a, int act) {
    float[] d = dz.f;
    float[] af = a.f;
    for (int i = 0; i < n; i++) {
      float x = af[i];
      float g = act == ACT_RELU ? (x > 0f ? 1f : 0f) : (act == ACT_TANH ? 1f - x * x : 1f);
      d[i] *= g;
    }
  }

  @Override
  public void softmaxXent(int rows, int k, Buf logits, Buf labels, Buf dlogits, Buf loss) {
    float[] z = logits.f;
    float[] d = dlogits.f;
    for (int r = 0; r < rows; r++) {
      int o = r * k;
      float m = Float.NEGATIVE_INFINITY;
      for (int j = 0; j < k; j++) m = Math.max(m, z[o + j]);
      float s = 0f;
      for (int j = 0; j < k; j++) {
        float e = (float) Math.exp(z[o + j] - m);
        d[o + j] = e;
        s += e;
      }
      int label = labels.i[r];
      float inv = 1f / s;
      for (int j = 0; j < k; j++) {
        float p = d[o + j] * inv;
        if (j == label) loss.f[r] = (float) -Math.log(Math.max(p, 1e-12f));
        d[o + j] = (p - (j == label ? 1f : 0f)) / rows;
      }
    }
  }

  @Override
  public void softmaxRows(int rows, int k, Buf z) {
    float[] f = z.f;
    for (int r = 0; r < rows; r++) {
      int o = r * k;
      float m = Float.NEGATIVE_INFINITY;
      for (int j = 0; j < k; j++) m = Math.max(m, f[o + j]);
      float s = 0f;
      for (int j = 0; j < k; j++) {
        f[o + j] = (float) Math.exp(f[o + j] - m);
        s += f[o + j];
      }
      for (int j = 0; j < k; j++) f[o + j] /= s;
    }
  }

  @Override
  public void columnSums(int rows, int cols, Buf dz, Buf db) {
    for (int j = 0; j < cols; j++) {
      float s = 0f;
      for (int r = 0; r < rows; r++) s += dz.f[r * cols + j];
      db.f[j] = s;
    }
  }

  @Override
  public void reduceSum(long n, Buf x, Buf out) {
    float s = 0f;
    for (int i = 0; i < n; i++) s += x.f[i];
    out.f[0] += s;
  }

  @Override
  public void sgdUpdate(long n, Buf p, Buf g, float lr) {
    for (int i = 0; i < n; i++) p.f[i] -= lr * g.f[i];
  }

  @Override
  public void adamUpdate(long n, Buf p, Buf g, Buf m, Buf v, float lr, float b1, float b2, float eps, float c1, float c2) {
    float[] pf = p.f;
    float[] gf = g.f;
    float[] mf = m.f;
    float[] vf = v.f;
    for (int i = 0; i < n; i++) {
      float gi = gf[i];
      float mi = b1 * mf[i] + (1f - b1) * gi;
      float vi = b2 * vf[i] + (1f - b2) * gi * gi;
      mf[i] = mi;
      vf[i] = vi;
      pf[i] -= lr * (mi / c1) / ((float) Math.sqrt(vi / c2) + eps);
    }
  }

  @Override
  public long deviceNanos() {
    return CpuBackend.threadCpu() - cpuStart;
  }

  @Override
  public long peakBytes() {
    return peak;
  }

  @Override
  public void close() {
    live.clear();
    held = 0;
  }
}
