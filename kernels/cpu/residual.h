/*
 * Residual add, fp32, elementwise over N = B*T*C values:   out = a + b
 *
 * Backward: the gradient is the identity, d a = d b = dout. There is no residual_backward
 * kernel in the model sequence: the skip-connection gradient is fused into layernorm_backward,
 * which ADDS into its dinp (the residual stream's gradient buffer); see layernorm.h.
 * add_inplace is provided for the rare caller that needs the add explicitly.
 */
#pragma once
#include <cstddef>

namespace gpt2::cpu {

// out may alias a or b.
void residual_forward(float* out, const float* a, const float* b, size_t N);

// dst[i] += src[i]   (an accumulation, e.g. of a residual gradient).
void add_inplace(float* dst, const float* src, size_t N);

}  // namespace gpt2::cpu
