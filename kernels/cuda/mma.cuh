/*
 * Tensor-core tile primitives for kernels that keep bf16 tiles in shared memory and multiply them
 * with mma.sync m16n8k16 (bf16 in, fp32 accumulate): padded tile loads with cp.async, fragment
 * addresses for ldmatrix, the mma itself, accumulator → operand packing, and the store of a
 * warp's accumulator rows. Used by the flash attention kernels (attention_flash_forward.cu,
 * attention_flash_backward.cu); the instructions themselves are in ptx.cuh.
 *
 * Tiles. A shared-memory tile is row-major bf16 with each row padded by kTilePad elements:
 * stride LD = cols + 8 (144 bytes for 64 columns, 272 for 128). Rows stay 16-byte aligned for
 * cp.async and ldmatrix, and the 8 row addresses of one ldmatrix phase fall on 8 distinct 4-bank
 * groups (no bank conflicts). load_tile_async zero-fills rows past the end of the tensor, so a
 * product over a partial tile never reads garbage (0·NaN would poison sums).
 *
 * Fragments. With g = lane/4, t = lane%4, mma.m16n8k16 holds A (16×16) as {row g, cols 2t..2t+1},
 * {row g+8, same}, {row g, cols 8+2t..}, {row g+8, cols 8+2t..}; B (16×8) as {k 2t..2t+1, n g},
 * {k 8+2t.., n g}; C (16×8 fp32) as {row g, cols 2t, 2t+1}, {row g+8, cols 2t, 2t+1}. So the
 * accumulators of two adjacent 16×8 tiles are, once rounded to bf16 pairs, the A operand of one
 * 16×16 tile (acc_to_a): a product can feed the next matmul without leaving registers.
 * ldmatrix.x4 loads four 8×8 matrices, lane L giving the address of row L%8 of matrix L/8;
 * without .trans lane L receives {M[L/4][2(L%4)], M[L/4][2(L%4)+1]}, with .trans
 * {M[2(L%4)][L/4], M[2(L%4)+1][L/4]}. So a row-major tile X[r][c] gives: A operands without
 * .trans (frag_a); B operands where the tile is [n][k] without .trans (frag_b_nk; mma_a_b with
 * BTile::nk: C += A·Xᵀ); B operands where the tile is [k][n] with .trans (frag_b_kn; BTile::kn:
 * C += A·X). mma_tiles does the same for MT m-tiles of 16 rows at once: each B fragment is read
 * from shared memory once and feeds all of them (a warp owning 32 rows reads half the B bytes per
 * mma of a warp owning 16), and per m-tile only a given range of 16-column groups is multiplied
 * (the attention kernels skip the key groups the causal mask hides entirely).
 */
#pragma once
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ptx.cuh"

#include <cstddef>
#include <cstdint>

namespace gpt2::cuda::mma {

constexpr int kTilePad = 8;  // bf16 elements of padding per shared-memory tile row

// ---------------------------------------------------------------------------------------------
// Instructions
// ---------------------------------------------------------------------------------------------

// 16-byte global → shared copy; when !valid, writes 16 zero bytes and reads nothing.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  ptx::cp_async_cg_16(smem, gmem, valid ? 16 : 0);
}
// 4-byte variant, for fp32 vectors whose rows are not 16-byte aligned.
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

// The A operand of a 16×16 tile from the fp32 accumulators of the two 16×8 tiles that make it up
// (columns 0-7 in c0, 8-15 in c1), rounded to bf16.
__device__ __forceinline__ void acc_to_a(uint32_t (&a)[4], const float (&c0)[4], const float (&c1)[4]) {
  a[0] = pack_bf16(c0[0], c0[1]);
  a[1] = pack_bf16(c0[2], c0[3]);
  a[2] = pack_bf16(c1[0], c1[1]);
  a[3] = pack_bf16(c1[2], c1[3]);
}

// ---------------------------------------------------------------------------------------------
// Fragment addresses (lane-dependent offsets into a padded row-major tile of stride LD)
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
// A warp's 16-row products: accumulators acc[N/8][4] hold 16 rows × N columns as N/8 16×8 tiles
// ---------------------------------------------------------------------------------------------

template <int NT>
__device__ __forceinline__ void zero_acc(float (&acc)[NT][4]) {
#pragma unroll
  for (int j = 0; j < NT; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
}
template <int MT, int NT>
__device__ __forceinline__ void zero_acc(float (&acc)[MT][NT][4]) {
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) zero_acc(acc[mt]);
}

// How the B operand's tile X is stored: [n][k] (B = Xᵀ, as K in Q·Kᵀ; ldmatrix without .trans)
// or [k][n] (B = X, as V in P·V; ldmatrix .trans).
enum class BTile { nk, kn };

// acc (16 × N) += A (16×16) · B for one k-step: B is the 16 × N operand at k = k0..k0+15 of the
// row-major tile X (rows 0..N−1 of an [n][k] tile, or rows k0..k0+15 of a [k][n] tile).
template <BTile L, int LD, int N>
__device__ __forceinline__ void mma_a_b(float (&acc)[N / 8][4], const uint32_t (&a)[4], const bf16* x, int k0,
                                        int lane) {
#pragma unroll
  for (int np = 0; np < N / 16; ++np) {
    uint32_t b[4];
    if constexpr (L == BTile::kn)
      ldsm_x4_trans(b, frag_b_kn<LD>(x, k0, np * 16, lane));
    else
      ldsm_x4(b, frag_b_nk<LD>(x, np * 16, k0, lane));
    mma_16816(acc[2 * np], a, b[0], b[1]);
    mma_16816(acc[2 * np + 1], a, b[2], b[3]);
  }
}

