/*
 * AdamW's element update and the stochastic rounding of bf16 parameters, written once for the
 * CPU kernel (kernels/cpu/adamw.cpp), the CUDA kernel (kernels/cuda/adamw.cu) and the host
 * optimizer of an offloaded run, so that all three produce the same bits:
 *
 *   g = grad * grad_scale                      (grad_scale = clip factor, 1 when not clipping)
 *   p = p * decay_factor                       (1 - lr * weight_decay for 2-D weights, else 1)
 *   m = fma(beta1, m, (1 - beta1) * g)
 *   v = fma(beta2, v, ((1 - beta2) * g) * g)
 *   p = fma(-step_size, m / (sqrt(v) / bc2_sqrt + eps), p)
 *
 * with step_size = lr / (1 - beta1^t) and bc2_sqrt = sqrt(1 - beta2^t), both computed in double
 * and rounded once (as PyTorch does with its Python-float step size). The three multiply-adds are
 * explicit fmaf calls and every other operation is a separately rounded +, *, / or sqrt, so no
 * compiler's contraction setting changes the result. kernels/cuda/adamw.cu is compiled with IEEE
 * division and square root and without flushing denormals (CMakeLists.txt), whatever the rest of
 * the CUDA library uses.
 *
 * Stochastic rounding of a bf16 parameter adds a 16-bit pseudo-random number, a hash of
 * (seed, t, flat element index), to the fp32 bits before truncating: unbiased, deterministic, and
 * independent of the launch shape, the thread count and the ZeRO-1 sharding.
 */
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#ifdef __CUDACC__
#define GPT2_HOST_DEVICE __host__ __device__
#else
#define GPT2_HOST_DEVICE
#endif

namespace gpt2::adamw {

struct Params {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;  // applied only where a tensor/range asks for decay
  int t = 1;                  // 1-based step, for bias correction
  float grad_scale = 1.0f;    // multiplies every gradient (gradient clipping)
};

struct Range {
  size_t offset;  // element offset into the flat arrays
  size_t count;   // number of elements
  bool decay;     // apply weight decay (2-D weights) or not
};

// The per-step constants of the element update.
struct StepConstants {
  float beta1, beta2, eps, grad_scale;
  float step_size;     // lr / (1 - beta1^t)
  float bc2_sqrt;      // sqrt(1 - beta2^t)
  float decay_factor;  // 1 - lr * weight_decay (ranges with decay)
};

inline StepConstants step_constants(const Params& hp) {
  const double bc1 = 1.0 - std::pow(static_cast<double>(hp.beta1), hp.t);
  const double bc2 = 1.0 - std::pow(static_cast<double>(hp.beta2), hp.t);
  StepConstants k;
  k.beta1 = hp.beta1;
  k.beta2 = hp.beta2;
  k.eps = hp.eps;
  k.grad_scale = hp.grad_scale;
  k.step_size = static_cast<float>(hp.lr / bc1);
  k.bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  k.decay_factor = 1.0f - hp.lr * hp.weight_decay;
  return k;
}

// One element: updates m and v and returns the new parameter. `decay` is k.decay_factor or 1.
GPT2_HOST_DEVICE inline float update_element(float p, float grad, float& m, float& v, const StepConstants& k,
                                             float decay) {
  const float g = grad * k.grad_scale;
  const float pd = p * decay;
  m = fmaf(k.beta1, m, (1.0f - k.beta1) * g);
  v = fmaf(k.beta2, v, ((1.0f - k.beta2) * g) * g);
  const float denom = sqrtf(v) / k.bc2_sqrt + k.eps;
  return fmaf(-k.step_size, m / denom, pd);
}

// ---- stochastic rounding ------------------------------------------------------------------------

// The per-step seed: the run's 32-bit seed mixed with the 1-based step t.
GPT2_HOST_DEVICE inline uint32_t rounding_seed(uint32_t seed, int t) {
  return seed ^ (static_cast<uint32_t>(t) * 0x9e3779b9u);
}

// 32-bit mix of (step seed, flat element index): a murmur3-style finaliser over the combined words.
GPT2_HOST_DEVICE inline uint32_t rounding_hash(uint32_t step_seed, uint64_t index) {
  uint32_t h = step_seed ^ static_cast<uint32_t>(index) ^ (static_cast<uint32_t>(index >> 32) * 0x85ebca6bu);
  h ^= h >> 16;
  h *= 0x7feb352du;
  h ^= h >> 15;
  h *= 0x846ca68bu;
  h ^= h >> 16;
  return h;
}

// fp32 bits -> bf16 bits, rounding the magnitude up with probability (dropped bits) / 2^16.
// Infinities and NaNs are truncated.
GPT2_HOST_DEVICE inline uint16_t round_bits(uint32_t fp32_bits, uint32_t random) {
  if ((fp32_bits & 0x7f800000u) == 0x7f800000u) return static_cast<uint16_t>(fp32_bits >> 16);
  return static_cast<uint16_t>((fp32_bits + (random & 0xffffu)) >> 16);
}

}  // namespace gpt2::adamw
