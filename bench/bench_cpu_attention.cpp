// CPU attention microbenchmark: ms and GFLOP/s of attention_forward / attention_backward at the
// head shape of d12 (C=768, NH=12, HS=64), B=1, for several sequence lengths, beside the d12 qkv
// matmul (N=B·T rows, 768 -> 2304) timed in the same loop: other processes on a shared machine slow
// both alike, so the ratio attention / matmul is the figure to read. FLOPs are counted as the
// profile counts them: attention forward 2·B·T²·C (causal), backward 2.5× that; matmul forward
// 2·N·C·OC, backward twice that.
// Every run first checks the kernels against a naive double-precision attention (y, lse, dqkv).
// Usage: bench_cpu_attention [repeats=5] [T ...]      (default T: 256 1024 2048)
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/machine_probe.h"
#include "kernels/cpu/matmul.h"

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::vector<float> random_vec(size_t n, unsigned seed, float scale) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Naive causal attention in double: y, lse and dqkv for the layouts of kernels/cpu/attention.h.
void reference(std::vector<double>& y, std::vector<double>& lse, std::vector<double>& dqkv,
               const std::vector<float>& qkv, const std::vector<float>& dy, int B, int T, int C, int NH) {
  const int HS = C / NH;
  const double scale = 1.0 / std::sqrt(double(HS));
  const size_t C3 = 3 * size_t(C);
  y.assign(size_t(B) * T * C, 0.0), lse.assign(size_t(B) * NH * T, 0.0), dqkv.assign(qkv.size(), 0.0);
  std::vector<double> p(T), dp(T);
  for (int b = 0; b < B; b++)
    for (int h = 0; h < NH; h++)
      for (int i = 0; i < T; i++) {
        const float* q = &qkv[(size_t(b) * T + i) * C3 + h * HS];
        double mx = -1e300;
        for (int j = 0; j <= i; j++) {
          const float* k = &qkv[(size_t(b) * T + j) * C3 + C + h * HS];
          double s = 0;
          for (int d = 0; d < HS; d++) s += double(q[d]) * k[d];
          p[j] = s * scale;
          mx = std::max(mx, p[j]);
        }
        double sum = 0;
        for (int j = 0; j <= i; j++) sum += (p[j] = std::exp(p[j] - mx));
        for (int j = 0; j <= i; j++) p[j] /= sum;
        lse[(size_t(b) * NH + h) * T + i] = mx + std::log(sum);
        double* yo = &y[(size_t(b) * T + i) * C + h * HS];
        for (int j = 0; j <= i; j++)
          for (int d = 0; d < HS; d++) yo[d] += p[j] * qkv[(size_t(b) * T + j) * C3 + 2 * C + h * HS + d];
        const float* dyi = &dy[(size_t(b) * T + i) * C + h * HS];
        double D = 0;
        for (int d = 0; d < HS; d++) D += double(dyi[d]) * yo[d];
        for (int j = 0; j <= i; j++) {
          const size_t row = (size_t(b) * T + j) * C3;
          double s = 0;
          for (int d = 0; d < HS; d++) s += double(dyi[d]) * qkv[row + 2 * C + h * HS + d];
          const double ds = p[j] * (s - D) * scale;
          for (int d = 0; d < HS; d++) {
            dqkv[(size_t(b) * T + i) * C3 + h * HS + d] += ds * qkv[row + C + h * HS + d];
            dqkv[row + C + h * HS + d] += ds * q[d];
            dqkv[row + 2 * C + h * HS + d] += p[j] * dyi[d];
          }
        }
      }
}

// Largest |got - ref| over the largest |ref|.
double rel_err(const std::vector<float>& got, const std::vector<double>& ref) {
  double worst = 0, mag = 1e-30;
  for (size_t i = 0; i < ref.size(); i++) {
    worst = std::max(worst, std::fabs(got[i] - ref[i]));
    mag = std::max(mag, std::fabs(ref[i]));
  }
  return worst / mag;
}

