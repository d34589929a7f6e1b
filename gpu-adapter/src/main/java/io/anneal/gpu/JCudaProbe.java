package io.anneal.gpu;

import java.util.Optional;

/**
 * Finds out, once, whether the CUDA driver can be loaded and how many devices it sees. JCuda
 * throws {@link UnsatisfiedLinkError} on the first touch when {@code libcuda.so.1} is missing and
 * {@link NoClassDefFoundError} afterwards, so both are caught as {@link LinkageError}.
 */
public final class JCudaProbe {
  /** Result of probing: a device count, or why there is none. */
  public record Result(int deviceCount, Optional<String> problem) {
    public boolean usable() {
      return problem.isEmpty() && deviceCount > 0;
    }
  }

  private static volatile Result cached;

  private JCudaProbe() {}

  public static synchronized Result probe() {
    if (cached == null) cached = doProbe();
    return cached;
  }

  private static Result doProbe() {
    try {
      jcuda.driver.JCudaDriver.setExceptionsEnabled(false);
      int rc = jcuda.driver.JCudaDriver.cuInit(0);
      if (rc != jcuda.driver.CUresult.CUDA_SUCCESS) {
        return new Result(0, Optional.of("cuInit failed: " + jcuda.driver.CUresult.stringFor(rc)));
      }
      int[] count = new int[1];
      rc = jcuda.driver.JCudaDriver.cuDeviceGetCount(count);
      if (rc != jcuda.driver.CUresult.CUDA_SUCCESS) {
        return new Result(0, Optional.of("cuDeviceGetCount failed: " + jcuda.driver.CUresult.stringFor(rc)));
      }
      if (count[0] == 0) return new Result(0, Optional.of("the CUDA driver reports no device"));
      return new Result(count[0], Optional.empty());
    } catch (LinkageError e) {
      Throwable root = e;
      while (root.getCause() != null) root = root.getCause();
      String msg = String.valueOf(root.getMessage());
      int nl = msg.indexOf('\n');
      if (msg.contains("libcuda.so")) {
        msg = "libcuda.so.1 (the NVIDIA driver) is not installed";
      } else if (nl > 0) {
        msg = msg.substring(0, nl);
      }
      return new Result(0, Optional.of("CUDA driver not loadable: " + msg + " [" + e.getClass().getSimpleName() + "]"));
    }
  }
}
