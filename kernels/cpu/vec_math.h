// Small vectorisable maths helpers shared by the CPU ops (not an op of its own).
#pragma once
#include <cstdint>
#include <cstring>

namespace gpt2::cpu {

// exp(x) in float, branch-free so that `#pragma omp simd` loops vectorise it (glibc's expf does
// not vectorise without -ffast-math). Cephes-style: x = n·ln2 + r with |r| <= ln2/2 (ln2 split in
// two parts for an exact reduction), exp(r) by a degree-7 polynomial, 2^n built in the exponent
// bits. Accurate to about 2 ulp over [-87, 88]; inputs are clamped to that range, so very
// negative x gives ~1e-38 instead of 0 (harmless inside a softmax).
inline float exp_fast(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  // n = round(x / ln2) with the 1.5·2^23 trick (no rounding instruction needed on SSE2).
  const float shifter = 12582912.0f;
  const float t = x * 1.44269504088896341f + shifter;
  const float n = t - shifter;
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * (r * r) + r + 1.0f;
  uint32_t tb;  // unsigned: a NaN input gives a NaN-free garbage value instead of an overflowing shift
  std::memcpy(&tb, &t, sizeof(tb));
  const uint32_t bits = (tb - 0x4B400000u + 127u) << 23;  // (n + 127) << 23: the float 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return e * scale;
}

}  // namespace gpt2::cpu
