// LayerNorm forward (plain, fused with the residual add, recompute) and backward: see layernorm.cuh.
#include "kernels/cuda/layernorm.cuh"

namespace gpt2::cuda {

namespace {
constexpr int kMaxSweeps = 4;

// The normalisation of one element, with explicitly rounded operations so that the forward and
// the recompute produce the same bits whatever the compiler contracts.
__device__ __forceinline__ float ln_apply(float x, float mean, float rstd, float w, float b) {
  return __fmaf_rn(__fmul_rn(__fsub_rn(x, mean), rstd), w, b);
}

// Launch shape: vector width (V), threads (a multiple of 32) and sweeps (vectors per thread).
struct LnShape {
  int vec;
  int threads;
  int sweeps;
};
template <typename T>
LnShape ln_shape(int C, bool aligned) {
  LnShape s{};
  s.vec = (aligned && C % kVec<T> == 0) ? kVec<T> : 1;
  const int nvec = C / s.vec;
  s.threads = CEIL_DIV(nvec, 32) * 32;
  if (s.threads > 1024) s.threads = 1024;
  s.sweeps = CEIL_DIV(nvec, s.threads);
  return s;
}
}  // namespace

// One block per row. Thread tid owns the vectors c = (s*blockDim + tid)*V, s < SWEEPS.
// RESIDUAL: x = round_T(a + b) is stored to `residual` and normalised.
// __launch_bounds__(1024): the block size is chosen from C at run time, up to 1024 threads, so
// every instantiation must fit 64 registers per thread (the rare very wide ones spill instead of
// failing to launch).
template <typename T, int V, int SWEEPS, bool RESIDUAL>
static __global__ void __launch_bounds__(1024)
    layernorm_forward_kernel(T* out, float* mean_out, float* rstd_out, T* residual, const T* a, const T* b,
                             const T* __restrict__ weight, const T* __restrict__ bias, int C) {
  const size_t row = blockIdx.x;
  const size_t base = row * static_cast<size_t>(C);
  float x[SWEEPS][V];
  float sum = 0.0f;
#pragma unroll
  for (int s = 0; s < SWEEPS; ++s) {
    const int c = (s * blockDim.x + threadIdx.x) * V;
    if (c < C) {
      if constexpr (RESIDUAL) {
        float y[V];
        load_floats_cs<V>(x[s], a + base + c);
        load_floats_cs<V>(y, b + base + c);
#pragma unroll
        for (int k = 0; k < V; ++k) x[s][k] = to_float(from_float<T>(x[s][k] + y[k]));
        store_floats<V>(residual + base + c, x[s]);
      } else {
        load_floats_cs<V>(x[s], a + base + c);
      }
#pragma unroll
      for (int k = 0; k < V; ++k) sum += x[s][k];
    }
  }
  const float mean = block_sum(sum) / C;
  float sq = 0.0f;
#pragma unroll
  for (int s = 0; s < SWEEPS; ++s) {
    const int c = (s * blockDim.x + threadIdx.x) * V;
    if (c < C) {
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const float d = x[s][k] - mean;
        sq += d * d;
      }
    }
  }
  const float rstd = rsqrtf(block_sum(sq) / C + kLayerNormEpsilon);
  if (threadIdx.x == 0) {
    if (mean_out) mean_out[row] = mean;
    if (rstd_out) rstd_out[row] = rstd;
  }
#pragma unroll
  for (int s = 0; s < SWEEPS; ++s) {
    const int c = (s * blockDim.x + threadIdx.x) * V;
    if (c < C) {
      float w[V], bb[V], o[V];
      load_floats<V>(w, weight + c);
      load_floats<V>(bb, bias + c);
#pragma unroll
      for (int k = 0; k < V; ++k) o[k] = ln_apply(x[s][k], mean, rstd, w[k], bb[k]);
      store_floats<V>(out + base + c, o);
    }
  }
}

