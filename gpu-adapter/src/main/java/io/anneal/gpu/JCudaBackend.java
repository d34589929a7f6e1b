package io.anneal.gpu;

import static jcuda.driver.JCudaDriver.cuCtxCreate;
import static jcuda.driver.JCudaDriver.cuCtxDestroy;
import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDeviceGetUuid;
import static jcuda.driver.JCudaDriver.cuDeviceTotalMem;
import static jcuda.driver.JCudaDriver.cuDriverGetVersion;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import jcuda.Sizeof;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.CUresult;
import jcuda.driver.CUuuid;

/**
 * NVIDIA GPUs through the CUDA driver API only (JCuda): one context per device, our kernels loaded
 * from the PTX built from {@code src/main/cuda}, CUDA events around every copy and kernel so the
 * receipt carries measured device time. Calls block: the worker calls {@link #run} from the
 * device's own thread.
 *
 * <p>Runs {@code sleep}, {@code matmul}, and {@code train}/{@code infer} through {@link KernelMlp}
 * on {@link JCudaKernels} (the same loop as the CPU-tested one, every step on the device).
 */
public final class JCudaBackend implements GpuBackend {
  private static final String PTX = "/io/anneal/gpu/ptx/anneal_kernels.ptx";

  private final List<GpuDevice> devices = new ArrayList<>();
  private final List<CUcontext> contexts = new ArrayList<>();
  private final List<Map<String, CUfunction>> functions = new ArrayList<>();
  private final ModelStore models;

  /** Opens every device; throws {@link Backends.UnavailableException} with the reason if it cannot. */
  public JCudaBackend() {
    this(ModelStore.inMemory());
  }

