#include "kernels/cuda/attention_decode.cuh"

namespace gpt2::cuda {

namespace {

constexpr int kThreads = 256;

__device__ float block_max(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < nwarps ? partial[lane] : -INFINITY;
  return warp_max(v);
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    attention_decode_kernel(T* y, float* scratch, const T* qkv, int pos, int C, int NH) {
  const int h = blockIdx.x;
  const int HS = C / NH;
  const float scale = rsqrtf(static_cast<float>(HS));
  const size_t row = 3 * static_cast<size_t>(C);
  const T* q = qkv + static_cast<size_t>(pos) * row + h * HS;
  float* s = scratch + static_cast<size_t>(h) * (pos + 1);

  float local_max = -INFINITY;
  for (int j = threadIdx.x; j <= pos; j += blockDim.x) {
    const T* k = qkv + static_cast<size_t>(j) * row + C + h * HS;
    float dot = 0.0f;
    for (int d = 0; d < HS; ++d) dot += to_float(q[d]) * to_float(k[d]);
    dot *= scale;
    s[j] = dot;
    local_max = fmaxf(local_max, dot);
  }
  const float m = block_max(local_max);
  float local_sum = 0.0f;
  for (int j = threadIdx.x; j <= pos; j += blockDim.x) {
    const float e = expf(s[j] - m);
    s[j] = e;
    local_sum += e;
  }
  const float inv = 1.0f / block_sum(local_sum);  // block_sum's barrier also publishes s[]
  for (int d = threadIdx.x; d < HS; d += blockDim.x) {
    float acc = 0.0f;
    for (int j = 0; j <= pos; ++j) acc += s[j] * to_float(qkv[static_cast<size_t>(j) * row + 2 * C + h * HS + d]);
    y[h * HS + d] = from_float<T>(acc * inv);
  }
}

template <typename T>
void launch_decode(T* y, float* scratch, const T* qkv, int pos, int C, int NH, cudaStream_t stream) {
  GPT2_REQUIRE(y && scratch && qkv && pos >= 0 && NH > 0 && C % NH == 0);
  CUDA_CHECK(launch(attention_decode_kernel<T>, NH, kThreads, 0, stream, y, scratch, qkv, pos, C, NH));
}

}  // namespace

void attention_decode(bf16* y, float* scratch, const bf16* qkv, int pos, int C, int NH, cudaStream_t stream) {
  launch_decode(y, scratch, qkv, pos, C, NH, stream);
}
void attention_decode(float* y, float* scratch, const float* qkv, int pos, int C, int NH, cudaStream_t stream) {
  launch_decode(y, scratch, qkv, pos, C, NH, stream);
}

}  // namespace gpt2::cuda
