// Runs every kernel of anneal_kernels.cu on the CPU through cuda_emu.h, with the launch shapes that
// io.anneal.gpu.JCudaKernels uses, and compares with plain loops in double precision. Exit status
// 0 when all agree; each difference is printed. Built and run by KernelSourcesOnCpuTest.
#include "cuda_emu.h"
#include "../../main/cuda/anneal_kernels.cu"

#include <cstdio>
#include <random>

static int failures = 0;
static std::mt19937 rng(42);

static std::vector<float> randoms(size_t n) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

static void expect_close(const char* what, const std::vector<float>& got, const std::vector<double>& want, double tol) {
  for (size_t i = 0; i < want.size(); i++) {
    double t = tol * std::max(1.0, std::fabs(want[i]));
    if (!(std::fabs(got[i] - want[i]) <= t)) {
      std::printf("FAIL %s: element %zu is %.7g, expected %.7g\n", what, i, (double)got[i], want[i]);
      failures++;
      return;
    }
  }
  std::printf("ok   %s (%zu values)\n", what, want.size());
}

static dim3 d1(unsigned x) { return dim3{x, 1, 1}; }
static unsigned grid(long n, int block) { return (unsigned)std::max(1L, std::min((n + block - 1) / block, 4096L)); }

static void check_sgemm_nn(int M, int N, int K) {
  auto A = randoms((size_t)M * K), B = randoms((size_t)K * N);
  std::vector<float> C((size_t)M * N, -7.0f);
  emu_launch(dim3{(unsigned)(N + 127) / 128, (unsigned)(M + 127) / 128, 1}, d1(256),
             [&] { sgemm_nn(M, N, K, A.data(), B.data(), C.data()); });
  std::vector<double> want((size_t)M * N);
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = 0;
      for (int k = 0; k < K; k++) s += (double)A[(size_t)i * K + k] * B[(size_t)k * N + j];
      want[(size_t)i * N + j] = s;
    }
  char name[96];
  std::snprintf(name, sizeof name, "sgemm_nn %dx%dx%d", M, N, K);
  expect_close(name, C, want, 1e-5 * std::sqrt((double)K));
}

static void check_sgemm_strided(int M, int N, int K, bool ta, bool tb) {
  auto A = randoms((size_t)M * K), B = randoms((size_t)K * N);
  int sai = ta ? 1 : K, sak = ta ? M : 1, sbk = tb ? 1 : N, sbj = tb ? K : 1;
  std::vector<float> C((size_t)M * N, -7.0f);
  emu_launch(dim3{(unsigned)(N + 63) / 64, (unsigned)(M + 63) / 64, 1}, d1(256),
             [&] { sgemm(M, N, K, A.data(), sai, sak, B.data(), sbk, sbj, C.data()); });
  std::vector<double> want((size_t)M * N);
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = 0;
      for (int k = 0; k < K; k++) s += (double)A[(size_t)i * sai + (size_t)k * sak] * B[(size_t)k * sbk + (size_t)j * sbj];
      want[(size_t)i * N + j] = s;
    }
  char name[96];
  std::snprintf(name, sizeof name, "sgemm %dx%dx%d transA=%d transB=%d", M, N, K, ta, tb);
  expect_close(name, C, want, 1e-5 * std::sqrt((double)K));
}

