/*
 * Residual add, elementwise over N = B*T*C values (CPU twin: kernels/cpu/residual.h):
 *
 *   out = a + b            (out may alias a or b)
 *   dst += src             (add_inplace: an explicit gradient accumulation)
 *
 * Storage bf16 or fp32, maths fp32 (one rounding per output). There is no residual backward in
 * the model: the skip-connection gradient is fused into layernorm_backward, which ADDS into its
 * dinp. The residual add is also fused into the next layernorm (residual_layernorm_forward in
 * layernorm.cuh); this kernel is the unfused path. Any N; pointers 16-byte aligned.
 */
#pragma once
#include <cstddef>

#include "kernels/cuda/common.cuh"

namespace gpt2::cuda {

void residual_forward(bf16* out, const bf16* a, const bf16* b, size_t N, cudaStream_t stream);
void residual_forward(float* out, const float* a, const float* b, size_t N, cudaStream_t stream);

void add_inplace(bf16* dst, const bf16* src, size_t N, cudaStream_t stream);
void add_inplace(float* dst, const float* src, size_t N, cudaStream_t stream);

}  // namespace gpt2::cuda
