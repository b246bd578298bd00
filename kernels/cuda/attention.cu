/*
 * Causal multi-head self-attention, flash style: forward and backward with no T×T buffer.
 *
 * Shapes (C = NH·HS, HS ∈ {64, 128}, any T ≥ 1):
 *   qkv (B,T,3C) viewed as (B,T,3,NH,HS); y, dy (B,T,NH,HS); lse (B,NH,T) fp32;
 *   dqkv (B,T,3C), written (=) in full; scratch_att (B,NH,T) fp32 (backward only).
 *
 * Maths, per (b, h), with scale = 1/sqrt(HS) and j ≤ i (causal):
 *   s_ij = scale·q_i·k_j     lse_i = log Σ_j exp(s_ij)     p_ij = exp(s_ij − lse_i)
 *   y_i  = Σ_j p_ij v_j
 *   D_i  = dy_i · y_i        dp_ij = dy_i · v_j            ds_ij = p_ij (dp_ij − D_i)
 *   dq_i = scale Σ_j ds_ij k_j     dk_j = scale Σ_i ds_ij q_i     dv_j = Σ_i p_ij dy_i
 * Activation gradients are written (=), never accumulated.
 *
 * Forward (flash_forward_kernel). One CTA per (b·h, block of BQ=64 query rows), 4 warps, each
 * warp owning 16 query rows. The CTA walks the key blocks (BK=64) from 0 up to the block holding
 * its last row (causal block skipping); K and V tiles are double-buffered in shared memory with
 * cp.async. Per key block a warp computes S = Q·Kᵀ (16×BK) with mma.sync m16n8k16 (bf16 in,
 * fp32 accumulate), masks keys > query and keys ≥ T on the blocks that need it, does the online
 * softmax in fp32 in the exp2 domain (running max m and sum l per row, O rescaled by
 * exp2(m_old − m_new)), converts P to bf16 in registers (the accumulator layout of two adjacent
 * 16×8 tiles is the A-operand layout of one 16×16 tile) and accumulates O += P·V. At the end
 * y = O / l and lse = (m + log2 l)·ln2. CTAs are issued heaviest (last query block) first.
 *
 * Backward. Three kernels, no atomics, so every output element is produced by exactly one
 * thread with a fixed summation order: bitwise deterministic run to run.
 *   1. row_dot_kernel: D_i = dy_i · y_i into scratch_att.
 *   2. flash_backward_dkv_kernel: one CTA per (b·h, block of BK=64 keys), each warp owning 16
 *      keys. It walks the query blocks i ≥ its first key and, working in the transposed frame,
 *      recomputes Sᵀ = K·Qᵀ and dPᵀ = V·dYᵀ, forms Pᵀ = exp2(Sᵀ·scale·log2e − lse·log2e) and
 *      dSᵀ = Pᵀ∘(dPᵀ − D), and accumulates dV += Pᵀ·dY and dK += dSᵀ·Q in registers (Pᵀ, dSᵀ
 *      go straight from accumulators to A operands). Q, dY, lse, D tiles are double-buffered.
 *   3. flash_backward_dq_kernel: one CTA per (b·h, block of 64 queries), each warp owning 16
 *      queries; walks key blocks 0..its diagonal, recomputes S, dP, P, dS and accumulates
 *      dQ += dS·K. K and V tiles are double-buffered.
 * Kernels 2 and 3 both recompute S and dP (7 tile matmuls instead of FlashAttention-2's 5):
 * that is the price of determinism without atomics or a dQ accumulation buffer.
 *
 * Tiles and fragments. Shared-memory tiles are row-major with rows padded to HS+8 bf16
 * (144 or 272 bytes): rows stay 16-byte aligned for cp.async/ldmatrix and the 8 row addresses of
 * one ldmatrix phase fall on 8 distinct 4-bank groups (no bank conflicts). Out-of-range rows
 * (≥ T) are zero-filled, so masked products never touch garbage (0·NaN would poison sums).
 * With g = lane/4, t = lane%4, mma.m16n8k16 holds A (16×16) as {row g, cols 2t..2t+1},
 * {row g+8, same}, {row g, cols 8+2t..}, {row g+8, cols 8+2t..}; B (16×8) as {k 2t..2t+1, n g},
 * {k 8+2t.., n g}; C (16×8 fp32) as {row g, cols 2t, 2t+1}, {row g+8, cols 2t, 2t+1}.
 * ldmatrix.x4 loads four 8×8 matrices, lane L giving the address of row L%8 of matrix L/8;
 * without .trans lane L receives {M[L/4][2(L%4)], M[L/4][2(L%4)+1]}, with .trans
 * {M[2(L%4)][L/4], M[2(L%4)+1][L/4]}. So a row-major tile X[r][c] gives: A operands (X = Q, dY,
 * K, V as the "M" side) without .trans; B operands where the tile is [n][k] (K in Q·Kᵀ, Q in
 * K·Qᵀ) without .trans; B operands where the tile is [k][n] (V in P·V, dY in Pᵀ·dY, K in dS·K,
 * Q in dSᵀ·Q) with .trans.
 *
 * Precision: inputs bf16, every matmul accumulates in fp32, softmax statistics fp32; P and dS
 * are rounded to bf16 only as tensor-core operands (as FlashAttention does).
 *
 * The simple kernels at the end (one warp per row, fp32 maths, no tensor cores) implement the
 * same contract for any storage type: they are the fp32 path and the cross-check of the
 * tensor-core path. Extra device memory: none beyond scratch_att.
 */
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/ptx.cuh"

#include <cmath>
#include <cstdint>

