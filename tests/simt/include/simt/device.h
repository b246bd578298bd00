// Device-side execution under the SIMT layer: the built-in index variables, __syncthreads, the
// warp-synchronous intrinsics, atomics and the math intrinsics the kernels use.
//
// Execution model (see tests/simt/README.md): every CUDA thread is a fiber; the threads of one
// block run on one OS thread and switch only at synchronisation points (__syncthreads, __syncwarp,
// shuffles, ldmatrix, mma). Between two such points the runnable threads of a block run one after
// the other, in the order the schedule names (GPT2_SIMT_SCHEDULE=ascending|descending|random:SEED),
// so code that needs a barrier it does not have gives different results under two schedules.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "simt/runtime.h"

namespace simt {

// The part of a CUDA thread's state that device code reads directly.
struct ThreadCtx {
  uint3 tid;        // threadIdx
  unsigned linear;  // x + y·bx + z·bx·by
  unsigned lane;    // linear % 32
  unsigned warp;    // linear / 32
};
struct BlockCtx {
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
  unsigned char* dyn_smem;
  size_t dyn_smem_bytes;
};
extern thread_local ThreadCtx* tl_thread;
extern thread_local BlockCtx* tl_block;

// Reports a kernel fault (undefined behaviour or a condition a GPU would trap on) at file:line,
// then ends the whole launch with an error. Never returns.
[[noreturn]] void fault(const char* file, int line, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

// Block-wide barrier: returns when every thread of the block has arrived.
void syncthreads(const char* file, int line);

// Warp collective: each lane named in `mask` deposits `n` bytes (≤ kSlotBytes) and waits; when the
// last named lane arrives, `fn` runs once over all deposits and writes each lane's result. Lanes
// must agree on `what` and `mask`; a named lane that never arrives (exited, or waiting at another
// barrier) is reported as a fault.
constexpr size_t kSlotBytes = 64;
struct LaneSlot {
  alignas(16) unsigned char in[kSlotBytes];
  alignas(16) unsigned char out[kSlotBytes];
};
using CollectiveFn = void (*)(LaneSlot* slots, unsigned mask, const char* file, int line);
const unsigned char* warp_collective(unsigned mask, const char* what, const void* in, size_t n, CollectiveFn fn,
                                     const char* file, int line);

void* dynamic_shared();

// Shuffle: every lane deposits its value and the lane it reads from.
struct ShflIn {
  unsigned long long value;
  int src;
};
void shfl_combine(LaneSlot* slots, unsigned mask, const char* file, int line);

template <typename T>
inline T shfl_common(unsigned mask, T var, int src, const char* what, const char* file, int line) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a type wider than 64 bits");
  ShflIn in{0, src};
  std::memcpy(&in.value, &var, sizeof(T));
  const unsigned char* out = warp_collective(mask, what, &in, sizeof in, shfl_combine, file, line);
  T r;
  std::memcpy(&r, out, sizeof(T));
  return r;
}

inline void check_width(int width, const char* file, int line) {
  if (width < 1 || width > 32 || (width & (width - 1)) != 0)
    fault(file, line, "shuffle width %d is not a power of two in 1..32", width);
}

}  // namespace simt

#define threadIdx (::simt::tl_thread->tid)
#define blockIdx (::simt::tl_block->block_idx)
#define blockDim (::simt::tl_block->block_dim)
#define gridDim (::simt::tl_block->grid_dim)
constexpr int warpSize = 32;

