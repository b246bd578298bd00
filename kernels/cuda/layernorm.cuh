/*
 * LayerNorm over the last dimension, eps = 1e-5 (GPT-2). CPU twin: kernels/cpu/layernorm.h.
 *
 *   mean[i] = (1/C) sum_c x[i,c]
 *   rstd[i] = 1 / sqrt((1/C) sum_c (x[i,c] - mean[i])^2 + eps)        (two-pass, biased variance)
 *   out[i,c] = (x[i,c] - mean[i]) * rstd[i] * weight[c] + bias[c]
 *
 * Fused residual + layernorm forward (the residual stream update and the next norm in one pass):
 *   residual[i,c] = a[i,c] + b[i,c]     (rounded to the storage type and stored)
 *   out = LN(residual)                  (normalises the STORED values, exactly as the unfused
 *                                        residual_forward + layernorm_forward would)
 *
 * Backward, xhat = (x - mean) * rstd, g = dout * weight:
 *   dinp[i,c]  += rstd[i] * (g[i,c] - mean_c(g[i,:]) - xhat[i,c] * mean_c(g[i,:] * xhat[i,:]))
 *   dweight[c] += sum_i dout[i,c] * xhat[i,c]
 *   dbias[c]   += sum_i dout[i,c]
 * Gradient rule: parameters +=, and dinp is ADDED to as well (the residual gradient fusion, as
 * on the CPU: dinp is the residual stream's gradient buffer). Callers that want "=" zero it.
 *
 * Shapes: inp, out, dinp, dout, residual, a, b (N,C) with N = B*T rows; weight, bias, dweight,
 * dbias (C); mean, rstd (N) fp32. Storage bf16 or fp32, maths fp32.
 *
 * Layout: one thread block per row; each thread owns the same channels in every row
 * (16-byte vectors when C is a multiple of 16/sizeof(T), else scalars), so a row is read once into
 * registers and normalised from there. The block size is C/vector rounded up to a warp, at most
 * 1024; up to 4 vectors per thread. Limits: C <= 4096·(16/sizeof(T)) on the vector path (32768
 * bf16, 16384 fp32) and C <= 4096 on the scalar path. Beyond one vector per thread (C > 8192
 * bf16, > 4096 fp32) the backward spills registers: correct, slower; GPT-2 widths use one.
 *
 * Backward determinism: a fixed grid of G = min(N, 1024) blocks; block k owns a contiguous range
 * of rows and accumulates dweight/dbias for its channels in registers, in row order, then writes
 * its partial sums to `scratch` (G x 2C floats). A second kernel adds the G partials in a fixed
 * order into dweight/dbias. No atomics: bitwise reproducible. Scratch size:
 * layernorm_backward_scratch_floats(N, C) = min(N, 1024) * 2C floats (at most 2048·C).
 *
 * Recompute: layernorm_recompute writes `out` from the saved mean/rstd with the same rounding
 * sequence as the forward (explicitly rounded intrinsics), so it is bitwise equal to it.
 */
#pragma once
#include <cstddef>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/scratch_sizes.h"

namespace gpt2::cuda {

constexpr float kLayerNormEpsilon = 1e-5f;
// The backward's scratch: layernorm_backward_scratch_floats(N, C) (scratch_sizes.h).

// mean and rstd may be nullptr (not saved; inference).
void layernorm_forward(bf16* out, float* mean, float* rstd, const bf16* inp, const bf16* weight, const bf16* bias,
                       int N, int C, cudaStream_t stream);
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight, const float* bias,
                       int N, int C, cudaStream_t stream);

// residual = a + b (residual may alias a or b), out = LN(residual).
void residual_layernorm_forward(bf16* residual, bf16* out, float* mean, float* rstd, const bf16* a, const bf16* b,
                                const bf16* weight, const bf16* bias, int N, int C, cudaStream_t stream);
void residual_layernorm_forward(float* residual, float* out, float* mean, float* rstd, const float* a, const float* b,
                                const float* weight, const float* bias, int N, int C, cudaStream_t stream);

void layernorm_recompute(bf16* out, const bf16* inp, const float* mean, const float* rstd, const bf16* weight,
                         const bf16* bias, int N, int C, cudaStream_t stream);
void layernorm_recompute(float* out, const float* inp, const float* mean, const float* rstd, const float* weight,
                         const float* bias, int N, int C, cudaStream_t stream);

// scratch: device, layernorm_backward_scratch_floats(N, C) floats.
void layernorm_backward(bf16* dinp, bf16* dweight, bf16* dbias, float* scratch, const bf16* dout, const bf16* inp,
                        const bf16* weight, const float* mean, const float* rstd, int N, int C, cudaStream_t stream);
void layernorm_backward(float* dinp, float* dweight, float* dbias, float* scratch, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int N, int C, cudaStream_t stream);

}  // namespace gpt2::cuda