namespace gpt2::cuda {

namespace {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr int kPad = 8;  // bf16 elements of padding per shared-memory tile row

// ---------------------------------------------------------------------------------------------
// PTX wrappers (the instructions themselves are in ptx.cuh)
// ---------------------------------------------------------------------------------------------

// 16-byte global → shared copy; when !valid, writes 16 zero bytes and reads nothing.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  ptx::cp_async_cg_16(smem, gmem, valid ? 16 : 0);
}
// 4-byte variant for the fp32 row statistics (lse, D), whose rows are not 16-byte aligned.
__device__ __forceinline__ void cp_async4(void* smem, const void* gmem, bool valid) {
  ptx::cp_async_ca_4(smem, gmem, valid ? 4 : 0);
}
__device__ __forceinline__ void cp_async_commit() { ptx::cp_async_commit_group(); }
__device__ __forceinline__ void cp_async_wait_all() { ptx::cp_async_wait_group<0>(); }

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const bf16* p) { ptx::ldmatrix_x4(r, p); }
__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], const bf16* p) { ptx::ldmatrix_x4_trans(r, p); }

// d += A·B for one 16×8×16 tile: A 4 regs (bf16x2), B 2 regs (bf16x2), d 4 fp32.
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  const uint32_t b[2] = {b0, b1};
  const float c[4] = {d[0], d[1], d[2], d[3]};
  ptx::mma_m16n8k16_bf16_f32(d, a, b, c);
}

// Two floats → one bf16x2 register, `lo` in the low half (the lower column index).
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// ---------------------------------------------------------------------------------------------
// Fragment address helpers (lane-dependent offsets into a padded row-major tile, stride LD)
// ---------------------------------------------------------------------------------------------

// A operand, 16×16 at (row0, col0): matrices {rows 0-7, cols 0-7}, {rows 8-15, cols 0-7},
// {rows 0-7, cols 8-15}, {rows 8-15, cols 8-15} → a[0..3].
template <int LD>
__device__ __forceinline__ const bf16* frag_a(const bf16* tile, int row0, int col0, int lane) {
  return tile + (row0 + (lane & 15)) * LD + col0 + (lane >> 4) * 8;
}
// B operands of two adjacent n-tiles from a [n][k] tile (no .trans): matrices {n 0-7, k 0-7},
// {n 0-7, k 8-15}, {n 8-15, k 0-7}, {n 8-15, k 8-15} → (b0, b1) of n-tile 0, (b0, b1) of n-tile 1.
template <int LD>
__device__ __forceinline__ const bf16* frag_b_nk(const bf16* tile, int n0, int k0, int lane) {
  return tile + (n0 + (lane >> 4) * 8 + (lane & 7)) * LD + k0 + ((lane >> 3) & 1) * 8;
}
// B operands of two adjacent n-tiles from a [k][n] tile (use with .trans): matrices
// {k 0-7, n 0-7}, {k 8-15, n 0-7}, {k 0-7, n 8-15}, {k 8-15, n 8-15} → same register order.
template <int LD>
__device__ __forceinline__ const bf16* frag_b_kn(const bf16* tile, int k0, int n0, int lane) {
  return tile + (k0 + ((lane >> 3) & 1) * 8 + (lane & 7)) * LD + n0 + (lane >> 4) * 8;
}

// ---------------------------------------------------------------------------------------------
// Tile loads
// ---------------------------------------------------------------------------------------------

// ROWS rows of one head's HS-wide slice, starting at token row0, into a padded tile. `g` points at
// token 0 of the slice; `stride` is the token stride in elements. Rows ≥ T are zero-filled.
template <int ROWS, int HS, int NTHREADS>
__device__ __forceinline__ void load_tile_async(bf16* tile, const bf16* g, size_t stride, int row0, int T) {
  constexpr int kChunksPerRow = HS / 8;
  constexpr int kChunks = ROWS * kChunksPerRow;
  static_assert(kChunks % NTHREADS == 0, "tile chunks must divide evenly among threads");
#pragma unroll
  for (int c = threadIdx.x; c < kChunks; c += NTHREADS) {
    const int r = c / kChunksPerRow, cc = c % kChunksPerRow;
    const int row = row0 + r;
    const bool ok = row < T;
    cp_async16(tile + r * (HS + kPad) + cc * 8, g + static_cast<size_t>(ok ? row : 0) * stride + cc * 8, ok);
  }
}
// ROWS consecutive floats of one (b, h) row vector from row0; entries ≥ T are zero-filled.
template <int ROWS, int NTHREADS>
__device__ __forceinline__ void load_vec_async(float* s, const float* g, int row0, int T) {
  for (int r = threadIdx.x; r < ROWS; r += NTHREADS) {
    const bool ok = row0 + r < T;
    cp_async4(s + r, g + (ok ? row0 + r : 0), ok);
  }
}

// Writes a warp's 16 rows × HS of fp32 accumulators (scaled by `mul`) as bf16 through its own
// 16 rows of a shared tile, then to global with 16-byte stores. Rows ≥ T are not written.
template <int HS>
__device__ __forceinline__ void store_warp_rows(bf16* stage, const float (&acc)[HS / 8][4], float mul0, float mul1,
                                                bf16* g, size_t stride, int row0, int T, int lane) {
  constexpr int LD = HS + kPad;
  const int gr = lane >> 2, tc = (lane & 3) * 2;
  __syncwarp();  // every lane is done reading these rows as operands
#pragma unroll
  for (int d = 0; d < HS / 8; ++d) {
    *reinterpret_cast<uint32_t*>(stage + gr * LD + d * 8 + tc) = pack_bf16(acc[d][0] * mul0, acc[d][1] * mul0);
    *reinterpret_cast<uint32_t*>(stage + (gr + 8) * LD + d * 8 + tc) = pack_bf16(acc[d][2] * mul1, acc[d][3] * mul1);
  }
  __syncwarp();
  constexpr int kChunksPerRow = HS / 8;
#pragma unroll
  for (int c = lane; c < 16 * kChunksPerRow; c += 32) {
    const int r = c / kChunksPerRow, cc = c % kChunksPerRow;
    if (row0 + r < T)
      store_vector(g + static_cast<size_t>(row0 + r) * stride + cc * 8, load_vector<int4>(stage + r * LD + cc * 8));
  }
}

