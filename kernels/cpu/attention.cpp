// Causal multi-head attention on the CPU, flash-style tiles on the matmul's GEMM micro-kernel:
// see attention.h for the maths and the contract.
//
// Plan. Queries and keys are cut into tiles of kTile (96) positions (kSmallTile, 48, for head sizes
// 65..128); every product of a tile pair is a small GEMM run by gemm_microkernel.h's register
// kernels on operands packed in their micro-panel layouts, and the elementwise softmax work runs
// on the score tile in that same layout:
//   forward  (one task per (b, h, group of kForwardGroup query tiles), each key tile packed once
//            for the group): Sᵀ = K·Qᵀ per key tile, an online softmax down the key axis (running
//            max m and sum l per query), Oᵀ += Vᵀ·Pᵀ; y = O / l, lse = m + log l. The Sᵀ tile, in
//            query panels, is itself the packed B operand of Vᵀ·Pᵀ.
//   backward (one task per (b, h)): key tiles outer, query tiles inner; S and dP recomputed per
//            pair, dK and dV accumulated for the key tile, dQ accumulated in dqkv over the key
//            tiles in ascending order. D = rowsum(dy∘y) goes to the scratch (B·NH·T floats).
// Causality: tiles above the diagonal are never visited, and inside a diagonal tile each register
// tile sums only the keys (or queries) that some of its rows can see; masked scores are exact zeros.
// Every tile lives on the task's stack (about 300 KiB in either pass), nothing is allocated.
//
// Determinism: a task is one thread's, and its sums run in an order fixed by the tiling, which
// depends on T and the head size only, so results are bitwise identical for any thread count.
// The forward and the backward compute each score with the same chain of FMAs over the head dim.
// The instruction set follows the matmul's (matmul_isa(), which tests may force).
#include "kernels/cpu/attention.h"

#include <omp.h>

#include <cmath>
#include <cstring>

#include "kernels/cpu/gemm_microkernel.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/vec_math.h"

namespace gpt2::cpu {

namespace {

constexpr int kTile = 96;       // query and key tile for head sizes up to 64
constexpr int kSmallTile = 48;  // for head sizes 65..kMaxTiledHS
constexpr int kMaxTiledHS = 128;
constexpr int kForwardGroup = 4;  // query tiles of one forward task, which share each packed key tile
// Floats of one tile × head-dim buffer: a 96 × 66 or 48 × 132 block (head dim padded to MR = 6).
constexpr int kBufFloats = 6336;

struct AttnArgs {
  float* y;          // forward output
  float* lse;        // forward output
  float* dqkv;       // backward output
  float* scratch;    // backward: D
  const float* qkv;  // both
  const float* dy;   // backward
  const float* yin;  // backward
  const float* lse_in;
  int B, T, C, NH, HS, tb;
  float scale;
};

// dst[c*ldd + r] = src[r*lds + c] for r, c < 8, in AVX registers (both vector builds use it).
__attribute__((target("avx2"), always_inline)) inline void avx_transpose8x8(const float* src, long lds, float* dst,
                                                                             long ldd) {
  __m256 r[8], t[8], u[8];
  for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * lds);
  for (int i = 0; i < 8; i += 2) t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]), t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44), u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44), u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; i++) {
    _mm256_storeu_ps(dst + i * ldd, _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ldd, _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
  }
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
namespace isa_avx512 {
using namespace microkernel::avx512;
// dQ += dS·K has the head dim as its columns: 8×32 tiles fit HS = 64 exactly.
constexpr int MRH = 8, NVH = 2;
__attribute__((always_inline)) static inline void transpose8x8(const float* src, long lds, float* dst, long ldd) {
  avx_transpose8x8(src, lds, dst, ldd);
}
#include "kernels/cpu/attention_tiles.inc"
}  // namespace isa_avx512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace isa_avx2 {
using namespace microkernel::avx2;
constexpr int MRH = MR, NVH = NV;
__attribute__((always_inline)) static inline void transpose8x8(const float* src, long lds, float* dst, long ldd) {
  avx_transpose8x8(src, lds, dst, ldd);
}
#include "kernels/cpu/attention_tiles.inc"
}  // namespace isa_avx2
#pragma GCC pop_options

