// CPU matmul microbenchmark: GFLOP/s of matmul_forward / matmul_backward for the shapes of a
// small GPT-2 config (L=6, C=384, NH=6, B=4, T=256 → N=1024 rows) and the lm_head on a chunk of
// tokens (Vp=50304), against the machine's measured FMA peak (all threads, same instruction set).
// Every shape is first validated against a naive double-precision product on sampled elements.
// Usage: bench_cpu_matmul [repeats=7] [lm_head_chunk=256]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/machine_probe.h"
#include "kernels/cpu/matmul.h"

using gpt2::cpu::matmul_backward;
using gpt2::cpu::matmul_forward;

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

void fill(std::vector<float>& v, std::mt19937& rng) {
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  for (auto& x : v) x = d(rng);
}

struct Shape {
  const char* name;
  int N, C, OC;
  bool bias;
};

// Checks sampled elements of out, dinp, dweight, dbias against naive double sums.
bool validate(const Shape& s, std::mt19937& rng) {
  std::vector<float> inp(size_t(s.N) * s.C), w(size_t(s.OC) * s.C), b(s.OC), out(size_t(s.N) * s.OC);
  std::vector<float> dout(size_t(s.N) * s.OC), dinp(size_t(s.N) * s.C), dw(size_t(s.OC) * s.C, 0.f), db(s.OC, 0.f);
  fill(inp, rng), fill(w, rng), fill(b, rng), fill(dout, rng);
  matmul_forward(out.data(), inp.data(), w.data(), s.bias ? b.data() : nullptr, s.N, s.C, s.OC);
  matmul_backward(dinp.data(), dw.data(), s.bias ? db.data() : nullptr, dout.data(), inp.data(), w.data(), s.N, s.C,
                  s.OC);
  double worst = 0;
  auto rel = [&](double got, double ref, double mag) {
    worst = std::max(worst, std::fabs(got - ref) / std::max(mag, 1e-30));
  };
  std::uniform_int_distribution<int> rn(0, s.N - 1), rc(0, s.C - 1), ro(0, s.OC - 1);
  for (int probe = 0; probe < 200; probe++) {
    const int n = rn(rng), c = rc(rng), o = ro(rng);
    double ref = s.bias ? b[o] : 0.0, mag = std::fabs(ref);
    for (int k = 0; k < s.C; k++)
      ref += double(inp[size_t(n) * s.C + k]) * w[size_t(o) * s.C + k],
          mag += std::fabs(double(inp[size_t(n) * s.C + k]) * w[size_t(o) * s.C + k]);
    rel(out[size_t(n) * s.OC + o], ref, mag);
    ref = 0, mag = 0;
    for (int k = 0; k < s.OC; k++)
      ref += double(dout[size_t(n) * s.OC + k]) * w[size_t(k) * s.C + c],
          mag += std::fabs(double(dout[size_t(n) * s.OC + k]) * w[size_t(k) * s.C + c]);
    rel(dinp[size_t(n) * s.C + c], ref, mag);
    ref = 0, mag = 0;
    for (int k = 0; k < s.N; k++)
      ref += double(dout[size_t(k) * s.OC + o]) * inp[size_t(k) * s.C + c],
          mag += std::fabs(double(dout[size_t(k) * s.OC + o]) * inp[size_t(k) * s.C + c]);
    rel(dw[size_t(o) * s.C + c], ref, mag);
    if (s.bias) {
      ref = 0, mag = 0;
      for (int k = 0; k < s.N; k++) ref += dout[size_t(k) * s.OC + o], mag += std::fabs(dout[size_t(k) * s.OC + o]);
      rel(db[o], ref, mag);
    }
  }
  // Error relative to the sum of |terms|: fp32 accumulation over K terms stays well under K·2^-24.
  const bool ok = worst < 1e-5;
  if (!ok) std::printf("VALIDATION FAILED for %s: max error %.3g\n", s.name, worst);
  return ok;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::atoi(argv[1]) : 7;
  const int chunk = argc > 2 ? std::atoi(argv[2]) : 256;
  const int C = 384, N = 4 * 256, L = 6, Vp = 50304;
  const std::string isa = gpt2::cpu::matmul_isa();
  const int threads = omp_get_max_threads();
  const double peak = gpt2::cpu::fma_peak_gflops(0.2, 3);
  std::printf("matmul ISA: %s, OpenMP threads: %d, measured FMA peak: %.1f GFLOP/s\n", isa.c_str(), threads, peak);
  std::printf("config: L=%d C=%d NH=6 B=4 T=256 (N=%d rows); lm_head chunk=%d, Vp=%d\n", L, C, N, chunk, Vp);

  const Shape shapes[] = {
      {"qkv      (C->3C)", N, C, 3 * C, true},   {"attproj  (C->C)", N, C, C, true},
      {"fc       (C->4C)", N, C, 4 * C, true},   {"fcproj   (4C->C)", N, 4 * C, C, true},
      {"lm_head  (C->Vp)", chunk, C, Vp, false},
  };
  std::mt19937 rng(1234);
  bool all_ok = true;
  for (const Shape& s : shapes) all_ok = validate(s, rng) && all_ok;
  if (!all_ok) return 1;
  std::printf("validated all shapes against a double-precision reference (sampled elements)\n\n");
  std::printf("median of %d repeats (best-of in brackets: a shared machine only ever slows a run)\n", repeats);
  std::printf("%-18s %6s %6s %6s | %9s %9s %7s %6s | %9s %9s %7s %6s\n", "shape", "N", "C", "OC", "fwd ms", "GFLOP/s",
              "[best]", "%peak", "bwd ms", "GFLOP/s", "[best]", "%peak");

  double layer_fwd_ms = 0, layer_bwd_ms = 0;
  for (const Shape& s : shapes) {
    std::vector<float> inp(size_t(s.N) * s.C), w(size_t(s.OC) * s.C), b(s.OC), out(size_t(s.N) * s.OC);
    std::vector<float> dout(size_t(s.N) * s.OC), dinp(size_t(s.N) * s.C), dw(size_t(s.OC) * s.C, 0.f), db(s.OC, 0.f);
    fill(inp, rng), fill(w, rng), fill(b, rng), fill(dout, rng);
    const float* bias = s.bias ? b.data() : nullptr;
    float* dbias = s.bias ? db.data() : nullptr;
    matmul_forward(out.data(), inp.data(), w.data(), bias, s.N, s.C, s.OC);  // warm-up
    matmul_backward(dinp.data(), dw.data(), dbias, dout.data(), inp.data(), w.data(), s.N, s.C, s.OC);
    std::vector<double> tf, tb;
    for (int r = 0; r < repeats; r++) {
      double t0 = now_s();
      matmul_forward(out.data(), inp.data(), w.data(), bias, s.N, s.C, s.OC);
      tf.push_back(now_s() - t0);
      t0 = now_s();
      matmul_backward(dinp.data(), dw.data(), dbias, dout.data(), inp.data(), w.data(), s.N, s.C, s.OC);
      tb.push_back(now_s() - t0);
    }
    const double flops = 2.0 * s.N * s.C * s.OC;
    const double f = median(tf), bk = median(tb);
    const double gf = flops / f / 1e9, gb = 2 * flops / bk / 1e9;
    const double gf_best = flops / *std::min_element(tf.begin(), tf.end()) / 1e9;
    const double gb_best = 2 * flops / *std::min_element(tb.begin(), tb.end()) / 1e9;
    std::printf("%-18s %6d %6d %6d | %9.3f %9.1f [%5.0f] %5.0f%% | %9.3f %9.1f [%5.0f] %5.0f%%\n", s.name, s.N, s.C,
                s.OC, f * 1e3, gf, gf_best, peak > 0 ? 100 * gf / peak : 0.0, bk * 1e3, gb, gb_best,
                peak > 0 ? 100 * gb / peak : 0.0);
    if (s.OC != Vp) layer_fwd_ms += f * 1e3, layer_bwd_ms += bk * 1e3;
  }
  std::printf("\nper layer (4 matmuls): fwd %.2f ms, bwd %.2f ms; x%d layers: fwd %.1f ms, bwd %.1f ms\n", layer_fwd_ms,
              layer_bwd_ms, L, L * layer_fwd_ms, L * layer_bwd_ms);
  return 0;
}
