package io.anneal.gpu;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventElapsedTime;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuMemsetD32;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.CUresult;

/**
 * {@link Kernels} on one CUDA device through the driver API: each method is one launch of the
 * kernel of the same name (or one copy or memset) on the context's default stream. Every launch and
 * copy is bracketed by a pair of CUDA events; {@link #deviceNanos()} is the sum of their elapsed
 * times, so gaps where the device waited for the host are not metered. Pairs are read back after
 * each synchronous download (when they have completed) and recycled.
 *
 * <p>Not thread-safe: one instance per job, used from the device's worker thread, whose current
 * context it sets.
 */
final class JCudaKernels implements Kernels<CUdeviceptr> {
  /** Kernel names in the PTX, each looked up once per device. */
  static final List<String> NAMES = List.of("sgemm", "sgemm_nn", "bias_act_fwd", "act_bwd", "softmax_xent",
      "softmax_rows", "column_sums", "reduce_sum", "sgd_update", "adam_update");
  private static final int BLOCK = 256;
  private static final int ROW_BLOCK = 128;
  private static final int MAX_GRID = 4096;

  /** The functions of one loaded module, per device. */
  static Map<String, CUfunction> functions(CUmodule module) {
    Map<String, CUfunction> out = new HashMap<>();
    for (String name : NAMES) {
      CUfunction f = new CUfunction();
      int rc = cuModuleGetFunction(f, module, name);
      if (rc != CUresult.CUDA_SUCCESS) {
        throw new Backends.UnavailableException("kernel " + name + " is missing from the PTX: " + CUresult.stringFor(rc));
      }
      out.put(name, f);
    }
    return Map.copyOf(out);
  }

  private final Map<String, CUfunction> fns;
  private final Map<CUdeviceptr, Long> live = new IdentityHashMap<>();
  private final ArrayDeque<CUevent> spare = new ArrayDeque<>();
  private final List<CUevent> pending = new ArrayList<>();
  private final float[] ms = new float[1];
  private long held;
  private long peak;
  private double meteredMs;

  JCudaKernels(CUcontext context, Map<String, CUfunction> functions) throws WorkloadException {
    this.fns = functions;
    check(cuCtxSetCurrent(context), "cuCtxSetCurrent");
  }

  private static void check(int rc, String what) throws WorkloadException {
    if (rc == CUresult.CUDA_SUCCESS) return;
    WorkloadException.Reason reason = rc == CUresult.CUDA_ERROR_OUT_OF_MEMORY
        ? WorkloadException.Reason.OUT_OF_MEMORY : WorkloadException.Reason.DEVICE_FAILURE;
    throw new WorkloadException(reason, what + ": " + CUresult.stringFor(rc), 0);
  }

  private CUevent event() throws WorkloadException {
    CUevent e = spare.poll();
    if (e != null) return e;
    e = new CUevent();
    check(cuEventCreate(e, 0), "cuEventCreate");
    return e;
  }

  /** Records the start event of a metered operation. */
  private void begin() throws WorkloadException {
    CUevent e = event();
    check(cuEventRecord(e, null), "cuEventRecord");
    pending.add(e);
  }

  /** Records the stop event; after many pairs, waits and reads them so the pool stays bounded. */
  private void end(int rc, String what) throws WorkloadException {
    CUevent e = event();
    check(cuEventRecord(e, null), "cuEventRecord");
    pending.add(e);
    check(rc, what);
    if (pending.size() >= 2048) settle(true);
  }

  /** Adds the elapsed time of every completed pair to the total; {@code wait} first waits for the last. */
  private void settle(boolean wait) throws WorkloadException {
    if (pending.isEmpty()) return;
    if (wait) check(cuEventSynchronize(pending.get(pending.size() - 1)), "cuEventSynchronize");
    for (int i = 0; i + 1 < pending.size(); i += 2) {
      check(cuEventElapsedTime(ms, pending.get(i), pending.get(i + 1)), "cuEventElapsedTime");
      meteredMs += ms[0];
    }
    spare.addAll(pending);
    pending.clear();
  }

  private CUdeviceptr alloc(long bytes) throws WorkloadException {
    CUdeviceptr p = new CUdeviceptr();
    check(cuMemAlloc(p, Math.max(bytes, 4)), "cuMemAlloc(" + bytes + " bytes)");
    live.put(p, bytes);
    held += bytes;
    peak = Math.max(peak, held);
    int rc = cuMemsetD32(p, 0, Math.max(bytes / 4, 1));
    if (rc != CUresult.CUDA_SUCCESS) {
      free(p);
      check(rc, "cuMemsetD32");
    }
    return p;
  }

  @Override
  public CUdeviceptr floats(long n) throws WorkloadException {
    return alloc(n * 4);
  }

  @Override
  public CUdeviceptr ints(long n) throws WorkloadException {
    return alloc(n * 4);
  }

  @Override
  public void free(CUdeviceptr buffer) {
    Long bytes = live.remove(buffer);
    if (bytes != null) {
      held -= bytes;
      cuMemFree(buffer);
    }
  }

  @Override
  public void upload(CUdeviceptr dst, float[] src, int n) throws WorkloadException {
    begin();
    end(cuMemcpyHtoD(dst, Pointer.to(src), 4L * n), "cuMemcpyHtoD");
  }

