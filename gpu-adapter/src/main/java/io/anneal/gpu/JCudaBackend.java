package io.anneal.gpu;

import static jcuda.driver.JCudaDriver.cuCtxCreate;
import static jcuda.driver.JCudaDriver.cuCtxDestroy;
import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDeviceGetUuid;
import static jcuda.driver.JCudaDriver.cuDeviceTotalMem;
import static jcuda.driver.JCudaDriver.cuDriverGetVersion;
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
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicIntegerArray;
import jcuda.Pointer;
import jcuda.Sizeof;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
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
 * <p>Runs {@code sleep} and {@code matmul}; {@code train} and {@code infer} on the GPU are not
 * wired yet (their kernels are in the PTX), so a JCuda node does not advertise them.
 */
public final class JCudaBackend implements GpuBackend {
  /** Consecutive device failures after which a device is quarantined. */
  static final int QUARANTINE_AFTER = 3;
  private static final String PTX = "/io/anneal/gpu/ptx/anneal_kernels.ptx";

  private final List<GpuDevice> devices = new ArrayList<>();
  private final List<CUcontext> contexts = new ArrayList<>();
  private final List<CUfunction> sgemm = new ArrayList<>();
  private final AtomicIntegerArray failures;

  /** Opens every device; throws {@link Backends.UnavailableException} with the reason if it cannot. */
  public JCudaBackend() {
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
              + "); it needs a driver for PTX ISA 9.0 (CUDA 13), or rebuild the PTX with an older nvcc"
              + " (gpu-adapter/src/main/cuda/build-ptx.sh)");
        }
        CUfunction f = new CUfunction();
        check(cuModuleGetFunction(f, module, "sgemm"), "cuModuleGetFunction(sgemm)");
        contexts.add(ctx);
        sgemm.add(f);
        devices.add(new GpuDevice(i, gpuClass(model), model, uuidText, mem[0] / (1024 * 1024), sms, major + "." + minor,
            Integer.toString(driver[0]), false));
      }
      if (devices.isEmpty()) throw new Backends.UnavailableException("the CUDA driver reports no device");
    } catch (LinkageError e) {
      throw new Backends.UnavailableException("CUDA driver not loadable: " + e.getMessage());
    }
    failures = new AtomicIntegerArray(devices.size());
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
    return Set.of("sleep", "matmul");
  }

  @Override
  public List<GpuDevice> devices() {
    return List.copyOf(devices);
  }

  /** True when the device failed {@link #QUARANTINE_AFTER} times in a row; it takes no more jobs. */
  public boolean quarantined(int device) {
    return failures.get(device) >= QUARANTINE_AFTER;
  }

  @Override
  public WorkloadResult run(int deviceIndex, Workload w, RunControl control) throws WorkloadException {
    if (quarantined(deviceIndex)) {
      throw new WorkloadException(WorkloadException.Reason.DEVICE_FAILURE, "GPU " + deviceIndex + " is quarantined after "
          + QUARANTINE_AFTER + " failures", 0);
    }
    long deadline = System.nanoTime() + w.maxDuration().toNanos();
    try {
      WorkloadResult r = switch (w.kind()) {
        case "sleep" -> CpuBackend.sleep(w, control, deadline);
        case "matmul" -> matmul(deviceIndex, w);
        default -> throw new WorkloadException(WorkloadException.Reason.JOB_ERROR,
            "the jcuda backend does not run '" + w.kind() + "' yet", 0);
      };
      failures.set(deviceIndex, 0);
      return r;
    } catch (WorkloadException e) {
      if (e.reason() == WorkloadException.Reason.DEVICE_FAILURE) failures.incrementAndGet(deviceIndex);
      throw e;
    }
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
    if (n < 1 || n > 16384) throw new WorkloadException(WorkloadException.Reason.JOB_ERROR, "matmul n must be 1..16384", 0);
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

  /**
   * C = A·B on the device (row-major), returns the milliseconds between CUDA events recorded before
   * the first copy in and after the last copy out: the device time of the whole job.
   */
  float multiply(int device, int m, int nCols, int k, float[] a, float[] b, float[] c) throws WorkloadException {
    checkJob(cuCtxSetCurrent(contexts.get(device)), "cuCtxSetCurrent", 0);
    CUdeviceptr da = new CUdeviceptr();
    CUdeviceptr db = new CUdeviceptr();
    CUdeviceptr dc = new CUdeviceptr();
    CUevent start = new CUevent();
    CUevent stop = new CUevent();
    List<CUdeviceptr> allocated = new ArrayList<>();
    try {
      checkJob(cuEventCreate(start, 0), "cuEventCreate", 0);
      checkJob(cuEventCreate(stop, 0), "cuEventCreate", 0);
      for (Object[] buf : new Object[][] {{da, (long) m * k}, {db, (long) k * nCols}, {dc, (long) m * nCols}}) {
        checkJob(cuMemAlloc((CUdeviceptr) buf[0], (long) buf[1] * Sizeof.FLOAT), "cuMemAlloc", 0);
        allocated.add((CUdeviceptr) buf[0]);
      }
      checkJob(cuEventRecord(start, null), "cuEventRecord", 0);
      checkJob(cuMemcpyHtoD(da, Pointer.to(a), (long) m * k * Sizeof.FLOAT), "cuMemcpyHtoD", 0);
      checkJob(cuMemcpyHtoD(db, Pointer.to(b), (long) k * nCols * Sizeof.FLOAT), "cuMemcpyHtoD", 0);
      Pointer params = Pointer.to(Pointer.to(new int[] {m}), Pointer.to(new int[] {nCols}), Pointer.to(new int[] {k}),
          Pointer.to(da), Pointer.to(new int[] {k}), Pointer.to(new int[] {1}),
          Pointer.to(db), Pointer.to(new int[] {nCols}), Pointer.to(new int[] {1}), Pointer.to(dc));
      checkJob(cuLaunchKernel(sgemm.get(device), (nCols + 63) / 64, (m + 63) / 64, 1, 256, 1, 1, 0, null, params, null),
          "cuLaunchKernel(sgemm)", 0);
      checkJob(cuMemcpyDtoH(Pointer.to(c), dc, (long) m * nCols * Sizeof.FLOAT), "cuMemcpyDtoH", 0);
      checkJob(cuEventRecord(stop, null), "cuEventRecord", 0);
      checkJob(cuEventSynchronize(stop), "cuEventSynchronize", 0);
      checkJob(cuCtxSynchronize(), "cuCtxSynchronize", 0);
      float[] ms = new float[1];
      checkJob(cuEventElapsedTime(ms, start, stop), "cuEventElapsedTime", 0);
      return ms[0];
    } finally {
      for (CUdeviceptr p : allocated) cuMemFree(p);
      cuEventDestroy(start);
      cuEventDestroy(stop);
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
