/*
 * Single-query causal attention for incremental decoding (sampling with a KV cache). CPU twin:
 * kernels/cpu/attention_decode.h (same contract).
 *
 * qkv (T, 3C) viewed as (T, 3, NH, HS): rows 0..pos hold the cached keys and values, row pos
 * also the new query. y (C) viewed as (NH, HS) is the output row of position pos.
 *   s[j] = scale · q_pos · k_j (j <= pos),  y = Σ_j softmax(s)[j] v_j,  scale = 1/sqrt(HS)
 * One block per head: threads compute the scores (into scratch, NH·(pos+1) floats), a block
 * max and sum, then each thread owns output dimensions. fp32 maths; bf16 or fp32 storage.
 * Cost O(pos · C) per call, which is what a decoding step needs; no T×T anything.
 */
#pragma once
#include "kernels/cuda/common.cuh"

namespace gpt2::cuda {

void attention_decode(bf16* y, float* scratch, const bf16* qkv, int pos, int C, int NH, cudaStream_t stream);
void attention_decode(float* y, float* scratch, const float* qkv, int pos, int C, int NH, cudaStream_t stream);

}  // namespace gpt2::cuda