  /** As above, with trained models kept in {@code models}. */
  public JCudaBackend(ModelStore models) {
    this.models = models;
    try {
      jcuda.driver.JCudaDriver.setExceptionsEnabled(false);
      byte[] ptx = ptx();
      int[] count = new int[1];
      check(jcuda.driver.JCudaDriver.cuDeviceGetCount(count), "cuDeviceGetCount");
      int[] driver = new int[1];
      check(cuDriverGetVersion(driver), "cuDriverGetVersion");
      for (int i = 0; i < count[0]; i++) {
        CUdevice dev = new CUdevice();
        check(cuDeviceGet(dev, i), "cuDeviceGet");
        byte[] name = new byte[256];
        check(cuDeviceGetName(name, name.length, dev), "cuDeviceGetName");
        String model = new String(name, StandardCharsets.US_ASCII).trim().replace("\0", "");
        long[] mem = new long[1];
        check(cuDeviceTotalMem(mem, dev), "cuDeviceTotalMem");
        int sms = attribute(dev, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
        int major = attribute(dev, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
        int minor = attribute(dev, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
        CUuuid uuid = new CUuuid();
        String uuidText = cuDeviceGetUuid(uuid, dev) == CUresult.CUDA_SUCCESS ? "GPU-" + HexFormat.of().formatHex(uuid.bytes) : "GPU-" + i;
        CUcontext ctx = new CUcontext();
        check(cuCtxCreate(ctx, 0, dev), "cuCtxCreate");
        CUmodule module = new CUmodule();
        int rc = cuModuleLoadData(module, ptx);
        if (rc != CUresult.CUDA_SUCCESS) {
          throw new Backends.UnavailableException("the driver cannot load Anneal's PTX (" + CUresult.stringFor(rc)
              + "); it is PTX ISA 7.0 for compute_80, which needs a driver from CUDA 11.0 on that supports this GPU"
              + " (gpu-adapter/src/main/cuda/build-ptx.sh rebuilds it)");
        }
        contexts.add(ctx);
        functions.add(JCudaKernels.functions(module));
        devices.add(new GpuDevice(i, gpuClass(model), model, uuidText, mem[0] / (1024 * 1024), sms, major + "." + minor,
            Integer.toString(driver[0]), false));
      }
      if (devices.isEmpty()) throw new Backends.UnavailableException("the CUDA driver reports no device");
    } catch (LinkageError e) {
      throw new Backends.UnavailableException("CUDA driver not loadable: " + e.getMessage());
    }
  }

  /** Maps a driver model name (e.g. "NVIDIA H100 80GB HBM3") to a placement class. */
  static String gpuClass(String model) {
    for (String c : new String[] {"H200", "H100", "A100", "L40S", "L4", "A10G", "T4"}) {
      if (model.contains(c)) return c;
    }
    return model.replaceAll("[^A-Za-z0-9_.-]", "").replace("NVIDIA", "");
  }

  private static byte[] ptx() {
    try (InputStream in = JCudaBackend.class.getResourceAsStream(PTX)) {
      if (in == null) throw new Backends.UnavailableException("the PTX resource " + PTX + " is missing from the jar");
      byte[] text = in.readAllBytes();
      byte[] withNul = new byte[text.length + 1]; // the driver reads a NUL-terminated image
      System.arraycopy(text, 0, withNul, 0, text.length);
      return withNul;
    } catch (IOException e) {
      throw new Backends.UnavailableException("cannot read the PTX: " + e.getMessage());
    }
  }

  private static int attribute(CUdevice dev, int attr) {
    int[] v = new int[1];
    check(jcuda.driver.JCudaDriver.cuDeviceGetAttribute(v, attr, dev), "cuDeviceGetAttribute");
    return v[0];
  }

  private static void check(int rc, String what) {
    if (rc != CUresult.CUDA_SUCCESS) throw new Backends.UnavailableException(what + " failed: " + CUresult.stringFor(rc));
  }

  @Override
  public String name() {
    return "jcuda";
  }

  @Override
  public Set<String> kinds() {
    return Set.of("sleep", "matmul", "train", "infer");
  }

  /** Largest {@code matmul} side (three n×n float matrices on the device). */
  static final int MAX_MATMUL_N = 16384;

  @Override
  public Map<String, Long> paramLimits() {
    return Map.of("matmul.n", (long) MAX_MATMUL_N);
  }

  @Override
  public List<GpuDevice> devices() {
    return List.copyOf(devices);
  }

  @Override
  public WorkloadResult run(int deviceIndex, Workload w, RunControl control) throws WorkloadException {
    long deadline = System.nanoTime() + w.maxDuration().toNanos();
    // repeated device failures quarantine the device in the worker (WorkerVerticle), for every backend
    return switch (w.kind()) {
      case "sleep" -> CpuBackend.sleep(w, control, deadline);
      case "matmul" -> matmul(deviceIndex, w);
      case "train" -> MlpWorkloads.train(w, control, deadline, models, engine(deviceIndex));
      case "infer" -> MlpWorkloads.infer(w, control, models, engine(deviceIndex));
      default -> throw new WorkloadException(WorkloadException.Reason.JOB_ERROR,
          "the jcuda backend does not run '" + w.kind() + "' yet", 0);
    };
  }

  /** A CUDA call that failed inside a job; out of memory is the job's, anything else the device's. */
  private static void checkJob(int rc, String what, long deviceNanos) throws WorkloadException {
    if (rc == CUresult.CUDA_SUCCESS) return;
    WorkloadException.Reason reason = rc == CUresult.CUDA_ERROR_OUT_OF_MEMORY
        ? WorkloadException.Reason.OUT_OF_MEMORY : WorkloadException.Reason.DEVICE_FAILURE;
    throw new WorkloadException(reason, what + ": " + CUresult.stringFor(rc), deviceNanos);
  }

  private WorkloadResult matmul(int device, Workload w) throws WorkloadException {
    int n = (int) w.longParam("n", 256);
    if (n < 1 || n > MAX_MATMUL_N) {
      throw new WorkloadException(WorkloadException.Reason.JOB_ERROR, "matmul n must be 1.." + MAX_MATMUL_N, 0);
    }
    SeededData data = new SeededData(w.longParam("seed", 1));
    float[] a = data.matrix(n, n);
    float[] b = data.matrix(n, n);
    float[] c = new float[n * n];
    long wallStart = System.nanoTime();
    float ms = multiply(device, n, n, n, a, b, c);
    long deviceNanos = Math.round(ms * 1e6);
    double gflops = 2.0 * n * n * (double) n / Math.max(deviceNanos, 1);
    return new WorkloadResult(deviceNanos, System.nanoTime() - wallStart, 3L * n * n * Sizeof.FLOAT, Digests.sha256(c),
        Map.of("n", n, "gflops", Math.round(gflops * 100) / 100.0));
  }

  /** Kernels on device {@code device} for one job, as the MLP workloads open them. */
  MlpWorkloads.Engine engine(int device) {
    return MlpWorkloads.onKernels(() -> kernels(device));
  }

  /** Fresh kernels (buffers, events) on one device; the caller closes them. */
  JCudaKernels kernels(int device) {
    try {
      return new JCudaKernels(contexts.get(device), functions.get(device));
    } catch (WorkloadException e) {
      throw new IllegalStateException(e.getMessage(), e);
    }
  }

  /**
   * C = A·B on the device (row-major); returns the device milliseconds metered by CUDA events
   * around the two copies in, the kernel and the copy out.
   */
  float multiply(int device, int m, int nCols, int k, float[] a, float[] b, float[] c) throws WorkloadException {
    try (JCudaKernels g = new JCudaKernels(contexts.get(device), functions.get(device))) {
      CUdeviceptr da = g.floats((long) m * k);
      CUdeviceptr db = g.floats((long) k * nCols);
      CUdeviceptr dc = g.floats((long) m * nCols);
      g.upload(da, a, m * k);
      g.upload(db, b, k * nCols);
      g.sgemm(m, nCols, k, da, k, 1, db, nCols, 1, dc);
      g.download(dc, c, m * nCols);
      return g.deviceNanos() / 1e6f;
    }
  }

  /**
   * Reserves {@code bytes} of device memory and releases it: how a job's memory request is checked
   * before it runs. Out of memory is the job's failure ({@link WorkloadException.Reason#OUT_OF_MEMORY}).
   */
  @Override
  public void reserve(int device, long bytes) throws WorkloadException {
    checkJob(cuCtxSetCurrent(contexts.get(device)), "cuCtxSetCurrent", 0);
    CUdeviceptr p = new CUdeviceptr();
    checkJob(cuMemAlloc(p, bytes), "cuMemAlloc(" + bytes + " bytes)", 0);
    cuMemFree(p);
  }

  /** cuMemGetInfo in the device's context; -1 if the driver call fails. */
  @Override
  public long freeMemoryBytes(int device) {
    if (cuCtxSetCurrent(contexts.get(device)) != jcuda.driver.CUresult.CUDA_SUCCESS) return -1;
    long[] free = new long[1];
    long[] total = new long[1];
    return jcuda.driver.JCudaDriver.cuMemGetInfo(free, total) == jcuda.driver.CUresult.CUDA_SUCCESS ? free[0] : -1;
  }

  @Override
  public void close() {
    for (CUcontext ctx : contexts) cuCtxDestroy(ctx);
    contexts.clear();
  }
}
