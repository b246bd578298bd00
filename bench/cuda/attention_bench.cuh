// Attention section of the microbenchmarks (joins bench_kernels through bench_util's BenchReport;
// bench_attention.cu runs it alone).
//
// Rows: forward, backward and forward+backward TFLOP/s of the flash (bf16, tensor-core) kernels
// at GPT-2 small's shape B=64, NH=12, HS=64, T=1024, causal; and the same at HS=128 (NH=6, same
// C). FLOPs follow FlashAttention's count: forward 4·B·T²·NH·HS, halved for causal; backward 2.5×
// the forward. (Our deterministic backward recomputes S and dP in both of its kernels, so it
// executes 1.4× the counted backward FLOPs; the count stays the standard one so figures compare.)
// Before timing, each head size is checked against the CPU fp32 reference at a small shape.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/cuda/bench_util.cuh"
#include "kernels/cpu/attention.h"
#include "kernels/cuda/attention.cuh"

namespace gpt2::bench {
namespace attention_detail {

using gpt2::cuda::bf16;

// Deterministic pseudo-random fill in [-amp, amp] on the device (host generation of ~10⁸ values
// would dominate the benchmark's run time).
static __global__ void fill_uniform(bf16* p, size_t n, uint32_t seed, float amp) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    uint32_t x = static_cast<uint32_t>(i) * 2654435761u ^ (static_cast<uint32_t>(i >> 32) + seed) * 2246822519u;
    x ^= x >> 15;
    x *= 2246822519u;
    x ^= x >> 13;
    x *= 3266489917u;
    x ^= x >> 16;
    p[i] = __float2bfloat16_rn(amp * (static_cast<float>(x >> 8) * (2.0f / 16777216.0f) - 1.0f));
  }
}

struct Buffers {
  bf16 *qkv = nullptr, *y = nullptr, *dy = nullptr, *dqkv = nullptr;
  float *lse = nullptr, *scratch = nullptr;
  size_t n_qkv = 0, n_y = 0, n_lse = 0;
  bool ok = false;
  Buffers(int B, int T, int NH, int HS) {
    n_qkv = static_cast<size_t>(B) * T * 3 * NH * HS;
    n_y = static_cast<size_t>(B) * T * NH * HS;
    n_lse = static_cast<size_t>(B) * NH * T;
    ok = cudaMalloc(&qkv, n_qkv * sizeof(bf16)) == cudaSuccess && cudaMalloc(&y, n_y * sizeof(bf16)) == cudaSuccess &&
         cudaMalloc(&dy, n_y * sizeof(bf16)) == cudaSuccess && cudaMalloc(&dqkv, n_qkv * sizeof(bf16)) == cudaSuccess &&
         cudaMalloc(&lse, n_lse * sizeof(float)) == cudaSuccess &&
         cudaMalloc(&scratch, n_lse * sizeof(float)) == cudaSuccess;
  }
  ~Buffers() {
    cudaFree(qkv);
    cudaFree(y);
    cudaFree(dy);
    cudaFree(dqkv);
    cudaFree(lse);
    cudaFree(scratch);
  }
  Buffers(const Buffers&) = delete;
  Buffers& operator=(const Buffers&) = delete;
};

inline std::vector<float> to_host(const bf16* d, size_t n) {
  std::vector<bf16> h(n);
  cudaMemcpy(h.data(), d, n * sizeof(bf16), cudaMemcpyDeviceToHost);
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = __bfloat162float(h[i]);
  return out;
}

// max |got − ref| ≤ 0.02·max|ref| + 1e-3 for y, lse and dqkv: a sanity gate before timing (the
// GPU test applies the strict 2×-naive-bf16 rule).
inline bool close_enough(const char* what, const std::vector<float>& got, const std::vector<float>& ref) {
  double err = 0, mag = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(got[i])) {
      err = INFINITY;
      break;
    }
    err = std::max(err, std::fabs(static_cast<double>(got[i]) - ref[i]));
    mag = std::max(mag, std::fabs(static_cast<double>(ref[i])));
  }
  const bool ok = err <= 0.02 * mag + 1e-3;
  if (!ok) std::printf("attention check FAILED: %s max|err| %.3e (max|ref| %.3e)\n", what, err, mag);
  return ok;
}

