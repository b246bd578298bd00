/*
 * Flash attention backward (bf16, HS 64 or 128): dqkv from dy, qkv, lse and D = dy·y (computed
 * first by attention.cu's row_dot_kernel into scratch_att), no T×T buffer. The maths and the
 * contract are at the top of attention.cu; the tile primitives and fragment layouts in mma.cuh.
 *
 * Two kernels, no atomics, so every output element is produced by exactly one thread with a
 * fixed summation order: bitwise deterministic run to run.
 *   flash_backward_dkv_kernel: one CTA per (b·h, block of BK=64 keys), each warp owning 16 keys.
 *     It walks the query blocks i ≥ its first key and, working in the transposed frame,
 *     recomputes Sᵀ = K·Qᵀ and dPᵀ = V·dYᵀ, forms Pᵀ = exp2(Sᵀ·scale·log2e − lse·log2e) and
 *     dSᵀ = Pᵀ∘(dPᵀ − D), and accumulates dV += Pᵀ·dY and dK += dSᵀ·Q in registers (Pᵀ, dSᵀ go
 *     straight from accumulators to A operands). Q, dY, lse, D tiles are double-buffered.
 *   flash_backward_dq_kernel: one CTA per (b·h, block of 64 queries), each warp owning 16
 *     queries; walks key blocks 0..its diagonal, recomputes S, dP, P, dS and accumulates
 *     dQ += dS·K. K and V tiles are double-buffered.
 * The recompute is one function, recompute_p_ds, used by both kernels: a warp's 16 rows (keys
 * in dK/dV, queries in dQ) against one block of columns (queries in dK/dV, keys in dQ). Both
 * kernels recompute S and dP (7 tile matmuls instead of FlashAttention-2's 5): that is the price
 * of determinism without atomics or a dQ accumulation buffer.
 *
 * The launcher is here, with its kernels: the grids, blocks and shared memory follow from the
 * kernels' tile parameters.
 */
#include "kernels/cuda/attention_paths.cuh"
#include "kernels/cuda/mma.cuh"

#include <cmath>
#include <cstdint>

