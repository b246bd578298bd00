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
 *     straight from accumulators to A operands). Q, dY, lse, D tiles are double-buffered; at head
 *     size 64 the warp's K and V fragments are loaded once and held in registers.
 *   flash_backward_dq_kernel: one CTA per (b·h, block of BQ queries), each warp owning MT
 *     m-tiles of 16 queries (head size 64: MT = 2, 128-query CTAs; 128: MT = 1), interleaved as
 *     in the forward; walks 32-key steps 0..its diagonal, recomputes S, dP, P, dS and accumulates
 *     dQ += dS·K, each K and V fragment read once for the MT m-tiles. K and V tiles are
 *     double-buffered.
 * The recompute is one function, recompute_p_ds, used by both kernels: a warp's m-tiles of 16 rows
 * (keys in dK/dV, queries in dQ) against one block of columns (queries in dK/dV, keys in dQ). Both
 * kernels skip the 16×16 sub-tiles the causal mask hides entirely (and columns ≥ T) in every
 * product. Both recompute S and dP (7 tile matmuls instead of FlashAttention-2's 5): that is the
 * price of determinism without atomics or a dQ accumulation buffer.
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

// Where the queries of the recompute's accumulator elements lie, and their statistics (lse·log2e
// and D).
// dQ kernel: the warp's rows are queries; their statistics are held in registers (rows g, g+8 of
// each m-tile).
template <int MT>
struct QueriesOnRows {
  static constexpr bool kOnCols = false;
  float row_lse2[MT][2], row_d[MT][2];
};
// dK/dV kernel: the columns are queries; their statistics are in shared memory, one per column.
struct QueriesOnCols {
  static constexpr bool kOnCols = true;
  const float* col_lse;  // natural-log lse
  const float* col_d;
};

// Where the recompute's A operands come from: rows tile_row[mt] .. +15 of the shared tiles aS,
// aDP, read at each k-step (the dQ kernel, whose two m-tiles of Q and dY fragments would take 64
// registers; the dK/dV kernel at head size 128), or fragments the caller loaded once and holds in
// registers (the dK/dV kernel at head size 64: its warp's K and V fragments, 32 registers).
template <int HS, int MT>
struct AFromTiles {
  const bf16* aS;
  const bf16* aDP;
  const int (&tile_row)[MT];
  __device__ __forceinline__ void get(int ks, int mt, uint32_t (&as)[4], uint32_t (&adp)[4], int lane) const {
    ldsm_x4(as, frag_a<HS + kTilePad>(aS, tile_row[mt], ks * 16, lane));
    ldsm_x4(adp, frag_a<HS + kTilePad>(aDP, tile_row[mt], ks * 16, lane));
  }
};
template <int HS>
struct AInRegisters {
  const uint32_t (&as)[HS / 16][4];
  const uint32_t (&adp)[HS / 16][4];
  __device__ __forceinline__ void get(int ks, int, uint32_t (&a)[4], uint32_t (&b)[4], int) const {
#pragma unroll
    for (int i = 0; i < 4; ++i) a[i] = as[ks][i], b[i] = adp[ks][i];
  }
};

// The score and score-gradient recompute both backward kernels share. A warp owns MT m-tiles of
// 16 rows (rows row0[mt] .. row0[mt]+15 of the M side: A operands of S and dP, from `a`) and one
// block of N columns (col0 .. col0+N−1 of the N side: B operands, rows 0..N−1 of the [n][k] tiles
// bS, bDP, zero-filled past T), of which only the 16-column groups in [np_lo[mt], np_hi[mt]) are
// multiplied for m-tile mt: the caller passes the groups where some key does not follow some query
// and the columns are < T. Each B fragment is read once for all the m-tiles. It computes
//   s  = aS·bSᵀ,  dp = aDP·bDPᵀ                     (16 × N per m-tile, fp32 accumulators)
// and then, in place, with scale·log2e = sl and the query's statistics from Q:
//   s  ← P  = exp2(s·sl − lse·log2e), 0 where the key follows the query or the column is ≥ T
//   dp ← dS = P∘(dp − D)
// dQ kernel: rows = queries (Q, dY), columns = keys (K, V): S, dP. dK/dV kernel: rows = keys
// (K, V), columns = queries (Q, dY): Sᵀ, dPᵀ. Element (mt, j, e) is row row0[mt] + g + 8(e/2),
// column col0 + 8j + 2t + (e%2). Rows ≥ T are computed but never stored by the callers. In the
// skipped groups s and dp stay 0 and the mask makes P and dS exactly 0; an m-tile with an empty
// range is left at 0.
template <int HS, int N, int MT, typename A, typename Q>
__device__ __forceinline__ void recompute_p_ds(float (&s)[MT][N / 8][4], float (&dp)[MT][N / 8][4], const A& a,
                                               const bf16* bS, const bf16* bDP, const int (&row0)[MT], int col0,
                                               const int (&np_lo)[MT], const int (&np_hi)[MT], int T, float sl,
                                               const Q& q, int lane) {
  constexpr int LD = HS + kTilePad;
  zero_acc(s);
  zero_acc(dp);
#pragma unroll
  for (int ks = 0; ks < HS / 16; ++ks) {
    uint32_t as[MT][4], adp[MT][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
      if (np_lo[mt] < np_hi[mt]) a.get(ks, mt, as[mt], adp[mt], lane);
    mma_tiles<BTile::nk, LD, N, MT>(s, as, bS, ks * 16, lane, np_lo, np_hi);
    mma_tiles<BTile::nk, LD, N, MT>(dp, adp, bDP, ks * 16, lane, np_lo, np_hi);
  }

  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    if (np_lo[mt] >= np_hi[mt]) continue;
    // Masks only where some key follows some query, or the columns run past T.
    const bool causal = Q::kOnCols ? col0 < row0[mt] + 15 : col0 + N - 1 > row0[mt];
    const bool need_mask = causal || col0 + N > T;
#pragma unroll
    for (int j = 0; j < N / 8; ++j) {
      // The statistics of the four elements (rows g, g+8 × columns 2t, 2t+1), each read once:
      // per row from registers, or per column from shared memory.
      float l2[4], dd[4];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        if constexpr (Q::kOnCols) {
          const int c = j * 8 + 2 * t + h;
          l2[h] = l2[h + 2] = q.col_lse[c] * kLog2e;
          dd[h] = dd[h + 2] = q.col_d[c];
        } else {
          l2[2 * h] = l2[2 * h + 1] = q.row_lse2[mt][h];
          dd[2 * h] = dd[2 * h + 1] = q.row_d[mt][h];
        }
      }
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int row = row0[mt] + g + (e >> 1) * 8, col = col0 + j * 8 + 2 * t + (e & 1);
        const int query = Q::kOnCols ? col : row, key = Q::kOnCols ? row : col;
        float p = exp2f(fmaf(s[mt][j][e], sl, -l2[e]));
        if (need_mask && (key > query || col >= T)) p = 0.f;
        dp[mt][j][e] = p * (dp[mt][j][e] - dd[e]);
        s[mt][j][e] = p;
      }
    }
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

  // This warp's 16 rows of K and V as A fragments, loaded once (first iteration) for the whole walk
  // at head size 64. At 128 they would take 64 registers (the kernel would spill): there they are
  // read from sK, sV at each step.
  constexpr bool kKVInRegisters = HS == 64;
  uint32_t kf[kKVInRegisters ? HS / 16 : 1][4], vf[kKVInRegisters ? HS / 16 : 1][4];
  const int tile_row[1] = {warp * 16};

  for (int qb = first_qb; qb < n_qb; ++qb) {
    const int buf = (qb - first_qb) & 1;
    cp_async_wait_all();
    __syncthreads();
    if (kKVInRegisters && qb == first_qb) {
#pragma unroll
      for (int ks = 0; ks < (kKVInRegisters ? HS / 16 : 0); ++ks) {
        ldsm_x4(kf[ks], frag_a<LD>(sK, warp * 16, ks * 16, lane));
        ldsm_x4(vf[ks], frag_a<LD>(sV, warp * 16, ks * 16, lane));
      }
    }
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
    // The 16-query groups where some query does not precede every key of this warp (from the one
    // holding the warp's first key on) and the queries are < T (kw0 and q0 are multiples of 16).
    const int np_lo = max(0, (kw0 - q0) / 16), np_hi = min(BQ / 16, (T - q0 + 15) / 16);

    // Pᵀ and dSᵀ (16 keys × BQ queries per warp) from Sᵀ = K·Qᵀ and dPᵀ = V·dYᵀ.
    float pt[1][BQ / 8][4], dst[1][BQ / 8][4];
    const int row0[1] = {kw0}, lo[1] = {np_lo}, hi[1] = {np_hi};
    const QueriesOnCols stats{sL + buf * BQ, sD + buf * BQ};
    if constexpr (kKVInRegisters) {
      recompute_p_ds<HS, BQ, 1>(pt, dst, AInRegisters<HS>{kf, vf}, sQb, sdOb, row0, q0, lo, hi, T, sl, stats, lane);
    } else {
      recompute_p_ds<HS, BQ, 1>(pt, dst, AFromTiles<HS, 1>{sK, sV, tile_row}, sQb, sdOb, row0, q0, lo, hi, T, sl, stats,
                                lane);
    }

    // dV += Pᵀ·dY, dK += dSᵀ·Q (k = queries; Pᵀ = dSᵀ = 0 outside [np_lo, np_hi))
#pragma unroll
    for (int kk = 0; kk < BQ / 16; ++kk) {
      if (kk < np_lo || kk >= np_hi) continue;
      uint32_t pa[4], da[4];
      acc_to_a(pa, pt[0][2 * kk], pt[0][2 * kk + 1]);
      acc_to_a(da, dst[0][2 * kk], dst[0][2 * kk + 1]);
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

constexpr int kWarps = 4;  // per CTA of the dQ kernel

// The dQ kernel's tiles for each head size: MT m-tiles of 16 query rows per warp (the CTA's
// BQ = kWarps·16·MT query rows), BK keys per step. Two m-tiles let each K and V fragment read from
// shared memory feed both and halve the K/V tile loads per query; head size 128 keeps one (its dQ
// accumulators take 64 registers per m-tile). The 32-key step keeps S and dP at 32 registers each
// for two m-tiles (and head size 128's shared memory under 99 KB, sm_86/89). With two m-tiles the
// kernel takes 190-209 registers, two resident CTAs per SM; capped at 168 for a third it spilled.
template <int HS>
struct DqTiles {
  static constexpr int MT = HS == 64 ? 2 : 1;
  static constexpr int BK = 32;
  static constexpr int BQ = kWarps * 16 * MT;
};

template <int HS, int MT, int BK>
constexpr size_t dq_smem_bytes() {
  return static_cast<size_t>(2 * kWarps * 16 * MT + 4 * BK) * (HS + kTilePad) * sizeof(bf16);
}

// dQ for one block of BQ queries. grid (B·NH, ceil(T/BQ)), block kWarps warps.
template <int HS, int MT, int BK>
__global__ void __launch_bounds__(kWarps * 32)
    flash_backward_dq_kernel(bf16* __restrict__ dqkv, const bf16* __restrict__ dy, const bf16* __restrict__ qkv,
                             const float* __restrict__ lse, const float* __restrict__ Dg, int T, int NH, float sl,
                             float scale) {
  static_assert(BK % 16 == 0 && HS % 16 == 0, "tile sizes");
  constexpr int BQ = kWarps * 16 * MT;
  constexpr int NT = kWarps * 32;
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
  const bf16* dyg = dy + hd.bT * hd.C + hd.h * HS;
  const int n_kb = (min(q0 + BQ, T) - 1) / BK + 1;
  // This warp's m-tiles, interleaved with the other warps' as in the forward: m-tile mt is tile
  // mt·kWarps + warp of the CTA (rows tile_row[mt] of sQ, sdO; query row[mt] of the head).
  int tile_row[MT], row[MT], zero[MT];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) tile_row[mt] = (mt * kWarps + warp) * 16, row[mt] = q0 + tile_row[mt], zero[mt] = 0;

  load_tile_async<BQ, HS, NT>(sQ, hd.q, hd.C3, q0, T);
  load_tile_async<BQ, HS, NT>(sdO, dyg, hd.C, q0, T);
  load_tile_async<BK, HS, NT>(sK, hd.k, hd.C3, 0, T);
  load_tile_async<BK, HS, NT>(sV, hd.v, hd.C3, 0, T);
  cp_async_commit();

  // Row statistics of rows g and g+8 of each m-tile (0 for rows ≥ T, whose results are never stored).
  QueriesOnRows<MT> stats;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int rr = row[mt] + g + 8 * r;
      stats.row_lse2[mt][r] = rr < T ? lse[static_cast<size_t>(hd.bh) * T + rr] * kLog2e : 0.f;
      stats.row_d[mt][r] = rr < T ? Dg[static_cast<size_t>(hd.bh) * T + rr] : 0.f;
    }

  float dq[MT][NDT][4];
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
    // Per m-tile, the 16-key groups some of its rows see: starting at or before its last row, and
    // < T; none for an m-tile past T. A warp with none in any m-tile has nothing to add.
    int n16[MT];
    bool any = false;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      n16[mt] = row[mt] >= T ? 0 : max(0, min(BK / 16, min((row[mt] + 16 - k0) / 16, (T - k0 + 15) / 16)));
      any = any || n16[mt] > 0;
    }
    if (!any) continue;  // warp-uniform; the barrier at the top is still reached by every warp
    const bf16* sKb = sK + (kb & 1) * BK * LD;
    const bf16* sVb = sV + (kb & 1) * BK * LD;

    // dS (16 queries × BK keys per m-tile) from S = Q·Kᵀ and dP = dY·Vᵀ.
    float p[MT][BK / 8][4], ds[MT][BK / 8][4];
    recompute_p_ds<HS, BK, MT>(p, ds, AFromTiles<HS, MT>{sQ, sdO, tile_row}, sKb, sVb, row, k0, zero, n16, T, sl, stats,
                               lane);

    // dQ += dS·K (k = keys; dS = 0 from group n16 on)
    mma_acc_a_kn<LD, HS, BK, MT>(dq, ds, sKb, lane, n16);
  }

  // The m-tiles' rows of sQ were only read by this warp: stage dQ (scaled) through them.
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
    store_warp_rows<HS>(sQ + tile_row[mt] * LD, dq[mt], scale, scale, dqkv + hd.bT * hd.C3 + hd.h * HS, hd.C3, row[mt],
                        T, lane);
}

