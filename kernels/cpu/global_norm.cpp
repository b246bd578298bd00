// Deterministic squared L2 norm: see global_norm.h.
#include "kernels/cpu/global_norm.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

namespace gpt2::cpu {

double global_norm_squared(const float* x, size_t n) {
  // Block boundaries depend only on n (a multiple of 8 per block, so the 8-lane pattern is the
  // same in every block); the block sums are combined in index order after the parallel loop.
  const size_t per = ((n + kGlobalNormBlocks - 1) / kGlobalNormBlocks + 7) / 8 * 8;
  double partial[kGlobalNormBlocks];
#pragma omp parallel for schedule(static)
  for (int blk = 0; blk < kGlobalNormBlocks; blk++) {
    const size_t b0 = std::min(n, blk * per), b1 = std::min(n, b0 + per);
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = b0;
    for (; i + 8 <= b1; i += 8) {
#pragma omp simd
      for (int l = 0; l < 8; l++) {
        const double d = x[i + l];
        lane[l] += d * d;
      }
    }
    for (int l = 0; i < b1; i++, l++) {
      const double d = x[i];
      lane[l] += d * d;
    }
    partial[blk] = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  }
  double total = 0.0;
  for (int blk = 0; blk < kGlobalNormBlocks; blk++) total += partial[blk];
  return total;
}

float global_norm(const float* x, size_t n) { return static_cast<float>(std::sqrt(global_norm_squared(x, n))); }

}  // namespace gpt2::cpu
