// Token + position embedding: see encoder.h for the maths and the gradient rule.
#include "kernels/cpu/encoder.h"

#include <omp.h>

#include <algorithm>
#include <cstddef>

namespace gpt2::cpu {

int64_t encoder_check_tokens(const int32_t* tokens, int64_t n, int V) {
  for (int64_t i = 0; i < n; i++) {
    if (tokens[i] < 0 || tokens[i] >= V) return i;
  }
  return -1;
}

void encoder_forward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int B, int T, int C) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; b++) {
    for (int t = 0; t < T; t++) {
      float* o = out + (static_cast<size_t>(b) * T + t) * C;
      const float* we = wte + static_cast<size_t>(tokens[b * T + t]) * C;
      const float* pe = wpe + static_cast<size_t>(t) * C;
#pragma omp simd
      for (int c = 0; c < C; c++) o[c] = we[c] + pe[c];
    }
  }
}

void encoder_backward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int B, int T, int C) {
  // Threads own disjoint channel slices; each walks (b,t) in ascending order, so every
  // dwte/dwpe element receives its contributions in the same order whatever the thread count.
  constexpr int kSlice = 64;
  const int nslices = (C + kSlice - 1) / kSlice;
#pragma omp parallel for schedule(static)
  for (int s = 0; s < nslices; s++) {
    const int c0 = s * kSlice, c1 = std::min(C, c0 + kSlice);
    for (int b = 0; b < B; b++) {
      for (int t = 0; t < T; t++) {
        const float* d = dout + (static_cast<size_t>(b) * T + t) * C;
        float* dwe = dwte + static_cast<size_t>(tokens[b * T + t]) * C;
        float* dpe = dwpe + static_cast<size_t>(t) * C;
#pragma omp simd
        for (int c = c0; c < c1; c++) {
          dwe[c] += d[c];
          dpe[c] += d[c];
        }
      }
    }
  }
}

}  // namespace gpt2::cpu
