// Token + position embedding forward and deterministic backward: see encoder.cuh.
#include "kernels/cuda/encoder.cuh"

#include <algorithm>
#include <vector>

namespace gpt2::cuda {

namespace {
constexpr int kThreads = 256;
constexpr int kSegThreads = 128;
}  // namespace

// One thread per V-element vector of out. idx enumerates (b*T + t, channel vector).
template <typename T, int V>
static __global__ void encoder_forward_kernel(T* out, const int32_t* __restrict__ tokens, const T* __restrict__ wte,
                                              const T* __restrict__ wpe, int BT, int T_, int C) {
  const int vecs_per_row = C / V;
  const size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<size_t>(BT) * vecs_per_row) return;
  const int bt = static_cast<int>(idx / vecs_per_row);
  const int c = static_cast<int>(idx % vecs_per_row) * V;
  const int t = bt % T_;
  const int tok = tokens[bt];
  float a[V], p[V];
  load_floats<V>(a, wte + static_cast<size_t>(tok) * C + c);
  load_floats<V>(p, wpe + static_cast<size_t>(t) * C + c);
#pragma unroll
  for (int k = 0; k < V; ++k) a[k] += p[k];
  store_floats<V>(out + static_cast<size_t>(bt) * C + c, a);
}

// dwpe[t, c..c+V) += sum over b (ascending) of dout[b, t, c..c+V).
template <typename T, int V>
static __global__ void wpe_backward_kernel(T* dwpe, const T* __restrict__ dout, int B, int T_, int C) {
  const int vecs_per_row = C / V;
  const size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<size_t>(T_) * vecs_per_row) return;
  const int t = static_cast<int>(idx / vecs_per_row);
  const int c = static_cast<int>(idx % vecs_per_row) * V;
  float acc[V] = {};
  for (int b = 0; b < B; ++b) {
    float d[V];
    load_floats_cs<V>(d, dout + (static_cast<size_t>(b) * T_ + t) * C + c);
#pragma unroll
    for (int k = 0; k < V; ++k) acc[k] += d[k];
  }
  add_floats<V>(dwpe + static_cast<size_t>(t) * C + c, acc);
}

// One block (x) per token segment, threads (and blockIdx.y) over channel vectors. The block owns
// wte row seg_tok[s]; it sums the segment's rows in ascending position order, then adds once.
template <typename T, int V>
static __global__ void wte_backward_kernel(T* dwte, const T* __restrict__ dout, const int32_t* __restrict__ sorted_pos,
                                           const int32_t* __restrict__ seg_tok, const int32_t* __restrict__ seg_start,
                                           const int32_t* __restrict__ seg_count, int C) {
  const int s = blockIdx.x;
  const int c = (blockIdx.y * blockDim.x + threadIdx.x) * V;
  if (c >= C) return;
  const int tok = seg_tok[s], start = seg_start[s], count = seg_count[s];
  float acc[V] = {};
#pragma unroll 4
  for (int i = 0; i < count; ++i) {
    const int p = sorted_pos[start + i];
    float d[V];
    load_floats_cs<V>(d, dout + static_cast<size_t>(p) * C + c);
#pragma unroll
    for (int k = 0; k < V; ++k) acc[k] += d[k];
  }
  add_floats<V>(dwte + static_cast<size_t>(tok) * C + c, acc);
}

template <typename T, int V>
static void encoder_forward_launch(T* out, const int32_t* tokens, const T* wte, const T* wpe, int B, int T_, int C,
                                   cudaStream_t stream) {
  const size_t work = static_cast<size_t>(B) * T_ * (C / V);
  CUDA_CHECK(launch(encoder_forward_kernel<T, V>, static_cast<unsigned>(CEIL_DIV(work, static_cast<size_t>(kThreads))),
                    kThreads, 0, stream, out, tokens, wte, wpe, B * T_, T_, C));
}

template <typename T>
static void encoder_forward_impl(T* out, const int32_t* tokens, const T* wte, const T* wpe, int B, int T_, int C,
                                 cudaStream_t stream) {
  GPT2_REQUIRE(B > 0 && T_ > 0 && C > 0);
  GPT2_REQUIRE(is_aligned16(out) && is_aligned16(wte) && is_aligned16(wpe));
  if (C % kVec<T> == 0)
    encoder_forward_launch<T, kVec<T>>(out, tokens, wte, wpe, B, T_, C, stream);
  else
    encoder_forward_launch<T, 1>(out, tokens, wte, wpe, B, T_, C, stream);
}

template <typename T, int V>
static void encoder_backward_launch(T* dwte, T* dwpe, const int32_t* scratch, int num_segments, const T* dout, int B,
                                    int T_, int C, cudaStream_t stream) {
  const int BT = B * T_;
  const int32_t* sorted_pos = scratch;
  const int32_t* seg_tok = scratch + BT;
  const int32_t* seg_start = seg_tok + num_segments;
  const int32_t* seg_count = seg_start + num_segments;
  const int vecs = C / V;
  const dim3 grid(static_cast<unsigned>(num_segments), static_cast<unsigned>(CEIL_DIV(vecs, kSegThreads)));
  CUDA_CHECK(launch(wte_backward_kernel<T, V>, grid, kSegThreads, 0, stream, dwte, dout, sorted_pos, seg_tok, seg_start,
                    seg_count, C));
  const size_t work = static_cast<size_t>(T_) * vecs;
  CUDA_CHECK(launch(wpe_backward_kernel<T, V>, static_cast<unsigned>(CEIL_DIV(work, static_cast<size_t>(kThreads))),
                    kThreads, 0, stream, dwpe, dout, B, T_, C));
}

