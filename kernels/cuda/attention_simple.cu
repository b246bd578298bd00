/*
 * The simple attention kernels: one warp per query (or key) row, fp32 maths, no tensor cores, any
 * storage type and any head size 1 ≤ HS ≤ kMaxAttentionHeadSize. They implement the contract of
 * attention.cuh (maths at the top of attention.cu) and are the fp32 path, the path of bf16 at head
 * sizes other than 64 and 128, and the independent cross-check of the flash kernels
 * (attention_forward_simple / attention_backward_simple).
 *
 * grid (B·NH, ceil(T/4)), 4 warps. Each lane owns dims lane + 32r (r < R = ceil(HS/32)) that are
 * below HS. Keys (or queries) go in chunks of 32, one per lane, whose scores each lane computes
 * in full; the chunk's weights are then broadcast with shuffles. HSC is the head size when it is
 * known at compile time (64, 128: the loops unroll), or 0 to read it from `hs`. A row's cost
 * grows with T·HS, with no data reuse between rows: far slower than the flash kernels.
 *
 * Backward: simple_backward_dq_kernel (one warp per query row) and simple_backward_dkv_kernel
 * (one warp per key row), after attention.cu's row_dot_kernel has written D = dy·y.
 *
 * The launchers are here, with their kernels: which instantiation runs depends on HS.
 */
#include "kernels/cuda/attention_paths.cuh"

#include <cmath>

