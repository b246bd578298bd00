// GELU forward/backward (tanh form): see gelu.cuh.
#include "kernels/cuda/gelu.cuh"

namespace gpt2::cuda {

namespace {
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCoef = 0.044715f;
constexpr int kThreads = 256;

// 0.5 (1 + tanh(u)) is computed as the logistic sigmoid(2u) = 1 / (1 + exp(-2u)): the same value,
// but under --use_fast_math tanhf becomes tanh.approx (relative error ~2^-11, a visible error in
// fp32 storage), while exp and the reciprocal stay accurate to a few ulp. It also saturates
// cleanly: exp overflow gives s = 0, underflow s = 1. With th = tanh(u), 1 - th^2 = 4 s (1 - s).
__device__ __forceinline__ float gelu_f(float x) {
  const float u = kSqrt2OverPi * (x + kCoef * x * x * x);
  const float s = 1.0f / (1.0f + expf(-2.0f * u));
  return x * s;
}
__device__ __forceinline__ float gelu_grad_f(float x) {
  const float u = kSqrt2OverPi * (x + kCoef * x * x * x);
  const float s = 1.0f / (1.0f + expf(-2.0f * u));
  return s + 2.0f * x * s * (1.0f - s) * kSqrt2OverPi * (1.0f + 3.0f * kCoef * x * x);
}
}  // namespace

// One 16-byte vector per thread; the last thread of the array takes the tail scalar by scalar.
template <typename T>
static __global__ void gelu_forward_kernel(T* out, const T* inp, size_t N) {
  constexpr int V = kVec<T>;
  const size_t i = (static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x) * V;
  if (i + V <= N) {
    float x[V];
    load_floats_cs<V>(x, inp + i);
#pragma unroll
    for (int k = 0; k < V; ++k) x[k] = gelu_f(x[k]);
    store_floats<V>(out + i, x);
  } else {
    for (size_t j = i; j < N; ++j) out[j] = from_float<T>(gelu_f(to_float(inp[j])));
  }
}

// dinp may alias dout: each thread reads its elements before writing the same elements.
template <typename T>
static __global__ void gelu_backward_kernel(T* dinp, const T* inp, const T* dout, size_t N) {
  constexpr int V = kVec<T>;
  const size_t i = (static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x) * V;
  if (i + V <= N) {
    float x[V], d[V];
    load_floats_cs<V>(x, inp + i);
    load_floats<V>(d, dout + i);
#pragma unroll
    for (int k = 0; k < V; ++k) d[k] *= gelu_grad_f(x[k]);
    store_floats<V>(dinp + i, d);
  } else {
    for (size_t j = i; j < N; ++j) dinp[j] = from_float<T>(to_float(dout[j]) * gelu_grad_f(to_float(inp[j])));
  }
}

template <typename T>
static void gelu_forward_impl(T* out, const T* inp, size_t N, cudaStream_t stream) {
  GPT2_REQUIRE(is_aligned16(out) && is_aligned16(inp));
  if (N == 0) return;
  const size_t blocks = CEIL_DIV(N, static_cast<size_t>(kThreads) * kVec<T>);
  CUDA_CHECK(launch(gelu_forward_kernel<T>, static_cast<unsigned>(blocks), kThreads, 0, stream, out, inp, N));
}
template <typename T>
static void gelu_backward_impl(T* dinp, const T* inp, const T* dout, size_t N, cudaStream_t stream) {
  GPT2_REQUIRE(is_aligned16(dinp) && is_aligned16(inp) && is_aligned16(dout));
  if (N == 0) return;
  const size_t blocks = CEIL_DIV(N, static_cast<size_t>(kThreads) * kVec<T>);
  CUDA_CHECK(launch(gelu_backward_kernel<T>, static_cast<unsigned>(blocks), kThreads, 0, stream, dinp, inp, dout, N));
}

void gelu_forward(bf16* out, const bf16* inp, size_t N, cudaStream_t s) { gelu_forward_impl(out, inp, N, s); }
void gelu_forward(float* out, const float* inp, size_t N, cudaStream_t s) { gelu_forward_impl(out, inp, N, s); }
void gelu_backward(bf16* dinp, const bf16* inp, const bf16* dout, size_t N, cudaStream_t s) {
  gelu_backward_impl(dinp, inp, dout, N, s);
}
void gelu_backward(float* dinp, const float* inp, const float* dout, size_t N, cudaStream_t s) {
  gelu_backward_impl(dinp, inp, dout, N, s);
}

}  // namespace gpt2::cuda