bool validate(int B, int T, int C, int NH) {
  const std::vector<float> qkv = random_vec(size_t(B) * T * 3 * C, 1 + T, 1.5f), dy = random_vec(size_t(B) * T * C, 2, 1.f);
  std::vector<float> y(size_t(B) * T * C), lse(size_t(B) * NH * T), dqkv(qkv.size(), 7.f);
  std::vector<float> scratch(gpt2::cpu::attention_scratch_floats(B, T, NH));
  gpt2::cpu::attention_forward(y.data(), lse.data(), scratch.data(), qkv.data(), B, T, C, NH);
  gpt2::cpu::attention_backward(dqkv.data(), scratch.data(), dy.data(), qkv.data(), y.data(), lse.data(), B, T, C, NH);
  std::vector<double> ry, rl, rd;
  reference(ry, rl, rd, qkv, dy, B, T, C, NH);
  const double ey = rel_err(y, ry), el = rel_err(lse, rl), ed = rel_err(dqkv, rd);
  const bool ok = ey < 1e-5 && el < 1e-5 && ed < 1e-4;
  std::printf("check B=%d T=%d C=%d NH=%d against double: y %.2e lse %.2e dqkv %.2e %s\n", B, T, C, NH, ey, el, ed,
              ok ? "ok" : "FAILED");
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  std::vector<int> Ts;
  for (int i = 2; i < argc; i++) Ts.push_back(std::atoi(argv[i]));
  if (Ts.empty()) Ts = {256, 1024, 2048};
  const int B = 1, C = 768, NH = 12;
  const double peak = gpt2::cpu::fma_peak_gflops(0.2, 3);
  std::printf("matmul ISA: %s, OpenMP threads: %d, measured FMA peak: %.1f GFLOP/s\n", gpt2::cpu::matmul_isa(),
              omp_get_max_threads(), peak);
  bool ok = validate(1, 150, 128, 2);
  ok = validate(2, 61, 78, 3) && ok;
  ok = validate(1, 211, 256, 2) && ok;
  if (!ok) return 1;
  std::printf("shape B=%d C=%d NH=%d HS=%d; median of %d repeats, best in brackets\n", B, C, NH, C / NH, repeats);
  std::printf("%6s | %9s %8s %7s | %9s %8s %7s | %8s %8s | %6s %6s\n", "T", "fwd ms", "GFLOP/s", "[best]", "bwd ms",
              "GFLOP/s", "[best]", "mm fwd", "mm bwd", "f/mm", "b/mm");
  for (const int T : Ts) {
    const size_t N = size_t(B) * T;
    const std::vector<float> qkv = random_vec(N * 3 * C, 3, 1.f), dy = random_vec(N * C, 4, 1.f);
    std::vector<float> y(N * C), lse(size_t(B) * NH * T), dqkv(qkv.size());
    std::vector<float> scratch(gpt2::cpu::attention_scratch_floats(B, T, NH));
    const std::vector<float> w = random_vec(size_t(3) * C * C, 5, 0.05f), bias = random_vec(3 * C, 6, 0.1f);
    std::vector<float> mo(N * 3 * C), mdi(N * C), mdw(w.size(), 0.f), mdb(3 * C, 0.f);
    const std::vector<float>& ln = dy;  // any N×C input
    std::vector<double> tf, tb, tmf, tmb;
    for (int r = -1; r < repeats; r++) {  // r = -1: warm-up
      double t0 = now_s();
      gpt2::cpu::attention_forward(y.data(), lse.data(), scratch.data(), qkv.data(), B, T, C, NH);
      const double t1 = now_s();
      gpt2::cpu::attention_backward(dqkv.data(), scratch.data(), dy.data(), qkv.data(), y.data(), lse.data(), B, T, C,
                                    NH);
      const double t2 = now_s();
      gpt2::cpu::matmul_forward(mo.data(), ln.data(), w.data(), bias.data(), int(N), C, 3 * C);
      const double t3 = now_s();
      gpt2::cpu::matmul_backward(mdi.data(), mdw.data(), mdb.data(), mo.data(), ln.data(), w.data(), int(N), C, 3 * C);
      const double t4 = now_s();
      if (r < 0) continue;
      tf.push_back(t1 - t0), tb.push_back(t2 - t1), tmf.push_back(t3 - t2), tmb.push_back(t4 - t3);
    }
    const double ff = 2.0 * B * double(T) * T * C, fb = 2.5 * ff;
    const double mf = 2.0 * double(N) * C * 3 * C, mb = 2 * mf;
    const double gf = ff / median(tf) / 1e9, gb = fb / median(tb) / 1e9;
    const double gmf = mf / median(tmf) / 1e9, gmb = mb / median(tmb) / 1e9;
    std::printf("%6d | %9.2f %8.1f [%5.0f] | %9.2f %8.1f [%5.0f] | %8.1f %8.1f | %5.0f%% %5.0f%%\n", T,
                median(tf) * 1e3, gf, ff / *std::min_element(tf.begin(), tf.end()) / 1e9, median(tb) * 1e3, gb,
                fb / *std::min_element(tb.begin(), tb.end()) / 1e9, gmf, gmb, 100 * gf / gmf, 100 * gb / gmb);
  }
  std::printf("(mm fwd / mm bwd: GFLOP/s of the qkv matmul, 768 -> 2304 on B·T rows, in the same loop)\n");
  return 0;
}