namespace gpt2::cuda {

namespace {

using namespace attn;
using namespace mma;

// Where the queries of the recompute's accumulator elements lie, and their row statistics
// (lse·log2e and D) for element e of column c (of the warp's 16 × N block).
// dQ kernel: the warp's rows are queries; their statistics are held in registers (rows g, g+8).
struct QueriesOnRows {
  static constexpr bool kOnCols = false;
  float row_lse2[2], row_d[2];
  __device__ __forceinline__ float lse2(int e, int) const { return row_lse2[e >> 1]; }
  __device__ __forceinline__ float d(int e, int) const { return row_d[e >> 1]; }
};
// dK/dV kernel: the columns are queries; their statistics are in shared memory, one per column.
struct QueriesOnCols {
  static constexpr bool kOnCols = true;
  const float* col_lse;  // natural-log lse
  const float* col_d;
  __device__ __forceinline__ float lse2(int, int c) const { return col_lse[c] * kLog2e; }
  __device__ __forceinline__ float d(int, int c) const { return col_d[c]; }
};

// The score and score-gradient recompute both backward kernels share. A warp owns 16 rows
// (row0 .. row0+15 of the M side: A operands, rows warp_row .. warp_row+15 of the tiles aS, aDP)
// and one block of N columns (col0 .. col0+N−1 of the N side: B operands, rows 0..N−1 of the
// [n][k] tiles bS, bDP, zero-filled past T). It computes
//   s  = aS·bSᵀ,  dp = aDP·bDPᵀ                     (16 × N, fp32 accumulators)
// and then, in place, with scale·log2e = sl and the query's statistics from Q:
//   s  ← P  = exp2(s·sl − lse·log2e), 0 where the key follows the query or the column is ≥ T
//   dp ← dS = P∘(dp − D)
// dQ kernel: rows = queries (Q, dY), columns = keys (K, V): S, dP. dK/dV kernel: rows = keys
// (K, V), columns = queries (Q, dY): Sᵀ, dPᵀ. Element (j, e) is row row0 + g + 8(e/2), column
// col0 + 8j + 2t + (e%2). Rows ≥ T are computed but never stored by the callers.
template <int HS, int N, typename Q>
__device__ __forceinline__ void recompute_p_ds(float (&s)[N / 8][4], float (&dp)[N / 8][4], const bf16* aS,
                                               const bf16* aDP, int warp_row, const bf16* bS, const bf16* bDP, int row0,
                                               int col0, int T, float sl, const Q& q, int lane) {
  constexpr int LD = HS + kTilePad;
  zero_acc(s);
  zero_acc(dp);
#pragma unroll
  for (int ks = 0; ks < HS / 16; ++ks) {
    uint32_t as[4], adp[4];
    ldsm_x4(as, frag_a<LD>(aS, warp_row, ks * 16, lane));
    ldsm_x4(adp, frag_a<LD>(aDP, warp_row, ks * 16, lane));
    mma_a_b<BTile::nk, LD, N>(s, as, bS, ks * 16, lane);
    mma_a_b<BTile::nk, LD, N>(dp, adp, bDP, ks * 16, lane);
  }

  // Masks only where some key follows some query, or the columns run past T.
  const bool causal = Q::kOnCols ? col0 < row0 + 15 : col0 + N - 1 > row0;
  const bool need_mask = causal || col0 + N > T;
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int j = 0; j < N / 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int c = j * 8 + 2 * t + (e & 1);
      const int row = row0 + g + (e >> 1) * 8, col = col0 + c;
      const int query = Q::kOnCols ? col : row, key = Q::kOnCols ? row : col;
      float p = exp2f(fmaf(s[j][e], sl, -q.lse2(e, c)));
      if (need_mask && (key > query || col >= T)) p = 0.f;
      dp[j][e] = p * (dp[j][e] - q.d(e, c));
      s[j][e] = p;
    }
}

template <int HS, int BK, int BQ>
constexpr size_t dkv_smem_bytes() {
  return static_cast<size_t>(2 * BK + 4 * BQ) * (HS + kTilePad) * sizeof(bf16) + 4 * BQ * sizeof(float);
}

// dK, dV for one block of BK keys. grid (B·NH, ceil(T/BK)), block BK/16 warps.
template <int HS, int BK, int BQ>
__global__ void __launch_bounds__(BK / 16 * 32)
    flash_backward_dkv_kernel(bf16* __restrict__ dqkv, const bf16* __restrict__ dy, const bf16* __restrict__ qkv,
                              const float* __restrict__ lse, const float* __restrict__ Dg, int T, int NH, float sl,
                              float scale) {
  static_assert(BK % BQ == 0 && BQ % 16 == 0 && BK % 16 == 0, "tile sizes");
  constexpr int NT = BK / 16 * 32;
  constexpr int LD = HS + kTilePad;
  constexpr int NDT = HS / 8;  // dim n-tiles of dK, dV

  GPT2_DYNAMIC_SHARED(unsigned char, smem_raw);
  bf16* sK = reinterpret_cast<bf16*>(smem_raw);             // [BK][LD]
  bf16* sV = sK + BK * LD;                                  // [BK][LD]
  bf16* sQ = sV + BK * LD;                                  // [2][BQ][LD]
  bf16* sdO = sQ + 2 * BQ * LD;                             // [2][BQ][LD]
  float* sL = reinterpret_cast<float*>(sdO + 2 * BQ * LD);  // [2][BQ] lse
  float* sD = sL + 2 * BQ;                                  // [2][BQ] D

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const FlashHead hd = flash_head<HS>(qkv, T, NH);
  const int k0 = blockIdx.y * BK;  // low key blocks see the most queries: issued first
  const int kw0 = k0 + warp * 16;  // this warp's first key
  const bf16* dyg = dy + hd.bT * hd.C + hd.h * HS;
  const float* lg = lse + static_cast<size_t>(hd.bh) * T;
  const float* dg = Dg + static_cast<size_t>(hd.bh) * T;
  const int first_qb = k0 / BQ, n_qb = (T + BQ - 1) / BQ;

  load_tile_async<BK, HS, NT>(sK, hd.k, hd.C3, k0, T);
  load_tile_async<BK, HS, NT>(sV, hd.v, hd.C3, k0, T);
  load_tile_async<BQ, HS, NT>(sQ, hd.q, hd.C3, first_qb * BQ, T);
  load_tile_async<BQ, HS, NT>(sdO, dyg, hd.C, first_qb * BQ, T);
  load_vec_async<BQ, NT>(sL, lg, first_qb * BQ, T);
  load_vec_async<BQ, NT>(sD, dg, first_qb * BQ, T);
  cp_async_commit();

  float dk[NDT][4], dv[NDT][4];
  zero_acc(dk);
  zero_acc(dv);

  for (int qb = first_qb; qb < n_qb; ++qb) {
    const int buf = (qb - first_qb) & 1;
    cp_async_wait_all();
    __syncthreads();
    if (qb + 1 < n_qb) {
      const int nb = buf ^ 1, nq0 = (qb + 1) * BQ;
      load_tile_async<BQ, HS, NT>(sQ + nb * BQ * LD, hd.q, hd.C3, nq0, T);
      load_tile_async<BQ, HS, NT>(sdO + nb * BQ * LD, dyg, hd.C, nq0, T);
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

    // Pᵀ and dSᵀ (16 keys × BQ queries per warp) from Sᵀ = K·Qᵀ and dPᵀ = V·dYᵀ.
    float pt[BQ / 8][4], dst[BQ / 8][4];
    recompute_p_ds<HS, BQ>(pt, dst, sK, sV, warp * 16, sQb, sdOb, kw0, q0, T, sl,
                           QueriesOnCols{sL + buf * BQ, sD + buf * BQ}, lane);

    // dV += Pᵀ·dY, dK += dSᵀ·Q (k = queries)
#pragma unroll
    for (int kk = 0; kk < BQ / 16; ++kk) {
      uint32_t pa[4], da[4];
      acc_to_a(pa, pt[2 * kk], pt[2 * kk + 1]);
      acc_to_a(da, dst[2 * kk], dst[2 * kk + 1]);
      mma_a_b<BTile::kn, LD, HS>(dv, pa, sdOb, kk * 16, lane);
      mma_a_b<BTile::kn, LD, HS>(dk, da, sQb, kk * 16, lane);
    }
  }

  // No cp.async is in flight here (the last iteration issued none). This warp's rows of sK / sV
  // were only read by this warp: stage dK (scaled) and dV through them.
  bf16* dbase = dqkv + hd.bT * hd.C3 + hd.h * HS;
  store_warp_rows<HS>(sK + warp * 16 * LD, dk, scale, scale, dbase + hd.C, hd.C3, kw0, T, lane);
  store_warp_rows<HS>(sV + warp * 16 * LD, dv, 1.f, 1.f, dbase + 2 * hd.C, hd.C3, kw0, T, lane);
}

template <int HS, int BQ, int BK>
constexpr size_t dq_smem_bytes() {
  return static_cast<size_t>(2 * BQ + 4 * BK) * (HS + kTilePad) * sizeof(bf16);
}

// dQ for one block of BQ queries. grid (B·NH, ceil(T/BQ)), block BQ/16 warps.
template <int HS, int BQ, int BK>
__global__ void __launch_bounds__(BQ / 16 * 32)
    flash_backward_dq_kernel(bf16* __restrict__ dqkv, const bf16* __restrict__ dy, const bf16* __restrict__ qkv,
                             const float* __restrict__ lse, const float* __restrict__ Dg, int T, int NH, float sl,
                             float scale) {
  static_assert(BQ % 16 == 0 && BK % 16 == 0, "tile sizes");
  constexpr int NT = BQ / 16 * 32;
  constexpr int LD = HS + kTilePad;
  constexpr int NDT = HS / 8;  // dim n-tiles of dQ

  GPT2_DYNAMIC_SHARED(unsigned char, smem_raw);
  bf16* sK = reinterpret_cast<bf16*>(smem_raw);  // [2][BK][LD]
  bf16* sV = sK + 2 * BK * LD;                   // [2][BK][LD]
  bf16* sQ = sV + 2 * BK * LD;                   // [BQ][LD]
  bf16* sdO = sQ + BQ * LD;                      // [BQ][LD]

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane >> 2;
  const FlashHead hd = flash_head<HS>(qkv, T, NH);
  const int q0 = (gridDim.y - 1 - blockIdx.y) * BQ;  // heaviest first
  const int row_w = q0 + warp * 16;
  const bf16* dyg = dy + hd.bT * hd.C + hd.h * HS;
  const int n_kb = (min(q0 + BQ, T) - 1) / BK + 1;

  load_tile_async<BQ, HS, NT>(sQ, hd.q, hd.C3, q0, T);
  load_tile_async<BQ, HS, NT>(sdO, dyg, hd.C, q0, T);
  load_tile_async<BK, HS, NT>(sK, hd.k, hd.C3, 0, T);
  load_tile_async<BK, HS, NT>(sV, hd.v, hd.C3, 0, T);
  cp_async_commit();

  // Row statistics of rows g and g+8 (0 for rows ≥ T, whose results are never stored).
  QueriesOnRows stats;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = row_w + g + 8 * r;
    stats.row_lse2[r] = row < T ? lse[static_cast<size_t>(hd.bh) * T + row] * kLog2e : 0.f;
    stats.row_d[r] = row < T ? Dg[static_cast<size_t>(hd.bh) * T + row] : 0.f;
  }

  float dq[NDT][4];
  zero_acc(dq);

  for (int kb = 0; kb < n_kb; ++kb) {
    cp_async_wait_all();
    __syncthreads();
    if (kb + 1 < n_kb) {
      const int nb = (kb + 1) & 1;
      load_tile_async<BK, HS, NT>(sK + nb * BK * LD, hd.k, hd.C3, (kb + 1) * BK, T);
      load_tile_async<BK, HS, NT>(sV + nb * BK * LD, hd.v, hd.C3, (kb + 1) * BK, T);
      cp_async_commit();
    }
    const int k0 = kb * BK;
    // Warp entirely past T, or every key of the block after every row of the warp: nothing to add.
    if (row_w >= T || k0 > row_w + 15) continue;
    const bf16* sKb = sK + (kb & 1) * BK * LD;

    // dS (16 queries × BK keys per warp) from S = Q·Kᵀ and dP = dY·Vᵀ.
    float p[BK / 8][4], ds[BK / 8][4];
    recompute_p_ds<HS, BK>(p, ds, sQ, sdO, warp * 16, sKb, sV + (kb & 1) * BK * LD, row_w, k0, T, sl, stats, lane);

    // dQ += dS·K (k = keys)
#pragma unroll
    for (int kk = 0; kk < BK / 16; ++kk) {
      uint32_t da[4];
      acc_to_a(da, ds[2 * kk], ds[2 * kk + 1]);
      mma_a_b<BTile::kn, LD, HS>(dq, da, sKb, kk * 16, lane);
    }
  }

  // This warp's rows of sQ were only read by this warp: stage dQ (scaled) through them.
  store_warp_rows<HS>(sQ + warp * 16 * LD, dq, scale, scale, dqkv + hd.bT * hd.C3 + hd.h * HS, hd.C3, row_w, T, lane);
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
  GPT2_REQUIRE(CEIL_DIV(T, BKV) <= 65535 && CEIL_DIV(T, BQD) <= 65535);  // grid.y

  constexpr size_t smem_kv = dkv_smem_bytes<HS, BKV, BQ_KV>();
  auto kv = flash_backward_dkv_kernel<HS, BKV, BQ_KV>;
  attn::set_dynamic_smem(kv, smem_kv);
  CUDA_CHECK(launch(kv, dim3(B * NH, CEIL_DIV(T, BKV)), BKV / 16 * 32, smem_kv, stream, dqkv, dy, qkv, lse, D, T, NH,
                    sl, scale));

  constexpr size_t smem_q = dq_smem_bytes<HS, BQD, BK_D>();
  auto qk = flash_backward_dq_kernel<HS, BQD, BK_D>;
  attn::set_dynamic_smem(qk, smem_q);
  CUDA_CHECK(launch(qk, dim3(B * NH, CEIL_DIV(T, BQD)), BQD / 16 * 32, smem_q, stream, dqkv, dy, qkv, lse, D, T, NH, sl,
                    scale));
}

}  // namespace

void attn::flash_backward(bf16* dqkv, const float* D, const bf16* dy, const bf16* qkv, const float* lse, int B, int T,
                          int NH, int HS, cudaStream_t stream) {
  GPT2_REQUIRE(HS == 64 || HS == 128);
  if (HS == 64)
    launch_flash_backward<64>(dqkv, D, dy, qkv, lse, B, T, NH, stream);
  else
    launch_flash_backward<128>(dqkv, D, dy, qkv, lse, B, T, NH, stream);
}

}  // namespace gpt2::cuda
