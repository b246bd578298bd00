// Shared CUDA helpers: one check-macro family (CUDA, cuBLAS/cuBLASLt, NCCL) that reports the
// statement, file and line through one [[noreturn]] reporter; CEIL_DIV; warp and block
// reductions; bf16 conversions; 128-bit packed loads and stores.
#pragma once
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "kernels/cuda/launch.cuh"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace gpt2::cuda {

// A failed CUDA, cuBLAS or NCCL call, or a violated launcher precondition. Nothing here exits:
// the error travels up to the tool's main, which prints it and exits 1 (train_gpt2: kExitError).
class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void report_failure(const char* what, const char* detail, const char* stmt, const char* file,
                                        int line) {
  throw CudaError(std::string(what) + " error: " + detail + "\n  in: " + stmt + "\n  at: " + file + ":" +
                  std::to_string(line));
}

inline void check_cuda(cudaError_t err, const char* stmt, const char* file, int line) {
  if (err != cudaSuccess) report_failure("CUDA", cudaGetErrorString(err), stmt, file, line);
}

inline void check_cublas(cublasStatus_t st, const char* stmt, const char* file, int line) {
  if (st != CUBLAS_STATUS_SUCCESS) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "cublas status %d", static_cast<int>(st));
    report_failure("cuBLAS", buf, stmt, file, line);
  }
}

}  // namespace gpt2::cuda

#define CUDA_CHECK(stmt) ::gpt2::cuda::check_cuda((stmt), #stmt, __FILE__, __LINE__)
#define CUBLAS_CHECK(stmt) ::gpt2::cuda::check_cublas((stmt), #stmt, __FILE__, __LINE__)
// Launcher preconditions (alignment, divisibility): a violated one is a bug in the caller.
#define GPT2_REQUIRE(cond)                                                                            \
  do {                                                                                                \
    if (!(cond)) ::gpt2::cuda::report_failure("precondition", "violated", #cond, __FILE__, __LINE__); \
  } while (0)

#ifdef GPT2_HAVE_NCCL
#include <nccl.h>
namespace gpt2::cuda {
inline void check_nccl(ncclResult_t r, const char* stmt, const char* file, int line) {
  if (r != ncclSuccess) report_failure("NCCL", ncclGetErrorString(r), stmt, file, line);
}
}  // namespace gpt2::cuda
#define NCCL_CHECK(stmt) ::gpt2::cuda::check_nccl((stmt), #stmt, __FILE__, __LINE__)
#endif

#define CEIL_DIV(a, b) (((a) + (b)-1) / (b))

namespace gpt2::cuda {

using bf16 = __nv_bfloat16;

// Storage types: activations and parameters are bf16 (or fp32); maths is fp32.
__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(bf16 x) { return __bfloat162float(x); }
template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ bf16 from_float<bf16>(float x) {
  return __float2bfloat16_rn(x);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}

// Block-wide sum for blockDim.x a multiple of 32 (≤ 1024). Every thread gets the result. The
// order of additions is fixed by the thread layout, so the result is deterministic.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
  v = warp_sum(v);
  __syncthreads();  // partial[] may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < nwarps ? partial[lane] : 0.0f;
  return warp_sum(v);
}

// 16-byte packed vector of T: 8 bf16 or 4 floats, for coalesced 128-bit loads and stores.
template <typename T>
struct alignas(16) Packed128 {
  static constexpr int size = 16 / sizeof(T);
  T v[size];
  __device__ __forceinline__ T& operator[](int i) { return v[i]; }
  __device__ __forceinline__ const T& operator[](int i) const { return v[i]; }
};
// One access of an aligned 8- or 16-byte value V (LDG.64/.128, STG, LDS, STS). Under the SIMT layer
// a vector access, so that it stays one access (see simt/device.h).
template <typename V>
__device__ __forceinline__ V load_vector(const void* p) {
  static_assert(sizeof(V) == 8 || sizeof(V) == 16, "load_vector: 8 or 16 bytes");
#if defined(GPT2_SIMT)
  return ::simt::load_vector<V>(p);
#else
  return *reinterpret_cast<const V*>(p);
#endif
}
template <typename V>
__device__ __forceinline__ void store_vector(void* p, const V& v) {
  static_assert(sizeof(V) == 8 || sizeof(V) == 16, "store_vector: 8 or 16 bytes");
#if defined(GPT2_SIMT)
  ::simt::store_vector(p, v);
#else
  *reinterpret_cast<V*>(p) = v;
#endif
}
template <typename T>
__device__ __forceinline__ Packed128<T> load128(const T* p) {
  return load_vector<Packed128<T>>(p);
}
// Streaming load: data read once, don't keep it in L1/L2 at the expense of reused data.
template <typename T>
__device__ __forceinline__ Packed128<T> load128cs(const T* p) {
  Packed128<T> out;
  *reinterpret_cast<int4*>(&out) = __ldcs(reinterpret_cast<const int4*>(p));
  return out;
}
template <typename T>
__device__ __forceinline__ void store128(T* p, const Packed128<T>& v) {
  store_vector(p, v);
}
template <typename T>
__device__ __forceinline__ void store128cs(T* p, const Packed128<T>& v) {
  __stcs(reinterpret_cast<int4*>(p), *reinterpret_cast<const int4*>(&v));
}

inline bool is_aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace gpt2::cuda

// ---- Vector access helpers shared by the memory-bound kernels --------------------------------
namespace gpt2::cuda {

// N consecutive elements of T at p, as floats. One 16-byte access when N·sizeof(T) == 16 (p must
// then be 16-byte aligned), else N scalar accesses: the same kernel source serves the vectorised
// path and the scalar tail/unaligned path. kLastUse: the streaming load (data read for the last
// time).
template <int N, typename T, bool kLastUse = false>
__device__ __forceinline__ void load_floats(float (&out)[N], const T* p) {
  if constexpr (N * sizeof(T) == 16) {
    const Packed128<T> v = kLastUse ? load128cs(p) : load128(p);
#pragma unroll
    for (int i = 0; i < N; ++i) out[i] = to_float(v[i]);
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) out[i] = to_float(p[i]);
  }
}
template <int N, typename T>
__device__ __forceinline__ void load_floats_cs(float (&out)[N], const T* p) {
  load_floats<N, T, true>(out, p);
}
template <int N, typename T>
__device__ __forceinline__ void store_floats(T* p, const float (&in)[N]) {
  if constexpr (N * sizeof(T) == 16) {
    Packed128<T> v;
#pragma unroll
    for (int i = 0; i < N; ++i) v[i] = from_float<T>(in[i]);
    store128(p, v);
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) p[i] = from_float<T>(in[i]);
  }
}
// p[i] += in[i] for N consecutive elements (read, add in fp32, one rounding to T, write).
template <int N, typename T>
__device__ __forceinline__ void add_floats(T* p, const float (&in)[N]) {
  float cur[N];
  load_floats<N>(cur, p);
#pragma unroll
  for (int i = 0; i < N; ++i) cur[i] += in[i];
  store_floats<N>(p, cur);
}

// Elements per 16-byte vector of T (8 for bf16, 4 for fp32).
template <typename T>
constexpr int kVec = 16 / static_cast<int>(sizeof(T));

// Largest power of two (≤ 256) dividing the address: the alignment a library may assume.
inline int pointer_alignment(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  int align = 256;
  while (align > 1 && (a % static_cast<uintptr_t>(align)) != 0) align >>= 1;
  return align;
}

}  // namespace gpt2::cuda