inline void __syncthreads(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  simt::syncthreads(file, line);
}
void __syncwarp_impl(unsigned mask, const char* file, int line);
inline void __syncwarp(unsigned mask = 0xffffffffu, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  __syncwarp_impl(mask, file, line);
}
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// Shuffles (CUDA C++ Programming Guide, "Warp Shuffle Functions"): lanes are split into segments of
// `width`; a source outside the caller's segment returns the caller's own value for up/down/xor.
template <typename T>
inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32, const char* file = __builtin_FILE(),
                     int line = __builtin_LINE()) {
  simt::check_width(width, file, line);
  const int lane = static_cast<int>(simt::tl_thread->lane);
  const int src = (lane & ~(width - 1)) + (src_lane & (width - 1));
  return simt::shfl_common(mask, var, src, "__shfl_sync", file, line);
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32, const char* file = __builtin_FILE(),
                         int line = __builtin_LINE()) {
  simt::check_width(width, file, line);
  const int lane = static_cast<int>(simt::tl_thread->lane);
  int src = lane ^ lane_mask;
  if (src >= (lane & ~(width - 1)) + width || src > 31) src = lane;
  return simt::shfl_common(mask, var, src, "__shfl_xor_sync", file, line);
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32, const char* file = __builtin_FILE(),
                          int line = __builtin_LINE()) {
  simt::check_width(width, file, line);
  const int lane = static_cast<int>(simt::tl_thread->lane);
  int src = lane + static_cast<int>(delta);
  if ((lane & (width - 1)) + static_cast<int>(delta) >= width) src = lane;
  return simt::shfl_common(mask, var, src, "__shfl_down_sync", file, line);
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32, const char* file = __builtin_FILE(),
                        int line = __builtin_LINE()) {
  simt::check_width(width, file, line);
  const int lane = static_cast<int>(simt::tl_thread->lane);
  int src = lane - static_cast<int>(delta);
  if ((lane & (width - 1)) < static_cast<int>(delta)) src = lane;
  return simt::shfl_common(mask, var, src, "__shfl_up_sync", file, line);
}
unsigned __ballot_sync_impl(unsigned mask, int pred, const char* file, int line);
inline unsigned __ballot_sync(unsigned mask, int pred, const char* file = __builtin_FILE(),
                              int line = __builtin_LINE()) {
  return __ballot_sync_impl(mask, pred, file, line);
}
inline int __any_sync(unsigned mask, int pred, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return (__ballot_sync_impl(mask, pred, file, line) & mask) != 0;
}
inline int __all_sync(unsigned mask, int pred, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return (__ballot_sync_impl(mask, pred, file, line) & mask) == mask;
}