// ---------------------------------------------------------------------------------------------
// Forward
// ---------------------------------------------------------------------------------------------

template <int HS, int BQ, int BK>
constexpr size_t fwd_smem_bytes() {
  return static_cast<size_t>(BQ + 4 * BK) * (HS + kPad) * sizeof(bf16);
}

// grid (B·NH, ceil(T/BQ)), block BQ/16 warps. sl = scale·log2(e).
template <int HS, int BQ, int BK>
__global__ void __launch_bounds__(BQ / 16 * 32)
    flash_forward_kernel(bf16* __restrict__ y, float* __restrict__ lse, const bf16* __restrict__ qkv, int T, int NH,
                         float sl) {
  constexpr int NT = BQ / 16 * 32;
  constexpr int LD = HS + kPad;
  constexpr int NKT = BK / 8;  // key n-tiles of S
  constexpr int NDT = HS / 8;  // dim n-tiles of O
  static_assert(BQ % 16 == 0 && BK % 16 == 0 && HS % 16 == 0, "tile sizes");

  GPT2_DYNAMIC_SHARED(unsigned char, smem_raw);
  bf16* sQ = reinterpret_cast<bf16*>(smem_raw);  // [BQ][LD]
  bf16* sK = sQ + BQ * LD;                       // [2][BK][LD]
  bf16* sV = sK + 2 * BK * LD;                   // [2][BK][LD]

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane >> 2, t = lane & 3;
  const int bh = blockIdx.x, b = bh / NH, h = bh % NH;
  const int q0 = (gridDim.y - 1 - blockIdx.y) * BQ;  // heaviest query blocks first
  const int C = NH * HS;
  const size_t C3 = 3 * static_cast<size_t>(C);
  const bf16* qg = qkv + static_cast<size_t>(b) * T * C3 + h * HS;
  const bf16* kg = qg + C;
  const bf16* vg = qg + 2 * C;
  const int n_kb = (min(q0 + BQ, T) - 1) / BK + 1;  // key blocks up to the last row's diagonal
  const int row_w = q0 + warp * 16;                 // this warp's first query row

  load_tile_async<BQ, HS, NT>(sQ, qg, C3, q0, T);
  load_tile_async<BK, HS, NT>(sK, kg, C3, 0, T);
  load_tile_async<BK, HS, NT>(sV, vg, C3, 0, T);
  cp_async_commit();

  uint32_t qf[HS / 16][4];
  float o[NDT][4];
#pragma unroll
  for (int d = 0; d < NDT; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY};  // running max of s·sl, rows g and g+8
  float l[2] = {0.f, 0.f};              // this thread's partial running sums

  for (int kb = 0; kb < n_kb; ++kb) {
    cp_async_wait_all();
    __syncthreads();  // tile kb visible to all; everyone is done with the other buffer
    if (kb == 0) {
#pragma unroll
      for (int ks = 0; ks < HS / 16; ++ks) ldsm_x4(qf[ks], frag_a<LD>(sQ, warp * 16, ks * 16, lane));
    }
    if (kb + 1 < n_kb) {
      const int nb = (kb + 1) & 1;
      load_tile_async<BK, HS, NT>(sK + nb * BK * LD, kg, C3, (kb + 1) * BK, T);
      load_tile_async<BK, HS, NT>(sV + nb * BK * LD, vg, C3, (kb + 1) * BK, T);
      cp_async_commit();
    }
    const bf16* sKb = sK + (kb & 1) * BK * LD;
    const bf16* sVb = sV + (kb & 1) * BK * LD;
    const int k0 = kb * BK;

    // S = Q·Kᵀ (16 × BK per warp)
    float s[NKT][4];
#pragma unroll
    for (int j = 0; j < NKT; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < HS / 16; ++ks) {
#pragma unroll
      for (int np = 0; np < BK / 16; ++np) {
        uint32_t kf[4];
        ldsm_x4(kf, frag_b_nk<LD>(sKb, np * 16, ks * 16, lane));
        mma_16816(s[2 * np], qf[ks], kf[0], kf[1]);
        mma_16816(s[2 * np + 1], qf[ks], kf[2], kf[3]);
      }
    }

    // Causal and tail mask, only on blocks where some key > some row of this warp or ≥ T.
    if (k0 + BK - 1 > row_w || k0 + BK > T) {
#pragma unroll
      for (int j = 0; j < NKT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = k0 + j * 8 + 2 * t + (e & 1);
          const int row = row_w + g + (e >> 1) * 8;
          if (key > row || key >= T) s[j][e] = -INFINITY;
        }
    }

    // Online softmax (exp2 domain). The four threads of a quad share rows g and g+8.
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int j = 0; j < NKT; ++j) {
      mx[0] = fmaxf(mx[0], fmaxf(s[j][0], s[j][1]));
      mx[1] = fmaxf(mx[1], fmaxf(s[j][2], s[j][3]));
    }
    float mu[2], alpha[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      const float m_new = fmaxf(m[r], mx[r] * sl);
      mu[r] = m_new == -INFINITY ? 0.f : m_new;  // a row with no visible key yet: keep p = 0, no NaN
      alpha[r] = exp2f(m[r] - mu[r]);
      m[r] = m_new;
      l[r] *= alpha[r];
    }
#pragma unroll
    for (int d = 0; d < NDT; ++d) {
      o[d][0] *= alpha[0];
      o[d][1] *= alpha[0];
      o[d][2] *= alpha[1];
      o[d][3] *= alpha[1];
    }
#pragma unroll
    for (int j = 0; j < NKT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float p = exp2f(fmaf(s[j][e], sl, -mu[e >> 1]));
        s[j][e] = p;
        l[e >> 1] += p;
      }

      // O += P·V; P's accumulator tiles 2kk, 2kk+1 form the A operand of key step kk.
#pragma unroll
    for (int kk = 0; kk < BK / 16; ++kk) {
      const uint32_t pa[4] = {pack_bf16(s[2 * kk][0], s[2 * kk][1]), pack_bf16(s[2 * kk][2], s[2 * kk][3]),
                              pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                              pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int dp = 0; dp < HS / 16; ++dp) {
        uint32_t vf[4];
        ldsm_x4_trans(vf, frag_b_kn<LD>(sVb, kk * 16, dp * 16, lane));
        mma_16816(o[2 * dp], pa, vf[0], vf[1]);
        mma_16816(o[2 * dp + 1], pa, vf[2], vf[3]);
      }
    }
  }

  // Epilogue: y = O / l, lse = (m + log2 l)·ln2.
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
  }
  const float inv0 = l[0] > 0.f ? 1.f / l[0] : 0.f;
  const float inv1 = l[1] > 0.f ? 1.f / l[1] : 0.f;
  // sQ rows of this warp were only ever read by this warp (its Q fragments): reuse them as staging.
  store_warp_rows<HS>(sQ + warp * 16 * LD, o, inv0, inv1, y + static_cast<size_t>(b) * T * C + h * HS, C, row_w, T,
                      lane);
  if (t == 0) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int row = row_w + g + 8 * r;
      if (row < T) lse[static_cast<size_t>(bh) * T + row] = (m[r] + log2f(l[r])) * kLn2;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Backward
