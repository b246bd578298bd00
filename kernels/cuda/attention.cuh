// Causal multi-head self-attention on the GPU: flash-style forward and backward with no T×T
// buffer. The maths and determinism are at the top of attention.cu (these entry points), the
// kernels in attention_flash_forward.cu, attention_flash_backward.cu and attention_simple.cu, the
// tiling and fragment layouts in mma.cuh; ATTENTION.md is the summary.
//
// Layouts (the shape letters are the project's usual ones; C = NH·HS):
//   qkv   (B, T, 3, NH, HS)  = (B, T, 3C): q at [0,C), k at [C,2C), v at [2C,3C) of each token
//   y     (B, T, NH, HS)     = (B, T, C)
//   lse   (B, NH, T) fp32    natural-log logsumexp of the scaled scores of each query row
//   dy    (B, T, NH, HS)
//   dqkv  (B, T, 3C)         written (=), every element
//   scratch_att (B, NH, T) fp32: the plan's `scratch.att`; backward only (D_i = dy_i · y_i)
//
// Supported: any head size 1 ≤ HS ≤ kMaxAttentionHeadSize (256, scratch_sizes.h); any T ≥ 1 (no
// tile divisibility needed); any B, NH.
// Storage: bf16 at HS 64 and 128 runs the tensor-core (mma.sync) kernels; fp32, and bf16 at any
// other head size, run the simple scalar kernels (one warp per query or key row, fp32 maths; a
// row's cost grows with T·HS, with no data reuse between rows: far slower than the tensor-core
// kernels, meant for small experiments). The simple kernels also take bf16 at 64 and 128, to
// cross-check the tensor-core path; defining GPT2_ATTENTION_SIMPLE at build time routes bf16 to
// them too.
// No launcher allocates device memory.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/scratch_sizes.h"

namespace gpt2::cuda {

// Backward scratch: attention_scratch_floats(B, T, NH) (scratch_sizes.h; the plan's `scratch.att`).

// Forward: y, lse ← attention(qkv). Writes y for every (b, t < T, h) and lse for every (b, h, t < T).
void attention_forward(bf16* y, float* lse, const bf16* qkv, int B, int T, int NH, int HS, cudaStream_t stream);
void attention_forward(float* y, float* lse, const float* qkv, int B, int T, int NH, int HS, cudaStream_t stream);

// Backward: dqkv = d(loss)/d(qkv), given dy, the forward's inputs qkv and its outputs y, lse.
// scratch_att: B·NH·T floats, overwritten. Deterministic: no atomics, fixed summation order.
void attention_backward(bf16* dqkv, float* scratch_att, const bf16* dy, const bf16* qkv, const bf16* y,
                        const float* lse, int B, int T, int NH, int HS, cudaStream_t stream);
void attention_backward(float* dqkv, float* scratch_att, const float* dy, const float* qkv, const float* y,
                        const float* lse, int B, int T, int NH, int HS, cudaStream_t stream);

// The simple scalar kernels (one warp per row, no tensor cores), same contract as above. They are
// what the fp32 overloads run; the bf16 overloads exist for tests that cross-check the
// tensor-core path.
void attention_forward_simple(bf16* y, float* lse, const bf16* qkv, int B, int T, int NH, int HS, cudaStream_t stream);
void attention_forward_simple(float* y, float* lse, const float* qkv, int B, int T, int NH, int HS,
                              cudaStream_t stream);
void attention_backward_simple(bf16* dqkv, float* scratch_att, const bf16* dy, const bf16* qkv, const bf16* y,
                               const float* lse, int B, int T, int NH, int HS, cudaStream_t stream);
void attention_backward_simple(float* dqkv, float* scratch_att, const float* dy, const float* qkv, const float* y,
                               const float* lse, int B, int T, int NH, int HS, cudaStream_t stream);

}  // namespace gpt2::cuda
