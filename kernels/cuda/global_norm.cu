// Deterministic squared L2 norm: see global_norm.cuh.
#include "kernels/cuda/global_norm.cuh"

namespace gpt2::cuda {

namespace {
constexpr int kThreads = 256;
// Elements per thread per grid-stride step: two (bf16) or four (fp32) 16-byte vectors, which the
// block reads as consecutive slices, so each load instruction of a warp covers 512 consecutive bytes.
constexpr int kPerThread = 16;

__device__ __forceinline__ double warp_sum_d(double v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}
}  // namespace

template <typename T>
static __global__ void __launch_bounds__(kThreads)
    global_norm_partials_kernel(double* partials, const T* __restrict__ x, size_t n) {
  constexpr int V = kVec<T>;
  constexpr size_t kPerStep = static_cast<size_t>(kThreads) * kPerThread;  // elements per block per step
  const size_t stride = static_cast<size_t>(gridDim.x) * kPerStep;
  double acc = 0.0;
  for (size_t base = static_cast<size_t>(blockIdx.x) * kPerStep; base < n; base += stride) {
    // Vector k of this thread: elements base + (k·kThreads + threadIdx.x)·V ... + V−1.
    float s = 0.0f;
    if (base + kPerStep <= n) {
#pragma unroll
      for (int k = 0; k < kPerThread / V; ++k) {
        float v[V];
        load_floats_cs<V>(v, x + base + (static_cast<size_t>(k) * kThreads + threadIdx.x) * V);
#pragma unroll
        for (int j = 0; j < V; ++j) s += v[j] * v[j];
      }
    } else {
      for (int k = 0; k < kPerThread / V; ++k)
        for (int j = 0; j < V; ++j) {
          const size_t e = base + (static_cast<size_t>(k) * kThreads + threadIdx.x) * V + j;
          if (e < n) {
            const float v = to_float(x[e]);
            s += v * v;
          }
        }
    }
    acc += static_cast<double>(s);
  }
  __shared__ double warp_part[kThreads / 32];
  acc = warp_sum_d(acc);
  if (threadIdx.x % 32 == 0) warp_part[threadIdx.x / 32] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0.0;
#pragma unroll
    for (int w = 0; w < kThreads / 32; ++w) total += warp_part[w];
    partials[blockIdx.x] = total;
  }
}

static __global__ void global_norm_final_kernel(float* out, const double* partials, int G) {
  double acc = 0.0;
  for (int k = threadIdx.x; k < G; k += 32) acc += partials[k];
  acc = warp_sum_d(acc);
  if (threadIdx.x == 0) *out = static_cast<float>(acc);
}

template <typename T>
static void global_norm_impl(float* out, float* partials, const T* x, size_t n, cudaStream_t stream) {
  GPT2_REQUIRE(out && partials && x);
  GPT2_REQUIRE(is_aligned16(x) && reinterpret_cast<uintptr_t>(partials) % 8 == 0);
  const size_t per_block = static_cast<size_t>(kThreads) * kPerThread;
  size_t G = CEIL_DIV(n, per_block);
  if (G > kGlobalNormMaxBlocks) G = kGlobalNormMaxBlocks;
  if (G == 0) G = 1;  // n == 0: one block writes a 0 partial
  double* dp = reinterpret_cast<double*>(partials);
  CUDA_CHECK(launch(global_norm_partials_kernel<T>, static_cast<unsigned>(G), kThreads, 0, stream, dp, x, n));
  CUDA_CHECK(launch(global_norm_final_kernel, 1, 32, 0, stream, out, dp, static_cast<int>(G)));
}

void global_norm_squared(float* out, float* partials, const bf16* x, size_t n, cudaStream_t s) {
  global_norm_impl(out, partials, x, n, s);
}
void global_norm_squared(float* out, float* partials, const float* x, size_t n, cudaStream_t s) {
  global_norm_impl(out, partials, x, n, s);
}

}  // namespace gpt2::cuda
