package io.anneal.gpu;

/** Deterministic pseudo-random inputs, the same on every backend (SplitMix64). */
public final class SeededData {
  private long state;

  public SeededData(long seed) {
    this.state = seed;
  }

  public long nextLong() {
    long z = (state += 0x9E3779B97F4A7C15L);
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }

  /** Uniform in [-1, 1), exactly representable (24 random bits). */
  public float nextSignedUnit() {
    return ((nextLong() >>> 40) / (float) (1 << 23)) - 1.0f;
  }

  public float[] matrix(int rows, int cols) {
    float[] m = new float[rows * cols];
    for (int i = 0; i < m.length; i++) {
      m[i] = nextSignedUnit();
    }
    return m;
  }
}
