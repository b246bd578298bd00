/*
 * Causal multi-head self-attention, fp32, in tiles of queries and keys (no T×T matrix), saving the
 * per-row logsumexp: the same contract as the GPU flash kernel.
 *
 * Layouts: qkv (B,T,3C) viewed as (B,T,3,NH,HS) = [q | k | v]; y (B,T,C) viewed as
 * (B,T,NH,HS); lse (B,NH,T); scratch: B*NH*T floats (attention_scratch_floats), caller-owned.
 * HS = C/NH, scale = 1/sqrt(HS).
 *
 *   s[i,j]  = scale * q_i · k_j                 for j <= i   (causal)
 *   lse[i]  = log sum_{j<=i} exp(s[i,j])
 *   p[i,j]  = exp(s[i,j] - lse[i])
 *   y_i     = sum_{j<=i} p[i,j] v_j
 *
 * Backward (recomputes p from q, k and lse; D_i = dy_i · y_i, kept in the scratch):
 *   dp[i,j] = dy_i · v_j        ds[i,j] = p[i,j] (dp[i,j] - D_i)
 *   dq_i = scale * sum_{j<=i} ds[i,j] k_j
 *   dk_j = scale * sum_{i>=j} ds[i,j] q_i
 *   dv_j = sum_{i>=j} p[i,j] dy_i
 * dqkv (B,T,3C) is written (=), every element of it.
 *
 * How (attention.cpp): flash-style tiles of 96 positions (48 for HS 65..128) whose products
 * (q·kᵀ, p·v and the five of the backward) run on the matmul's register-blocked GEMM micro-kernel
 * (gemm_microkernel.h), with an online softmax in the forward. The forward's threads take
 * (b, h, query tile) tasks, the backward's whole (b, h) heads; every sum runs in an order fixed by
 * the tiling, so results are deterministic and bitwise independent of the thread count. The tiles
 * live on the calling thread's stack (about 140 KiB in the forward, 300 KiB in the backward);
 * nothing is allocated. Head sizes past 128 take a row-by-row kernel with the same contract.
 */
#pragma once
#include <cstddef>

namespace gpt2::cpu {

inline size_t attention_scratch_floats(int B, int T, int NH) { return static_cast<size_t>(B) * NH * T; }

void attention_forward(float* y, float* lse, float* scratch, const float* qkv, int B, int T, int C, int NH);

void attention_backward(float* dqkv, float* scratch, const float* dy, const float* qkv, const float* y,
                        const float* lse, int B, int T, int C, int NH);

}  // namespace gpt2::cpu
