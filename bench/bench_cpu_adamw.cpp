// CPU AdamW microbenchmark: GB/s of adamw_update_ranges on N parameters (28 bytes per element, as
// the profile counts them: parameter, gradient, m and v read, parameter, m and v written) against
// the machine probe's stream bandwidth, both measured in the same loop: the probe as train_gpt2
// takes it (32 MiB arrays) and at AdamW's own footprint (arrays of N floats). The best of the
// repeats is the figure: a shared machine only ever slows a run.
// Usage: bench_cpu_adamw [N=124475904 (d12)] [repeats=5]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "kernels/cpu/adamw.h"
#include "kernels/cpu/machine_probe.h"

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 124475904;
  const int repeats = argc > 2 ? std::max(1, std::atoi(argv[2])) : 5;
  std::unique_ptr<float[]> p(new float[n]), g(new float[n]), m(new float[n]), v(new float[n]);
  const long ln = static_cast<long>(n);
  // First touch by the threads that will update each piece.
#pragma omp parallel for schedule(static)
  for (long i = 0; i < ln; i++) p[i] = 0.01f * (i % 101), g[i] = 0.001f * (i % 7) - 0.003f, m[i] = 0.0f, v[i] = 0.0f;
  // Two ranges, as the model has (with and without weight decay).
  const gpt2::cpu::AdamWRange ranges[2] = {{0, n / 2, true}, {n / 2, n - n / 2, false}};
  gpt2::cpu::AdamWParams hp;
  hp.lr = 1e-4f, hp.weight_decay = 0.1f;
  double best = 1e30, probe32 = 0, probe_n = 0;
  for (int r = 0; r < repeats; r++) {
    hp.t = r + 1;
    const double t0 = now_s();
    gpt2::cpu::adamw_update_ranges(p.get(), g.get(), m.get(), v.get(), ranges, 2, hp);
    best = std::min(best, now_s() - t0);
    probe32 = std::max(probe32, gpt2::cpu::stream_bandwidth_gbs(size_t{32} << 20, 2));
    probe_n = std::max(probe_n, gpt2::cpu::stream_bandwidth_gbs(n * sizeof(float), 2));
  }
  const double gbs = 28.0 * static_cast<double>(n) / best / 1e9;
  std::printf("OpenMP threads %d, N = %zu parameters (%.2f GB moved per step as counted)\n", omp_get_max_threads(), n,
              28.0 * static_cast<double>(n) / 1e9);
  std::printf("adamw           %8.1f ms  %6.1f GB/s\n", best * 1e3, gbs);
  std::printf("probe (32 MiB)            %6.1f GB/s  adamw at %3.0f%% of it\n", probe32, 100 * gbs / probe32);
  std::printf("probe (N floats)          %6.1f GB/s  adamw at %3.0f%% of it\n", probe_n, 100 * gbs / probe_n);
  return p[n / 3] == 12345.0f ? 1 : 0;  // keeps the updates alive
}
