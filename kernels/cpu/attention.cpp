// Causal multi-head attention, row by row with the saved logsumexp: see attention.h.
#include "kernels/cpu/attention.h"

#include <omp.h>

#include <cmath>
#include <cstring>

#include "kernels/cpu/vec_math.h"

namespace gpt2::cpu {

namespace {

inline float dot(const float* a, const float* b, int n) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

// out[r] = a · b_r for the rows b_r = b + r*stride, r < 4: four independent sums for ILP.
inline void dot4(const float* a, const float* b, size_t stride, int n, float* out) {
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
  const float *b0 = b, *b1 = b + stride, *b2 = b + 2 * stride, *b3 = b + 3 * stride;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (int i = 0; i < n; i++) {
    s0 += a[i] * b0[i];
    s1 += a[i] * b1[i];
    s2 += a[i] * b2[i];
    s3 += a[i] * b3[i];
  }
  out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}

// s[j] = a · (b + j*stride) for j < n, four at a time. The forward and the backward call it
// with the same a, b and n for the q·k scores, so both see bitwise the same scores.
inline void dots(const float* a, const float* b, size_t stride, int HS, int n, float* s) {
  int j = 0;
  for (; j + 4 <= n; j += 4) dot4(a, b + j * stride, stride, HS, s + j);
  for (; j < n; j++) s[j] = dot(a, b + j * stride, HS);
}

// The work of one (b, h): the OpenMP loops below hand whole heads to threads, so every sum
// has one fixed order. Compiled for AVX-512, AVX2 and baseline, picked at load time.
__attribute__((target_clones("avx512f", "avx2", "default"))) void head_forward(float* y, float* lse, float* s,
                                                                               const float* base, int T, int C, int HS,
                                                                               int h, float scale) {
  const size_t C3 = static_cast<size_t>(3) * C;
  for (int i = 0; i < T; i++) {
    const float* q = base + i * C3 + h * HS;
    dots(q, base + C + h * HS, C3, HS, i + 1, s);
    float mx = -INFINITY;
    for (int j = 0; j <= i; j++) {
      s[j] *= scale;
      mx = s[j] > mx ? s[j] : mx;
    }
    float sum = 0.0f;
    for (int j = 0; j <= i; j++) {
      s[j] = exp_fast(s[j] - mx);
      sum += s[j];
    }
    const float inv = 1.0f / sum;
    float* yo = y + static_cast<size_t>(i) * C + h * HS;
    for (int d = 0; d < HS; d++) yo[d] = 0.0f;
    for (int j = 0; j <= i; j++) {
      const float p = s[j] * inv;
      const float* v = base + j * C3 + 2 * C + h * HS;
#pragma omp simd
      for (int d = 0; d < HS; d++) yo[d] += p * v[d];
    }
    lse[i] = mx + std::log(sum);
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void head_backward(float* dbase, float* ds,
                                                                                const float* dy, const float* base,
                                                                                const float* y, const float* lrow,
                                                                                int T, int C, int HS, int h,
                                                                                float scale) {
  const size_t C3 = static_cast<size_t>(3) * C;
  // This (b,h) owns its q, k, v slices of dqkv: zero dk, dv; dq is written row by row.
  for (int t = 0; t < T; t++) {
    std::memset(dbase + t * C3 + C + h * HS, 0, sizeof(float) * HS);
    std::memset(dbase + t * C3 + 2 * C + h * HS, 0, sizeof(float) * HS);
  }
  for (int i = 0; i < T; i++) {
    const float* q = base + i * C3 + h * HS;
    const float* dyi = dy + static_cast<size_t>(i) * C + h * HS;
    const float Di = dot(dyi, y + static_cast<size_t>(i) * C + h * HS, HS);
    const float li = lrow[i];
    // ds (the scratch row) holds q·k_j, then ds_j; dp = dy·v_j is computed 64 keys at a time
    // on the stack.
    dots(q, base + C + h * HS, C3, HS, i + 1, ds);
    for (int j0 = 0; j0 <= i; j0 += 64) {
      const int n = i + 1 - j0 < 64 ? i + 1 - j0 : 64;
      float dp[64];
      dots(dyi, base + j0 * C3 + 2 * C + h * HS, C3, HS, n, dp);
      for (int jj = 0; jj < n; jj++) {
        const int j = j0 + jj;
        const float p = exp_fast(scale * ds[j] - li);
        ds[j] = p * (dp[jj] - Di);
        float* dv = dbase + j * C3 + 2 * C + h * HS;
#pragma omp simd
        for (int d = 0; d < HS; d++) dv[d] += p * dyi[d];
      }
    }
    float* dq = dbase + i * C3 + h * HS;
    for (int d = 0; d < HS; d++) dq[d] = 0.0f;
    for (int j = 0; j <= i; j++) {
      const float* k = base + j * C3 + C + h * HS;
      float* dk = dbase + j * C3 + C + h * HS;
      const float g = scale * ds[j];
#pragma omp simd
      for (int d = 0; d < HS; d++) {
        dq[d] += g * k[d];
        dk[d] += g * q[d];
      }
    }
  }
}

}  // namespace

void attention_forward(float* y, float* lse, float* scratch, const float* qkv, int B, int T, int C, int NH) {
  const int HS = C / NH;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; b++) {
    for (int h = 0; h < NH; h++) {
      const size_t bh = static_cast<size_t>(b) * NH + h;
      head_forward(y + static_cast<size_t>(b) * T * C, lse + bh * T, scratch + bh * T,
                   qkv + static_cast<size_t>(b) * T * 3 * C, T, C, HS, h, scale);
    }
  }
}

void attention_backward(float* dqkv, float* scratch, const float* dy, const float* qkv, const float* y,
                        const float* lse, int B, int T, int C, int NH) {
  const int HS = C / NH;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; b++) {
    for (int h = 0; h < NH; h++) {
      const size_t bh = static_cast<size_t>(b) * NH + h;
      const size_t off = static_cast<size_t>(b) * T;
      head_backward(dqkv + off * 3 * C, scratch + bh * T, dy + off * C, qkv + off * 3 * C, y + off * C, lse + bh * T, T,
                    C, HS, h, scale);
    }
  }
}

}  // namespace gpt2::cpu
