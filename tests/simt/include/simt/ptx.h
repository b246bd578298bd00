// The PTX instructions the kernels use (kernels/cuda/ptx.cuh), executed by the SIMT layer with the
// semantics of the PTX ISA:
//  - cp.async: the copy is queued in the issuing thread and lands when a cp.async.wait_group
//    retires its group, so reading the destination before the wait sees the old contents. The
//    source is read at that point too; bytes past src-size are zero-filled.
//  - ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16: warp-collective; lane L supplies the
//    address of row L%8 of matrix L/8 (16-byte aligned rows of 8 b16 elements).
//  - mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32: warp-collective, with the fragment
//    layouts of the PTX ISA ("Matrix Fragments for mma.m16n8k16"). Products of bf16 values are
//    exact in fp32; the sum runs in ascending k in fp32 (tensor cores use their own order).
#pragma once
#include <cstdint>

#include "simt/device.h"

namespace simt::ptx {
void cp_async(void* smem, const void* gmem, int cp_size, int src_size, const char* file, int line);
void cp_async_commit_group();
void cp_async_wait_group(int n, const char* file, int line);
void ldmatrix_x4(uint32_t (&r)[4], const void* smem, bool trans, const char* file, int line);
void mma_m16n8k16_bf16_f32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4],
                           const char* file, int line);
}  // namespace simt::ptx

namespace gpt2::cuda::ptx {

inline void cp_async_cg_16(void* smem, const void* gmem, int src_bytes, const char* file = __builtin_FILE(),
                           int line = __builtin_LINE()) {
  simt::ptx::cp_async(smem, gmem, 16, src_bytes, file, line);
}
inline void cp_async_ca_4(void* smem, const void* gmem, int src_bytes, const char* file = __builtin_FILE(),
                          int line = __builtin_LINE()) {
  simt::ptx::cp_async(smem, gmem, 4, src_bytes, file, line);
}
inline void cp_async_commit_group() { simt::ptx::cp_async_commit_group(); }
template <int N>
inline void cp_async_wait_group(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  simt::ptx::cp_async_wait_group(N, file, line);
}
inline void ldmatrix_x4(uint32_t (&r)[4], const void* smem, const char* file = __builtin_FILE(),
                        int line = __builtin_LINE()) {
  simt::ptx::ldmatrix_x4(r, smem, false, file, line);
}
inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void* smem, const char* file = __builtin_FILE(),
                              int line = __builtin_LINE()) {
  simt::ptx::ldmatrix_x4(r, smem, true, file, line);
}
inline void mma_m16n8k16_bf16_f32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4],
                                  const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  simt::ptx::mma_m16n8k16_bf16_f32(d, a, b, c, file, line);
}

}  // namespace gpt2::cuda::ptx
