// LayerNorm forward/backward: see layernorm.h for the maths and the gradient rule.
#include "kernels/cpu/layernorm.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace gpt2::cpu {

namespace {

// The one normalisation routine: the forward and the recompute both call it, and it is kept
// out of line so both get the very same instructions (bitwise identical outputs).
__attribute__((noinline)) void normalise_row(float* out, const float* x, float mean, float rstd, const float* weight,
                                             const float* bias, int C) {
  for (int c = 0; c < C; c++) {
    const float n = (x[c] - mean) * rstd;
    out[c] = n * weight[c] + bias[c];
  }
}

}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight, const float* bias,
                       int B, int T, int C) {
  const int64_t N = static_cast<int64_t>(B) * T;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; i++) {
    const float* x = inp + i * C;
    // Statistics in double: cheap next to the matmuls, and keeps rstd exact to fp32 rounding
    // even when |mean| >> std.
    double s = 0.0;
    for (int c = 0; c < C; c++) s += x[c];
    const double m = s / C;
    double v = 0.0;
    for (int c = 0; c < C; c++) {
      const double d = x[c] - m;
      v += d * d;
    }
    v /= C;
    const float mf = static_cast<float>(m);
    const float rs = static_cast<float>(1.0 / std::sqrt(v + static_cast<double>(kLayerNormEps)));
    mean[i] = mf;
    rstd[i] = rs;
    normalise_row(out + i * C, x, mf, rs, weight, bias, C);
  }
}

void layernorm_recompute(float* out, const float* inp, const float* mean, const float* rstd, const float* weight,
                         const float* bias, int B, int T, int C) {
  const int64_t N = static_cast<int64_t>(B) * T;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; i++) {
    normalise_row(out + i * C, inp + i * C, mean[i], rstd[i], weight, bias, C);
  }
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int B, int T, int C) {
  const int64_t N = static_cast<int64_t>(B) * T;
  // Pass 1 (rows in parallel): dinp.
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; i++) {
    const float* x = inp + i * C;
    const float* d = dout + i * C;
    const float m = mean[i], rs = rstd[i];
    float* di = dinp + i * C;
    double sg = 0.0, sgx = 0.0;
    for (int c = 0; c < C; c++) {
      const float xh = (x[c] - m) * rs;
      const float g = d[c] * weight[c];
      sg += g;
      sgx += static_cast<double>(g) * xh;
    }
    const float mg = static_cast<float>(sg / C);
    const float mgx = static_cast<float>(sgx / C);
    for (int c = 0; c < C; c++) {
      const float xh = (x[c] - m) * rs;
      const float g = d[c] * weight[c];
      di[c] += rs * (g - mg - xh * mgx);
    }
  }
  // Pass 2 (channel slices in parallel, rows in ascending order): dweight, dbias.
  constexpr int kSlice = 64;
  const int nslices = (C + kSlice - 1) / kSlice;
#pragma omp parallel for schedule(static)
  for (int s = 0; s < nslices; s++) {
    const int c0 = s * kSlice, c1 = std::min(C, c0 + kSlice);
    float accw[kSlice], accb[kSlice];
    for (int c = 0; c < kSlice; c++) accw[c] = accb[c] = 0.0f;
    for (int64_t i = 0; i < N; i++) {
      const float* x = inp + i * C;
      const float* d = dout + i * C;
      const float m = mean[i], rs = rstd[i];
#pragma omp simd
      for (int c = c0; c < c1; c++) {
        accw[c - c0] += d[c] * ((x[c] - m) * rs);
        accb[c - c0] += d[c];
      }
    }
    for (int c = c0; c < c1; c++) {
      dweight[c] += accw[c - c0];
      dbias[c] += accb[c - c0];
    }
  }
}

}  // namespace gpt2::cpu