// ---------------------------------------------------------------------------------------------

// D[b,h,t] = dy[b,t,h,:] · y[b,t,h,:], one warp per (b, t, h) row, fp32 maths.
template <typename S>
__global__ void __launch_bounds__(128) row_dot_kernel(float* __restrict__ D, const S* __restrict__ dy,
                                                      const S* __restrict__ y, int B, int T, int NH, int HS) {
  const size_t row = static_cast<size_t>(blockIdx.x) * 4 + threadIdx.x / 32;  // (b·T + t)·NH + h
  const int lane = threadIdx.x % 32;
  if (row >= static_cast<size_t>(B) * T * NH) return;
  const int h = static_cast<int>(row % NH);
  const size_t bt = row / NH;
  const int b = static_cast<int>(bt / T), t = static_cast<int>(bt % T);
  float acc = 0.f;
  for (int d = lane; d < HS; d += 32) acc += to_float(dy[row * HS + d]) * to_float(y[row * HS + d]);
  acc = warp_sum(acc);
  if (lane == 0) D[(static_cast<size_t>(b) * NH + h) * T + t] = acc;
}

template <int HS, int BK, int BQ>
constexpr size_t dkv_smem_bytes() {
  return static_cast<size_t>(2 * BK + 4 * BQ) * (HS + kPad) * sizeof(bf16) + 4 * BQ * sizeof(float);
}

