/*
 * Flash attention forward (bf16, HS 64 or 128): y, lse ← attention(qkv), no T×T buffer. The maths
 * and the contract are at the top of attention.cu; the tile primitives and fragment layouts in
 * mma.cuh.
 *
 * flash_forward_kernel: one CTA per (b·h, block of BQ=64 query rows), 4 warps, each warp owning
 * 16 query rows. The CTA walks the key blocks (BK=64) from 0 up to the block holding its last row
 * (causal block skipping); K and V tiles are double-buffered in shared memory with cp.async. Per
 * key block a warp computes S = Q·Kᵀ (16×BK) with mma.sync m16n8k16 (bf16 in, fp32 accumulate),
 * masks keys > query and keys ≥ T on the blocks that need it, does the online softmax in fp32 in
 * the exp2 domain (running max m and sum l per row, O rescaled by exp2(m_old − m_new)), converts
 * P to bf16 in registers (acc_to_a) and accumulates O += P·V. At the end y = O / l and
 * lse = (m + log2 l)·ln2. CTAs are issued heaviest (last query block) first.
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

template <int HS, int BQ, int BK>
constexpr size_t fwd_smem_bytes() {
  return static_cast<size_t>(BQ + 4 * BK) * (HS + kTilePad) * sizeof(bf16);
}

// grid (B·NH, ceil(T/BQ)), block BQ/16 warps. sl = scale·log2(e).
template <int HS, int BQ, int BK>
__global__ void __launch_bounds__(BQ / 16 * 32)
    flash_forward_kernel(bf16* __restrict__ y, float* __restrict__ lse, const bf16* __restrict__ qkv, int T, int NH,
                         float sl) {
  static_assert(BQ % 16 == 0 && BK % 16 == 0 && HS % 16 == 0, "tile sizes");
  constexpr int NT = BQ / 16 * 32;
  constexpr int LD = HS + kTilePad;
  constexpr int NKT = BK / 8;  // key n-tiles of S
  constexpr int NDT = HS / 8;  // dim n-tiles of O

  GPT2_DYNAMIC_SHARED(unsigned char, smem_raw);
  bf16* sQ = reinterpret_cast<bf16*>(smem_raw);  // [BQ][LD]
  bf16* sK = sQ + BQ * LD;                       // [2][BK][LD]
  bf16* sV = sK + 2 * BK * LD;                   // [2][BK][LD]

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane >> 2, t = lane & 3;
  const FlashHead hd = flash_head<HS>(qkv, T, NH);
  const int q0 = (gridDim.y - 1 - blockIdx.y) * BQ;  // heaviest query blocks first
  const int n_kb = (min(q0 + BQ, T) - 1) / BK + 1;   // key blocks up to the last row's diagonal
  const int row_w = q0 + warp * 16;                  // this warp's first query row

  load_tile_async<BQ, HS, NT>(sQ, hd.q, hd.C3, q0, T);
  load_tile_async<BK, HS, NT>(sK, hd.k, hd.C3, 0, T);
  load_tile_async<BK, HS, NT>(sV, hd.v, hd.C3, 0, T);
  cp_async_commit();

  uint32_t qf[HS / 16][4];
  float o[NDT][4];
  zero_acc(o);
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
      load_tile_async<BK, HS, NT>(sK + nb * BK * LD, hd.k, hd.C3, (kb + 1) * BK, T);
      load_tile_async<BK, HS, NT>(sV + nb * BK * LD, hd.v, hd.C3, (kb + 1) * BK, T);
      cp_async_commit();
    }
    const bf16* sKb = sK + (kb & 1) * BK * LD;
    const bf16* sVb = sV + (kb & 1) * BK * LD;
    const int k0 = kb * BK;

    // S = Q·Kᵀ (16 × BK per warp)
    float s[NKT][4];
    zero_acc(s);
#pragma unroll
    for (int ks = 0; ks < HS / 16; ++ks) mma_a_b<BTile::nk, LD, BK>(s, qf[ks], sKb, ks * 16, lane);

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
      uint32_t pa[4];
      acc_to_a(pa, s[2 * kk], s[2 * kk + 1]);
      mma_a_b<BTile::kn, LD, HS>(o, pa, sVb, kk * 16, lane);
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
  store_warp_rows<HS>(sQ + warp * 16 * LD, o, inv0, inv1, y + hd.bT * hd.C + hd.h * HS, hd.C, row_w, T, lane);
  if (t == 0) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int row = row_w + g + 8 * r;
      if (row < T) lse[static_cast<size_t>(hd.bh) * T + row] = (m[r] + log2f(l[r])) * kLn2;
    }
  }
}

template <int HS>
void launch_flash_forward(bf16* y, float* lse, const bf16* qkv, int B, int T, int NH, cudaStream_t stream) {
  constexpr int BQ = 64, BK = 64;
  GPT2_REQUIRE(CEIL_DIV(T, BQ) <= 65535);  // grid.y
  constexpr size_t smem = fwd_smem_bytes<HS, BQ, BK>();
  auto kernel = flash_forward_kernel<HS, BQ, BK>;
  attn::set_dynamic_smem(kernel, smem);
  const float sl = kLog2e / std::sqrt(static_cast<float>(HS));
  CUDA_CHECK(launch(kernel, dim3(B * NH, CEIL_DIV(T, BQ)), BQ / 16 * 32, smem, stream, y, lse, qkv, T, NH, sl));
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