// Flash forward + backward at a small shape with a ragged T against the CPU fp32 reference.
inline bool check_small(int HS) {
  const int B = 2, NH = 3, T = 211, C = NH * HS;
  Buffers d(B, T, NH, HS);
  if (!d.ok) return false;
  CUDA_CHECK(gpt2::cuda::launch(fill_uniform, 256, 256, 0, nullptr, d.qkv, d.n_qkv, 11, 2.0f));
  CUDA_CHECK(gpt2::cuda::launch(fill_uniform, 256, 256, 0, nullptr, d.dy, d.n_y, 12, 1.0f));
  gpt2::cuda::attention_forward(d.y, d.lse, d.qkv, B, T, NH, HS, 0);
  gpt2::cuda::attention_backward(d.dqkv, d.scratch, d.dy, d.qkv, d.y, d.lse, B, T, NH, HS, 0);
  if (cudaDeviceSynchronize() != cudaSuccess) return false;
  const std::vector<float> qkv = to_host(d.qkv, d.n_qkv), dy = to_host(d.dy, d.n_y);
  const std::vector<float> y = to_host(d.y, d.n_y), dqkv = to_host(d.dqkv, d.n_qkv);
  std::vector<float> lse(d.n_lse);
  cudaMemcpy(lse.data(), d.lse, d.n_lse * sizeof(float), cudaMemcpyDeviceToHost);
  std::vector<float> ry(d.n_y), rlse(d.n_lse), rdqkv(d.n_qkv), scratch(gpt2::cpu::attention_scratch_floats(B, T, NH));
  gpt2::cpu::attention_forward(ry.data(), rlse.data(), scratch.data(), qkv.data(), B, T, C, NH);
  gpt2::cpu::attention_backward(rdqkv.data(), scratch.data(), dy.data(), qkv.data(), ry.data(), rlse.data(), B, T, C,
                                NH);
  return close_enough("y", y, ry) && close_enough("lse", lse, rlse) && close_enough("dqkv", dqkv, rdqkv);
}

inline void bench_shape(BenchReport& report, int B, int T, int NH, int HS, const char* model) {
  const bool ok = check_small(HS);
  Buffers d(B, T, NH, HS);
  if (!d.ok) {
    std::printf("attention bench: cannot allocate buffers for B=%d T=%d NH=%d HS=%d\n", B, T, NH, HS);
    cudaGetLastError();
    return;
  }
  CUDA_CHECK(gpt2::cuda::launch(fill_uniform, 1024, 256, 0, nullptr, d.qkv, d.n_qkv, 1, 2.0f));
  CUDA_CHECK(gpt2::cuda::launch(fill_uniform, 1024, 256, 0, nullptr, d.dy, d.n_y, 2, 1.0f));
  auto fwd = [&] { gpt2::cuda::attention_forward(d.y, d.lse, d.qkv, B, T, NH, HS, 0); };
  auto bwd = [&] { gpt2::cuda::attention_backward(d.dqkv, d.scratch, d.dy, d.qkv, d.y, d.lse, B, T, NH, HS, 0); };
  fwd();  // y, lse for the backward-only timing
  const double flops_fwd = 4.0 * B * static_cast<double>(T) * T * NH * HS / 2.0;
  const double flops_bwd = 2.5 * flops_fwd;
  char shape[96];
  std::snprintf(shape, sizeof shape, "B=%d T=%d NH=%d HS=%d causal", B, T, NH, HS);
  const float ms_f = time_median_ms(fwd, report.repeats, report.warmup, &report.flusher());
  const float ms_b = time_median_ms(bwd, report.repeats, report.warmup, &report.flusher());
  const float ms_fb = time_median_ms(
      [&] {
        fwd();
        bwd();
      },
      report.repeats, report.warmup, &report.flusher());
  report.add_tflops(std::string("attention_fwd ") + model, shape, ms_f, flops_fwd, ok);
  report.add_tflops(std::string("attention_bwd ") + model, shape, ms_b, flops_bwd, ok);
  report.add_tflops(std::string("attention_fwd+bwd ") + model, shape, ms_fb, flops_fwd + flops_bwd, ok);
}

}  // namespace attention_detail

// Appends the attention rows to the report. Targets on H100 (FlashAttention-2's published
// figures for the d12 shape): fwd ≥ 229, fwd+bwd ≥ 192 TFLOP/s.
inline void run_attention_bench(BenchReport& report) {
  attention_detail::bench_shape(report, 64, 1024, 12, 64, "d12");
  attention_detail::bench_shape(report, 64, 1024, 6, 128, "HS128");
}

}  // namespace gpt2::bench
