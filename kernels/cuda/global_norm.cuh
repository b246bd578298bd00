/*
 * Squared L2 norm of the gradients, deterministic:  out = sum_i x[i]^2.  CPU twin:
 * kernels/cpu/global_norm.h. Used for gradient clipping (adamw.cuh can read `out` directly).
 *
 * Two passes, no atomics:
 *   1. G = min(kGlobalNormMaxBlocks, ceil(n / 4096)) blocks (G depends only on n) stride over x
 *      with 16-byte loads; each thread sums squares of a vector in fp32 and accumulates the vector
 *      sums in fp64; the block's threads are reduced in a fixed tree and block k writes its
 *      double to partials[k] (the plan's workspace.norm_partials, viewed as doubles).
 *   2. one warp adds the G partials in a fixed order and writes the float result to *out.
 * Bitwise identical from run to run. Storage bf16 or fp32 (the gradient dtype).
 *
 * Buffers: partials needs 2·kGlobalNormMaxBlocks floats (= 1024 = kNormPartialsFloats), 8-byte
 * aligned; out is one device float (e.g. a float of its own, or any other device scalar).
 * Under ZeRO-1 call it on the rank's shard and all-reduce *out (sum) before taking the sqrt.
 */
#pragma once
#include <cstddef>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/scratch_sizes.h"

namespace gpt2::cuda {

// partials: kGlobalNormPartialsFloats (scratch_sizes.h).

void global_norm_squared(float* out, float* partials, const bf16* x, size_t n, cudaStream_t stream);
void global_norm_squared(float* out, float* partials, const float* x, size_t n, cudaStream_t stream);

}  // namespace gpt2::cuda
