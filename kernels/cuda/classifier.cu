// Fused softmax-cross-entropy forward + backward in place: see classifier.cuh.
#include "kernels/cuda/classifier.cuh"

#include <cfloat>

namespace gpt2::cuda {

namespace {
constexpr int kThreads = 1024;
// -FLT_MAX, not -inf, as the empty maximum: exp(-FLT_MAX - m) is 0 for any finite m, and
// exp(-FLT_MAX - (-FLT_MAX)) = 1 multiplies an empty sum of 0, so no inf - inf = NaN can appear.
constexpr float kNoMax = -FLT_MAX;

// Merges two online-softmax states (max m, sum s of exp(x - m)).
__device__ __forceinline__ void merge(float& m, float& s, float om, float os) {
  const float nm = fmaxf(m, om);
  s = s * expf(m - nm) + os * expf(om - nm);
  m = nm;
}

// Block-wide merge; every thread gets the same (m, s). Fixed butterfly + warp order: deterministic.
__device__ __forceinline__ void block_merge(float& m, float& s) {
  __shared__ float sm[32], ss[32];
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const float om = __shfl_xor_sync(0xffffffffu, m, off);
    const float os = __shfl_xor_sync(0xffffffffu, s, off);
    merge(m, s, om, os);
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
  if (lane == 0) {
    sm[warp] = m;
    ss[warp] = s;
  }
  __syncthreads();
  m = lane < nwarps ? sm[lane] : kNoMax;
  s = lane < nwarps ? ss[lane] : 0.0f;
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const float om = __shfl_xor_sync(0xffffffffu, m, off);
    const float os = __shfl_xor_sync(0xffffffffu, s, off);
    merge(m, s, om, os);
  }
}
}  // namespace

template <typename T>
static __global__ void __launch_bounds__(kThreads)
    classifier_kernel(float* losses, T* logits, const int32_t* __restrict__ targets, int V, int Vp, float dloss_scale,
                      bool compute_grad) {
  constexpr int VEC = kVec<T>;
  T* x = logits + static_cast<size_t>(blockIdx.x) * Vp;
  const int target = targets[blockIdx.x];
  const bool target_ok = target >= 0 && target < V;
  // Read before the first barrier (inside block_merge), hence before pass 2 overwrites it.
  const float x_target = (threadIdx.x == 0 && target_ok) ? to_float(x[target]) : 0.0f;

  // Pass 1: online max and sum of exp over the real columns.
  float m = kNoMax, s = 0.0f;
  for (int i = threadIdx.x * VEC; i < V; i += blockDim.x * VEC) {
    float v[VEC];
    load_floats<VEC>(v, x + i);  // i + VEC <= Vp since Vp % VEC == 0
    float vmax = kNoMax;
#pragma unroll
    for (int k = 0; k < VEC; ++k)
      if (i + k < V) vmax = fmaxf(vmax, v[k]);
    const float nm = fmaxf(m, vmax);
    float add = 0.0f;
#pragma unroll
    for (int k = 0; k < VEC; ++k)
      if (i + k < V) add += expf(v[k] - nm);
    s = s * expf(m - nm) + add;
    m = nm;
  }
  block_merge(m, s);
  const float lse = m + logf(s);
  if (threadIdx.x == 0) losses[blockIdx.x] = target_ok ? lse - x_target : __int_as_float(0x7fc00000);
  if (!compute_grad) return;

  // Pass 2: dlogits = scale * (softmax - onehot); padded columns get 0.
  for (int i = threadIdx.x * VEC; i < Vp; i += blockDim.x * VEC) {
    float v[VEC];
    if (i < V) load_floats_cs<VEC>(v, x + i);
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      const int col = i + k;
      v[k] = col < V ? dloss_scale * (expf(v[k] - lse) - (col == target ? 1.0f : 0.0f)) : 0.0f;
    }
    store_floats<VEC>(x + i, v);
  }
}

template <typename T>
static void classifier_impl(float* losses, T* logits, const int32_t* targets, int N, int V, int Vp, float dloss_scale,
                            bool compute_grad, cudaStream_t stream) {
  GPT2_REQUIRE(N >= 0 && V > 0 && V <= Vp);
  GPT2_REQUIRE(Vp % kVec<T> == 0 && is_aligned16(logits));
  GPT2_REQUIRE(losses && targets);
  if (N == 0) return;
  CUDA_CHECK(
      launch(classifier_kernel<T>, N, kThreads, 0, stream, losses, logits, targets, V, Vp, dloss_scale, compute_grad));
}

void classifier_forward_backward(float* losses, bf16* logits, const int32_t* targets, int N, int V, int Vp,
                                 float dloss_scale, bool compute_grad, cudaStream_t s) {
  classifier_impl(losses, logits, targets, N, V, Vp, dloss_scale, compute_grad, s);
}
void classifier_forward_backward(float* losses, float* logits, const int32_t* targets, int N, int V, int Vp,
                                 float dloss_scale, bool compute_grad, cudaStream_t s) {
  classifier_impl(losses, logits, targets, N, V, Vp, dloss_scale, compute_grad, s);
}

}  // namespace gpt2::cuda
