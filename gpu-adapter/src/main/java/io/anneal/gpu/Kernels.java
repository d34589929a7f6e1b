package io.anneal.gpu;

/**
 * Anneal's kernels as a device-neutral API, one method per kernel of
 * {@code src/main/cuda/anneal_kernels.cu} with the same arguments and the same math, plus buffer
 * management. {@link KernelMlp} trains and runs an MLP only through this interface, so the same
 * host-side loop runs on {@link CpuKernels} (tested on every build) and on {@link JCudaKernels}
 * (each method one launch or copy on the GPU).
 *
 * <p>Buffers hold FP32 values or int32 labels; matrices are row-major. Calls on one instance come
 * from one thread (the device's worker thread).
 *
 * @param <B> the buffer handle of the implementation
 */
public interface Kernels<B> extends AutoCloseable {
  /** Activation codes shared with the CUDA kernels. */
  int ACT_NONE = 0;
  int ACT_RELU = 1;
  int ACT_TANH = 2;

  /** A buffer of {@code n} floats, zeroed. Out of memory is the job's failure. */
  B floats(long n) throws WorkloadException;

  /** A buffer of {@code n} int32 values, zeroed. */
  B ints(long n) throws WorkloadException;

  void free(B buffer);

  void upload(B dst, float[] src, int n) throws WorkloadException;

  void uploadInts(B dst, int[] src, int n) throws WorkloadException;

  void download(B src, float[] dst, int n) throws WorkloadException;

  /** Sets the first {@code n} floats to zero. */
  void zero(B buffer, long n) throws WorkloadException;

  /**
   * C[M×N] = op(A)·op(B): element (i, k) of op(A) is {@code A[i*sai + k*sak]}, element (k, j) of
   * op(B) is {@code B[k*sbk + j*sbj]}; C is dense row-major.
   */
  void sgemm(int m, int n, int k, B a, int sai, int sak, B b, int sbk, int sbj, B c) throws WorkloadException;

  /** Z = act(Z + b) in place, b broadcast over rows. */
  void biasActFwd(int rows, int cols, B z, B bias, int act) throws WorkloadException;

  /** dZ *= act'(A) where A = act(Z) is the layer's output. */
  void actBwd(long n, B dz, B a, int act) throws WorkloadException;

  /** loss[r] = −log p[r][y[r]], dlogits = (p − onehot(y)) / rows, with p = softmax(logits). */
  void softmaxXent(int rows, int k, B logits, B labels, B dlogits, B loss) throws WorkloadException;

  /** Softmax of each row in place. */
  void softmaxRows(int rows, int k, B z) throws WorkloadException;

  /** db[j] = Σ_r dZ[r][j]. */
  void columnSums(int rows, int cols, B dz, B db) throws WorkloadException;

  /** out[0] += Σ x[0..n). */
  void reduceSum(long n, B x, B out) throws WorkloadException;

  /** p −= lr·g. */
  void sgdUpdate(long n, B p, B g, float lr) throws WorkloadException;

  /** Adam with host-computed bias corrections c1 = 1 − b1^t, c2 = 1 − b2^t. */
  void adamUpdate(long n, B p, B g, B m, B v, float lr, float b1, float b2, float eps, float c1, float c2)
      throws WorkloadException;

  /**
   * Device time spent so far in this instance's kernels and copies, in nanoseconds: CUDA events
   * around each launch and copy on the GPU, the calling thread's CPU time on the CPU. Waits for
   * queued work to finish.
   */
  long deviceNanos() throws WorkloadException;

  /** Most bytes held in buffers at once. */
  long peakBytes();

  /** Frees every buffer still held. */
  @Override
  void close();
}