// Elementwise: one thread per V-vector of out; row = element / C.
template <typename T, int V>
static __global__ void layernorm_recompute_kernel(T* out, const T* __restrict__ inp, const float* __restrict__ mean,
                                                  const float* __restrict__ rstd, const T* __restrict__ weight,
                                                  const T* __restrict__ bias, int N, int C) {
  const int vecs = C / V;
  const size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<size_t>(N) * vecs) return;
  const size_t row = idx / vecs;
  const int c = static_cast<int>(idx % vecs) * V;
  const float m = mean[row], r = rstd[row];
  float x[V], w[V], bb[V];
  load_floats_cs<V>(x, inp + row * C + c);
  load_floats<V>(w, weight + c);
  load_floats<V>(bb, bias + c);
#pragma unroll
  for (int k = 0; k < V; ++k) x[k] = ln_apply(x[k], m, r, w[k], bb[k]);
  store_floats<V>(out + row * C + c, x);
}

// Writes a thread's V partial sums for channels [c, c+V) to part[c..c+V), as coalesced stores: V = 4
// is one 16-byte store per lane; V = 8 goes through two shuffle-transposes, so that each of the
// warp's two 16-byte stores covers 512 consecutive bytes (lane l writes floats 4l..4l+3 of the
// warp's first and second halves) instead of every lane skipping the other's 16 bytes. The whole
// warp calls it (the shuffles need every lane); lanes past C store nothing.
template <int V>
__device__ __forceinline__ void store_partials(float* part, int c, int C, const float (&x)[V]) {
  if constexpr (V == 8) {
    const int lane = threadIdx.x % 32;
    const int warp_c = c - lane * V;  // the warp's first channel
    Packed128<float> lo, hi;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float a0 = __shfl_sync(0xffffffffu, x[j], lane >> 1), a1 = __shfl_sync(0xffffffffu, x[4 + j], lane >> 1);
      const float b0 = __shfl_sync(0xffffffffu, x[j], 16 + (lane >> 1));
      const float b1 = __shfl_sync(0xffffffffu, x[4 + j], 16 + (lane >> 1));
      lo[j] = lane & 1 ? a1 : a0;
      hi[j] = lane & 1 ? b1 : b0;
    }
    if (warp_c + 4 * lane < C) store128(part + warp_c + 4 * lane, lo);
    if (warp_c + 128 + 4 * lane < C) store128(part + warp_c + 128 + 4 * lane, hi);
  } else if constexpr (V == 4) {
    if (c < C) store_floats<4>(part + c, x);
  } else {
#pragma unroll
    for (int k = 0; k < V; ++k)
      if (c < C) part[c + k] = x[k];
  }
}

