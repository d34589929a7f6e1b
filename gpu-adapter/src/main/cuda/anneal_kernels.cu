// Anneal's CUDA kernels: everything the train, infer and matmul workloads need, with no library
// (no cuBLAS, cuDNN or NVRTC). Row-major FP32 throughout, the same math as io.anneal.gpu.CpuMath
// and io.anneal.gpu.Mlp. Rebuild the PTX with gpu-adapter/src/main/cuda/build-ptx.sh.

#define TILE_M 64
#define TILE_N 64
#define TILE_K 16
#define THREAD_M 4
#define THREAD_N 4

// C[M x N] = op(A) * op(B), alpha = 1, beta = 0. op(X) is X or X^T according to the strides:
// element (i, k) of op(A) is A[i * sai + k * sak], element (k, j) of op(B) is B[k * sbk + j * sbj].
// Shared-memory tiles of 64 x 16 and 16 x 64; each of the 256 threads keeps a 4 x 4 block of C in
// registers (register blocking), so every shared value loaded is used 4 times.
extern "C" __global__ void sgemm(int M, int N, int K,
                                 const float* __restrict__ A, int sai, int sak,
                                 const float* __restrict__ B, int sbk, int sbj,
                                 float* __restrict__ C) {
  __shared__ float As[TILE_K][TILE_M + 1];
  __shared__ float Bs[TILE_K][TILE_N + 1];
  const int tx = threadIdx.x % 16;  // column group
  const int ty = threadIdx.x / 16;  // row group
  const int row0 = blockIdx.y * TILE_M;
  const int col0 = blockIdx.x * TILE_N;
  float acc[THREAD_M][THREAD_N];
  #pragma unroll
  for (int i = 0; i < THREAD_M; i++)
    #pragma unroll
    for (int j = 0; j < THREAD_N; j++) acc[i][j] = 0.0f;

  for (int k0 = 0; k0 < K; k0 += TILE_K) {
    // 256 threads load 64 x 16 of A and 16 x 64 of B: 4 elements each
    for (int e = threadIdx.x; e < TILE_M * TILE_K; e += blockDim.x) {
      int r = e / TILE_K, k = e % TILE_K;
      int gi = row0 + r, gk = k0 + k;
      As[k][r] = (gi < M && gk < K) ? A[(long)gi * sai + (long)gk * sak] : 0.0f;
    }
    for (int e = threadIdx.x; e < TILE_K * TILE_N; e += blockDim.x) {
      int k = e / TILE_N, c = e % TILE_N;
      int gk = k0 + k, gj = col0 + c;
      Bs[k][c] = (gk < K && gj < N) ? B[(long)gk * sbk + (long)gj * sbj] : 0.0f;
    }
    __syncthreads();
    #pragma unroll
    for (int k = 0; k < TILE_K; k++) {
      float a[THREAD_M], b[THREAD_N];
      #pragma unroll
      for (int i = 0; i < THREAD_M; i++) a[i] = As[k][ty * THREAD_M + i];
      #pragma unroll
      for (int j = 0; j < THREAD_N; j++) b[j] = Bs[k][tx * THREAD_N + j];
      #pragma unroll
      for (int i = 0; i < THREAD_M; i++)
        #pragma unroll
        for (int j = 0; j < THREAD_N; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
  #pragma unroll
  for (int i = 0; i < THREAD_M; i++) {
    int gi = row0 + ty * THREAD_M + i;
    if (gi >= M) continue;
    #pragma unroll
    for (int j = 0; j < THREAD_N; j++) {
      int gj = col0 + tx * THREAD_N + j;
      if (gj < N) C[(long)gi * N + gj] = acc[i][j];
    }
  }
}

// C[M x N] = A[M x K] * B[K x N], all dense row-major: the fast path for matmul and the forward
// pass. Tiles of 128 x 128 with k-slices of 8; each of the 256 threads accumulates an 8 x 8 block of
// C in registers, as two 4-wide row groups (rows ty*4 and 64 + ty*4) by two 4-wide column groups,
// so that a warp's shared-memory reads of a k-slice are consecutive float4s (no bank conflicts).
// Global loads are float4 when K and N are multiples of 4 and the tile is inside the matrix.
#define NN_BM 128
#define NN_BN 128
#define NN_BK 8
extern "C" __global__ void __launch_bounds__(256) sgemm_nn(int M, int N, int K, const float* __restrict__ A,
                                                           const float* __restrict__ B, float* __restrict__ C) {
  __shared__ __align__(16) float As[NN_BK][NN_BM];  // As[k][m]: A's tile, transposed
  __shared__ __align__(16) float Bs[NN_BK][NN_BN];
  const int tid = threadIdx.x;
  const int ty = tid / 16;
  const int tx = tid % 16;
  const int row0 = blockIdx.y * NN_BM;
  const int col0 = blockIdx.x * NN_BN;
  const int aRow = tid >> 1;         // A tile: row aRow, k offsets aK..aK+3
  const int aK = (tid & 1) << 2;
  const int bK = tid >> 5;           // B tile: k row bK, columns bCol..bCol+3
  const int bCol = (tid & 31) << 2;
  const bool vec = ((K & 3) == 0) && ((N & 3) == 0);
  float acc[8][8];
  #pragma unroll
  for (int i = 0; i < 8; i++)
    #pragma unroll
    for (int j = 0; j < 8; j++) acc[i][j] = 0.0f;

  for (int k0 = 0; k0 < K; k0 += NN_BK) {
    const int gi = row0 + aRow;
    const int gk = k0 + aK;
    if (vec && gi < M && gk + 3 < K) {
      const float4 v = *reinterpret_cast<const float4*>(&A[(long)gi * K + gk]);
      As[aK][aRow] = v.x;
      As[aK + 1][aRow] = v.y;
      As[aK + 2][aRow] = v.z;
      As[aK + 3][aRow] = v.w;
    } else {
      #pragma unroll
      for (int q = 0; q < 4; q++) As[aK + q][aRow] = (gi < M && gk + q < K) ? A[(long)gi * K + gk + q] : 0.0f;
    }
    const int bk = k0 + bK;
    const int gj = col0 + bCol;
    if (vec && bk < K && gj + 3 < N) {
      *reinterpret_cast<float4*>(&Bs[bK][bCol]) = *reinterpret_cast<const float4*>(&B[(long)bk * N + gj]);
    } else {
      #pragma unroll
      for (int q = 0; q < 4; q++) Bs[bK][bCol + q] = (bk < K && gj + q < N) ? B[(long)bk * N + gj + q] : 0.0f;
    }
    __syncthreads();
    #pragma unroll
    for (int k = 0; k < NN_BK; k++) {
      const float4 a0 = *reinterpret_cast<const float4*>(&As[k][ty * 4]);
      const float4 a1 = *reinterpret_cast<const float4*>(&As[k][64 + ty * 4]);
      const float4 b0 = *reinterpret_cast<const float4*>(&Bs[k][tx * 4]);
      const float4 b1 = *reinterpret_cast<const float4*>(&Bs[k][64 + tx * 4]);
      const float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      const float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
      #pragma unroll
      for (int i = 0; i < 8; i++)
        #pragma unroll
        for (int j = 0; j < 8; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
  #pragma unroll
  for (int i = 0; i < 8; i++) {
    const int gi = row0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + i - 4);
    if (gi >= M) continue;
    #pragma unroll
    for (int h = 0; h < 2; h++) {
      const int gj = col0 + h * 64 + tx * 4;
      if (vec && gj + 3 < N) {
        *reinterpret_cast<float4*>(&C[(long)gi * N + gj]) =
            make_float4(acc[i][h * 4], acc[i][h * 4 + 1], acc[i][h * 4 + 2], acc[i][h * 4 + 3]);
      } else {
        #pragma unroll
        for (int q = 0; q < 4; q++)
          if (gj + q < N) C[(long)gi * N + gj + q] = acc[i][h * 4 + q];
      }
    }
  }
}

// Z = act(Z + b) in place, Z rows x cols. act: 0 none, 1 ReLU, 2 tanh.
extern "C" __global__ void bias_act_fwd(int rows, int cols, float* Z, const float* b, int act) {
  long n = (long)rows * cols;
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
    float v = Z[i] + b[i % cols];
    if (act == 1) v = fmaxf(v, 0.0f);
    else if (act == 2) v = tanhf(v);
    Z[i] = v;
  }
}

// dZ *= act'(A), where A = act(Z) is the layer's output.
extern "C" __global__ void act_bwd(long n, float* dZ, const float* A, int act) {
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
    float a = A[i];
    float d = act == 1 ? (a > 0.0f ? 1.0f : 0.0f) : (act == 2 ? 1.0f - a * a : 1.0f);
    dZ[i] *= d;
  }
}

// Softmax cross-entropy of each row of logits against labels y, forward and backward at once:
// loss[r] = -log p[r][y[r]], dlogits = (p - onehot(y)) / rows. One thread per row.
extern "C" __global__ void softmax_xent(int rows, int k, const float* logits, const int* y, float* dlogits,
                                        float* loss) {
  int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const float* z = logits + (long)r * k;
  float* d = dlogits + (long)r * k;
  float m = -INFINITY;
  for (int j = 0; j < k; j++) m = fmaxf(m, z[j]);
  float s = 0.0f;
  for (int j = 0; j < k; j++) {
    float e = expf(z[j] - m);
    d[j] = e;
    s += e;
  }
  int label = y[r];
  float inv = 1.0f / s;
  for (int j = 0; j < k; j++) {
    float p = d[j] * inv;
    if (j == label) loss[r] = -logf(fmaxf(p, 1e-12f));
    d[j] = (p - (j == label ? 1.0f : 0.0f)) / rows;
  }
}

// Softmax of each row in place (inference).
extern "C" __global__ void softmax_rows(int rows, int k, float* z) {
  int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  float* row = z + (long)r * k;
  float m = -INFINITY;
  for (int j = 0; j < k; j++) m = fmaxf(m, row[j]);
  float s = 0.0f;
  for (int j = 0; j < k; j++) {
    row[j] = expf(row[j] - m);
    s += row[j];
  }
  for (int j = 0; j < k; j++) row[j] /= s;
}

// db[j] = sum over rows of dZ[r][j] (bias gradient): one thread per column.
extern "C" __global__ void column_sums(int rows, int cols, const float* dZ, float* db) {
  int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= cols) return;
  float s = 0.0f;
  for (int r = 0; r < rows; r++) s += dZ[(long)r * cols + j];
  db[j] = s;
}

// out[0] += sum(x): a block reduction in shared memory, then one atomic per block.
extern "C" __global__ void reduce_sum(long n, const float* x, float* out) {
  __shared__ float part[256];
  float s = 0.0f;
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) s += x[i];
  part[threadIdx.x] = s;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) atomicAdd(out, part[0]);
}

// p -= lr * g
extern "C" __global__ void sgd_update(long n, float* p, const float* g, float lr) {
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) p[i] -= lr * g[i];
}

// Adam with bias correction c1 = 1 - b1^t, c2 = 1 - b2^t (computed on the host, as in Mlp.update).
extern "C" __global__ void adam_update(long n, float* p, const float* g, float* m, float* v, float lr, float b1,
                                       float b2, float eps, float c1, float c2) {
  for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
    float gi = g[i];
    float mi = b1 * m[i] + (1.0f - b1) * gi;
    float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= lr * (mi / c1) / (sqrtf(vi / c2) + eps);
  }
}