template <int HS>
void launch_flash_backward(bf16* dqkv, const float* D, const bf16* dy, const bf16* qkv, const float* lse, int B, int T,
                           int NH, cudaStream_t stream) {
  // HS=128 halves the dK/dV kernel's query step: keeps its registers (Sᵀ, dPᵀ, dK, dV
  // accumulators) under 255.
  constexpr int BKV = 64, BQ_KV = HS == 64 ? 64 : 32;  // dK/dV kernel: key block, query step
  using Dq = DqTiles<HS>;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  const float sl = scale * kLog2e;
  GPT2_REQUIRE(CEIL_DIV(T, BKV) <= 65535 && CEIL_DIV(T, Dq::BQ) <= 65535);  // grid.y

  constexpr size_t smem_kv = dkv_smem_bytes<HS, BKV, BQ_KV>();
  auto kv = flash_backward_dkv_kernel<HS, BKV, BQ_KV>;
  attn::set_dynamic_smem(kv, smem_kv);
  CUDA_CHECK(launch(kv, dim3(B * NH, CEIL_DIV(T, BKV)), BKV / 16 * 32, smem_kv, stream, dqkv, dy, qkv, lse, D, T, NH,
                    sl, scale));

  constexpr size_t smem_q = dq_smem_bytes<HS, Dq::MT, Dq::BK>();
  auto qk = flash_backward_dq_kernel<HS, Dq::MT, Dq::BK>;
  attn::set_dynamic_smem(qk, smem_q);
  CUDA_CHECK(launch(qk, dim3(B * NH, CEIL_DIV(T, Dq::BQ)), kWarps * 32, smem_q, stream, dqkv, dy, qkv, lse, D, T, NH,
                    sl, scale));
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
