/*
 * AdamW with decoupled weight decay on the CPU — the maths of torch.optim.AdamW, written once in
 * kernels/shared/adamw_math.h (the element update and the stochastic rounding the CUDA kernel
 * uses too, so an optimizer step gives the same bits on either device).
 *
 * t is the 1-based step count (bias correction). The arrays are flat: one call covers every
 * tensor through a list of (offset, count, decay) ranges, one per tensor (ParamTensorSpec::
 * weight_decay gives the flag); elements outside every range (the padding between tensors) are
 * not touched. The threads split the ranges' elements into equal contiguous pieces, and each
 * element's result does not depend on the piece it falls in.
 *
 *   adamw_update_ranges   the CPU backend's step: fp32 parameters updated in place.
 *   adamw_update_master   the host optimizer of an offloaded run: fp32 master weights, m and v in
 *                         host memory, gradients in the run dtype (fp32, or bf16 bits); the updated
 *                         parameters go to params_out in the run dtype (bf16 by stochastic
 *                         rounding with (seed, t, index_base + element index)). For fp32,
 *                         params_out may be master itself.
 * Gradient rule: the optimizer reads grads, never writes them.
 */
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/shared/adamw_math.h"

namespace gpt2::cpu {

using AdamWParams = adamw::Params;
using AdamWRange = adamw::Range;

void adamw_update_ranges(float* params, const float* grads, float* m, float* v, const AdamWRange* ranges,
                         int num_ranges, const AdamWParams& hp);

void adamw_update_master(float* master, const float* grads, float* m, float* v, float* params_out,
                         const AdamWRange* ranges, int num_ranges, const AdamWParams& hp);
void adamw_update_master(float* master, const uint16_t* grads_bf16, float* m, float* v, uint16_t* params_out_bf16,
                         const AdamWRange* ranges, int num_ranges, const AdamWParams& hp, uint32_t seed,
                         uint64_t index_base);

}  // namespace gpt2::cpu
