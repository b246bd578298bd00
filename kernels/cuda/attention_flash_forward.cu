/*
 * Flash attention forward (bf16, HS 64 or 128): y, lse ← attention(qkv), no T×T buffer. The maths
 * and the contract are at the top of attention.cu; the tile primitives and fragment layouts in
 * mma.cuh.
 *
 * flash_forward_kernel<HS, MT, BK>: one CTA per (b·h, block of BQ = 4·16·MT query rows), 4 warps,
 * each warp owning MT m-tiles of 16 query rows (interleaved: m-tile mt of warp w is rows
 * (mt·4 + w)·16 of the block, which spreads the diagonal's work over the warps). Head size 64 runs
 * MT = 2 (128-query CTAs, 32-key steps), 128 runs MT = 1 (64-query CTAs, 64-key steps): FwdTiles.
 * The CTA walks the key blocks from 0 up to the block holding its last row (causal block
 * skipping); K and V tiles are double-buffered in shared memory with cp.async. Per key block a
 * warp computes S = Q·Kᵀ (16×BK per m-tile) with mma.sync m16n8k16 (bf16 in, fp32 accumulate),
 * each K fragment read from shared memory once for its MT m-tiles; it skips the 16-key groups no
 * row of an m-tile sees (past its last row, or ≥ T) in both products, masks keys > query and
 * keys ≥ T on the blocks that need it, does the online softmax in fp32 in the exp2 domain (running
 * max m and sum l per row, O rescaled by exp2(m_old − m_new)), converts P to bf16 in registers
 * (acc_to_a) and accumulates O += P·V. At the end y = O / l and lse = (m + log2 l)·ln2. CTAs are
 * issued heaviest (last query block) first.
 *
 * The launcher is here, with its kernel: the grid, block and shared memory follow from the
 * kernel's tile parameters.
 */
#include "kernels/cuda/attention_paths.cuh"
#include "kernels/cuda/mma.cuh"

#include <cmath>
#include <cstdint>

namespace gpt2::cuda {

namespace {

using namespace attn;
using namespace mma;

constexpr float kLn2 = 0.6931471805599453f;

constexpr int kWarps = 4;  // per CTA

// The tiles of each head size: MT m-tiles of 16 query rows per warp (the CTA's BQ = kWarps·16·MT
// query rows), BK keys per step. Two m-tiles let each K and V fragment read from shared memory
// feed two mma pairs (half the shared-memory reads per mma of one) and halve the K/V tile loads
// per query; head size 128 keeps one, as its O accumulators alone take 64 registers per m-tile.
// At head size 64 the 32-key step keeps S at 32 registers for the two m-tiles, and Q's fragments
// are read again from shared memory at each step instead of being held (32 registers), so the
// kernel fits the 168 registers of three resident CTAs (kMinBlocks; with Q held it took 197-202
// registers, two CTAs, and spilled on sm_90 when capped at 168).
template <int HS>
struct FwdTiles {
  static constexpr int MT = HS == 64 ? 2 : 1;
  static constexpr int BK = HS == 64 ? 32 : 64;
  static constexpr int BQ = kWarps * 16 * MT;
  static constexpr bool kQInRegisters = MT == 1;
  static constexpr int kMinBlocks = HS == 64 ? 3 : 1;  // resident CTAs per SM __launch_bounds__ asks for
};

template <int HS, int MT, int BK>
constexpr size_t fwd_smem_bytes() {
  return static_cast<size_t>(kWarps * 16 * MT + 4 * BK) * (HS + kTilePad) * sizeof(bf16);
}

// grid (B·NH, ceil(T/BQ)), block kWarps warps. sl = scale·log2(e).
template <int HS, int MT, int BK>
__global__ void __launch_bounds__(kWarps * 32, FwdTiles<HS>::kMinBlocks)
    flash_forward_kernel(bf16* __restrict__ y, float* __restrict__ lse, const bf16* __restrict__ qkv, int T, int NH,
                         float sl) {
  static_assert(BK % 16 == 0 && HS % 16 == 0, "tile sizes");
  constexpr int BQ = kWarps * 16 * MT;
  constexpr int NT = kWarps * 32;
  constexpr int LD = HS + kTilePad;
  constexpr int NKT = BK / 8;  // key n-tiles of S
  constexpr int NDT = HS / 8;  // dim n-tiles of O
  constexpr bool kQInRegisters = FwdTiles<HS>::kQInRegisters;

  GPT2_DYNAMIC_SHARED(unsigned char, smem_raw);
  bf16* sQ = reinterpret_cast<bf16*>(smem_raw);  // [BQ][LD]
  bf16* sK = sQ + BQ * LD;                       // [2][BK][LD]
  bf16* sV = sK + 2 * BK * LD;                   // [2][BK][LD]

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane >> 2, t = lane & 3;
  const FlashHead hd = flash_head<HS>(qkv, T, NH);
  const int q0 = (gridDim.y - 1 - blockIdx.y) * BQ;  // heaviest query blocks first
  const int n_kb = (min(q0 + BQ, T) - 1) / BK + 1;   // key blocks up to the last row's diagonal
  // This warp's m-tiles: 16 rows each, interleaved with the other warps' (m-tile mt of warp w is
  // tile mt·kWarps + w of the CTA), so the causal work near the diagonal is spread over the warps.
  int row[MT];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) row[mt] = q0 + (mt * kWarps + warp) * 16;

