// The register-blocked GEMM micro-kernel of the CPU matmul (matmul.cpp) and attention
// (attention.cpp), built for three instruction sets: AVX-512, AVX2+FMA and SSE2, each in its own
// namespace and `#pragma GCC target` region. A user includes this header, then opens the same
// target region around its own per-ISA code and brings the namespace in with a using-directive,
// so that the micro-kernel inlines into it (matmul.cpp shows the pattern).
//
// Each namespace microkernel::<isa> defines
//   vec, W (floats per vec), vload, vstore, vbcast, vfma(a, b, acc) = a*b + acc,
//   MR, NV, NR = NV*W: the matmul's register tile (MR rows × NR columns),
//   micro_kernel_tile<R, V>(kc, Ap, Bp, Cp, ldc, from_zero): an R × V·W tile of C (+)= A·B,
//   micro_kernel(...) = micro_kernel_tile<MR, NV>(...).
// The packed operands are k-major micro-panels: A(i, k) = Ap[k*R + i], B(k, j) = Bp[k*(V*W) + j];
// C(i, j) = Cp[i*ldc + j]. Every element of C is one register, summed over k = 0..kc-1 in
// ascending order from 0 or from C's value: the fixed order the determinism rules rest on.
#pragma once
#include <immintrin.h>

namespace gpt2::cpu::microkernel {

#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
namespace avx512 {
// 8×48 register tile: 24 zmm accumulators + 3 B vectors + 1 broadcast, 11 loads per 24 FMAs.
// (12×32 needs the same accumulators but GCC 12 spills a B vector, and loads 14 per 24 FMAs.)
typedef __m512 vec;
constexpr int W = 16, MR = 8, NV = 3;
static inline vec vload(const float* p) { return _mm512_loadu_ps(p); }
static inline void vstore(float* p, vec x) { _mm512_storeu_ps(p, x); }
static inline vec vbcast(float s) { return _mm512_set1_ps(s); }
static inline vec vfma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
#include "kernels/cpu/gemm_microkernel.inc"
}  // namespace avx512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
typedef __m256 vec;
constexpr int W = 8, MR = 6, NV = 2;
static inline vec vload(const float* p) { return _mm256_loadu_ps(p); }
static inline void vstore(float* p, vec x) { _mm256_storeu_ps(p, x); }
static inline vec vbcast(float s) { return _mm256_set1_ps(s); }
static inline vec vfma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
#include "kernels/cpu/gemm_microkernel.inc"
}  // namespace avx2
#pragma GCC pop_options

namespace sse2 {
typedef __m128 vec;
constexpr int W = 4, MR = 6, NV = 2;
static inline vec vload(const float* p) { return _mm_loadu_ps(p); }
static inline void vstore(float* p, vec x) { _mm_storeu_ps(p, x); }
static inline vec vbcast(float s) { return _mm_set1_ps(s); }
static inline vec vfma(vec a, vec b, vec c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }
#include "kernels/cpu/gemm_microkernel.inc"
}  // namespace sse2

}  // namespace gpt2::cpu::microkernel