int main() {
  // the 128x128 path: aligned (float4 loads), ragged edges, K not a multiple of 8 or 4, thin shapes
  check_sgemm_nn(128, 128, 64);
  check_sgemm_nn(256, 384, 40);
  check_sgemm_nn(130, 133, 37);
  check_sgemm_nn(1, 300, 12);
  check_sgemm_nn(300, 1, 7);
  check_sgemm_nn(64, 68, 4);
  // the strided path, every transposition
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) check_sgemm_strided(70, 66, 33, ta, tb);

  const int rows = 37, cols = 11;
  for (int act = 0; act <= 2; act++) {
    auto Z = randoms(rows * cols), b = randoms(cols);
    std::vector<double> want(rows * cols);
    for (int i = 0; i < rows * cols; i++) {
      double v = (double)Z[i] + b[i % cols];
      want[i] = act == 1 ? std::max(v, 0.0) : act == 2 ? std::tanh(v) : v;
    }
    emu_launch(d1(grid(rows * cols, 256)), d1(256), [&] { bias_act_fwd(rows, cols, Z.data(), b.data(), act); });
    char name[64];
    std::snprintf(name, sizeof name, "bias_act_fwd act=%d", act);
    expect_close(name, Z, want, 1e-6);

    auto dZ = randoms(rows * cols), A = randoms(rows * cols);
    std::vector<double> w2(rows * cols);
    for (int i = 0; i < rows * cols; i++) {
      double d = act == 1 ? (A[i] > 0 ? 1 : 0) : act == 2 ? 1.0 - (double)A[i] * A[i] : 1.0;
      w2[i] = dZ[i] * d;
    }
    emu_launch(d1(grid(rows * cols, 256)), d1(256), [&] { act_bwd((long)rows * cols, dZ.data(), A.data(), act); });
    std::snprintf(name, sizeof name, "act_bwd act=%d", act);
    expect_close(name, dZ, w2, 1e-6);
  }

  {  // softmax cross-entropy, forward and backward
    const int k = 5;
    auto logits = randoms(rows * k);
    for (auto& x : logits) x *= 4;
    std::vector<int> y(rows);
    for (int r = 0; r < rows; r++) y[r] = (r * 7) % k;
    std::vector<float> d(rows * k), loss(rows);
    emu_launch(d1((rows + 127) / 128), d1(128), [&] { softmax_xent(rows, k, logits.data(), y.data(), d.data(), loss.data()); });
    std::vector<double> wd(rows * k), wl(rows);
    for (int r = 0; r < rows; r++) {
      double m = -1e30, s = 0;
      for (int j = 0; j < k; j++) m = std::max(m, (double)logits[r * k + j]);
      for (int j = 0; j < k; j++) s += std::exp(logits[r * k + j] - m);
      for (int j = 0; j < k; j++) {
        double p = std::exp(logits[r * k + j] - m) / s;
        if (j == y[r]) wl[r] = -std::log(p);
        wd[r * k + j] = (p - (j == y[r] ? 1 : 0)) / rows;
      }
    }
    expect_close("softmax_xent dlogits", d, wd, 1e-5);
    expect_close("softmax_xent loss", loss, wl, 1e-5);

    std::vector<double> wp(rows * k);
    for (int r = 0; r < rows; r++) {
      double m = -1e30, s = 0;
      for (int j = 0; j < k; j++) m = std::max(m, (double)logits[r * k + j]);
      for (int j = 0; j < k; j++) s += std::exp(logits[r * k + j] - m);
      for (int j = 0; j < k; j++) wp[r * k + j] = std::exp(logits[r * k + j] - m) / s;
    }
    emu_launch(d1((rows + 127) / 128), d1(128), [&] { softmax_rows(rows, k, logits.data()); });
    expect_close("softmax_rows", logits, wp, 1e-5);
  }

  {  // bias gradient and loss reduction
    auto dZ = randoms(rows * cols);
    std::vector<float> db(cols, -3.0f);
    std::vector<double> want(cols, 0.0);
    for (int r = 0; r < rows; r++)
      for (int j = 0; j < cols; j++) want[j] += dZ[r * cols + j];
    emu_launch(d1((cols + 127) / 128), d1(128), [&] { column_sums(rows, cols, dZ.data(), db.data()); });
    expect_close("column_sums", db, want, 1e-5);

    const long n = 3001;
    auto x = randoms(n);
    std::vector<float> out(1, 0.5f);
    double s = 0.5;
    for (long i = 0; i < n; i++) s += x[i];
    emu_launch(d1(grid(n, 256)), d1(256), [&] { reduce_sum(n, x.data(), out.data()); });
    expect_close("reduce_sum", out, {s}, 1e-4);
  }

  {  // optimizers
    const long n = 1000;
    auto p = randoms(n), g = randoms(n), m = randoms(n), v = randoms(n);
    for (auto& x : v) x = std::fabs(x);
    std::vector<double> wp(n), wm(n), wv(n);
    const float lr = 0.01f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, c1 = 1 - 0.9f * 0.9f, c2 = 1 - 0.999f * 0.999f;
    for (long i = 0; i < n; i++) {
      wm[i] = b1 * (double)m[i] + (1 - b1) * (double)g[i];
      wv[i] = b2 * (double)v[i] + (1 - b2) * (double)g[i] * g[i];
      wp[i] = p[i] - lr * (wm[i] / c1) / (std::sqrt(wv[i] / c2) + eps);
    }
    emu_launch(d1(grid(n, 256)), d1(256),
               [&] { adam_update(n, p.data(), g.data(), m.data(), v.data(), lr, b1, b2, eps, c1, c2); });
    expect_close("adam_update m", m, wm, 1e-5);
    expect_close("adam_update v", v, wv, 1e-5);
    expect_close("adam_update p", p, wp, 1e-4);

    auto q = randoms(n);
    std::vector<double> wq(n);
    for (long i = 0; i < n; i++) wq[i] = q[i] - 0.1 * g[i];
    emu_launch(d1(grid(n, 256)), d1(256), [&] { sgd_update(n, q.data(), g.data(), 0.1f); });
    expect_close("sgd_update", q, wq, 1e-6);
  }

  std::printf(failures == 0 ? "all kernels agree with the reference\n" : "%d kernel check(s) failed\n", failures);
  return failures == 0 ? 0 : 1;
}