int encoder_backward_prepare(int32_t* scratch, const int32_t* tokens_host, int B, int T_, int V, cudaStream_t stream) {
  GPT2_REQUIRE(B > 0 && T_ > 0 && V > 0 && scratch != nullptr && tokens_host != nullptr);
  GPT2_REQUIRE(static_cast<int64_t>(B) * T_ < (int64_t{1} << 29));  // 4·B·T scratch ints indexable by int
  const int BT = B * T_;
  // Stable counting sort of the positions by token id (ascending positions within a token).
  std::vector<int32_t> count(static_cast<size_t>(V) + 1, 0);
  for (int p = 0; p < BT; ++p) {
    const int32_t tok = tokens_host[p];
    GPT2_REQUIRE(tok >= 0 && tok < V);
    ++count[static_cast<size_t>(tok) + 1];
  }
  for (int v = 0; v < V; ++v) count[v + 1] += count[v];  // count[v] = start of token v
  // Host staging: [sorted positions: BT][seg_tok: S][seg_start: S][seg_count: S].
  std::vector<int32_t> host(static_cast<size_t>(BT));
  {
    std::vector<int32_t> cursor(count.begin(), count.end() - 1);
    for (int p = 0; p < BT; ++p) host[cursor[tokens_host[p]]++] = p;
  }
  std::vector<int32_t> segs;  // token ids with at least one occurrence
  for (int v = 0; v < V; ++v)
    if (count[v + 1] > count[v]) segs.push_back(v);
  // Largest segments first (load balance); ties by token id. Order does not change any result.
  std::stable_sort(segs.begin(), segs.end(),
                   [&](int32_t a, int32_t b) { return count[a + 1] - count[a] > count[b + 1] - count[b]; });
  const int S = static_cast<int>(segs.size());
  host.resize(static_cast<size_t>(BT) + 3 * static_cast<size_t>(S));
  for (int s = 0; s < S; ++s) {
    const int32_t v = segs[s];
    host[BT + s] = v;
    host[BT + S + s] = count[v];
    host[BT + 2 * S + s] = count[v + 1] - count[v];
  }
  // Pageable source: staged before the call returns, so `host` may be freed right after.
  CUDA_CHECK(cudaMemcpyAsync(scratch, host.data(), host.size() * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
  return S;
}

template <typename T>
static void encoder_backward_impl(T* dwte, T* dwpe, const int32_t* scratch, int num_segments, const T* dout, int B,
                                  int T_, int C, cudaStream_t stream) {
  GPT2_REQUIRE(B > 0 && T_ > 0 && C > 0 && num_segments > 0 && num_segments <= B * T_);
  GPT2_REQUIRE(is_aligned16(dwte) && is_aligned16(dwpe) && is_aligned16(dout) && scratch != nullptr);
  if (C % kVec<T> == 0)
    encoder_backward_launch<T, kVec<T>>(dwte, dwpe, scratch, num_segments, dout, B, T_, C, stream);
  else
    encoder_backward_launch<T, 1>(dwte, dwpe, scratch, num_segments, dout, B, T_, C, stream);
}

void encoder_forward(bf16* out, const int32_t* tokens, const bf16* wte, const bf16* wpe, int B, int T, int C,
                     cudaStream_t s) {
  encoder_forward_impl(out, tokens, wte, wpe, B, T, C, s);
}
void encoder_forward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int B, int T, int C,
                     cudaStream_t s) {
  encoder_forward_impl(out, tokens, wte, wpe, B, T, C, s);
}
void encoder_backward(bf16* dwte, bf16* dwpe, const int32_t* scratch, int num_segments, const bf16* dout, int B, int T,
                      int C, cudaStream_t s) {
  encoder_backward_impl(dwte, dwpe, scratch, num_segments, dout, B, T, C, s);
}
void encoder_backward(float* dwte, float* dwpe, const int32_t* scratch, int num_segments, const float* dout, int B,
                      int T, int C, cudaStream_t s) {
  encoder_backward_impl(dwte, dwpe, scratch, num_segments, dout, B, T, C, s);
}
void encoder_backward(bf16* dwte, bf16* dwpe, int32_t* scratch, const bf16* dout, const int32_t* tokens_host, int B,
                      int T, int C, int V, cudaStream_t s) {
  const int S = encoder_backward_prepare(scratch, tokens_host, B, T, V, s);
  encoder_backward_impl(dwte, dwpe, scratch, S, dout, B, T, C, s);
}
void encoder_backward(float* dwte, float* dwpe, int32_t* scratch, const float* dout, const int32_t* tokens_host, int B,
                      int T, int C, int V, cudaStream_t s) {
  const int S = encoder_backward_prepare(scratch, tokens_host, B, T, V, s);
  encoder_backward_impl(dwte, dwpe, scratch, S, dout, B, T, C, s);
}

}  // namespace gpt2::cuda