// dK, dV for one block of BK keys. grid (B·NH, ceil(T/BK)), block BK/16 warps.
template <int HS, int BK, int BQ>
__global__ void __launch_bounds__(BK / 16 * 32)
    flash_backward_dkv_kernel(bf16* __restrict__ dqkv, const bf16* __restrict__ dy, const bf16* __restrict__ qkv,
                              const float* __restrict__ lse, const float* __restrict__ Dg, int T, int NH, float sl,
                              float scale) {
  constexpr int NT = BK / 16 * 32;
  constexpr int LD = HS + kPad;
  constexpr int NQT = BQ / 8;  // query n-tiles of Sᵀ
  constexpr int NDT = HS / 8;
  static_assert(BK % BQ == 0 && BQ % 16 == 0 && BK % 16 == 0, "tile sizes");

  GPT2_DYNAMIC_SHARED(unsigned char, smem_raw);
  bf16* sK = reinterpret_cast<bf16*>(smem_raw);             // [BK][LD]
  bf16* sV = sK + BK * LD;                                  // [BK][LD]
  bf16* sQ = sV + BK * LD;                                  // [2][BQ][LD]
  bf16* sdO = sQ + 2 * BQ * LD;                             // [2][BQ][LD]
  float* sL = reinterpret_cast<float*>(sdO + 2 * BQ * LD);  // [2][BQ] lse
  float* sD = sL + 2 * BQ;                                  // [2][BQ] D

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane >> 2, t = lane & 3;
  const int bh = blockIdx.x, b = bh / NH, h = bh % NH;
  const int k0 = blockIdx.y * BK;  // low key blocks see the most queries: issued first
  const int kw0 = k0 + warp * 16;  // this warp's first key
  const int C = NH * HS;
  const size_t C3 = 3 * static_cast<size_t>(C);
  const bf16* qg = qkv + static_cast<size_t>(b) * T * C3 + h * HS;
  const bf16* kg = qg + C;
  const bf16* vg = qg + 2 * C;
  const bf16* dyg = dy + static_cast<size_t>(b) * T * C + h * HS;
  const float* lg = lse + static_cast<size_t>(bh) * T;
  const float* dg = Dg + static_cast<size_t>(bh) * T;
  const int first_qb = k0 / BQ, n_qb = (T + BQ - 1) / BQ;

  load_tile_async<BK, HS, NT>(sK, kg, C3, k0, T);
  load_tile_async<BK, HS, NT>(sV, vg, C3, k0, T);
  load_tile_async<BQ, HS, NT>(sQ, qg, C3, first_qb * BQ, T);
  load_tile_async<BQ, HS, NT>(sdO, dyg, C, first_qb * BQ, T);
  load_vec_async<BQ, NT>(sL, lg, first_qb * BQ, T);
  load_vec_async<BQ, NT>(sD, dg, first_qb * BQ, T);
  cp_async_commit();

  float dk[NDT][4], dv[NDT][4];
#pragma unroll
  for (int d = 0; d < NDT; ++d)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[d][e] = dv[d][e] = 0.f;

  for (int qb = first_qb; qb < n_qb; ++qb) {
    const int buf = (qb - first_qb) & 1;
    cp_async_wait_all();
    __syncthreads();
    if (qb + 1 < n_qb) {
      const int nb = buf ^ 1, nq0 = (qb + 1) * BQ;
      load_tile_async<BQ, HS, NT>(sQ + nb * BQ * LD, qg, C3, nq0, T);
      load_tile_async<BQ, HS, NT>(sdO + nb * BQ * LD, dyg, C, nq0, T);
      load_vec_async<BQ, NT>(sL + nb * BQ, lg, nq0, T);
      load_vec_async<BQ, NT>(sD + nb * BQ, dg, nq0, T);
      cp_async_commit();
    }
    const int q0 = qb * BQ;
    // Every query of this block precedes every key of this warp, or the warp's keys are all ≥ T:
    // P = 0 here, nothing to add. (Warp-uniform; the loop's barriers are still reached.)
    if (q0 + BQ - 1 < kw0 || kw0 >= T) continue;
    const bf16* sQb = sQ + buf * BQ * LD;
    const bf16* sdOb = sdO + buf * BQ * LD;
    const float* sLb = sL + buf * BQ;
    const float* sDb = sD + buf * BQ;

    // Sᵀ = K·Qᵀ and dPᵀ = V·dYᵀ (16 keys × BQ queries per warp)
    float st[NQT][4], dpt[NQT][4];
#pragma unroll
    for (int j = 0; j < NQT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) st[j][e] = dpt[j][e] = 0.f;
#pragma unroll
    for (int ks = 0; ks < HS / 16; ++ks) {
      uint32_t ka[4], va[4];
      ldsm_x4(ka, frag_a<LD>(sK, warp * 16, ks * 16, lane));
      ldsm_x4(va, frag_a<LD>(sV, warp * 16, ks * 16, lane));
#pragma unroll
      for (int np = 0; np < BQ / 16; ++np) {
        uint32_t bq[4], bo[4];
        ldsm_x4(bq, frag_b_nk<LD>(sQb, np * 16, ks * 16, lane));
        mma_16816(st[2 * np], ka, bq[0], bq[1]);
        mma_16816(st[2 * np + 1], ka, bq[2], bq[3]);
        ldsm_x4(bo, frag_b_nk<LD>(sdOb, np * 16, ks * 16, lane));
        mma_16816(dpt[2 * np], va, bo[0], bo[1]);
        mma_16816(dpt[2 * np + 1], va, bo[2], bo[3]);
      }
    }

    // Pᵀ and dSᵀ in place. Element (j, e): key kw0 + g + 8(e/2), query q0 + 8j + 2t + (e%2).
    const bool need_mask = q0 < kw0 + 15 || q0 + BQ > T;
#pragma unroll
    for (int j = 0; j < NQT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int qi = j * 8 + 2 * t + (e & 1);
        const int key = kw0 + g + (e >> 1) * 8;
        float p = exp2f(fmaf(st[j][e], sl, -sLb[qi] * kLog2e));
        if (need_mask && (q0 + qi < key || q0 + qi >= T)) p = 0.f;
        dpt[j][e] = p * (dpt[j][e] - sDb[qi]);
        st[j][e] = p;
      }

      // dV += Pᵀ·dY, dK += dSᵀ·Q (k = queries)
#pragma unroll
    for (int kk = 0; kk < BQ / 16; ++kk) {
      const uint32_t pa[4] = {pack_bf16(st[2 * kk][0], st[2 * kk][1]), pack_bf16(st[2 * kk][2], st[2 * kk][3]),
                              pack_bf16(st[2 * kk + 1][0], st[2 * kk + 1][1]),
                              pack_bf16(st[2 * kk + 1][2], st[2 * kk + 1][3])};
      const uint32_t da[4] = {pack_bf16(dpt[2 * kk][0], dpt[2 * kk][1]), pack_bf16(dpt[2 * kk][2], dpt[2 * kk][3]),
                              pack_bf16(dpt[2 * kk + 1][0], dpt[2 * kk + 1][1]),
                              pack_bf16(dpt[2 * kk + 1][2], dpt[2 * kk + 1][3])};
#pragma unroll
      for (int dp = 0; dp < HS / 16; ++dp) {
        uint32_t bo[4], bq[4];
        ldsm_x4_trans(bo, frag_b_kn<LD>(sdOb, kk * 16, dp * 16, lane));
        mma_16816(dv[2 * dp], pa, bo[0], bo[1]);
        mma_16816(dv[2 * dp + 1], pa, bo[2], bo[3]);
        ldsm_x4_trans(bq, frag_b_kn<LD>(sQb, kk * 16, dp * 16, lane));
        mma_16816(dk[2 * dp], da, bq[0], bq[1]);
        mma_16816(dk[2 * dp + 1], da, bq[2], bq[3]);
      }
    }
  }

  // No cp.async is in flight here (the last iteration issued none). This warp's rows of sK / sV
  // were only read by this warp: stage dK (scaled) and dV through them.
  bf16* dbase = dqkv + static_cast<size_t>(b) * T * C3 + h * HS;
  store_warp_rows<HS>(sK + warp * 16 * LD, dk, scale, scale, dbase + C, C3, kw0, T, lane);
  store_warp_rows<HS>(sV + warp * 16 * LD, dv, 1.f, 1.f, dbase + 2 * C, C3, kw0, T, lane);
}

