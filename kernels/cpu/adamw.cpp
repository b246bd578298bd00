// AdamW (torch.optim.AdamW maths): see adamw.h.
#include "kernels/cpu/adamw.h"

#include <omp.h>

#include <cmath>

namespace gpt2::cpu {

void adamw_update(float* params, const float* grads, float* m, float* v, size_t n, const AdamWParams& hp, bool decay) {
  // Scalars in double then rounded once, as PyTorch does with its Python-float step size.
  const double bc1 = 1.0 - std::pow(static_cast<double>(hp.beta1), hp.t);
  const double bc2 = 1.0 - std::pow(static_cast<double>(hp.beta2), hp.t);
  const float step_size = static_cast<float>(hp.lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float decay_factor = decay ? 1.0f - hp.lr * hp.weight_decay : 1.0f;
  const float b1 = hp.beta1, b2 = hp.beta2, eps = hp.eps, gs = hp.grad_scale;
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; i++) {
    const float g = grads[i] * gs;
    const float p = params[i] * decay_factor;
    const float mi = b1 * m[i] + (1.0f - b1) * g;
    const float vi = b2 * v[i] + (1.0f - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    params[i] = p - step_size * (mi / (std::sqrt(vi) / bc2_sqrt + eps));
  }
}

void adamw_update_ranges(float* params, const float* grads, float* m, float* v, const AdamWRange* ranges,
                         int num_ranges, const AdamWParams& hp) {
  for (int r = 0; r < num_ranges; r++) {
    const size_t o = ranges[r].offset;
    adamw_update(params + o, grads + o, m + o, v + o, ranges[r].count, hp, ranges[r].decay);
  }
}

}  // namespace gpt2::cpu