  load_tile_async<BQ, HS, NT>(sQ, hd.q, hd.C3, q0, T);
  load_tile_async<BK, HS, NT>(sK, hd.k, hd.C3, 0, T);
  load_tile_async<BK, HS, NT>(sV, hd.v, hd.C3, 0, T);
  cp_async_commit();

  float o[MT][NDT][4];
  zero_acc(o);
  float m[MT][2], l[MT][2];  // running max of s·sl and this thread's partial running sums, rows g, g+8
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) m[mt][0] = m[mt][1] = -INFINITY, l[mt][0] = l[mt][1] = 0.f;

  // Q fragments: held in registers for the whole walk (kQInRegisters) or read from sQ per step.
  uint32_t qf[kQInRegisters ? HS / 16 : 1][MT][4];

  for (int kb = 0; kb < n_kb; ++kb) {
    cp_async_wait_all();
    __syncthreads();  // tile kb visible to all; everyone is done with the other buffer
    if (kQInRegisters && kb == 0) {
#pragma unroll
      for (int ks = 0; ks < (kQInRegisters ? HS / 16 : 0); ++ks)
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) ldsm_x4(qf[ks][mt], frag_a<LD>(sQ, (mt * kWarps + warp) * 16, ks * 16, lane));
    }
    if (kb + 1 < n_kb) {
      const int nb = (kb + 1) & 1;
      load_tile_async<BK, HS, NT>(sK + nb * BK * LD, hd.k, hd.C3, (kb + 1) * BK, T);
      load_tile_async<BK, HS, NT>(sV + nb * BK * LD, hd.v, hd.C3, (kb + 1) * BK, T);
      cp_async_commit();
    }
    const bf16* sKb = sK + (kb & 1) * BK * LD;
    const bf16* sVb = sV + (kb & 1) * BK * LD;
    const int k0 = kb * BK;
    // Per m-tile, the 16-key groups of this block some of its rows see: those starting at or
    // before its last row and before T (rows and k0 are multiples of 16). The other groups are
    // skipped in both products; their scores stay 0 and the mask below hides them (P = 0). An
    // m-tile with none this block (n16 = 0) is left as it is.
    int n16[MT], zero[MT];
    bool any = false;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      n16[mt] = max(0, min(BK / 16, min((row[mt] + 16 - k0) / 16, (T - k0 + 15) / 16)));
      zero[mt] = 0;
      any = any || n16[mt] > 0;
    }
    if (!any) continue;  // warp-uniform; the barrier at the top is still reached by every warp

    // S = Q·Kᵀ (16 × BK per m-tile)
    float s[MT][NKT][4];
    zero_acc(s);
#pragma unroll
    for (int ks = 0; ks < HS / 16; ++ks) {
      if constexpr (!kQInRegisters) {
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
          if (n16[mt] > 0) ldsm_x4(qf[0][mt], frag_a<LD>(sQ, (mt * kWarps + warp) * 16, ks * 16, lane));
      }
      mma_tiles<BTile::nk, LD, BK, MT>(s, qf[kQInRegisters ? ks : 0], sKb, ks * 16, lane, zero, n16);
    }

