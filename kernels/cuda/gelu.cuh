/*
 * GELU, GPT-2's tanh approximation, elementwise over N = B*T*4C values (CPU twin: kernels/cpu/gelu.h).
 *
 *   gelu(x)  = 0.5 x (1 + tanh(u)),   u = sqrt(2/pi) (x + 0.044715 x^3)
 *   gelu'(x) = 0.5 (1 + tanh(u)) + 0.5 x (1 - tanh(u)^2) sqrt(2/pi) (1 + 3*0.044715 x^2)
 *
 * Storage bf16 or fp32, maths fp32. Gradient rule: dinp = dout * gelu'(inp) is written (=);
 * dinp may alias dout (in place). Any N; pointers 16-byte aligned (the plan aligns to 256).
 * In the model the forward is usually fused into the fc matmul's epilogue (matmul.cuh); these
 * kernels are the unfused path and the recompute path.
 */
#pragma once
#include <cstddef>

#include "kernels/cuda/common.cuh"

namespace gpt2::cuda {

void gelu_forward(bf16* out, const bf16* inp, size_t N, cudaStream_t stream);
void gelu_forward(float* out, const float* inp, size_t N, cudaStream_t stream);

void gelu_backward(bf16* dinp, const bf16* inp, const bf16* dout, size_t N, cudaStream_t stream);
void gelu_backward(float* dinp, const float* inp, const float* dout, size_t N, cudaStream_t stream);

}  // namespace gpt2::cuda