// ---- Atomics: blocks run on several OS threads at once, so these are real atomics ------------------
template <typename T>
inline T simt_atomic_add_int(T* p, T v) {
  return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
inline int atomicAdd(int* p, int v) { return simt_atomic_add_int(p, v); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return simt_atomic_add_int(p, v); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { return simt_atomic_add_int(p, v); }
template <typename F, typename U>
inline F simt_atomic_add_float(F* p, F v) {
  U* u = reinterpret_cast<U*>(p);
  U old = __atomic_load_n(u, __ATOMIC_RELAXED);
  for (;;) {
    F f;
    std::memcpy(&f, &old, sizeof f);
    const F sum = f + v;
    U want;
    std::memcpy(&want, &sum, sizeof want);
    if (__atomic_compare_exchange_n(u, &old, want, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) return f;
  }
}
inline float atomicAdd(float* p, float v) { return simt_atomic_add_float<float, uint32_t>(p, v); }
inline double atomicAdd(double* p, double v) { return simt_atomic_add_float<double, uint64_t>(p, v); }
template <typename T, typename Pick>
inline T simt_atomic_pick(T* p, T v, Pick pick) {
  T old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (!__atomic_compare_exchange_n(p, &old, pick(old, v), false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}
inline int atomicMax(int* p, int v) {
  return simt_atomic_pick(p, v, [](int a, int b) { return a > b ? a : b; });
}
inline unsigned atomicMax(unsigned* p, unsigned v) {
  return simt_atomic_pick(p, v, [](unsigned a, unsigned b) { return a > b ? a : b; });
}
inline int atomicMin(int* p, int v) {
  return simt_atomic_pick(p, v, [](int a, int b) { return a < b ? a : b; });
}
inline int atomicExch(int* p, int v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicExch(unsigned* p, unsigned v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
inline int atomicCAS(int* p, int cmp, int v) {
  __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return cmp;
}
inline unsigned atomicCAS(unsigned* p, unsigned cmp, unsigned v) {
  __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return cmp;
}
inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long cmp, unsigned long long v) {
  __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return cmp;
}

// ---- 8- and 16-byte accesses ------------------------------------------------------------------
namespace simt {
// One 8- or 16-byte load or store, as the GPU's LDG.64/LDG.128 (STG, LDS, STS) is one access. A
// struct copy in host C++ may become several narrower accesses, or a memcpy the kernel audit
// (simt/access_trace.h) cannot see; a volatile vector access stays one access of the full width.
template <size_t N>
struct VectorOf;
template <>
struct VectorOf<8> {
  typedef int type __attribute__((vector_size(8)));
};
template <>
struct VectorOf<16> {
  typedef int type __attribute__((vector_size(16)));
};
template <typename T>
inline T load_vector(const void* p) {
  using V = typename VectorOf<sizeof(T)>::type;
  const V v = *static_cast<const volatile V*>(p);
  T t;
  std::memcpy(&t, &v, sizeof(T));
  return t;
}
template <typename T>
inline void store_vector(void* p, const T& t) {
  using V = typename VectorOf<sizeof(T)>::type;
  V v;
  std::memcpy(&v, &t, sizeof(T));
  *static_cast<volatile V*>(p) = v;
}
template <typename T>
inline T load_one(const T* p) {
  if constexpr (sizeof(T) == 16)
    return load_vector<T>(p);
  else
    return *p;
}
template <typename T>
inline void store_one(T* p, const T& v) {
  if constexpr (sizeof(T) == 16)
    store_vector(p, v);
  else
    *p = v;
}
}  // namespace simt

// ---- Cache-hinted loads and stores: plain accesses here --------------------------------------------
template <typename T>
inline T __ldcs(const T* p) {
  return simt::load_one(p);
}
template <typename T>
inline T __ldg(const T* p) {
  return simt::load_one(p);
}
template <typename T>
inline T __ldcg(const T* p) {
  return simt::load_one(p);
}
template <typename T>
inline void __stcs(T* p, T v) {
  simt::store_one(p, v);
}
template <typename T>
inline void __stcg(T* p, T v) {
  simt::store_one(p, v);
}
inline size_t __cvta_generic_to_shared(const void* p) { return reinterpret_cast<uintptr_t>(p); }

// ---- Math intrinsics (CUDA Math API). The _rn forms round to nearest even and are never fused;
// the build compiles with -ffp-contract=off so a*b+c is never fused either. The fast-math
// intrinsics (__expf, __logf, __fdividef) are computed at full accuracy here: a GPU's approximate
// versions differ by a few ulp. ------------------------------------------------------------------
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
inline float __expf(float x) { return std::exp(x); }
inline float __exp10f(float x) { return std::pow(10.0f, x); }
inline float __logf(float x) { return std::log(x); }
inline float __log2f(float x) { return std::log2(x); }
inline float __powf(float a, float b) { return std::pow(a, b); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __tanhf(float x) { return std::tanh(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : (x == x ? x : 0.0f)); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __float_as_float(float x) { return x; }
inline unsigned __float_as_uint(float x) { return simt::bits_as<unsigned>(x); }
inline int __float_as_int(float x) { return simt::bits_as<int>(x); }
inline float __uint_as_float(unsigned u) { return simt::bits_as<float>(u); }
inline float __int_as_float(int u) { return simt::bits_as<float>(u); }
inline long long __double_as_longlong(double x) { return simt::bits_as<long long>(x); }
inline double __longlong_as_double(long long u) { return simt::bits_as<double>(u); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline unsigned __umulhi(unsigned a, unsigned b) {
  return static_cast<unsigned>((static_cast<unsigned long long>(a) * b) >> 32);
}

// min/max as the CUDA headers overload them for integral and floating types.
template <typename A, typename B,
          typename = std::enable_if_t<std::is_arithmetic<A>::value && std::is_arithmetic<B>::value>>
inline std::common_type_t<A, B> min(A a, B b) {
  using C = std::common_type_t<A, B>;
  return static_cast<C>(b) < static_cast<C>(a) ? static_cast<C>(b) : static_cast<C>(a);
}
template <typename A, typename B,
          typename = std::enable_if_t<std::is_arithmetic<A>::value && std::is_arithmetic<B>::value>>
inline std::common_type_t<A, B> max(A a, B b) {
  using C = std::common_type_t<A, B>;
  return static_cast<C>(a) < static_cast<C>(b) ? static_cast<C>(b) : static_cast<C>(a);
}
// expf, exp2f, logf, tanhf, fmaxf, ... are the C library's float functions (math.h).