namespace gpt2::cuda {

namespace {

template <typename S, int R, int HSC>
__global__ void __launch_bounds__(128)
    simple_forward_kernel(S* __restrict__ y, float* __restrict__ lse, const S* __restrict__ qkv, int T, int NH, int hs,
                          float scale) {
  const int HS = HSC > 0 ? HSC : hs;
  __shared__ float sq[4][32 * R];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int i = blockIdx.y * 4 + warp;
  if (i >= T) return;  // warp-uniform; no block barriers below
  const int bh = blockIdx.x, b = bh / NH, h = bh % NH;
  const int C = NH * HS;
  const size_t C3 = 3 * static_cast<size_t>(C);
  const S* base = qkv + static_cast<size_t>(b) * T * C3 + h * HS;
#pragma unroll
  for (int r = 0; r < R; ++r)
    if (lane + 32 * r < HS) sq[warp][lane + 32 * r] = to_float(base[i * C3 + lane + 32 * r]) * scale;
  __syncwarp();
  float m = -INFINITY, l = 0.f, acc[R];
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = 0.f;
  for (int c0 = 0; c0 <= i; c0 += 32) {
    const int j = c0 + lane;
    float s = -INFINITY;
    if (j <= i) {
      const S* kj = base + j * C3 + C;
      float d = 0.f;
      // Unrolled by 16, not fully: at head size 64 the full unroll made ptxas spill 8-12 bytes on
      // sm_80/86/89/120 (kernels/cuda/kernel_resources.json).
#pragma unroll 16
      for (int k = 0; k < HS; ++k) d += sq[warp][k] * to_float(kj[k]);
      s = d;
    }
    const float m_new = fmaxf(m, warp_max(s));  // finite: key c0 ≤ i is always visible
    const float alpha = expf(m - m_new);
    const float p = j <= i ? expf(s - m_new) : 0.f;
    l = l * alpha + warp_sum(p);
#pragma unroll
    for (int r = 0; r < R; ++r) acc[r] *= alpha;
    const int n = min(32, i - c0 + 1);
    for (int jj = 0; jj < n; ++jj) {
      const float pj = __shfl_sync(0xffffffffu, p, jj);
      const S* vj = base + (c0 + jj) * C3 + 2 * C;
#pragma unroll
      for (int r = 0; r < R; ++r)
        if (lane + 32 * r < HS) acc[r] += pj * to_float(vj[lane + 32 * r]);
    }
    m = m_new;
  }
  S* yo = y + (static_cast<size_t>(b) * T + i) * C + h * HS;
#pragma unroll
  for (int r = 0; r < R; ++r)
    if (lane + 32 * r < HS) yo[lane + 32 * r] = from_float<S>(acc[r] / l);
  if (lane == 0) lse[static_cast<size_t>(bh) * T + i] = m + logf(l);
}

// dq for one query row per warp.
template <typename S, int R, int HSC>
__global__ void __launch_bounds__(128)
    simple_backward_dq_kernel(S* __restrict__ dqkv, const S* __restrict__ dy, const S* __restrict__ qkv,
                              const float* __restrict__ lse, const float* __restrict__ Dg, int T, int NH, int hs,
                              float scale) {
  const int HS = HSC > 0 ? HSC : hs;
  __shared__ float sq[4][32 * R], sdy[4][32 * R];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int i = blockIdx.y * 4 + warp;
  if (i >= T) return;
  const int bh = blockIdx.x, b = bh / NH, h = bh % NH;
  const int C = NH * HS;
  const size_t C3 = 3 * static_cast<size_t>(C);
  const S* base = qkv + static_cast<size_t>(b) * T * C3 + h * HS;
  const S* dyi = dy + (static_cast<size_t>(b) * T + i) * C + h * HS;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    if (lane + 32 * r >= HS) continue;
    sq[warp][lane + 32 * r] = to_float(base[i * C3 + lane + 32 * r]);
    sdy[warp][lane + 32 * r] = to_float(dyi[lane + 32 * r]);
  }
  __syncwarp();
  const float li = lse[static_cast<size_t>(bh) * T + i], Di = Dg[static_cast<size_t>(bh) * T + i];
  float acc[R];
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = 0.f;
  for (int c0 = 0; c0 <= i; c0 += 32) {
    const int j = c0 + lane;
    float ds = 0.f;
    if (j <= i) {
      const S* kj = base + j * C3 + C;
      const S* vj = base + j * C3 + 2 * C;
      float s = 0.f, dp = 0.f;
      if constexpr (HSC > 0) {
        // A compiled-in head size (64, 128): unrolled by 4, not fully, which made ptxas spill
        // 8-16 bytes on sm_90/100/120 (kernels/cuda/kernel_resources.json).
#pragma unroll 4
        for (int k = 0; k < HS; ++k) {
          s += sq[warp][k] * to_float(kj[k]);
          dp += sdy[warp][k] * to_float(vj[k]);
        }
      } else {
        for (int k = 0; k < HS; ++k) {
          s += sq[warp][k] * to_float(kj[k]);
          dp += sdy[warp][k] * to_float(vj[k]);
        }
      }
      ds = expf(scale * s - li) * (dp - Di);
    }
    const int n = min(32, i - c0 + 1);
    for (int jj = 0; jj < n; ++jj) {
      const float dsj = __shfl_sync(0xffffffffu, ds, jj);
      const S* kj = base + (c0 + jj) * C3 + C;
#pragma unroll
      for (int r = 0; r < R; ++r)
        if (lane + 32 * r < HS) acc[r] += dsj * to_float(kj[lane + 32 * r]);
    }
  }
  S* dq = dqkv + (static_cast<size_t>(b) * T + i) * C3 + h * HS;
#pragma unroll
  for (int r = 0; r < R; ++r)
    if (lane + 32 * r < HS) dq[lane + 32 * r] = from_float<S>(acc[r] * scale);
}

// dk, dv for one key row per warp.
template <typename S, int R, int HSC>
__global__ void __launch_bounds__(128)
    simple_backward_dkv_kernel(S* __restrict__ dqkv, const S* __restrict__ dy, const S* __restrict__ qkv,
                               const float* __restrict__ lse, const float* __restrict__ Dg, int T, int NH, int hs,
                               float scale) {
  const int HS = HSC > 0 ? HSC : hs;
  __shared__ float sk[4][32 * R], sv[4][32 * R];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int j = blockIdx.y * 4 + warp;
  if (j >= T) return;
  const int bh = blockIdx.x, b = bh / NH, h = bh % NH;
  const int C = NH * HS;
  const size_t C3 = 3 * static_cast<size_t>(C);
  const S* base = qkv + static_cast<size_t>(b) * T * C3 + h * HS;
  const S* dyb = dy + static_cast<size_t>(b) * T * C + h * HS;
  const float* lrow = lse + static_cast<size_t>(bh) * T;
  const float* drow = Dg + static_cast<size_t>(bh) * T;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    if (lane + 32 * r >= HS) continue;
    sk[warp][lane + 32 * r] = to_float(base[j * C3 + C + lane + 32 * r]);
    sv[warp][lane + 32 * r] = to_float(base[j * C3 + 2 * C + lane + 32 * r]);
  }
  __syncwarp();
  float dk[R], dv[R];
#pragma unroll
  for (int r = 0; r < R; ++r) dk[r] = dv[r] = 0.f;
  for (int c0 = j; c0 < T; c0 += 32) {
    const int i = c0 + lane;
    float p = 0.f, ds = 0.f;
    if (i < T) {
      const S* qi = base + i * C3;
      const S* dyi = dyb + static_cast<size_t>(i) * C;
      float s = 0.f, dp = 0.f;
      for (int k = 0; k < HS; ++k) {
        s += to_float(qi[k]) * sk[warp][k];
        dp += to_float(dyi[k]) * sv[warp][k];
      }
      p = expf(scale * s - lrow[i]);
      ds = p * (dp - drow[i]);
    }
    const int n = min(32, T - c0);
    for (int ii = 0; ii < n; ++ii) {
      const float pi = __shfl_sync(0xffffffffu, p, ii);
      const float dsi = __shfl_sync(0xffffffffu, ds, ii);
      const S* qi = base + (c0 + ii) * C3;
      const S* dyi = dyb + static_cast<size_t>(c0 + ii) * C;
#pragma unroll
      for (int r = 0; r < R; ++r) {
        if (lane + 32 * r >= HS) continue;
        dv[r] += pi * to_float(dyi[lane + 32 * r]);
        dk[r] += dsi * to_float(qi[lane + 32 * r]);
      }
    }
  }
  S* out = dqkv + (static_cast<size_t>(b) * T + j) * C3 + h * HS;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    if (lane + 32 * r >= HS) continue;
    out[C + lane + 32 * r] = from_float<S>(dk[r] * scale);
    out[2 * C + lane + 32 * r] = from_float<S>(dv[r]);
  }
}

