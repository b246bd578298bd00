/*
 * Squared L2 norm of a float array, deterministic:  sum_i x[i]^2
 *
 * The array is cut into kGlobalNormBlocks fixed blocks whose boundaries depend only on n; each
 * block is summed in double with a fixed lane order, and the block sums are added in order.
 * The result is bitwise identical for any thread count. Shapes: x (n), e.g. the flat gradient
 * buffer (or one rank's shard: add the per-shard squares in rank order, then sqrt).
 */
#pragma once
#include <cstddef>

namespace gpt2::cpu {

constexpr int kGlobalNormBlocks = 256;

double global_norm_squared(const float* x, size_t n);

// sqrt(global_norm_squared(x, n)), as a float.
float global_norm(const float* x, size_t n);

}  // namespace gpt2::cpu
