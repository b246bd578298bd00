/*
 * Matmul with bias, fp32 — the CPU hot spot.
 *
 *   out[n,o] = bias[o] + sum_c inp[n,c] * weight[o,c]          out = inp · Wᵀ + b
 *
 * Shapes: inp (N,C), weight (OC,C) stored (out, in) like llm.c, bias (OC) or nullptr,
 * out (N,OC). N is the number of rows (B*T, or a chunk of tokens for the lm_head).
 *
 * Backward:
 *   dinp[n,c]    = sum_o dout[n,o] * weight[o,c]     (written; dinp may be nullptr to skip)
 *   dweight[o,c] += sum_n dout[n,o] * inp[n,c]       (accumulated)
 *   dbias[o]     += sum_n dout[n,o]                  (accumulated; nullptr to skip)
 *
 * Determinism: every output element is accumulated in one register, in ascending order of the
 * reduction index, starting from its initial value (bias or 0 for the forward, 0 for dinp, the
 * existing value for dweight/dbias). Blocking, threading and row counts only decide WHICH
 * elements a thread computes, never the order of a sum, so results are bitwise identical for any
 * thread count, and accumulating dweight over token chunks gives the same bits as one call over
 * all tokens. (The instruction set is picked at run time — AVX-512, AVX2+FMA or SSE2 — so bits
 * may differ between machines, never between runs on one machine.)
 *
 * Packing buffers are thread-local, grown on first use and reused: per thread an MC×KC block of
 * A (~0.3 MiB) and a K×NC block of B (capped at 32 MiB; 2.9 MiB for K = 1536).
 */
#pragma once

namespace gpt2::cpu {

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N, int C, int OC);

void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int C, int OC);

// The instruction set the matmul dispatched to on this machine ("avx512", "avx2", "sse2").
const char* matmul_isa();

// Tests and benchmarks only: forces the instruction set ("avx512", "avx2", "sse2", or "auto").
// Returns false (and changes nothing) when this CPU lacks it. Not thread-safe with matmuls.
bool matmul_force_isa(const char* name);

}  // namespace gpt2::cpu