namespace isa_sse2 {
using namespace microkernel::sse2;
constexpr int MRH = MR, NVH = NV;
__attribute__((always_inline)) static inline void transpose8x8(const float* src, long lds, float* dst, long ldd) {
  for (int r = 0; r < 8; r++)
    for (int c = 0; c < 8; c++) dst[c * ldd + r] = src[r * lds + c];
}
#include "kernels/cpu/attention_tiles.inc"
}  // namespace isa_sse2

struct TileKernels {
  void (*forward_group)(const AttnArgs&, int b, int h, int qt0, int nt);
  void (*backward_head)(const AttnArgs&, int b, int h);
};

const TileKernels& tile_kernels() {
  static const TileKernels avx512{&isa_avx512::forward_group, &isa_avx512::backward_head};
  static const TileKernels avx2{&isa_avx2::forward_group, &isa_avx2::backward_head};
  static const TileKernels sse2{&isa_sse2::forward_group, &isa_sse2::backward_head};
  const char* isa = matmul_isa();
  return std::strcmp(isa, "avx512") == 0 ? avx512 : std::strcmp(isa, "avx2") == 0 ? avx2 : sse2;
}

inline float dot(const float* a, const float* b, int n) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

// out[r] = a · b_r for the rows b_r = b + r*stride, r < 4: four independent sums for ILP.
inline void dot4(const float* a, const float* b, size_t stride, int n, float* out) {
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
  const float *b0 = b, *b1 = b + stride, *b2 = b + 2 * stride, *b3 = b + 3 * stride;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (int i = 0; i < n; i++) {
    s0 += a[i] * b0[i];
    s1 += a[i] * b1[i];
    s2 += a[i] * b2[i];
    s3 += a[i] * b3[i];
  }
  out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}

// s[j] = a · (b + j*stride) for j < n, four at a time. The forward and the backward call it
// with the same a, b and n for the q·k scores, so both see bitwise the same scores.
inline void dots(const float* a, const float* b, size_t stride, int HS, int n, float* s) {
  int j = 0;
  for (; j + 4 <= n; j += 4) dot4(a, b + j * stride, stride, HS, s + j);
  for (; j < n; j++) s[j] = dot(a, b + j * stride, HS);
}

