/*
 * Causal multi-head self-attention: the public entry points of attention.cuh. They check the
 * arguments, compute D = dy·y for the backward (row_dot_kernel, below) and hand over to one of two
 * paths, whose kernels and launchers live in their own files (declared in attention_paths.cuh):
 *   flash (tensor-core) path, bf16 at HS 64 and 128:  attention_flash_forward.cu,
 *                                                     attention_flash_backward.cu
 *   simple (one warp per row) path, everything else:  attention_simple.cu
 * Each launcher sits with its kernels, because a kernel's grid, block and shared memory follow
 * from its tile parameters; this file keeps what both paths share: the checks, the path choice and
 * the D pass. The tile primitives the flash kernels use are in mma.cuh.
 *
 * Shapes (C = NH·HS, any T ≥ 1):
 *   qkv (B,T,3C) viewed as (B,T,3,NH,HS); y, dy (B,T,NH,HS); lse (B,NH,T) fp32;
 *   dqkv (B,T,3C), written (=) in full; scratch_att (B,NH,T) fp32 (backward only: D).
 *
 * Maths, per (b, h), with scale = 1/sqrt(HS) and j ≤ i (causal):
 *   s_ij = scale·q_i·k_j     lse_i = log Σ_j exp(s_ij)     p_ij = exp(s_ij − lse_i)
 *   y_i  = Σ_j p_ij v_j
 *   D_i  = dy_i · y_i        dp_ij = dy_i · v_j            ds_ij = p_ij (dp_ij − D_i)
 *   dq_i = scale Σ_j ds_ij k_j     dk_j = scale Σ_i ds_ij q_i     dv_j = Σ_i p_ij dy_i
 * Activation gradients are written (=), never accumulated. The backward recomputes P from q, k and
 * lse: nothing T×T is ever stored.
 *
 * Determinism: no atomics in either path; every output element is produced by one thread with a
 * fixed summation order, so the backward is bitwise reproducible run to run.
 *
 * Precision: the flash kernels take bf16 inputs, accumulate every matmul in fp32 and keep the
 * softmax statistics in fp32; P and dS are rounded to bf16 only as tensor-core operands (as
 * FlashAttention does). The simple kernels do all their maths in fp32. Extra device memory: none
 * beyond scratch_att.
 */
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attention_paths.cuh"

#include <cstddef>

