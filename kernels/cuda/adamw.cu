// AdamW over all parameter ranges in one launch, with stochastic rounding to bf16: see adamw.cuh.
#include "kernels/cuda/adamw.cuh"

#include <cmath>
#include <cstring>

namespace gpt2::cuda {

namespace {
constexpr int kThreads = 256;
// Elements per thread: one 16-byte access per fp32 array and one 8-byte access per bf16 array, so
// every access of a warp covers consecutive bytes (no lane skips over another's data).
constexpr int kPerThread = 4;
constexpr int kPerBlock = kThreads * kPerThread;  // elements per block

// Passed by value (~0.8 KB of kernel parameters).
struct AdamWArgs {
  int num_ranges;
  uint32_t decay_mask;  // bit r: range r gets weight decay
  uint64_t offset[kAdamWMaxRanges];
  uint64_t count[kAdamWMaxRanges];
  uint64_t first_block[kAdamWMaxRanges + 1];  // blocks of range r: [first_block[r], first_block[r+1])
  adamw::StepConstants k;
  float max_grad_norm;
  uint32_t seed;
  uint64_t index_base;
};

template <typename T>
__device__ __forceinline__ void store_param(T* p, float x, uint32_t seed, uint64_t index);
template <>
__device__ __forceinline__ void store_param<float>(float* p, float x, uint32_t, uint64_t) {
  *p = x;
}
template <>
__device__ __forceinline__ void store_param<bf16>(bf16* p, float x, uint32_t seed, uint64_t index) {
  *p = __ushort_as_bfloat16(adamw::round_bits(__float_as_uint(x), adamw::rounding_hash(seed, index)));
}
// kPerThread consecutive elements as one vector access: 16 bytes of fp32, 8 bytes of bf16 (src/dst
// aligned to that size).
template <typename T>
struct alignas(kPerThread * sizeof(T)) Span {
  T v[kPerThread];
};
template <typename T>
__device__ __forceinline__ void load_span(float (&dst)[kPerThread], const T* src) {
  const Span<T> x = load_vector<Span<T>>(src);
#pragma unroll
  for (int k = 0; k < kPerThread; ++k) dst[k] = to_float(x.v[k]);
}
template <typename T>
__device__ __forceinline__ void store_span(T* dst, const float (&src)[kPerThread]) {
  Span<T> x;
#pragma unroll
  for (int k = 0; k < kPerThread; ++k) x.v[k] = from_float<T>(src[k]);
  store_vector(dst, x);
}
}  // namespace

// Block b belongs to the range r with first_block[r] <= b < first_block[r+1]; it updates up to
// kPerBlock consecutive elements of it, kPerThread per thread.
template <typename T>
static __global__ void __launch_bounds__(kThreads)
    adamw_kernel(T* params, float* master, const T* __restrict__ grads, float* __restrict__ m, float* __restrict__ v,
                 const float* __restrict__ grad_norm_sq, const AdamWArgs args) {
  int r = 0;
  while (r + 1 < args.num_ranges && blockIdx.x >= args.first_block[r + 1]) ++r;
  const uint64_t local = (blockIdx.x - args.first_block[r]) * static_cast<uint64_t>(kPerBlock) +
                         static_cast<uint64_t>(threadIdx.x) * kPerThread;
  if (local >= args.count[r]) return;
  const uint64_t i0 = args.offset[r] + local;
  const int n = args.count[r] - local < kPerThread ? static_cast<int>(args.count[r] - local) : kPerThread;
  const float decay = (args.decay_mask >> r) & 1u ? args.k.decay_factor : 1.0f;
  adamw::StepConstants k = args.k;
  if (grad_norm_sq != nullptr && args.max_grad_norm > 0.0f) {
    const float norm = sqrtf(*grad_norm_sq);
    if (norm > args.max_grad_norm) k.grad_scale *= args.max_grad_norm / norm;
  }

  float g[kPerThread], p[kPerThread], mm[kPerThread], vv[kPerThread];
  if (n == kPerThread) {  // vector accesses; i0 % 4 == 0 and the pointers are 16-byte aligned
    load_span(g, grads + i0);
    load_span(mm, m + i0);
    load_span(vv, v + i0);
    if (master)
      load_span(p, master + i0);
    else
      load_span(p, params + i0);
  } else {
#pragma unroll
    for (int k = 0; k < kPerThread; ++k) {
      if (k < n) {
        g[k] = to_float(grads[i0 + k]);
        mm[k] = m[i0 + k];
        vv[k] = v[i0 + k];
        p[k] = master ? master[i0 + k] : to_float(params[i0 + k]);
      } else {
        g[k] = mm[k] = vv[k] = p[k] = 0.0f;
      }
    }
  }
#pragma unroll
  for (int e = 0; e < kPerThread; ++e) p[e] = adamw::update_element(p[e], g[e], mm[e], vv[e], k, decay);
  const uint32_t seed = args.seed;
  const uint64_t gidx = args.index_base + i0;
  if (n == kPerThread) {
    store_span(m + i0, mm);
    store_span(v + i0, vv);
    if (master) store_span(master + i0, p);
    if constexpr (sizeof(T) == 2) {
      Span<T> out;
#pragma unroll
      for (int k = 0; k < kPerThread; ++k)
        out.v[k] = __ushort_as_bfloat16(adamw::round_bits(__float_as_uint(p[k]), adamw::rounding_hash(seed, gidx + k)));
      store_vector(params + i0, out);
    } else {
      store_span(params + i0, p);
    }
  } else {
#pragma unroll
    for (int k = 0; k < kPerThread; ++k) {
      if (k < n) {
        m[i0 + k] = mm[k];
        v[i0 + k] = vv[k];
        if (master) master[i0 + k] = p[k];
        store_param<T>(params + i0 + k, p[k], seed, gidx + k);
      }
    }
  }
}

template <typename T>
static void adamw_impl(T* params, float* master, const T* grads, float* m, float* v, const AdamWRange* ranges,
                       int num_ranges, const AdamWParams& hp, uint32_t seed, size_t index_base,
                       const float* grad_norm_sq, float max_grad_norm, cudaStream_t stream) {
  GPT2_REQUIRE(num_ranges > 0 && num_ranges <= kAdamWMaxRanges);
  GPT2_REQUIRE(params && grads && m && v && hp.t >= 1);
  GPT2_REQUIRE(is_aligned16(params) && is_aligned16(grads) && is_aligned16(m) && is_aligned16(v) &&
               (master == nullptr || is_aligned16(master)));
  AdamWArgs a{};
  a.num_ranges = num_ranges;
  uint64_t blocks = 0;
  for (int r = 0; r < num_ranges; ++r) {
    GPT2_REQUIRE(ranges[r].offset % kPerThread == 0);
    a.offset[r] = ranges[r].offset;
    a.count[r] = ranges[r].count;
    if (ranges[r].decay) a.decay_mask |= 1u << r;
    a.first_block[r] = blocks;
    blocks += CEIL_DIV(static_cast<uint64_t>(ranges[r].count), static_cast<uint64_t>(kPerBlock));
  }
  a.first_block[num_ranges] = blocks;
  GPT2_REQUIRE(blocks < (uint64_t{1} << 31));
  if (blocks == 0) return;
  a.k = adamw::step_constants(hp);  // exactly as the CPU computes them
  a.max_grad_norm = max_grad_norm;
  a.seed = adamw::rounding_seed(seed, hp.t);
  a.index_base = index_base;
  CUDA_CHECK(launch(adamw_kernel<T>, static_cast<unsigned>(blocks), kThreads, 0, stream, params, master, grads, m, v,
                    grad_norm_sq, a));
}

void adamw_update(bf16* params, float* master, const bf16* grads, float* m, float* v, const AdamWRange* ranges,
                  int num_ranges, const AdamWParams& hp, uint32_t seed, size_t index_base, const float* grad_norm_sq,
                  float max_grad_norm, cudaStream_t s) {
  adamw_impl(params, master, grads, m, v, ranges, num_ranges, hp, seed, index_base, grad_norm_sq, max_grad_norm, s);
}
void adamw_update(float* params, float* master, const float* grads, float* m, float* v, const AdamWRange* ranges,
                  int num_ranges, const AdamWParams& hp, uint32_t seed, size_t index_base, const float* grad_norm_sq,
                  float max_grad_norm, cudaStream_t s) {
  adamw_impl(params, master, grads, m, v, ranges, num_ranges, hp, seed, index_base, grad_norm_sq, max_grad_norm, s);
}

uint16_t adamw_stochastic_round_bits(float x, uint32_t seed, int t, uint64_t index) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return adamw::round_bits(bits, adamw::rounding_hash(adamw::rounding_seed(seed, t), index));
}

}  // namespace gpt2::cuda
