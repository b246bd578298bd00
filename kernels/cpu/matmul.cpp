// Matmul with bias, forward and backward: see matmul.h for the maths and the determinism rule.
//
// All three products (out = inp·Wᵀ, dinp = dout·W, dW += doutᵀ·inp) go through one packed GEMM,
// C (M×N, row stride ldc) (+)= A (M×K) · B (K×N), with A and B given by arbitrary strides.
// Structure (after BLIS/GotoBLAS): C is cut into MC×NC tiles handed to threads dynamically. A
// thread packs the B column block (K×NC, all KC slices) once and keeps it while it works on
// tiles of that column block; per tile it walks K in KC slices, packs the A block (MC×KC, L2)
// and runs an MR×NR register kernel whose B micro-panel stays in L1. There are no barriers
// inside a call, so a thread that loses its core (a shared machine) does not stall the others.
// The kernel is compiled three times (AVX-512, AVX2+FMA, SSE2) and picked at run time, so the
// default build runs fast on any x86-64 without -march=native.
#include "kernels/cpu/matmul.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cpu/gemm_microkernel.h"

namespace gpt2::cpu {

namespace {

struct GemmArgs {
  long M, N, K;
  const float* A;
  long rsa, csa;  // A(i,k) = A[i*rsa + k*csa]
  const float* B;
  long rsb, csb;  // B(k,j) = B[k*rsb + j*csb]
  float* Cm;
  long ldc;         // C(i,j) = Cm[i*ldc + j]
  bool accumulate;  // false: C = A·B; true: C += A·B
};

struct GemmKernel {
  int mr, nr, mc, nc, kc;
  void (*pack_a)(float* dst, const GemmArgs& g, long i0, int mc, long k0, int kc);
  void (*pack_b)(float* dst, const GemmArgs& g, long j0, int nc, long k0, int kc);
  void (*macro)(const GemmArgs& g, long i0, long j0, int mc, int nc, int kc, const float* packA, const float* packB,
                bool from_zero);
};

// The register tiles are gemm_microkernel.h's (shared with the attention); the cache blocks are
// the matmul's own. Each namespace is compiled for its instruction set, so the micro-kernel
// inlines into the packing and macro loops of matmul_gemm.inc.
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
namespace isa_avx512 {
// 8×48 register tile; KC = 384 covers K = C = 384 of the small config in one slice.
using namespace microkernel::avx512;
constexpr int MC = 192, NC = 480, KC = 384;
#include "kernels/cpu/matmul_gemm.inc"
}  // namespace isa_avx512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace isa_avx2 {
using namespace microkernel::avx2;
constexpr int MC = 144, NC = 512, KC = 256;
#include "kernels/cpu/matmul_gemm.inc"
}  // namespace isa_avx2
#pragma GCC pop_options

namespace isa_sse2 {
using namespace microkernel::sse2;
constexpr int MC = 144, NC = 512, KC = 256;
#include "kernels/cpu/matmul_gemm.inc"
}  // namespace isa_sse2

struct Isa {
  const GemmKernel* kernel;
  const char* name;
};

Isa pick_isa() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return {&isa_avx512::kernel, "avx512"};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {&isa_avx2::kernel, "avx2"};
  return {&isa_sse2::kernel, "sse2"};
}

Isa& isa() {
  static Isa chosen = pick_isa();
  return chosen;
}

// Per-thread cache of packed B, at most this many floats (32 MiB); K is walked in "super-slices"
// of whole KC slices that fit, which is all of K for every shape except an lm_head's dinp.
constexpr long kMaxPackedB = 8L << 20;

