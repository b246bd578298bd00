// Residual add: see residual.cuh.
#include "kernels/cuda/residual.cuh"

namespace gpt2::cuda {

namespace {
constexpr int kThreads = 256;
}

// One 16-byte vector per thread, scalar tail. No __restrict__: out may alias a or b, and every
// thread reads its own elements before writing them.
template <typename T>
static __global__ void residual_forward_kernel(T* out, const T* a, const T* b, size_t N) {
  constexpr int V = kVec<T>;
  const size_t i = (static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x) * V;
  if (i + V <= N) {
    float x[V], y[V];
    load_floats<V>(x, a + i);
    load_floats<V>(y, b + i);
#pragma unroll
    for (int k = 0; k < V; ++k) x[k] += y[k];
    store_floats<V>(out + i, x);
  } else {
    for (size_t j = i; j < N; ++j) out[j] = from_float<T>(to_float(a[j]) + to_float(b[j]));
  }
}

template <typename T>
static void residual_forward_impl(T* out, const T* a, const T* b, size_t N, cudaStream_t stream) {
  GPT2_REQUIRE(is_aligned16(out) && is_aligned16(a) && is_aligned16(b));
  if (N == 0) return;
  const size_t blocks = CEIL_DIV(N, static_cast<size_t>(kThreads) * kVec<T>);
  CUDA_CHECK(launch(residual_forward_kernel<T>, static_cast<unsigned>(blocks), kThreads, 0, stream, out, a, b, N));
}

void residual_forward(bf16* out, const bf16* a, const bf16* b, size_t N, cudaStream_t s) {
  residual_forward_impl(out, a, b, N, s);
}
void residual_forward(float* out, const float* a, const float* b, size_t N, cudaStream_t s) {
  residual_forward_impl(out, a, b, N, s);
}
void add_inplace(bf16* dst, const bf16* src, size_t N, cudaStream_t s) { residual_forward_impl(dst, dst, src, N, s); }
void add_inplace(float* dst, const float* src, size_t N, cudaStream_t s) { residual_forward_impl(dst, dst, src, N, s); }

}  // namespace gpt2::cuda
