// Self-test of the SIMT layer's ldmatrix and mma (tests/simt/src/scheduler.cpp, simt/ptx.h):
// one warp loads A (16×16, row-major bf16) and B (16×8 bf16) from shared memory with
// ldmatrix.x4 / ldmatrix.x4.trans, runs mma.m16n8k16.row.col.f32.bf16.bf16.f32 with an fp32 C,
// and writes D; D is compared with a double-precision A·B + C on random data. The fragment
// layouts here are the PTX ISA's ("Matrix Fragments for mma.m16n8k16 with floating point type",
// "Warp-level matrix load instruction: ldmatrix"), written from the ISA, not from the kernels:
//   groupID g = lane >> 2, threadID_in_group t = lane % 4;
//   A: a0,a1 (reg 0) row g, cols 2t, 2t+1; a2,a3 (reg 1) row g+8; a4..a7 (regs 2, 3) the same at
//      cols + 8;  B: b0,b1 (reg 0) rows k = 2t, 2t+1, col n = g; b2,b3 (reg 1) rows 2t+8, 2t+9;
//   C/D: c0,c1 row g, cols 2t, 2t+1; c2,c3 row g+8;
//   ldmatrix.x4: lanes 8i..8i+7 give the row addresses of matrix i; register i of lane l holds
//      row l/4, elements 2(l%4), 2(l%4)+1 of matrix i (.trans: elements [2(l%4)][l/4] and
//      [2(l%4)+1][l/4], i.e. the transposed matrix).
// The comparison must also fail for a wrong fragment: swapped A registers, swapped B registers,
// a mis-indexed C fragment, and ldmatrix without .trans where .trans is needed. A misaligned
// ldmatrix row address is a fault (cudaErrorMisalignedAddress).
// Plain main(): prints one PASSED/FAILED line per check and returns 0 when all passed.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "selftest_util.h"
#include "simt/ptx.h"

namespace {

using namespace simt_selftest;

namespace ptx = gpt2::cuda::ptx;

enum Variant : int {
  kBnk = 0,           // B stored as B^T [n][k]; ldmatrix.x4 (no .trans)
  kBkn = 1,           // B stored as [k][n]; ldmatrix.x4.trans
  kSwapA = 2,         // as kBnk, with A registers 1 and 2 swapped (rows 8..15 ↔ cols 8..15)
  kSwapB = 3,         // as kBnk, with B registers 0 and 1 swapped (k 0..7 ↔ k 8..15)
  kSwapC = 4,         // as kBnk, with the C fragment's c1 and c2 swapped
  kMissingTrans = 5,  // B stored as [k][n] but loaded with ldmatrix.x4 (no .trans)
  kMisaligned = 6,    // as kBnk, with lane 5's A row address 8 bytes past its row
};
bool b_is_kn(int v) { return v == kBkn || v == kMissingTrans; }

// One warp: D (16×8 fp32, row-major) = A (16×16 bf16, row-major) · B + C (16×8 fp32, row-major).
// B is 128 bf16: B^T [n][k] (8 rows of 16) or B [k][n] (16 rows of 8), as the variant says.
__global__ void mma_tile(const uint16_t* A, const uint16_t* B, const float* C, float* D, int variant) {
  __align__(16) __shared__ uint16_t sA[16 * 16];
  __align__(16) __shared__ uint16_t sB[16 * 8];
  const int lane = static_cast<int>(threadIdx.x);
  for (int i = lane; i < 16 * 16; i += 32) sA[i] = A[i];
  for (int i = lane; i < 16 * 8; i += 32) sB[i] = B[i];
  __syncthreads();

  // A: matrix 0 = rows 0-7 / cols 0-7 (a0,a1), 1 = rows 8-15 / cols 0-7 (a2,a3),
  //    2 = rows 0-7 / cols 8-15 (a4,a5), 3 = rows 8-15 / cols 8-15 (a6,a7).
  const int arow = lane % 8 + 8 * ((lane / 8) % 2), acol = 8 * (lane / 16);
  const uint16_t* pa = &sA[arow * 16 + acol];
  if (variant == kMisaligned && lane == 5) pa += 4;
  uint32_t a[4];
  ptx::ldmatrix_x4(a, pa);

  uint32_t b4[4];
  if (!b_is_kn(variant)) {
    // B^T [n][k]: matrix 0 = n 0-7 / k 0-7 (b0,b1), matrix 1 = n 0-7 / k 8-15 (b2,b3); lanes
    // 16..31 repeat lanes 0..15 (matrices 2 and 3 are not used).
    ptx::ldmatrix_x4(b4, &sB[(lane % 8) * 16 + 8 * ((lane / 8) % 2)]);
  } else {
    // B [k][n]: matrix 0 = k 0-7, matrix 1 = k 8-15, each 8 × 8 with n along the row; .trans
    // gives lane l the elements [k = 2(l%4), 2(l%4)+1][n = l/4], the col-major B fragment.
    const uint16_t* pb = &sB[(lane % 16) * 8];
    if (variant == kBkn)
      ptx::ldmatrix_x4_trans(b4, pb);
    else
      ptx::ldmatrix_x4(b4, pb);
  }
  uint32_t b[2] = {b4[0], b4[1]};

  const int g = lane / 4, t = lane % 4;
  float c[4] = {C[g * 8 + 2 * t], C[g * 8 + 2 * t + 1], C[(g + 8) * 8 + 2 * t], C[(g + 8) * 8 + 2 * t + 1]};
  if (variant == kSwapA) std::swap(a[1], a[2]);
  if (variant == kSwapB) std::swap(b[0], b[1]);
  if (variant == kSwapC) std::swap(c[1], c[2]);
  float d[4];
  ptx::mma_m16n8k16_bf16_f32(d, a, b, c);
  D[g * 8 + 2 * t] = d[0];
  D[g * 8 + 2 * t + 1] = d[1];
  D[(g + 8) * 8 + 2 * t] = d[2];
  D[(g + 8) * 8 + 2 * t + 1] = d[3];
}

struct Compare {
  cudaError_t err = cudaSuccess;
  int bad = 0;       // elements outside the tolerance
  double worst = 0;  // largest |D - ref| / scale
  std::string stderr_text;
};

// Runs `variant` on random data from `seed` and compares D with the double-precision reference.
Compare run(int variant, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  std::vector<uint16_t> hA(256), hB(128);
  std::vector<float> A(256), Bm(128), hC(128), hD(128, 0.0f);  // Bm[k * 8 + n]
  for (int i = 0; i < 256; ++i) {
    hA[i] = simt::f32_to_bf16_rn(u(rng));
    A[i] = simt::bf16_to_f32(hA[i]);
  }
  std::vector<uint16_t> Bbits(128);
  for (int i = 0; i < 128; ++i) {
    Bbits[i] = simt::f32_to_bf16_rn(u(rng));
    Bm[i] = simt::bf16_to_f32(Bbits[i]);
  }
  for (int k = 0; k < 16; ++k)
    for (int n = 0; n < 8; ++n) hB[b_is_kn(variant) ? k * 8 + n : n * 16 + k] = Bbits[k * 8 + n];
  for (float& x : hC) x = u(rng);

  uint16_t *dA = nullptr, *dB = nullptr;
  float *dC = nullptr, *dD = nullptr;
  cudaMalloc(&dA, 256 * 2);
  cudaMalloc(&dB, 128 * 2);
  cudaMalloc(&dC, 128 * 4);
  cudaMalloc(&dD, 128 * 4);
  cudaMemcpy(dA, hA.data(), 256 * 2, cudaMemcpyHostToDevice);
  cudaMemcpy(dB, hB.data(), 128 * 2, cudaMemcpyHostToDevice);
  cudaMemcpy(dC, hC.data(), 128 * 4, cudaMemcpyHostToDevice);
  cudaMemset(dD, 0, 128 * 4);
  Compare r;
  r.stderr_text =
      capture_stderr([&] { r.err = run_kernel(mma_tile, dim3(1), dim3(32), 0, dA, dB, dC, dD, variant); });
  simt::clear_sticky_error();
  cudaGetLastError();
  cudaMemcpy(hD.data(), dD, 128 * 4, cudaMemcpyDeviceToHost);
  cudaFree(dA);
  cudaFree(dB);
  cudaFree(dC);
  cudaFree(dD);

  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 8; ++n) {
      double ref = hC[m * 8 + n], scale = std::fabs(hC[m * 8 + n]);
      for (int k = 0; k < 16; ++k) {
        const double p = static_cast<double>(A[m * 16 + k]) * Bm[k * 8 + n];
        ref += p;
        scale += std::fabs(p);
      }
      // fp32 accumulation of 17 exact terms: |error| ≤ 16 · 2^-24 · Σ|terms| < 1e-6 · scale.
      const double err = std::fabs(static_cast<double>(hD[m * 8 + n]) - ref) / (scale > 0 ? scale : 1.0);
      if (!(err <= 1e-5)) ++r.bad;
      if (!(err <= r.worst)) r.worst = err;
    }
  return r;
}

