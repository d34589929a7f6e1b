package io.anneal.gpu;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Runs every kernel of {@link Kernels} once on seeded inputs and returns each output by name, so two
 * implementations (CPU and GPU) can be compared output by output. Shapes are ragged on purpose
 * (not multiples of the tile sizes) and include the fast 128×128 SGEMM path and every
 * transposition of the strided one.
 */
final class KernelBattery {
  private KernelBattery() {}

  static <B> Map<String, float[]> run(Kernels<B> k, long seed) throws WorkloadException {
    SeededData d = new SeededData(seed);
    Map<String, float[]> out = new LinkedHashMap<>();
    for (int[] s : new int[][] {{256, 256, 256}, {300, 129, 77}, {1, 513, 9}, {257, 1, 31}, {64, 68, 4}}) {
      int m = s[0];
      int n = s[1];
      int kk = s[2];
      B a = upload(k, d.matrix(m, kk));
      B b = upload(k, d.matrix(kk, n));
      B c = k.floats((long) m * n);
      k.sgemm(m, n, kk, a, kk, 1, b, n, 1, c);
      out.put("sgemm " + m + "x" + n + "x" + kk, download(k, c, m * n));
      for (int t = 1; t < 4; t++) {
        boolean ta = (t & 1) != 0;
        boolean tb = (t & 2) != 0;
        k.sgemm(m, n, kk, a, ta ? 1 : kk, ta ? m : 1, b, tb ? 1 : n, tb ? kk : 1, c);
        out.put("sgemm " + m + "x" + n + "x" + kk + " transA=" + ta + " transB=" + tb, download(k, c, m * n));
      }
    }
    int rows = 37;
    int cols = 11;
    for (int act = 0; act <= 2; act++) {
      B z = upload(k, d.matrix(rows, cols));
      B bias = upload(k, d.matrix(1, cols));
      k.biasActFwd(rows, cols, z, bias, act);
      out.put("bias_act_fwd " + act, download(k, z, rows * cols));
      B dz = upload(k, d.matrix(rows, cols));
      k.actBwd((long) rows * cols, dz, z, act);
      out.put("act_bwd " + act, download(k, dz, rows * cols));
    }
    int classes = 5;
    float[] logitValues = d.matrix(rows, classes);
    for (int i = 0; i < logitValues.length; i++) logitValues[i] *= 4;
    B logits = upload(k, logitValues);
    int[] y = new int[rows];
    for (int r = 0; r < rows; r++) y[r] = (r * 7) % classes;
    B labels = k.ints(rows);
    k.uploadInts(labels, y, rows);
    B dlogits = k.floats((long) rows * classes);
    B loss = k.floats(rows);
    k.softmaxXent(rows, classes, logits, labels, dlogits, loss);
    out.put("softmax_xent dlogits", download(k, dlogits, rows * classes));
    out.put("softmax_xent loss", download(k, loss, rows));
    k.softmaxRows(rows, classes, logits);
    out.put("softmax_rows", download(k, logits, rows * classes));
    B dz = upload(k, d.matrix(rows, cols));
    B db = k.floats(cols);
    k.columnSums(rows, cols, dz, db);
    out.put("column_sums", download(k, db, cols));
    int n = 100_003;
    B x = upload(k, d.matrix(1, n));
    B sum = k.floats(1);
    k.zero(sum, 1);
    k.reduceSum(n, x, sum);
    out.put("reduce_sum", download(k, sum, 1));
    B p = upload(k, d.matrix(1, n));
    B g = upload(k, d.matrix(1, n));
    k.sgdUpdate(n, p, g, 0.1f);
    out.put("sgd_update", download(k, p, n));
    B m = k.floats(n);
    B v = k.floats(n);
    for (int t = 1; t <= 3; t++) {
      k.adamUpdate(n, p, g, m, v, 0.01f, 0.9f, 0.999f, 1e-8f, (float) (1 - Math.pow(0.9f, t)),
          (float) (1 - Math.pow(0.999f, t)));
    }
    out.put("adam_update p", download(k, p, n));
    out.put("adam_update m", download(k, m, n));
    out.put("adam_update v", download(k, v, n));
    return out;
  }

  private static <B> B upload(Kernels<B> k, float[] values) throws WorkloadException {
    B b = k.floats(values.length);
    k.upload(b, values, values.length);
    return b;
  }

  private static <B> float[] download(Kernels<B> k, B b, int n) throws WorkloadException {
    float[] out = new float[n];
    k.download(b, out, n);
    return out;
  }
}
