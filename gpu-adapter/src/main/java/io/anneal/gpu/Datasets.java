package io.anneal.gpu;

/** Seeded synthetic classification sets, and inline data checks. */
public final class Datasets {
  /** Inputs (rows × features, row-major) and labels. */
  public record Data(float[] x, int[] y, int features, int classes) {
    public int rows() {
      return y.length;
    }
  }

  private Datasets() {}

  /** The classic interleaved spirals: {@code classes} arms of {@code perClass} 2-D points. */
  public static Data spirals(int perClass, int classes, long seed) {
    SeededData rnd = new SeededData(seed);
    int n = perClass * classes;
    float[] x = new float[n * 2];
    int[] y = new int[n];
    for (int k = 0; k < classes; k++) {
      for (int i = 0; i < perClass; i++) {
        int row = k * perClass + i;
        double r = i / (double) perClass;
        double t = k * 4.0 + 4.0 * r + gaussian(rnd) * 0.2;
        x[row * 2] = (float) (r * Math.sin(t));
        x[row * 2 + 1] = (float) (r * Math.cos(t));
        y[row] = k;
      }
    }
    return new Data(x, y, 2, classes);
  }

  /** Gaussian blobs around {@code classes} centres on a circle of radius 2. */
  public static Data blobs(int perClass, int classes, long seed) {
    SeededData rnd = new SeededData(seed);
    int n = perClass * classes;
    float[] x = new float[n * 2];
    int[] y = new int[n];
    for (int k = 0; k < classes; k++) {
      double cx = 2 * Math.cos(2 * Math.PI * k / classes);
      double cy = 2 * Math.sin(2 * Math.PI * k / classes);
      for (int i = 0; i < perClass; i++) {
        int row = k * perClass + i;
        x[row * 2] = (float) (cx + gaussian(rnd) * 0.5);
        x[row * 2 + 1] = (float) (cy + gaussian(rnd) * 0.5);
        y[row] = k;
      }
    }
    return new Data(x, y, 2, classes);
  }

  static double gaussian(SeededData rnd) {
    double u1 = ((rnd.nextLong() >>> 11) + 1) / 9007199254740993.0;
    double u2 = (rnd.nextLong() >>> 11) / 9007199254740992.0;
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
}
