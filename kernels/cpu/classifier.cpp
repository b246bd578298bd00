// Fused softmax + cross-entropy with dlogits written in place: see classifier.h.
#include "kernels/cpu/classifier.h"

#include <omp.h>

#include <cmath>
#include <cstddef>

#include "kernels/cpu/vec_math.h"

namespace gpt2::cpu {

namespace {

// One row: returns its loss; with grad, overwrites the row with dlogits. Vectorised (compiled
// for AVX-512, AVX2 and baseline, picked at load time). The exponentials are summed in double
// with 8 fixed lanes, so the order of the sum does not depend on the vector width.
__attribute__((target_clones("avx512f", "avx2", "default"))) float row_xent(float* row, int tgt, int V, int Vp,
                                                                            float dloss_scale, bool grad) {
  float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
  for (int v = 0; v < V; v++) mx = row[v] > mx ? row[v] : mx;
  // exp in float blocks of 64 (vectorised), then into 8 double lanes in a fixed pattern.
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int v0 = 0; v0 < V; v0 += 64) {
    const int n = V - v0 < 64 ? V - v0 : 64;
    alignas(64) float e[64];
#pragma omp simd
    for (int j = 0; j < n; j++) e[j] = exp_fast(row[v0 + j] - mx);
    for (int j = n; j < 64; j++) e[j] = 0.0f;
    for (int j = 0; j < 64; j += 8) {
#pragma omp simd
      for (int l = 0; l < 8; l++) lane[l] += static_cast<double>(e[j + l]);
    }
  }
  const double sum = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  const float loss = static_cast<float>(static_cast<double>(mx) + std::log(sum) - static_cast<double>(row[tgt]));
  if (grad) {
    const float inv = static_cast<float>(1.0 / sum);
#pragma omp simd
    for (int j = 0; j < V; j++) row[j] = dloss_scale * (exp_fast(row[j] - mx) * inv);
    row[tgt] -= dloss_scale;
    for (int j = V; j < Vp; j++) row[j] = 0.0f;
  }
  return loss;
}

}  // namespace

int64_t classifier_forward_backward(float* losses, float* logits, const int32_t* targets, int N, int V, int Vp,
                                    float dloss_scale, bool compute_grad) {
  // Validate first so a bad target leaves every buffer untouched (no partial writes, no UB).
  for (int i = 0; i < N; i++) {
    if (targets[i] < 0 || targets[i] >= V) return i;
  }
#pragma omp parallel for schedule(static)
  for (int i = 0; i < N; i++) {
    losses[i] = row_xent(logits + static_cast<size_t>(i) * Vp, targets[i], V, Vp, dloss_scale, compute_grad);
  }
  return -1;
}

}  // namespace gpt2::cpu