// Calls launch(kernel) with the simple kernel instantiation for head size HS: compile-time 64 and
// 128, otherwise the smallest lane-chunk count R (1, 2, 4 or 8 dims per lane) that covers HS.
template <template <typename, int, int> class Pick, typename S, typename Launch>
void with_simple_kernel(int HS, Launch&& launch_it) {
  if (HS == 64) return launch_it(Pick<S, 2, 64>::kernel);
  if (HS == 128) return launch_it(Pick<S, 4, 128>::kernel);
  if (HS <= 32) return launch_it(Pick<S, 1, 0>::kernel);
  if (HS <= 64) return launch_it(Pick<S, 2, 0>::kernel);
  if (HS <= 128) return launch_it(Pick<S, 4, 0>::kernel);
  return launch_it(Pick<S, 8, 0>::kernel);
}
template <typename S, int R, int HSC>
struct SimpleForward {
  static constexpr auto kernel = simple_forward_kernel<S, R, HSC>;
};
template <typename S, int R, int HSC>
struct SimpleBackwardDq {
  static constexpr auto kernel = simple_backward_dq_kernel<S, R, HSC>;
};
template <typename S, int R, int HSC>
struct SimpleBackwardDkv {
  static constexpr auto kernel = simple_backward_dkv_kernel<S, R, HSC>;
};

template <typename S>
void launch_simple_forward(S* y, float* lse, const S* qkv, int B, int T, int NH, int HS, cudaStream_t stream) {
  const dim3 grid(B * NH, CEIL_DIV(T, 4));
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  with_simple_kernel<SimpleForward, S>(
      HS, [&](auto kernel) { CUDA_CHECK(launch(kernel, grid, 128, 0, stream, y, lse, qkv, T, NH, HS, scale)); });
}

template <typename S>
void launch_simple_backward(S* dqkv, const float* D, const S* dy, const S* qkv, const float* lse, int B, int T, int NH,
                            int HS, cudaStream_t stream) {
  const dim3 grid(B * NH, CEIL_DIV(T, 4));
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  auto run = [&](auto kernel) {
    CUDA_CHECK(launch(kernel, grid, 128, 0, stream, dqkv, dy, qkv, lse, D, T, NH, HS, scale));
  };
  with_simple_kernel<SimpleBackwardDq, S>(HS, run);
  with_simple_kernel<SimpleBackwardDkv, S>(HS, run);
}

}  // namespace

void attn::simple_forward(bf16* y, float* lse, const bf16* qkv, int B, int T, int NH, int HS, cudaStream_t stream) {
  launch_simple_forward(y, lse, qkv, B, T, NH, HS, stream);
}
void attn::simple_forward(float* y, float* lse, const float* qkv, int B, int T, int NH, int HS, cudaStream_t stream) {
  launch_simple_forward(y, lse, qkv, B, T, NH, HS, stream);
}
void attn::simple_backward(bf16* dqkv, const float* D, const bf16* dy, const bf16* qkv, const float* lse, int B, int T,
                           int NH, int HS, cudaStream_t stream) {
  launch_simple_backward(dqkv, D, dy, qkv, lse, B, T, NH, HS, stream);
}
void attn::simple_backward(float* dqkv, const float* D, const float* dy, const float* qkv, const float* lse, int B,
                           int T, int NH, int HS, cudaStream_t stream) {
  launch_simple_backward(dqkv, D, dy, qkv, lse, B, T, NH, HS, stream);
}

}  // namespace gpt2::cuda
