#include "kernels/cpu/machine_probe.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>

#include "kernels/cpu/matmul.h"

namespace gpt2::cpu {

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Each returns a value that depends on every accumulator, so the loop cannot be removed.
__attribute__((target("avx512f"))) float fma_loop_avx512(long iters) {
  __m512 acc[16];
  for (int i = 0; i < 16; i++) acc[i] = _mm512_set1_ps(0.001f * i);
  const __m512 a = _mm512_set1_ps(0.9999f), b = _mm512_set1_ps(1e-7f);
  for (long it = 0; it < iters; it++)
    for (int i = 0; i < 16; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  float buf[16], s = 0;
  for (int i = 0; i < 16; i++) {
    _mm512_storeu_ps(buf, acc[i]);
    for (float x : buf) s += x;
  }
  return s;
}

__attribute__((target("avx2,fma"))) float fma_loop_avx2(long iters) {
  __m256 acc[12];
  for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps(0.001f * i);
  const __m256 a = _mm256_set1_ps(0.9999f), b = _mm256_set1_ps(1e-7f);
  for (long it = 0; it < iters; it++)
    for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  float buf[8], s = 0;
  for (int i = 0; i < 12; i++) {
    _mm256_storeu_ps(buf, acc[i]);
    for (float x : buf) s += x;
  }
  return s;
}

float madd_loop_sse2(long iters) {
  __m128 acc[8];
  for (int i = 0; i < 8; i++) acc[i] = _mm_set1_ps(0.001f * i);
  const __m128 a = _mm_set1_ps(0.9999f), b = _mm_set1_ps(1e-7f);
  for (long it = 0; it < iters; it++)
    for (int i = 0; i < 8; i++) acc[i] = _mm_add_ps(_mm_mul_ps(acc[i], a), b);
  float buf[4], s = 0;
  for (int i = 0; i < 8; i++) {
    _mm_storeu_ps(buf, acc[i]);
    for (float x : buf) s += x;
  }
  return s;
}

}  // namespace

double fma_peak_gflops(double seconds, int repeats) {
  const std::string isa = matmul_isa();
  const int kind = isa == "avx512" ? 2 : isa == "avx2" ? 1 : 0;
  const double flops_per_iter = kind == 2 ? 16.0 * 16 * 2 : kind == 1 ? 12.0 * 8 * 2 : 8.0 * 4 * 2;
  auto loop = [&](long iters) {
    return kind == 2 ? fma_loop_avx512(iters) : kind == 1 ? fma_loop_avx2(iters) : madd_loop_sse2(iters);
  };
  // Size the loop from a short single-thread run.
  long iters = 20000;
  double t0 = now_s();
  volatile float keep = loop(iters);
  const double dt = now_s() - t0;
  if (dt > 0) iters = std::max<long>(iters, static_cast<long>(iters * seconds / dt));
  // Every thread times its own loop and keeps its best rate over the repeats, so a thread the OS
  // preempted in one repeat (another process on the core) does not lower the figure.
  const int threads = omp_get_max_threads();
  std::unique_ptr<double[]> best(new double[threads]());
  for (int r = 0; r < repeats; ++r) {
#pragma omp parallel
    {
      const int t = omp_get_thread_num();
      const double start = now_s();
      const float v = loop(iters);
      const double rate = flops_per_iter * static_cast<double>(iters) / (now_s() - start) / 1e9;
      if (v == 12345.0f) keep = v;
      best[t] = std::max(best[t], rate);
    }
  }
  (void)keep;
  double sum = 0;
  for (int t = 0; t < threads; ++t) sum += best[t];
  return sum;
}

double stream_bandwidth_gbs(size_t bytes_per_array, int repeats) {
  const size_t n = std::max<size_t>(bytes_per_array / sizeof(float), 1024);
  std::unique_ptr<float[]> a(new float[n]), b(new float[n]), c(new float[n]);
  const long ln = static_cast<long>(n);
  // First touch on every thread's part, as the passes will use it.
#pragma omp parallel for schedule(static)
  for (long i = 0; i < ln; ++i) a[i] = 0.0f, b[i] = 1.0f, c[i] = 2.0f;
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const float s = 0.5f + r;
    const double t0 = now_s();
#pragma omp parallel for schedule(static)
    for (long i = 0; i < ln; ++i) a[i] = b[i] + s * c[i];
    best = std::min(best, now_s() - t0);
  }
  volatile float keep = a[n / 2];
  (void)keep;
  return 3.0 * static_cast<double>(n) * sizeof(float) / best / 1e9;
}

}  // namespace gpt2::cpu