void gemm(const GemmArgs& g) {
  if (g.M <= 0 || g.N <= 0) return;
  const GemmKernel& kn = *isa().kernel;
  if (g.K <= 0) {
    if (!g.accumulate)
      for (long i = 0; i < g.M; i++) std::memset(g.Cm + i * g.ldc, 0, sizeof(float) * g.N);
    return;
  }
  static std::atomic<unsigned long> calls{0};
  const unsigned long call_id = ++calls;  // invalidates every thread's B cache
  const int nthreads = omp_get_max_threads();
  // Row blocks of at most MC rows, and at least one per thread when M is small (an lm_head
  // chunk). Which rows a block holds never changes a result.
  long nblk = (g.M + kn.mc - 1) / kn.mc;
  nblk = (nblk + nthreads - 1) / nthreads * nthreads;
  long mc = (g.M + nblk - 1) / nblk;
  mc = (mc + kn.mr - 1) / kn.mr * kn.mr;
  const long tiles_m = (g.M + mc - 1) / mc;
  const long tiles_n = (g.N + kn.nc - 1) / kn.nc;
  const long ks_max = std::max<long>(kn.kc, kMaxPackedB / kn.nc / kn.kc * kn.kc);
  const long ks_len = std::min(g.K, ks_max);
#pragma omp parallel
  {
    // Thread-private packing buffers, grown on first use and then reused.
    thread_local std::vector<float> packA, packB;
    thread_local unsigned long cached_call = 0;
    thread_local long cached_j0 = -1, cached_s0 = -1;
    if (static_cast<long>(packA.size()) < static_cast<long>(kn.mc) * kn.kc)
      packA.resize(static_cast<size_t>(kn.mc) * kn.kc);
    if (static_cast<long>(packB.size()) < ks_len * kn.nc) packB.resize(static_cast<size_t>(ks_len) * kn.nc);
    float* pa = packA.data();
    float* pb = packB.data();
    for (long s0 = 0; s0 < g.K; s0 += ks_max) {
      const long s1 = std::min(g.K, s0 + ks_max);
      // Tiles are handed out dynamically (robust to a busy core); there is no barrier inside,
      // only the one at the end of the loop. Tiles of one column block are adjacent, so a
      // thread usually finds that block's packed B in its cache.
#pragma omp for schedule(dynamic, 1)
      for (long t = 0; t < tiles_m * tiles_n; t++) {
        const long i0 = (t % tiles_m) * mc, j0 = (t / tiles_m) * kn.nc;
        const int mcb = static_cast<int>(std::min(mc, g.M - i0));
        const int nc = static_cast<int>(std::min<long>(kn.nc, g.N - j0));
        if (cached_call != call_id || cached_j0 != j0 || cached_s0 != s0) {
          for (long k0 = s0; k0 < s1; k0 += kn.kc)
            kn.pack_b(pb + (k0 - s0) * kn.nc, g, j0, nc, k0, static_cast<int>(std::min<long>(kn.kc, s1 - k0)));
          cached_call = call_id, cached_j0 = j0, cached_s0 = s0;
        }
        // The KC slices of a C element are applied in ascending order: a fixed summation order.
        for (long k0 = s0; k0 < s1; k0 += kn.kc) {
          const int kc = static_cast<int>(std::min<long>(kn.kc, s1 - k0));
          kn.pack_a(pa, g, i0, mcb, k0, kc);
          kn.macro(g, i0, j0, mcb, nc, kc, pa, pb + (k0 - s0) * kn.nc, k0 == 0 && !g.accumulate);
        }
      }
    }
  }
}

}  // namespace

const char* matmul_isa() { return isa().name; }

bool matmul_force_isa(const char* name) {
  const std::string n = name ? name : "";
  if (n == "avx512" && __builtin_cpu_supports("avx512f")) {
    isa() = {&isa_avx512::kernel, "avx512"};
  } else if (n == "avx2" && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    isa() = {&isa_avx2::kernel, "avx2"};
  } else if (n == "sse2") {
    isa() = {&isa_sse2::kernel, "sse2"};
  } else if (n == "auto") {
    isa() = pick_isa();
  } else {
    return false;
  }
  return true;
}

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N, int C, int OC) {
  if (bias != nullptr) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) std::memcpy(out + static_cast<long>(n) * OC, bias, sizeof(float) * OC);
  }
  // out(n,o) (+)= sum_c inp(n,c) * W(o,c):  A = inp (N×C), B(k=c, j=o) = W[o*C + c].
  gemm(GemmArgs{N, OC, C, inp, C, 1, weight, 1, C, out, OC, bias != nullptr});
}

void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int C, int OC) {
  if (dinp != nullptr) {
    // dinp(n,c) = sum_o dout(n,o) * W(o,c):  A = dout (N×OC), B = W (OC×C).
    gemm(GemmArgs{N, C, OC, dout, OC, 1, weight, C, 1, dinp, C, false});
  }
  if (dweight != nullptr) {
    // dW(o,c) += sum_n dout(n,o) * inp(n,c):  A(i=o, k=n) = dout[n*OC + o], B = inp (N×C).
    gemm(GemmArgs{OC, C, N, dout, 1, OC, inp, C, 1, dweight, C, true});
  }
  if (dbias != nullptr) {
    constexpr int kSlice = 64;
    const int nslices = (OC + kSlice - 1) / kSlice;
#pragma omp parallel for schedule(static)
    for (int s = 0; s < nslices; s++) {
      const int o0 = s * kSlice, o1 = o0 + kSlice < OC ? o0 + kSlice : OC;
      float acc[kSlice];
      for (int o = o0; o < o1; o++) acc[o - o0] = dbias[o];
      for (int n = 0; n < N; n++) {
        const float* d = dout + static_cast<long>(n) * OC;
#pragma omp simd
        for (int o = o0; o < o1; o++) acc[o - o0] += d[o];
      }
      for (int o = o0; o < o1; o++) dbias[o] = acc[o - o0];
    }
  }
}

}  // namespace gpt2::cpu