void check_products() {
  constexpr int kTrials = 16;
  for (int v : {kBnk, kBkn}) {
    int bad = 0, failed = 0;
    double worst = 0;
    for (unsigned s = 0; s < kTrials; ++s) {
      const Compare r = run(v, 1000 + s);
      bad += r.bad;
      failed += r.err != cudaSuccess;
      worst = std::max(worst, r.worst);
    }
    check(failed == 0 && bad == 0,
          v == kBnk ? "ldmatrix.x4 (A, B^T [n][k]) + mma = A·B + C"
                    : "ldmatrix.x4 (A) + ldmatrix.x4.trans (B [k][n]) + mma = A·B + C",
          fmt("%d trials × 128 elements, %d outside 1e-5·Σ|a·b|, worst %.2e", kTrials, bad, worst));
  }
}

void check_wrong_fragments() {
  const struct {
    int v;
    const char* what;
  } cases[] = {
      {kSwapA, "A registers 1 and 2 swapped"},
      {kSwapB, "B registers 0 and 1 swapped"},
      {kSwapC, "C fragment c1 and c2 swapped"},
      {kMissingTrans, "B [k][n] loaded with ldmatrix.x4 without .trans"},
  };
  for (const auto& c : cases) {
    const Compare r = run(c.v, 7);
    check(r.err == cudaSuccess && r.bad > 0, std::string("the comparison fails for ") + c.what,
          fmt("%d of 128 elements outside the tolerance, worst %.2e", r.bad, r.worst));
  }
}

void check_misaligned() {
  const Compare r = run(kMisaligned, 3);
  check(r.err == cudaErrorMisalignedAddress && r.stderr_text.find("not 16-byte aligned") != std::string::npos,
        "ldmatrix with lane 5's row address 8 bytes off: fault",
        std::string(cudaGetErrorName(r.err)) + "; " + first_line(r.stderr_text));
}

}  // namespace

int main() {
  check_products();
  check_wrong_fragments();
  check_misaligned();
  return finish();
}
