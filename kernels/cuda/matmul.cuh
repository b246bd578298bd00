/*
 * Matmul with bias through cuBLASLt: bf16 (or fp32) storage, fp32 accumulate
 * (CUBLAS_COMPUTE_32F). CPU twin: kernels/cpu/matmul.h.
 *
 *   forward:   out[n,o] = bias[o] + sum_c inp[n,c] * weight[o,c]          out = inp · Wᵀ + b
 *              optional GELU: pre_gelu = inp · Wᵀ + b is stored, out = gelu(pre_gelu)
 *   backward:  dinp[n,c]    = sum_o dout[n,o] * weight[o,c]      (written; nullptr to skip)
 *              optional GELU backward: dinp = (dout · W) * gelu'(pre_gelu_of_inp)
 *              dweight[o,c] += sum_n dout[n,o] * inp[n,c]          (accumulated, beta = 1)
 *              dbias[o]     += sum_n dout[n,o]                     (accumulated; nullptr to skip)
 * Shapes: inp (N,C), weight (OC,C) stored (out,in), bias (OC), out/pre_gelu (N,OC),
 * dout (N,OC), dinp and the backward's pre_gelu (N,C). Gradient rule: parameters +=,
 * activations =.
 *
 * Row-major through a column-major library: a row-major (r,c) matrix is a column-major (c,r)
 * one, so every product is computed transposed:
 *   forward   outᵀ (OC,N) = W (OC,C)  · inpᵀ (C,N):   A = weight, op T; B = inp, op N
 *   dinp      dinpᵀ (C,N) = Wᵀ (C,OC) · doutᵀ (OC,N): A = weight, op N; B = dout, op N
 *   dweight   dWᵀ (C,OC)  = inpᵀ (C,N) · dout (N,OC): A = inp, op N;    B = dout, op T; beta 1
 *
 * Epilogues (fused where cuBLASLt has them; each checked with the heuristic, and when cuBLASLt
 * offers no algorithm the unfused path below runs instead, with the same result):
 *   forward:  CUBLASLT_EPILOGUE_BIAS, or GELU_AUX_BIAS (writes out = gelu(x) and aux = x) —
 *             unfused: BIAS into pre_gelu, then gelu_forward.
 *   dinp:     CUBLASLT_EPILOGUE_DGELU with aux = pre_gelu — unfused: plain GEMM, then
 *             gelu_backward in place.
 *   dbias:    CUBLASLT_EPILOGUE_BGRADB on the dweight GEMM (its B operand is dout, and the
 *             reduction runs over k = N). BGRAD epilogues WRITE (=) the bias gradient, while our
 *             rule is +=: so the epilogue writes into the context's bias scratch (storage type,
 *             OC elements) and a small kernel adds the scratch into dbias. Without a scratch, or
 *             when cuBLASLt declines, a deterministic column-sum kernel adds into dbias directly.
 * cuBLASLt's GELU is the tanh form, like ours.
 *
 * The context holds the handle, the plan's workspace (workspace.cublaslt) and the optional bias
 * scratch; it caches the heuristic's choice per shape, so the hot path does no search. Pointer
 * alignments are passed to the heuristic (a row offset into a buffer is not 256-aligned), and
 * they are part of the cache key. Determinism: cuBLAS gives bitwise-identical results run to run
 * for one toolkit, architecture and SM count, and we reuse one algorithm per problem; the
 * fallback kernels (bias add, column sums) have fixed summation orders.
 */
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/scratch_sizes.h"

namespace gpt2::cuda {

struct MatmulContext {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;  // the plan's workspace.cublaslt
  size_t workspace_bytes = 0;
  void* bias_scratch = nullptr;  // optional; matmul_bias_scratch_bytes(max OC) bytes (see below)
  size_t bias_scratch_bytes = 0;
  bool allow_fused_epilogues = true;  // false: always the unfused paths (tests compare both)

  struct Choice {
    bool supported = false;
    cublasLtMatmulAlgo_t algo{};
  };
  std::map<std::array<int64_t, 16>, Choice> cache;  // heuristic choice per problem (host only)
};

// Workspace and bias-gradient staging: kMatmulWorkspaceBytes, matmul_bias_scratch_bytes (scratch_sizes.h).

// Creates the cuBLASLt handle and stores the caller's buffers (no allocation of device memory).
void matmul_context_init(MatmulContext& ctx, void* workspace, size_t workspace_bytes, void* bias_scratch,
                         size_t bias_scratch_bytes);
void matmul_context_destroy(MatmulContext& ctx);

// bias and pre_gelu may be nullptr. With pre_gelu: pre_gelu = inp·Wᵀ + b, out = gelu(pre_gelu).
void matmul_forward(MatmulContext& ctx, bf16* out, bf16* pre_gelu, const bf16* inp, const bf16* weight,
                    const bf16* bias, int N, int C, int OC, cudaStream_t stream);
void matmul_forward(MatmulContext& ctx, float* out, float* pre_gelu, const float* inp, const float* weight,
                    const float* bias, int N, int C, int OC, cudaStream_t stream);

// dinp, dbias and pre_gelu may be nullptr. pre_gelu (N,C): the GELU input whose output was `inp`;
// with it, dinp receives the gradient with respect to pre_gelu (GELU backward fused).
void matmul_backward(MatmulContext& ctx, bf16* dinp, bf16* dweight, bf16* dbias, const bf16* dout, const bf16* inp,
                     const bf16* weight, const bf16* pre_gelu, int N, int C, int OC, cudaStream_t stream);
void matmul_backward(MatmulContext& ctx, float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, const float* pre_gelu, int N, int C, int OC, cudaStream_t stream);

// A plain D = op(A)·op(B) (+ beta·D) in the storage type, column-major, for the benchmark's GEMM
// ceiling and for tests. m, n, k and leading dimensions as in cuBLAS.
void matmul_raw(MatmulContext& ctx, bf16* D, const bf16* A, const bf16* B, int m, int n, int k, bool transA,
                bool transB, float beta, cudaStream_t stream);

}  // namespace gpt2::cuda
