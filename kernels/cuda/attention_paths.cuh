// The attention paths behind the public entry points of attention.cu (declared in attention.cuh):
// the launchers of the flash kernels (attention_flash_forward.cu, attention_flash_backward.cu) and
// of the simple kernels (attention_simple.cu), and what the two flash files share. Not for use
// outside kernels/cuda/attention*.cu: the launchers take arguments attention.cu has already
// checked (shape, null pointers, and for the flash path HS ∈ {64, 128} and 16-byte alignment),
// and the backward ones take D = dy·y, which attention.cu computes first (row_dot_kernel).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "kernels/cuda/common.cuh"

namespace gpt2::cuda::attn {

constexpr float kLog2e = 1.4426950408889634f;

// Lets `kernel` launch with `bytes` of dynamic shared memory: above 48 KB a kernel must opt in.
// The launchers call it before every launch, so it holds on whichever device is current.
template <typename Kernel>
void set_dynamic_smem(Kernel kernel, size_t bytes) {
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

// ---- Flash path: bf16, HS 64 or 128 ---------------------------------------------------------
void flash_forward(bf16* y, float* lse, const bf16* qkv, int B, int T, int NH, int HS, cudaStream_t stream);
// D: B·NH·T floats, dy_i · y_i (scratch_att).
void flash_backward(bf16* dqkv, const float* D, const bf16* dy, const bf16* qkv, const float* lse, int B, int T, int NH,
                    int HS, cudaStream_t stream);

// ---- Simple path: any storage type, any HS ≤ kMaxAttentionHeadSize ---------------------------
void simple_forward(bf16* y, float* lse, const bf16* qkv, int B, int T, int NH, int HS, cudaStream_t stream);
void simple_forward(float* y, float* lse, const float* qkv, int B, int T, int NH, int HS, cudaStream_t stream);
void simple_backward(bf16* dqkv, const float* D, const bf16* dy, const bf16* qkv, const float* lse, int B, int T,
                     int NH, int HS, cudaStream_t stream);
void simple_backward(float* dqkv, const float* D, const float* dy, const float* qkv, const float* lse, int B, int T,
                     int NH, int HS, cudaStream_t stream);

// ---- Shared by the flash kernels -------------------------------------------------------------

// The head a CTA works on (grid.x = B·NH, blockIdx.x = b·NH + h) and its slices: q, k, v point at
// token 0 of head h of batch b in qkv (B, T, 3, NH, HS), token stride C3 = 3C. (In y, dy
// (B, T, NH, HS) the head's token stride is C.)
struct FlashHead {
  int bh, b, h, C;
  size_t bT, C3;  // bT = b·T: the batch's first token
  const bf16* q;
  const bf16* k;
  const bf16* v;
};
template <int HS>
__device__ __forceinline__ FlashHead flash_head(const bf16* qkv, int T, int NH) {
  const int bh = blockIdx.x, b = bh / NH, h = bh % NH;
  const int C = NH * HS;
  const size_t bT = static_cast<size_t>(b) * T, C3 = 3 * static_cast<size_t>(C);
  const bf16* q = qkv + bT * C3 + h * HS;
  return {bh, b, h, C, bT, C3, q, q + C, q + 2 * C};
}

}  // namespace gpt2::cuda::attn