// The row-by-row kernels of one (b, h), for head sizes past kMaxTiledHS: O(T) scratch per head
// (the score row), every sum in one fixed order. Compiled for AVX-512, AVX2 and baseline.
__attribute__((target_clones("avx512f", "avx2", "default"))) void head_forward(float* y, float* lse, float* s,
                                                                               const float* base, int T, int C, int HS,
                                                                               int h, float scale) {
  const size_t C3 = static_cast<size_t>(3) * C;
  for (int i = 0; i < T; i++) {
    const float* q = base + i * C3 + h * HS;
    dots(q, base + C + h * HS, C3, HS, i + 1, s);
    float mx = -INFINITY;
    for (int j = 0; j <= i; j++) {
      s[j] *= scale;
      mx = s[j] > mx ? s[j] : mx;
    }
    float sum = 0.0f;
    for (int j = 0; j <= i; j++) {
      s[j] = exp_fast(s[j] - mx);
      sum += s[j];
    }
    const float inv = 1.0f / sum;
    float* yo = y + static_cast<size_t>(i) * C + h * HS;
    for (int d = 0; d < HS; d++) yo[d] = 0.0f;
    for (int j = 0; j <= i; j++) {
      const float p = s[j] * inv;
      const float* v = base + j * C3 + 2 * C + h * HS;
#pragma omp simd
      for (int d = 0; d < HS; d++) yo[d] += p * v[d];
    }
    lse[i] = mx + std::log(sum);
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void head_backward(float* dbase, float* ds,
                                                                                const float* dy, const float* base,
                                                                                const float* y, const float* lrow,
                                                                                int T, int C, int HS, int h,
                                                                                float scale) {
  const size_t C3 = static_cast<size_t>(3) * C;
  // This (b,h) owns its q, k, v slices of dqkv: zero dk, dv; dq is written row by row.
  for (int t = 0; t < T; t++) {
    std::memset(dbase + t * C3 + C + h * HS, 0, sizeof(float) * HS);
    std::memset(dbase + t * C3 + 2 * C + h * HS, 0, sizeof(float) * HS);
  }
  for (int i = 0; i < T; i++) {
    const float* q = base + i * C3 + h * HS;
    const float* dyi = dy + static_cast<size_t>(i) * C + h * HS;
    const float Di = dot(dyi, y + static_cast<size_t>(i) * C + h * HS, HS);
    const float li = lrow[i];
    // ds (the scratch row) holds q·k_j, then ds_j; dp = dy·v_j is computed 64 keys at a time
    // on the stack.
    dots(q, base + C + h * HS, C3, HS, i + 1, ds);
    for (int j0 = 0; j0 <= i; j0 += 64) {
      const int n = i + 1 - j0 < 64 ? i + 1 - j0 : 64;
      float dp[64];
      dots(dyi, base + j0 * C3 + 2 * C + h * HS, C3, HS, n, dp);
      for (int jj = 0; jj < n; jj++) {
        const int j = j0 + jj;
        const float p = exp_fast(scale * ds[j] - li);
        ds[j] = p * (dp[jj] - Di);
        float* dv = dbase + j * C3 + 2 * C + h * HS;
#pragma omp simd
        for (int d = 0; d < HS; d++) dv[d] += p * dyi[d];
      }
    }
    float* dq = dbase + i * C3 + h * HS;
    for (int d = 0; d < HS; d++) dq[d] = 0.0f;
    for (int j = 0; j <= i; j++) {
      const float* k = base + j * C3 + C + h * HS;
      float* dk = dbase + j * C3 + C + h * HS;
      const float g = scale * ds[j];
#pragma omp simd
      for (int d = 0; d < HS; d++) {
        dq[d] += g * k[d];
        dk[d] += g * q[d];
      }
    }
  }
}

}  // namespace

void attention_forward(float* y, float* lse, float* scratch, const float* qkv, int B, int T, int C, int NH) {
  const int HS = C / NH;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  if (HS > kMaxTiledHS) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++) {
      for (int h = 0; h < NH; h++) {
        const size_t bh = static_cast<size_t>(b) * NH + h;
        head_forward(y + static_cast<size_t>(b) * T * C, lse + bh * T, scratch + bh * T,
                     qkv + static_cast<size_t>(b) * T * 3 * C, T, C, HS, h, scale);
      }
    }
    return;
  }
  const AttnArgs g{y, lse, nullptr, nullptr, qkv, nullptr, nullptr, nullptr, B, T, C, NH, HS,
                   HS <= 64 ? kTile : kSmallTile, scale};
  const TileKernels& kn = tile_kernels();
  const long heads = static_cast<long>(B) * NH;
  const int nqt = (T + g.tb - 1) / g.tb, ngroups = (nqt + kForwardGroup - 1) / kForwardGroup;
  // Head by head; inside a head the longest tasks (the last query tiles, which see the most keys)
  // first. Which tasks a thread takes changes no result.
#pragma omp parallel for schedule(dynamic, 1)
  for (long t = 0; t < heads * ngroups; t++) {
    const long bh = t / ngroups;
    const int grp = ngroups - 1 - static_cast<int>(t % ngroups), qt0 = grp * kForwardGroup;
    kn.forward_group(g, static_cast<int>(bh / NH), static_cast<int>(bh % NH), qt0,
                     nqt - qt0 < kForwardGroup ? nqt - qt0 : kForwardGroup);
  }
}

void attention_backward(float* dqkv, float* scratch, const float* dy, const float* qkv, const float* y,
                        const float* lse, int B, int T, int C, int NH) {
  const int HS = C / NH;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  if (HS > kMaxTiledHS) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++) {
      for (int h = 0; h < NH; h++) {
        const size_t bh = static_cast<size_t>(b) * NH + h;
        const size_t off = static_cast<size_t>(b) * T;
        head_backward(dqkv + off * 3 * C, scratch + bh * T, dy + off * C, qkv + off * 3 * C, y + off * C,
                      lse + bh * T, T, C, HS, h, scale);
      }
    }
    return;
  }
  const AttnArgs g{nullptr, nullptr, dqkv, scratch, qkv, dy, y, lse, B, T, C, NH, HS,
                   HS <= 64 ? kTile : kSmallTile, scale};
  const TileKernels& kn = tile_kernels();
#pragma omp parallel for schedule(dynamic, 1)
  for (long bh = 0; bh < static_cast<long>(B) * NH; bh++)
    kn.backward_head(g, static_cast<int>(bh / NH), static_cast<int>(bh % NH));
}

}  // namespace gpt2::cpu