// Block k handles rows [k*rows_per_block, min(N, (k+1)*rows_per_block)). dweight/dbias partials
// for its channels stay in registers across rows and go to scratch[k][0..C) and scratch[k][C..2C).
template <typename T, int V, int SWEEPS>
static __global__ void __launch_bounds__(1024)
    layernorm_backward_kernel(T* dinp, float* __restrict__ scratch, const T* __restrict__ dout,
                              const T* __restrict__ inp, const T* __restrict__ weight, const float* __restrict__ mean,
                              const float* __restrict__ rstd, int N, int C, int rows_per_block) {
  const int row0 = blockIdx.x * rows_per_block;
  const int row1 = min(N, row0 + rows_per_block);
  float w[SWEEPS][V], dw[SWEEPS][V], db[SWEEPS][V];
#pragma unroll
  for (int s = 0; s < SWEEPS; ++s) {
    const int c = (s * blockDim.x + threadIdx.x) * V;
#pragma unroll
    for (int k = 0; k < V; ++k) dw[s][k] = db[s][k] = w[s][k] = 0.0f;
    if (c < C) load_floats<V>(w[s], weight + c);
  }
  for (int row = row0; row < row1; ++row) {
    const size_t base = static_cast<size_t>(row) * C;
    const float m = mean[row], r = rstd[row];
    float dy[SWEEPS][V], xh[SWEEPS][V];
    float sum_g = 0.0f, sum_gx = 0.0f;
#pragma unroll
    for (int s = 0; s < SWEEPS; ++s) {
      const int c = (s * blockDim.x + threadIdx.x) * V;
      if (c < C) {
        load_floats_cs<V>(dy[s], dout + base + c);
        load_floats_cs<V>(xh[s], inp + base + c);
#pragma unroll
        for (int k = 0; k < V; ++k) {
          xh[s][k] = (xh[s][k] - m) * r;
          const float g = dy[s][k] * w[s][k];
          sum_g += g;
          sum_gx += g * xh[s][k];
          dw[s][k] += dy[s][k] * xh[s][k];
          db[s][k] += dy[s][k];
        }
      }
    }
    const float mean_g = block_sum(sum_g) / C;
    const float mean_gx = block_sum(sum_gx) / C;
#pragma unroll
    for (int s = 0; s < SWEEPS; ++s) {
      const int c = (s * blockDim.x + threadIdx.x) * V;
      if (c < C) {
        float d[V];
        load_floats<V>(d, dinp + base + c);
#pragma unroll
        for (int k = 0; k < V; ++k) d[k] += r * (dy[s][k] * w[s][k] - mean_g - xh[s][k] * mean_gx);
        store_floats<V>(dinp + base + c, d);
      }
    }
  }
  float* part = scratch + static_cast<size_t>(blockIdx.x) * 2 * C;
#pragma unroll
  for (int s = 0; s < SWEEPS; ++s) {
    const int c = (s * blockDim.x + threadIdx.x) * V;
    store_partials<V>(part, c, C, dw[s]);
    store_partials<V>(part + C, c, C, db[s]);
  }
}

// Sums the G partial rows in a fixed order. Block (32, 32): threadIdx.x picks one of 32 of the
// 2C partial columns, threadIdx.y sums partial rows y, y+32, ...; the 32 sums are then added in
// y order. Columns [0,C) go to dweight, [C,2C) to dbias (+=).
template <typename T>
static __global__ void __launch_bounds__(1024)
    layernorm_param_grad_kernel(T* dweight, T* dbias, const float* __restrict__ scratch, int G, int C) {
  __shared__ float sums[32][33];
  const int col = blockIdx.x * 32 + threadIdx.x;
  float acc = 0.0f;
  if (col < 2 * C) {
#pragma unroll 4
    for (int g = threadIdx.y; g < G; g += 32) acc += scratch[static_cast<size_t>(g) * 2 * C + col];
  }
  sums[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && col < 2 * C) {
    float total = 0.0f;
#pragma unroll
    for (int y = 0; y < 32; ++y) total += sums[y][threadIdx.x];
    T* dst = col < C ? dweight + col : dbias + (col - C);
    *dst = from_float<T>(to_float(*dst) + total);
  }
}

// ---- launchers ---------------------------------------------------------------------------------

template <typename T, int V, int SWEEPS, bool RESIDUAL>
static void ln_forward_launch(int threads, T* out, float* mean, float* rstd, T* residual, const T* a, const T* b,
                              const T* weight, const T* bias, int N, int C, cudaStream_t stream) {
  CUDA_CHECK(launch(layernorm_forward_kernel<T, V, SWEEPS, RESIDUAL>, N, threads, 0, stream, out, mean, rstd, residual,
                    a, b, weight, bias, C));
}

template <typename T, int V, bool RESIDUAL>
static void ln_forward_sweeps(const LnShape& sh, T* out, float* mean, float* rstd, T* residual, const T* a, const T* b,
                              const T* weight, const T* bias, int N, int C, cudaStream_t stream) {
  switch (sh.sweeps) {
    case 1:
      return ln_forward_launch<T, V, 1, RESIDUAL>(sh.threads, out, mean, rstd, residual, a, b, weight, bias, N, C,
                                                  stream);
    case 2:
      return ln_forward_launch<T, V, 2, RESIDUAL>(sh.threads, out, mean, rstd, residual, a, b, weight, bias, N, C,
                                                  stream);
    default:
      return ln_forward_launch<T, V, 4, RESIDUAL>(sh.threads, out, mean, rstd, residual, a, b, weight, bias, N, C,
                                                  stream);
  }
}

