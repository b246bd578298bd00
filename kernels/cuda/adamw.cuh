/*
 * AdamW with decoupled weight decay over all parameters in ONE launch. The element update and the
 * stochastic rounding are kernels/shared/adamw_math.h's, which the CPU kernel (kernels/cpu/adamw.h)
 * uses too: the same hyperparameter struct, range list and bits. The gradient is scaled by
 * grad_scale * clip (clip: see below; 1 when not clipping).
 *
 * Modes (T = the parameter/gradient storage type, the run dtype):
 *   - master != nullptr: p is the fp32 master weight (read and written), and params (T) receives
 *     a copy of it; for bf16 params the copy uses stochastic rounding.
 *   - master == nullptr: p is read from params and written back (fp32 runs; or bf16 without
 *     master weights, again with stochastic rounding).
 * Stochastic rounding adds a 16-bit pseudo-random number, from a hash of (seed, t, element
 * index), to the fp32 bits before truncating to bf16: unbiased, and the same bits on every run
 * (deterministic), independent of the launch shape.
 *
 * Ranges: the caller passes the 16 tensor ranges (offset, count, decay) of the flat buffers,
 * up to kAdamWMaxRanges, by value in the kernel arguments. Elements outside every range (the
 * padding between tensors) are not touched. All pointers point at element 0 of the slice the
 * offsets index (under ZeRO-1: params + shard start, the rank's own master/m/v), and
 * index_base is the flat index of that element0 (the shard start), so stochastic rounding does
 * not depend on the sharding. Preconditions: offsets multiples of 4 (the plan aligns tensors to
 * 128 elements), pointers 16-byte aligned; counts can be anything (scalar tail).
 *
 * Clipping without a host round trip: if grad_norm_sq (device, e.g. global_norm_squared's output)
 * is given and max_grad_norm > 0, clip = min(1, max_grad_norm / sqrt(*grad_norm_sq)); the kernel
 * reads it itself. Otherwise clip = 1 and hp.grad_scale alone scales the gradients.
 * Gradient rule: gradients are read, never written; params, master, m, v are updated.
 */
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/common.cuh"
#include "kernels/shared/adamw_math.h"

namespace gpt2::cuda {

using AdamWParams = ::gpt2::adamw::Params;
using AdamWRange = ::gpt2::adamw::Range;

constexpr int kAdamWMaxRanges = 32;

void adamw_update(bf16* params, float* master, const bf16* grads, float* m, float* v, const AdamWRange* ranges,
                  int num_ranges, const AdamWParams& hp, uint32_t seed, size_t index_base, const float* grad_norm_sq,
                  float max_grad_norm, cudaStream_t stream);
void adamw_update(float* params, float* master, const float* grads, float* m, float* v, const AdamWRange* ranges,
                  int num_ranges, const AdamWParams& hp, uint32_t seed, size_t index_base, const float* grad_norm_sq,
                  float max_grad_norm, cudaStream_t stream);

// The stochastic rounding the kernel applies, exposed so tests can recompute it on the host:
// the bf16 bits written for fp32 value x at flat element index `index`.
uint16_t adamw_stochastic_round_bits(float x, uint32_t seed, int t, uint64_t index);

}  // namespace gpt2::cuda
