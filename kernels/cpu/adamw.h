/*
 * AdamW with decoupled weight decay, fp32 params, grads, m, v — same maths as
 * torch.optim.AdamW:
 *
 *   g = grad * grad_scale                      (grad_scale = clip factor, 1 when not clipping)
 *   p = p * (1 - lr * weight_decay)            (decoupled decay; 2-D weights only)
 *   m = beta1 m + (1 - beta1) g
 *   v = beta2 v + (1 - beta2) g^2
 *   p = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 *
 * t is the 1-based step count (bias correction). Shapes: all arrays (n) — one tensor, or a
 * slice of the flat parameter buffer.
 *
 * Calling convention (the engine's choice of either):
 *   - adamw_update: one call per tensor; pass weight_decay = 0 for biases and LN gains/biases.
 *   - adamw_update_ranges: one call over the flat buffer with a list of (offset, count, decay)
 *     ranges, one per tensor (ParamTensorSpec::weight_decay gives the flag). Elements not covered
 *     by any range (alignment padding between tensors) are not touched.
 * Gradient rule: the optimizer reads grads, never writes them; params, m, v are updated.
 */
#pragma once
#include <cstddef>

namespace gpt2::cpu {

struct AdamWParams {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;  // applied only where a tensor/range asks for decay
  int t = 1;                  // 1-based step, for bias correction
  float grad_scale = 1.0f;    // multiplies every gradient (gradient clipping)
};

struct AdamWRange {
  size_t offset;  // element offset into the flat arrays
  size_t count;   // number of elements
  bool decay;     // apply weight decay (2-D weights) or not
};

// decay == false ignores hp.weight_decay for this call.
void adamw_update(float* params, const float* grads, float* m, float* v, size_t n, const AdamWParams& hp, bool decay);

void adamw_update_ranges(float* params, const float* grads, float* m, float* v, const AdamWRange* ranges,
                         int num_ranges, const AdamWParams& hp);

}  // namespace gpt2::cpu