template <typename T, bool RESIDUAL>
static void ln_forward_impl(T* out, float* mean, float* rstd, T* residual, const T* a, const T* b, const T* weight,
                            const T* bias, int N, int C, cudaStream_t stream) {
  GPT2_REQUIRE(N > 0 && C > 0);
  GPT2_REQUIRE(out && a && weight && bias && (!RESIDUAL || (residual && b)));
  bool aligned = is_aligned16(out) && is_aligned16(a) && is_aligned16(weight) && is_aligned16(bias);
  if (RESIDUAL) aligned = aligned && is_aligned16(residual) && is_aligned16(b);
  const LnShape sh = ln_shape<T>(C, aligned);
  GPT2_REQUIRE(sh.sweeps <= kMaxSweeps);  // C too large for this layout
  if (sh.vec == kVec<T>)
    ln_forward_sweeps<T, kVec<T>, RESIDUAL>(sh, out, mean, rstd, residual, a, b, weight, bias, N, C, stream);
  else
    ln_forward_sweeps<T, 1, RESIDUAL>(sh, out, mean, rstd, residual, a, b, weight, bias, N, C, stream);
}

template <typename T>
static void ln_recompute_impl(T* out, const T* inp, const float* mean, const float* rstd, const T* weight,
                              const T* bias, int N, int C, cudaStream_t stream) {
  GPT2_REQUIRE(N > 0 && C > 0);
  const bool vec =
      C % kVec<T> == 0 && is_aligned16(out) && is_aligned16(inp) && is_aligned16(weight) && is_aligned16(bias);
  const int V = vec ? kVec<T> : 1;
  const size_t work = static_cast<size_t>(N) * (C / V);
  const unsigned blocks = static_cast<unsigned>(CEIL_DIV(work, size_t{256}));
  if (vec)
    CUDA_CHECK(launch(layernorm_recompute_kernel<T, kVec<T>>, blocks, 256, 0, stream, out, inp, mean, rstd, weight,
                      bias, N, C));
  else
    CUDA_CHECK(
        launch(layernorm_recompute_kernel<T, 1>, blocks, 256, 0, stream, out, inp, mean, rstd, weight, bias, N, C));
}

template <typename T, int V, int SWEEPS>
static void ln_backward_launch(int G, int threads, T* dinp, float* scratch, const T* dout, const T* inp,
                               const T* weight, const float* mean, const float* rstd, int N, int C, int rpb,
                               cudaStream_t stream) {
  CUDA_CHECK(launch(layernorm_backward_kernel<T, V, SWEEPS>, G, threads, 0, stream, dinp, scratch, dout, inp, weight,
                    mean, rstd, N, C, rpb));
}

template <typename T, int V>
static void ln_backward_sweeps(const LnShape& sh, int G, T* dinp, float* scratch, const T* dout, const T* inp,
                               const T* weight, const float* mean, const float* rstd, int N, int C, int rpb,
                               cudaStream_t stream) {
  switch (sh.sweeps) {
    case 1:
      return ln_backward_launch<T, V, 1>(G, sh.threads, dinp, scratch, dout, inp, weight, mean, rstd, N, C, rpb,
                                         stream);
    case 2:
      return ln_backward_launch<T, V, 2>(G, sh.threads, dinp, scratch, dout, inp, weight, mean, rstd, N, C, rpb,
                                         stream);
    default:
      return ln_backward_launch<T, V, 4>(G, sh.threads, dinp, scratch, dout, inp, weight, mean, rstd, N, C, rpb,
                                         stream);
  }
}

