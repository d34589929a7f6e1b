package io.anneal.gpu;

import java.util.function.IntFunction;

/** Plain-Java kernels with the same math as the CUDA ones (FP32 accumulate, row-major). */
public final class CpuMath {
  private CpuMath() {}

  /**
   * C[m×n] = A[m×k] · B[k×n], row-major, FP32, accumulation in k order. Calls {@code check} before
   * each row of C; a non-null answer stops the product and is returned (else null).
   */
  public static String sgemm(int m, int n, int k, float[] a, float[] b, float[] c, IntFunction<String> check) {
    for (int i = 0; i < m; i++) {
      String abort = check.apply(i);
      if (abort != null) return abort;
      int ci = i * n;
      java.util.Arrays.fill(c, ci, ci + n, 0f);
      for (int p = 0; p < k; p++) {
        float aip = a[i * k + p];
        int bp = p * n;
        for (int j = 0; j < n; j++) {
          c[ci + j] += aip * b[bp + j];
        }
      }
    }
    return null;
  }
}