  @Override
  public void uploadInts(CUdeviceptr dst, int[] src, int n) throws WorkloadException {
    begin();
    end(cuMemcpyHtoD(dst, Pointer.to(src), 4L * n), "cuMemcpyHtoD");
  }

  @Override
  public void download(CUdeviceptr src, float[] dst, int n) throws WorkloadException {
    begin();
    end(cuMemcpyDtoH(Pointer.to(dst), src, 4L * n), "cuMemcpyDtoH");
    settle(true); // the copy was synchronous: every pair before it has completed
  }

  @Override
  public void zero(CUdeviceptr buffer, long n) throws WorkloadException {
    begin();
    end(cuMemsetD32(buffer, 0, n), "cuMemsetD32");
  }

  private void launch(String name, int gridX, int gridY, int block, Pointer params) throws WorkloadException {
    begin();
    end(cuLaunchKernel(fns.get(name), gridX, gridY, 1, block, 1, 1, 0, null, params, null), "cuLaunchKernel(" + name + ")");
  }

  private static int grid(long n, int block) {
    return (int) Math.max(1, Math.min((n + block - 1) / block, MAX_GRID));
  }

  private static Pointer i(int v) {
    return Pointer.to(new int[] {v});
  }

  private static Pointer l(long v) {
    return Pointer.to(new long[] {v});
  }

  private static Pointer f(float v) {
    return Pointer.to(new float[] {v});
  }

  private static Pointer p(CUdeviceptr d) {
    return Pointer.to(d);
  }

  @Override
  public void sgemm(int m, int n, int k, CUdeviceptr a, int sai, int sak, CUdeviceptr b, int sbk, int sbj, CUdeviceptr c)
      throws WorkloadException {
    if (sak == 1 && sbj == 1 && sai == k && sbk == n) {
      // plain row-major product: the 128×128 kernel with 8×8 register blocks
      launch("sgemm_nn", (n + 127) / 128, (m + 127) / 128, 256,
          Pointer.to(i(m), i(n), i(k), p(a), p(b), p(c)));
      return;
    }
    launch("sgemm", (n + 63) / 64, (m + 63) / 64, 256,
        Pointer.to(i(m), i(n), i(k), p(a), i(sai), i(sak), p(b), i(sbk), i(sbj), p(c)));
  }

  @Override
  public void biasActFwd(int rows, int cols, CUdeviceptr z, CUdeviceptr bias, int act) throws WorkloadException {
    launch("bias_act_fwd", grid((long) rows * cols, BLOCK), 1, BLOCK, Pointer.to(i(rows), i(cols), p(z), p(bias), i(act)));
  }

  @Override
  public void actBwd(long n, CUdeviceptr dz, CUdeviceptr a, int act) throws WorkloadException {
    launch("act_bwd", grid(n, BLOCK), 1, BLOCK, Pointer.to(l(n), p(dz), p(a), i(act)));
  }

  @Override
  public void softmaxXent(int rows, int k, CUdeviceptr logits, CUdeviceptr labels, CUdeviceptr dlogits, CUdeviceptr loss)
      throws WorkloadException {
    launch("softmax_xent", (rows + ROW_BLOCK - 1) / ROW_BLOCK, 1, ROW_BLOCK,
        Pointer.to(i(rows), i(k), p(logits), p(labels), p(dlogits), p(loss)));
  }

  @Override
  public void softmaxRows(int rows, int k, CUdeviceptr z) throws WorkloadException {
    launch("softmax_rows", (rows + ROW_BLOCK - 1) / ROW_BLOCK, 1, ROW_BLOCK, Pointer.to(i(rows), i(k), p(z)));
  }

  @Override
  public void columnSums(int rows, int cols, CUdeviceptr dz, CUdeviceptr db) throws WorkloadException {
    launch("column_sums", (cols + ROW_BLOCK - 1) / ROW_BLOCK, 1, ROW_BLOCK, Pointer.to(i(rows), i(cols), p(dz), p(db)));
  }

  @Override
  public void reduceSum(long n, CUdeviceptr x, CUdeviceptr out) throws WorkloadException {
    launch("reduce_sum", grid(n, BLOCK), 1, BLOCK, Pointer.to(l(n), p(x), p(out))); // the kernel needs blocks of 256
  }

  @Override
  public void sgdUpdate(long n, CUdeviceptr param, CUdeviceptr g, float lr) throws WorkloadException {
    launch("sgd_update", grid(n, BLOCK), 1, BLOCK, Pointer.to(l(n), p(param), p(g), f(lr)));
  }

  @Override
  public void adamUpdate(long n, CUdeviceptr param, CUdeviceptr g, CUdeviceptr m, CUdeviceptr v, float lr, float b1,
      float b2, float eps, float c1, float c2) throws WorkloadException {
    launch("adam_update", grid(n, BLOCK), 1, BLOCK,
        Pointer.to(l(n), p(param), p(g), p(m), p(v), f(lr), f(b1), f(b2), f(eps), f(c1), f(c2)));
  }

  @Override
  public long deviceNanos() throws WorkloadException {
    settle(true);
    return Math.round(meteredMs * 1e6);
  }

  @Override
  public long peakBytes() {
    return peak;
  }

  @Override
  public void close() {
    for (CUdeviceptr ptr : new ArrayList<>(live.keySet())) free(ptr);
    for (CUevent e : pending) cuEventDestroy(e);
    for (CUevent e : spare) cuEventDestroy(e);
    pending.clear();
    spare.clear();
  }
}