namespace gpt2::cuda {

namespace {

// D[b,h,t] = dy[b,t,h,:] · y[b,t,h,:], one warp per (b, t, h) row, fp32 maths.
template <typename S>
__global__ void __launch_bounds__(128) row_dot_kernel(float* __restrict__ D, const S* __restrict__ dy,
                                                      const S* __restrict__ y, int B, int T, int NH, int HS) {
  const size_t row = static_cast<size_t>(blockIdx.x) * 4 + threadIdx.x / 32;  // (b·T + t)·NH + h
  const int lane = threadIdx.x % 32;
  if (row >= static_cast<size_t>(B) * T * NH) return;
  const int h = static_cast<int>(row % NH);
  const size_t bt = row / NH;
  const int b = static_cast<int>(bt / T), t = static_cast<int>(bt % T);
  float acc = 0.f;
  for (int d = lane; d < HS; d += 32) acc += to_float(dy[row * HS + d]) * to_float(y[row * HS + d]);
  acc = warp_sum(acc);
  if (lane == 0) D[(static_cast<size_t>(b) * NH + h) * T + t] = acc;
}

template <typename S>
void launch_row_dot(float* D, const S* dy, const S* y, int B, int T, int NH, int HS, cudaStream_t stream) {
  const size_t rows = static_cast<size_t>(B) * T * NH;
  GPT2_REQUIRE(CEIL_DIV(rows, 4) <= 0x7fffffffULL);
  CUDA_CHECK(
      launch(row_dot_kernel<S>, static_cast<unsigned>(CEIL_DIV(rows, 4)), 128, 0, stream, D, dy, y, B, T, NH, HS));
}

void check_shape(int B, int T, int NH, int HS) {
  GPT2_REQUIRE(HS >= 1 && HS <= kMaxAttentionHeadSize);
  GPT2_REQUIRE(B >= 1 && T >= 1 && NH >= 1);
  GPT2_REQUIRE(static_cast<long long>(B) * NH <= 0x7fffffffLL);  // grid.x
  GPT2_REQUIRE(CEIL_DIV(T, 4) <= 65535);                         // grid.y of the simple kernels
}

// Whether bf16 at head size HS takes the flash path: HS 64 or 128, unless the build routes every
// bf16 call to the simple kernels (GPT2_ATTENTION_SIMPLE, for debugging).
bool use_flash(int HS) {
#ifdef GPT2_ATTENTION_SIMPLE
  (void)HS;
  return false;
#else
  return HS == 64 || HS == 128;
#endif
}

template <typename S>
void simple_forward(S* y, float* lse, const S* qkv, int B, int T, int NH, int HS, cudaStream_t stream) {
  check_shape(B, T, NH, HS);
  GPT2_REQUIRE(y && lse && qkv);
  attn::simple_forward(y, lse, qkv, B, T, NH, HS, stream);
}

template <typename S>
void simple_backward(S* dqkv, float* scratch_att, const S* dy, const S* qkv, const S* y, const float* lse, int B, int T,
                     int NH, int HS, cudaStream_t stream) {
  check_shape(B, T, NH, HS);
  GPT2_REQUIRE(dqkv && scratch_att && dy && qkv && y && lse);
  launch_row_dot<S>(scratch_att, dy, y, B, T, NH, HS, stream);
  attn::simple_backward(dqkv, scratch_att, dy, qkv, lse, B, T, NH, HS, stream);
}

}  // namespace

void attention_forward(bf16* y, float* lse, const bf16* qkv, int B, int T, int NH, int HS, cudaStream_t stream) {
  if (!use_flash(HS)) return simple_forward<bf16>(y, lse, qkv, B, T, NH, HS, stream);
  check_shape(B, T, NH, HS);
  GPT2_REQUIRE(y && lse && qkv);
  GPT2_REQUIRE(is_aligned16(y) && is_aligned16(qkv));  // 16-byte cp.async / stores; C = NH·HS keeps rows aligned
  attn::flash_forward(y, lse, qkv, B, T, NH, HS, stream);
}

void attention_forward(float* y, float* lse, const float* qkv, int B, int T, int NH, int HS, cudaStream_t stream) {
  simple_forward<float>(y, lse, qkv, B, T, NH, HS, stream);
}

void attention_backward(bf16* dqkv, float* scratch_att, const bf16* dy, const bf16* qkv, const bf16* y,
                        const float* lse, int B, int T, int NH, int HS, cudaStream_t stream) {
  if (!use_flash(HS)) return simple_backward<bf16>(dqkv, scratch_att, dy, qkv, y, lse, B, T, NH, HS, stream);
  check_shape(B, T, NH, HS);
  GPT2_REQUIRE(dqkv && scratch_att && dy && qkv && y && lse);
  GPT2_REQUIRE(is_aligned16(dqkv) && is_aligned16(dy) && is_aligned16(qkv));
  launch_row_dot<bf16>(scratch_att, dy, y, B, T, NH, HS, stream);
  attn::flash_backward(dqkv, scratch_att, dy, qkv, lse, B, T, NH, HS, stream);
}

void attention_backward(float* dqkv, float* scratch_att, const float* dy, const float* qkv, const float* y,
                        const float* lse, int B, int T, int NH, int HS, cudaStream_t stream) {
  simple_backward<float>(dqkv, scratch_att, dy, qkv, y, lse, B, T, NH, HS, stream);
}

void attention_forward_simple(bf16* y, float* lse, const bf16* qkv, int B, int T, int NH, int HS, cudaStream_t stream) {
  simple_forward<bf16>(y, lse, qkv, B, T, NH, HS, stream);
}
void attention_forward_simple(float* y, float* lse, const float* qkv, int B, int T, int NH, int HS,
                              cudaStream_t stream) {
  simple_forward<float>(y, lse, qkv, B, T, NH, HS, stream);
}
void attention_backward_simple(bf16* dqkv, float* scratch_att, const bf16* dy, const bf16* qkv, const bf16* y,
                               const float* lse, int B, int T, int NH, int HS, cudaStream_t stream) {
  simple_backward<bf16>(dqkv, scratch_att, dy, qkv, y, lse, B, T, NH, HS, stream);
}
void attention_backward_simple(float* dqkv, float* scratch_att, const float* dy, const float* qkv, const float* y,
                               const float* lse, int B, int T, int NH, int HS, cudaStream_t stream) {
  simple_backward<float>(dqkv, scratch_att, dy, qkv, y, lse, B, T, NH, HS, stream);
}

}  // namespace gpt2::cuda