template <typename T>
static void ln_backward_impl(T* dinp, T* dweight, T* dbias, float* scratch, const T* dout, const T* inp,
                             const T* weight, const float* mean, const float* rstd, int N, int C, cudaStream_t stream) {
  GPT2_REQUIRE(N > 0 && C > 0);
  GPT2_REQUIRE(dinp && dweight && dbias && scratch && dout && inp && weight && mean && rstd);
  const bool aligned = is_aligned16(dinp) && is_aligned16(dout) && is_aligned16(inp) && is_aligned16(weight);
  const LnShape sh = ln_shape<T>(C, aligned);
  GPT2_REQUIRE(sh.sweeps <= kMaxSweeps);
  // G blocks, each owning rows_per_block consecutive rows (the last one possibly fewer).
  const int g_max = N < kLayerNormBackwardMaxBlocks ? N : kLayerNormBackwardMaxBlocks;
  const int rpb = CEIL_DIV(N, g_max);
  const int G = CEIL_DIV(N, rpb);  // <= g_max, so the scratch of layernorm_backward_scratch_floats fits
  if (sh.vec == kVec<T>)
    ln_backward_sweeps<T, kVec<T>>(sh, G, dinp, scratch, dout, inp, weight, mean, rstd, N, C, rpb, stream);
  else
    ln_backward_sweeps<T, 1>(sh, G, dinp, scratch, dout, inp, weight, mean, rstd, N, C, rpb, stream);
  CUDA_CHECK(launch(layernorm_param_grad_kernel<T>, CEIL_DIV(2 * C, 32), dim3(32, 32), 0, stream, dweight, dbias,
                    scratch, G, C));
}

void layernorm_forward(bf16* out, float* mean, float* rstd, const bf16* inp, const bf16* weight, const bf16* bias,
                       int N, int C, cudaStream_t s) {
  ln_forward_impl<bf16, false>(out, mean, rstd, nullptr, inp, nullptr, weight, bias, N, C, s);
}
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight, const float* bias,
                       int N, int C, cudaStream_t s) {
  ln_forward_impl<float, false>(out, mean, rstd, nullptr, inp, nullptr, weight, bias, N, C, s);
}
void residual_layernorm_forward(bf16* residual, bf16* out, float* mean, float* rstd, const bf16* a, const bf16* b,
                                const bf16* weight, const bf16* bias, int N, int C, cudaStream_t s) {
  ln_forward_impl<bf16, true>(out, mean, rstd, residual, a, b, weight, bias, N, C, s);
}
void residual_layernorm_forward(float* residual, float* out, float* mean, float* rstd, const float* a, const float* b,
                                const float* weight, const float* bias, int N, int C, cudaStream_t s) {
  ln_forward_impl<float, true>(out, mean, rstd, residual, a, b, weight, bias, N, C, s);
}
void layernorm_recompute(bf16* out, const bf16* inp, const float* mean, const float* rstd, const bf16* weight,
                         const bf16* bias, int N, int C, cudaStream_t s) {
  ln_recompute_impl(out, inp, mean, rstd, weight, bias, N, C, s);
}
void layernorm_recompute(float* out, const float* inp, const float* mean, const float* rstd, const float* weight,
                         const float* bias, int N, int C, cudaStream_t s) {
  ln_recompute_impl(out, inp, mean, rstd, weight, bias, N, C, s);
}
void layernorm_backward(bf16* dinp, bf16* dweight, bf16* dbias, float* scratch, const bf16* dout, const bf16* inp,
                        const bf16* weight, const float* mean, const float* rstd, int N, int C, cudaStream_t s) {
  ln_backward_impl(dinp, dweight, dbias, scratch, dout, inp, weight, mean, rstd, N, C, s);
}
void layernorm_backward(float* dinp, float* dweight, float* dbias, float* scratch, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int N, int C, cudaStream_t s) {
  ln_backward_impl(dinp, dweight, dbias, scratch, dout, inp, weight, mean, rstd, N, C, s);
}

}  // namespace gpt2::cuda