// The same for MT m-tiles of 16 rows that share each B fragment (one ldmatrix feeds MT·2 mma):
// acc[mt] (16 × N) += a[mt] · B, for the 16-column groups np in [np_lo[mt], np_hi[mt]) of m-tile
// mt (warp-uniform bounds; an m-tile with an empty range is left as it is, and a B fragment no
// m-tile needs is not loaded).
template <BTile L, int LD, int N, int MT>
__device__ __forceinline__ void mma_tiles(float (&acc)[MT][N / 8][4], const uint32_t (&a)[MT][4], const bf16* x, int k0,
                                          int lane, const int (&np_lo)[MT], const int (&np_hi)[MT]) {
#pragma unroll
  for (int np = 0; np < N / 16; ++np) {
    bool any = false;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) any = any || (np >= np_lo[mt] && np < np_hi[mt]);
    if (!any) continue;
    uint32_t b[4];
    if constexpr (L == BTile::kn)
      ldsm_x4_trans(b, frag_b_kn<LD>(x, k0, np * 16, lane));
    else
      ldsm_x4(b, frag_b_nk<LD>(x, np * 16, k0, lane));
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      if (np < np_lo[mt] || np >= np_hi[mt]) continue;
      mma_16816(acc[mt][2 * np], a[mt], b[0], b[1]);
      mma_16816(acc[mt][2 * np + 1], a[mt], b[2], b[3]);
    }
  }
}

// acc[mt] (16 × N) += P[mt] · X over one block of BK keys, where P (16 × BK per m-tile, e.g. the
// softmax probabilities or dS) is held in fp32 accumulators p[mt][BK/8][4] and rounded to bf16 per
// 16-key step, and X is a [k][n] tile whose rows are those keys (V, or K for dQ). m-tile mt uses
// only its first n16[mt] key steps (P is zero beyond them).
template <int LD, int N, int BK, int MT>
__device__ __forceinline__ void mma_acc_a_kn(float (&acc)[MT][N / 8][4], const float (&p)[MT][BK / 8][4],
                                             const bf16* x, int lane, const int (&n16)[MT]) {
  int zero[MT];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) zero[mt] = 0;
#pragma unroll
  for (int kk = 0; kk < BK / 16; ++kk) {
    uint32_t a[MT][4];
    int hi[MT];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      acc_to_a(a[mt], p[mt][2 * kk], p[mt][2 * kk + 1]);
      hi[mt] = kk < n16[mt] ? N / 16 : 0;
    }
    mma_tiles<BTile::kn, LD, N, MT>(acc, a, x, kk * 16, lane, zero, hi);
  }
}

// ---------------------------------------------------------------------------------------------
// Tile loads and stores
// ---------------------------------------------------------------------------------------------

// ROWS rows of a COLS-wide bf16 slice, starting at row row0, into a padded tile (stride COLS +
// kTilePad) by NTHREADS threads. `g` points at row 0 of the slice; `stride` is the row stride in
// elements. Rows ≥ nrows are zero-filled.
template <int ROWS, int COLS, int NTHREADS>
__device__ __forceinline__ void load_tile_async(bf16* tile, const bf16* g, size_t stride, int row0, int nrows) {
  constexpr int kChunksPerRow = COLS / 8;
  constexpr int kChunks = ROWS * kChunksPerRow;
  static_assert(kChunks % NTHREADS == 0, "tile chunks must divide evenly among threads");
#pragma unroll
  for (int c = threadIdx.x; c < kChunks; c += NTHREADS) {
    const int r = c / kChunksPerRow, cc = c % kChunksPerRow;
    const int row = row0 + r;
    const bool ok = row < nrows;
    cp_async16(tile + r * (COLS + kTilePad) + cc * 8, g + static_cast<size_t>(ok ? row : 0) * stride + cc * 8, ok);
  }
}
// ROWS consecutive floats of g from row0; entries ≥ nrows are zero-filled.
template <int ROWS, int NTHREADS>
__device__ __forceinline__ void load_vec_async(float* s, const float* g, int row0, int nrows) {
  for (int r = threadIdx.x; r < ROWS; r += NTHREADS) {
    const bool ok = row0 + r < nrows;
    cp_async4(s + r, g + (ok ? row0 + r : 0), ok);
  }
}

// Writes a warp's 16 rows × COLS of fp32 accumulators (rows g scaled by mul0, rows g+8 by mul1)
// as bf16 through its own 16 rows of a padded shared tile `stage`, then to global with 16-byte
// stores. Rows ≥ nrows are not written.
template <int COLS>
__device__ __forceinline__ void store_warp_rows(bf16* stage, const float (&acc)[COLS / 8][4], float mul0, float mul1,
                                                bf16* g, size_t stride, int row0, int nrows, int lane) {
  constexpr int LD = COLS + kTilePad;
  const int gr = lane >> 2, tc = (lane & 3) * 2;
  __syncwarp();  // every lane is done reading these rows as operands
#pragma unroll
  for (int d = 0; d < COLS / 8; ++d) {
    *reinterpret_cast<uint32_t*>(stage + gr * LD + d * 8 + tc) = pack_bf16(acc[d][0] * mul0, acc[d][1] * mul0);
    *reinterpret_cast<uint32_t*>(stage + (gr + 8) * LD + d * 8 + tc) = pack_bf16(acc[d][2] * mul1, acc[d][3] * mul1);
  }
  __syncwarp();
  constexpr int kChunksPerRow = COLS / 8;
#pragma unroll
  for (int c = lane; c < 16 * kChunksPerRow; c += 32) {
    const int r = c / kChunksPerRow, cc = c % kChunksPerRow;
    if (row0 + r < nrows)
      store_vector(g + static_cast<size_t>(row0 + r) * stride + cc * 8, load_vector<int4>(stage + r * LD + cc * 8));
  }
}

}  // namespace gpt2::cuda::mma
