// Just enough of CUDA to run Anneal's kernels on the CPU, for checking the kernel sources' logic on a
// machine without a GPU: every thread of a block is an OS thread, __syncthreads is a barrier, a
// kernel's __shared__ arrays are function statics (blocks run one after another, so each block has
// them to itself). It says nothing about the PTX, the JIT or speed: the GPU profile checks those.
#pragma once
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;
thread_local std::barrier<>* emu_barrier = nullptr;

#define __global__
#define __shared__ static
#define __restrict__
#define __launch_bounds__(n)
#define __align__(n) __attribute__((aligned(n)))
inline void __syncthreads() { emu_barrier->arrive_and_wait(); }
inline float atomicAdd(float* address, float v) {
  return std::atomic_ref<float>(*address).fetch_add(v);
}

// Runs f on grid x block threads, one block at a time.
inline void emu_launch(dim3 grid, dim3 block, const std::function<void()>& f) {
  unsigned n = block.x * block.y * block.z;
  for (unsigned by = 0; by < grid.y; by++) {
    for (unsigned bx = 0; bx < grid.x; bx++) {
      std::barrier<> bar((std::ptrdiff_t)n);
      std::vector<std::thread> threads;
      threads.reserve(n);
      for (unsigned t = 0; t < n; t++) {
        threads.emplace_back([&, t] {
          threadIdx = dim3{t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
          blockIdx = dim3{bx, by, 0};
          blockDim = block;
          gridDim = grid;
          emu_barrier = &bar;
          f();
        });
      }
      for (auto& th : threads) th.join();
    }
  }
}
