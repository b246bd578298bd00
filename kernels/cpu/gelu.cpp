// GELU (tanh approximation): see gelu.h.
//
// 0.5 (1 + tanh(u)) = sigmoid(2u) = 1 / (1 + exp(-2u)), so gelu(x) = x / (1 + exp(-2u)): no
// tanh call, no cancellation for very negative x, and it vectorises with exp_fast. Likewise
// 0.5 (1 - tanh(u)^2) = 2 s (1 - s) with s = sigmoid(2u), which gives the derivative.
#include "kernels/cpu/gelu.h"

#include <omp.h>

#include "kernels/cpu/vec_math.h"

namespace gpt2::cpu {

namespace {
constexpr float kSqrt2OverPi = 0.7978845608028654f;  // sqrt(2/pi)
constexpr float kCoef = 0.044715f;

__attribute__((target_clones("avx512f", "avx2", "default"))) void gelu_fwd_range(float* out, const float* inp,
                                                                                 size_t n) {
#pragma omp simd
  for (size_t i = 0; i < n; i++) {
    const float x = inp[i];
    const float u = kSqrt2OverPi * (x + kCoef * x * x * x);
    out[i] = x / (1.0f + exp_fast(-2.0f * u));
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void gelu_bwd_range(float* dinp, const float* inp,
                                                                                 const float* dout, size_t n) {
#pragma omp simd
  for (size_t i = 0; i < n; i++) {
    const float x = inp[i];
    const float u = kSqrt2OverPi * (x + kCoef * x * x * x);
    const float s = 1.0f / (1.0f + exp_fast(-2.0f * u));
    const float du = kSqrt2OverPi * (1.0f + 3.0f * kCoef * x * x);
    dinp[i] = dout[i] * (s + x * (2.0f * s * (1.0f - s)) * du);
  }
}

constexpr size_t kChunk = 4096;  // elements per parallel work item
}  // namespace

void gelu_forward(float* out, const float* inp, size_t N) {
  const size_t chunks = (N + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static)
  for (size_t c = 0; c < chunks; c++) {
    const size_t i0 = c * kChunk;
    gelu_fwd_range(out + i0, inp + i0, N - i0 < kChunk ? N - i0 : kChunk);
  }
}

void gelu_backward(float* dinp, const float* inp, const float* dout, size_t N) {
  const size_t chunks = (N + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static)
  for (size_t c = 0; c < chunks; c++) {
    const size_t i0 = c * kChunk;
    gelu_bwd_range(dinp + i0, inp + i0, dout + i0, N - i0 < kChunk ? N - i0 : kChunk);
  }
}

}  // namespace gpt2::cpu