template <int HS, int BQ, int BK>
constexpr size_t dq_smem_bytes() {
  return static_cast<size_t>(2 * BQ + 4 * BK) * (HS + kPad) * sizeof(bf16);
}

// dQ for one block of BQ queries. grid (B·NH, ceil(T/BQ)), block BQ/16 warps.
template <int HS, int BQ, int BK>
__global__ void __launch_bounds__(BQ / 16 * 32)
    flash_backward_dq_kernel(bf16* __restrict__ dqkv, const bf16* __restrict__ dy, const bf16* __restrict__ qkv,
                             const float* __restrict__ lse, const float* __restrict__ Dg, int T, int NH, float sl,
                             float scale) {
  constexpr int NT = BQ / 16 * 32;
  constexpr int LD = HS + kPad;
  constexpr int NKT = BK / 8;
  constexpr int NDT = HS / 8;
  static_assert(BQ % 16 == 0 && BK % 16 == 0, "tile sizes");

  GPT2_DYNAMIC_SHARED(unsigned char, smem_raw);
  bf16* sQ = reinterpret_cast<bf16*>(smem_raw);  // [BQ][LD]
  bf16* sdO = sQ + BQ * LD;                      // [BQ][LD]
  bf16* sK = sdO + BQ * LD;                      // [2][BK][LD]
  bf16* sV = sK + 2 * BK * LD;                   // [2][BK][LD]

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane >> 2, t = lane & 3;
  const int bh = blockIdx.x, b = bh / NH, h = bh % NH;
  const int q0 = (gridDim.y - 1 - blockIdx.y) * BQ;  // heaviest first
  const int row_w = q0 + warp * 16;
  const int C = NH * HS;
  const size_t C3 = 3 * static_cast<size_t>(C);
  const bf16* qg = qkv + static_cast<size_t>(b) * T * C3 + h * HS;
  const bf16* kg = qg + C;
  const bf16* vg = qg + 2 * C;
  const bf16* dyg = dy + static_cast<size_t>(b) * T * C + h * HS;
  const int n_kb = (min(q0 + BQ, T) - 1) / BK + 1;

  load_tile_async<BQ, HS, NT>(sQ, qg, C3, q0, T);
  load_tile_async<BQ, HS, NT>(sdO, dyg, C, q0, T);
  load_tile_async<BK, HS, NT>(sK, kg, C3, 0, T);
  load_tile_async<BK, HS, NT>(sV, vg, C3, 0, T);
  cp_async_commit();

  // Row statistics of rows g and g+8 (0 for rows ≥ T, whose results are never stored).
  float lse2[2], drow[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = row_w + g + 8 * r;
    lse2[r] = row < T ? lse[static_cast<size_t>(bh) * T + row] * kLog2e : 0.f;
    drow[r] = row < T ? Dg[static_cast<size_t>(bh) * T + row] : 0.f;
  }

  float dq[NDT][4];
#pragma unroll
  for (int d = 0; d < NDT; ++d) dq[d][0] = dq[d][1] = dq[d][2] = dq[d][3] = 0.f;

  for (int kb = 0; kb < n_kb; ++kb) {
    cp_async_wait_all();
    __syncthreads();
    if (kb + 1 < n_kb) {
      const int nb = (kb + 1) & 1;
      load_tile_async<BK, HS, NT>(sK + nb * BK * LD, kg, C3, (kb + 1) * BK, T);
      load_tile_async<BK, HS, NT>(sV + nb * BK * LD, vg, C3, (kb + 1) * BK, T);
      cp_async_commit();
    }
    const int k0 = kb * BK;
    // Warp entirely past T, or every key of the block after every row of the warp: nothing to add.
    if (row_w >= T || k0 > row_w + 15) continue;
    const bf16* sKb = sK + (kb & 1) * BK * LD;
    const bf16* sVb = sV + (kb & 1) * BK * LD;

    // S = Q·Kᵀ, dP = dY·Vᵀ (16 × BK per warp)
    float s[NKT][4], dp[NKT][4];
#pragma unroll
    for (int j = 0; j < NKT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[j][e] = dp[j][e] = 0.f;
#pragma unroll
    for (int ks = 0; ks < HS / 16; ++ks) {
      uint32_t qa[4], oa[4];
      ldsm_x4(qa, frag_a<LD>(sQ, warp * 16, ks * 16, lane));
      ldsm_x4(oa, frag_a<LD>(sdO, warp * 16, ks * 16, lane));
#pragma unroll
      for (int np = 0; np < BK / 16; ++np) {
        uint32_t bk[4], bv[4];
        ldsm_x4(bk, frag_b_nk<LD>(sKb, np * 16, ks * 16, lane));
        mma_16816(s[2 * np], qa, bk[0], bk[1]);
        mma_16816(s[2 * np + 1], qa, bk[2], bk[3]);
        ldsm_x4(bv, frag_b_nk<LD>(sVb, np * 16, ks * 16, lane));
        mma_16816(dp[2 * np], oa, bv[0], bv[1]);
        mma_16816(dp[2 * np + 1], oa, bv[2], bv[3]);
      }
    }

    // dS in place of dP. Element (j, e): row row_w + g + 8(e/2), key k0 + 8j + 2t + (e%2).
    const bool need_mask = k0 + BK - 1 > row_w || k0 + BK > T;
#pragma unroll
    for (int j = 0; j < NKT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = k0 + j * 8 + 2 * t + (e & 1);
        const int row = row_w + g + (e >> 1) * 8;
        float p = exp2f(fmaf(s[j][e], sl, -lse2[e >> 1]));
        if (need_mask && (key > row || key >= T)) p = 0.f;
        dp[j][e] = p * (dp[j][e] - drow[e >> 1]);
      }

      // dQ += dS·K (k = keys)
#pragma unroll
    for (int kk = 0; kk < BK / 16; ++kk) {
      const uint32_t da[4] = {pack_bf16(dp[2 * kk][0], dp[2 * kk][1]), pack_bf16(dp[2 * kk][2], dp[2 * kk][3]),
                              pack_bf16(dp[2 * kk + 1][0], dp[2 * kk + 1][1]),
                              pack_bf16(dp[2 * kk + 1][2], dp[2 * kk + 1][3])};
#pragma unroll
      for (int dd = 0; dd < HS / 16; ++dd) {
        uint32_t bk[4];
        ldsm_x4_trans(bk, frag_b_kn<LD>(sKb, kk * 16, dd * 16, lane));
        mma_16816(dq[2 * dd], da, bk[0], bk[1]);
        mma_16816(dq[2 * dd + 1], da, bk[2], bk[3]);
      }
    }
  }

  // This warp's rows of sQ were only read by this warp: stage dQ (scaled) through them.
  store_warp_rows<HS>(sQ + warp * 16 * LD, dq, scale, scale, dqkv + static_cast<size_t>(b) * T * C3 + h * HS, C3, row_w,
                      T, lane);
}

// ---------------------------------------------------------------------------------------------
// Simple kernels: one warp per row, fp32 maths, any storage type and any head size up to 256.
// grid (B·NH, ceil(T/4)), 4 warps. Each lane owns dims lane + 32r (r < R = ceil(HS/32)) that are
// below HS. Keys (or queries) go in chunks of 32, one per lane, whose scores each lane computes
// in full; the chunk's weights are then broadcast with shuffles. HSC is the head size when it is
// known at compile time (64, 128: the loops unroll), or 0 to read it from `hs`.
// ---------------------------------------------------------------------------------------------

template <typename S, int R, int HSC>
__global__ void __launch_bounds__(128) simple_forward_kernel(S* __restrict__ y, float* __restrict__ lse,
                                                             const S* __restrict__ qkv, int T, int NH, int hs,
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

// ---------------------------------------------------------------------------------------------
// Launch helpers
// ---------------------------------------------------------------------------------------------

void check_shape(int B, int T, int NH, int HS) {
  GPT2_REQUIRE(HS >= 1 && HS <= kMaxAttentionHeadSize);
  GPT2_REQUIRE(B >= 1 && T >= 1 && NH >= 1);
  GPT2_REQUIRE(static_cast<long long>(B) * NH <= 0x7fffffffLL);  // grid.x
  GPT2_REQUIRE(CEIL_DIV(T, 4) <= 65535);                         // grid.y of the simple kernels
}

template <typename Kernel>
void set_smem(Kernel kernel, size_t bytes) {
  // Above 48 KB a kernel must opt in; set every launch, so it holds on whichever device is current.
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

template <int HS>
void launch_flash_forward(bf16* y, float* lse, const bf16* qkv, int B, int T, int NH, cudaStream_t stream) {
  constexpr int BQ = 64, BK = 64;
  constexpr size_t smem = fwd_smem_bytes<HS, BQ, BK>();
  auto kernel = flash_forward_kernel<HS, BQ, BK>;
  set_smem(kernel, smem);
  const float sl = kLog2e / std::sqrt(static_cast<float>(HS));
  CUDA_CHECK(launch(kernel, dim3(B * NH, CEIL_DIV(T, BQ)), BQ / 16 * 32, smem, stream, y, lse, qkv, T, NH, sl));
}

template <int HS>
void launch_flash_backward(bf16* dqkv, const float* D, const bf16* dy, const bf16* qkv, const float* lse, int B, int T,
                           int NH, cudaStream_t stream) {
  // HS=128 halves the inner tile of both kernels: keeps the dK/dV kernel's registers (Sᵀ, dPᵀ,
  // dK, dV accumulators) under 255 and the dQ kernel's shared memory under 99 KB (sm_86/89).
  constexpr int BKV = 64, BQ_KV = HS == 64 ? 64 : 32;  // dK/dV kernel: key block, query step
  constexpr int BQD = 64, BK_D = HS == 64 ? 64 : 32;   // dQ kernel: query block, key step
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  const float sl = scale * kLog2e;

  constexpr size_t smem_kv = dkv_smem_bytes<HS, BKV, BQ_KV>();
  auto kv = flash_backward_dkv_kernel<HS, BKV, BQ_KV>;
  set_smem(kv, smem_kv);
  CUDA_CHECK(launch(kv, dim3(B * NH, CEIL_DIV(T, BKV)), BKV / 16 * 32, smem_kv, stream, dqkv, dy, qkv, lse, D, T, NH,
                    sl, scale));

  constexpr size_t smem_q = dq_smem_bytes<HS, BQD, BK_D>();
  auto qk = flash_backward_dq_kernel<HS, BQD, BK_D>;
  set_smem(qk, smem_q);
  CUDA_CHECK(launch(qk, dim3(B * NH, CEIL_DIV(T, BQD)), BQD / 16 * 32, smem_q, stream, dqkv, dy, qkv, lse, D, T, NH, sl,
                    scale));
}

template <typename S>
void launch_row_dot(float* D, const S* dy, const S* y, int B, int T, int NH, int HS, cudaStream_t stream) {
  const size_t rows = static_cast<size_t>(B) * T * NH;
  GPT2_REQUIRE(CEIL_DIV(rows, 4) <= 0x7fffffffULL);
  CUDA_CHECK(
      launch(row_dot_kernel<S>, static_cast<unsigned>(CEIL_DIV(rows, 4)), 128, 0, stream, D, dy, y, B, T, NH, HS));
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
void simple_forward(S* y, float* lse, const S* qkv, int B, int T, int NH, int HS, cudaStream_t stream) {
  check_shape(B, T, NH, HS);
  GPT2_REQUIRE(y && lse && qkv);
  const dim3 grid(B * NH, CEIL_DIV(T, 4));
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  with_simple_kernel<SimpleForward, S>(
      HS, [&](auto kernel) { CUDA_CHECK(launch(kernel, grid, 128, 0, stream, y, lse, qkv, T, NH, HS, scale)); });
}

template <typename S>
void simple_backward(S* dqkv, float* scratch_att, const S* dy, const S* qkv, const S* y, const float* lse, int B, int T,
                     int NH, int HS, cudaStream_t stream) {
  check_shape(B, T, NH, HS);
  GPT2_REQUIRE(dqkv && scratch_att && dy && qkv && y && lse);
  launch_row_dot<S>(scratch_att, dy, y, B, T, NH, HS, stream);
  const dim3 grid(B * NH, CEIL_DIV(T, 4));
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  auto run = [&](auto kernel) {
    CUDA_CHECK(launch(kernel, grid, 128, 0, stream, dqkv, dy, qkv, lse, scratch_att, T, NH, HS, scale));
  };
  with_simple_kernel<SimpleBackwardDq, S>(HS, run);
  with_simple_kernel<SimpleBackwardDkv, S>(HS, run);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Exported launchers
// ---------------------------------------------------------------------------------------------

void attention_forward(bf16* y, float* lse, const bf16* qkv, int B, int T, int NH, int HS, cudaStream_t stream) {
#ifdef GPT2_ATTENTION_SIMPLE
  simple_forward<bf16>(y, lse, qkv, B, T, NH, HS, stream);
#else
  if (HS != 64 && HS != 128) return simple_forward<bf16>(y, lse, qkv, B, T, NH, HS, stream);
  check_shape(B, T, NH, HS);
  GPT2_REQUIRE(y && lse && qkv);
  GPT2_REQUIRE(is_aligned16(y) && is_aligned16(qkv));  // 16-byte cp.async / stores; C = NH·HS keeps rows aligned
  GPT2_REQUIRE(CEIL_DIV(T, 64) <= 65535);
  if (HS == 64)
    launch_flash_forward<64>(y, lse, qkv, B, T, NH, stream);
  else
    launch_flash_forward<128>(y, lse, qkv, B, T, NH, stream);
#endif
}

void attention_forward(float* y, float* lse, const float* qkv, int B, int T, int NH, int HS, cudaStream_t stream) {
  simple_forward<float>(y, lse, qkv, B, T, NH, HS, stream);
}

void attention_backward(bf16* dqkv, float* scratch_att, const bf16* dy, const bf16* qkv, const bf16* y,
                        const float* lse, int B, int T, int NH, int HS, cudaStream_t stream) {
#ifdef GPT2_ATTENTION_SIMPLE
  simple_backward<bf16>(dqkv, scratch_att, dy, qkv, y, lse, B, T, NH, HS, stream);
#else
  if (HS != 64 && HS != 128) return simple_backward<bf16>(dqkv, scratch_att, dy, qkv, y, lse, B, T, NH, HS, stream);
  check_shape(B, T, NH, HS);
  GPT2_REQUIRE(dqkv && scratch_att && dy && qkv && y && lse);
  GPT2_REQUIRE(is_aligned16(dqkv) && is_aligned16(dy) && is_aligned16(qkv));
  GPT2_REQUIRE(CEIL_DIV(T, 32) <= 65535);
  launch_row_dot<bf16>(scratch_att, dy, y, B, T, NH, HS, stream);
  if (HS == 64)
    launch_flash_backward<64>(dqkv, scratch_att, dy, qkv, lse, B, T, NH, stream);
  else
    launch_flash_backward<128>(dqkv, scratch_att, dy, qkv, lse, B, T, NH, stream);
#endif
}

void attention_backward(float* dqkv, float* scratch_att, const float* dy, const float* qkv, const float* y,
                        const float* lse, int B, int T, int NH, int HS, cudaStream_t stream) {
  simple_backward<float>(dqkv, scratch_att, dy, qkv, y, lse, B, T, NH, HS, stream);
}

void attention_forward_simple(bf16* y, float* lse, const bf16* qkv, int B, int T, int NH, int HS, cudaStream_t stream) {
  simple_forward<bf16>(y, lse, qkv, B, T, NH, HS, stream);
}
void attention_forward_simple(float* y, float* lse, const float* qkv, int B, int T, int NH, int HS,
                              cudaStream_t stream) {
  simple_forward<float>(y, lse, qkv, B, T, NH, HS, stream);
}
void attention_backward_simple(bf16* dqkv, float* scratch_att, const bf16* dy, const bf16* qkv, const bf16* y,
                               const float* lse, int B, int T, int NH, int HS, cudaStream_t stream) {
  simple_backward<bf16>(dqkv, scratch_att, dy, qkv, y, lse, B, T, NH, HS, stream);
}
void attention_backward_simple(float* dqkv, float* scratch_att, const float* dy, const float* qkv, const float* y,
                               const float* lse, int B, int T, int NH, int HS, cudaStream_t stream) {
  simple_backward<float>(dqkv, scratch_att, dy, qkv, y, lse, B, T, NH, HS, stream);
}

}  // namespace gpt2::cuda