#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      if (n16[mt] == 0) continue;
      // Causal and tail mask, only on blocks where some key > some row of the m-tile or ≥ T.
      if (k0 + BK - 1 > row[mt] || k0 + BK > T) {
#pragma unroll
        for (int j = 0; j < NKT; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int key = k0 + j * 8 + 2 * t + (e & 1);
            const int r = row[mt] + g + (e >> 1) * 8;
            if (key > r || key >= T) s[mt][j][e] = -INFINITY;
          }
      }

      // Online softmax (exp2 domain). The four threads of a quad share rows g and g+8.
      float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int j = 0; j < NKT; ++j) {
        mx[0] = fmaxf(mx[0], fmaxf(s[mt][j][0], s[mt][j][1]));
        mx[1] = fmaxf(mx[1], fmaxf(s[mt][j][2], s[mt][j][3]));
      }
      float mu[2], alpha[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
        const float m_new = fmaxf(m[mt][r], mx[r] * sl);
        mu[r] = m_new == -INFINITY ? 0.f : m_new;  // a row with no visible key yet: keep p = 0, no NaN
        alpha[r] = exp2f(m[mt][r] - mu[r]);
        m[mt][r] = m_new;
        l[mt][r] *= alpha[r];
      }
#pragma unroll
      for (int d = 0; d < NDT; ++d) {
        o[mt][d][0] *= alpha[0];
        o[mt][d][1] *= alpha[0];
        o[mt][d][2] *= alpha[1];
        o[mt][d][3] *= alpha[1];
      }
#pragma unroll
      for (int j = 0; j < NKT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float p = exp2f(fmaf(s[mt][j][e], sl, -mu[e >> 1]));
          s[mt][j][e] = p;
          l[mt][e >> 1] += p;
        }
    }

    // O += P·V; an m-tile needs P's key steps only below its n16 (P = 0 beyond).
    mma_acc_a_kn<LD, HS, BK, MT>(o, s, sVb, lane, n16);
  }

  // Epilogue: y = O / l, lse = (m + log2 l)·ln2.
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      l[mt][r] += __shfl_xor_sync(0xffffffffu, l[mt][r], 1);
      l[mt][r] += __shfl_xor_sync(0xffffffffu, l[mt][r], 2);
    }
    const float inv0 = l[mt][0] > 0.f ? 1.f / l[mt][0] : 0.f;
    const float inv1 = l[mt][1] > 0.f ? 1.f / l[mt][1] : 0.f;
    // The m-tile's rows of sQ were only ever read by this warp (its Q fragments): reuse them as
    // staging.
    store_warp_rows<HS>(sQ + (row[mt] - q0) * LD, o[mt], inv0, inv1, y + hd.bT * hd.C + hd.h * HS, hd.C, row[mt], T,
                        lane);
    if (t == 0) {
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int rr = row[mt] + g + 8 * r;
        if (rr < T) lse[static_cast<size_t>(hd.bh) * T + rr] = (m[mt][r] + log2f(l[mt][r])) * kLn2;
      }
    }
  }
}

template <int HS>
void launch_flash_forward(bf16* y, float* lse, const bf16* qkv, int B, int T, int NH, cudaStream_t stream) {
  using Tiles = FwdTiles<HS>;
  GPT2_REQUIRE(CEIL_DIV(T, Tiles::BQ) <= 65535);  // grid.y
  constexpr size_t smem = fwd_smem_bytes<HS, Tiles::MT, Tiles::BK>();
  auto kernel = flash_forward_kernel<HS, Tiles::MT, Tiles::BK>;
  attn::set_dynamic_smem(kernel, smem);
  const float sl = kLog2e / std::sqrt(static_cast<float>(HS));
  CUDA_CHECK(launch(kernel, dim3(B * NH, CEIL_DIV(T, Tiles::BQ)), kWarps * 32, smem, stream, y, lse, qkv, T, NH, sl));
}

}  // namespace

void attn::flash_forward(bf16* y, float* lse, const bf16* qkv, int B, int T, int NH, int HS, cudaStream_t stream) {
  GPT2_REQUIRE(HS == 64 || HS == 128);
  if (HS == 64)
    launch_flash_forward<64>(y, lse, qkv, B, T, NH, stream);
  else
    launch_flash_forward<128>(y, lse, qkv, B, T, NH, stream);
}

}  // namespace gpt2::cuda
