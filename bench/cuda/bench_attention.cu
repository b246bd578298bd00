// Attention microbenchmark on its own: the rows bench_kernels also prints (see
// attention_bench.cuh), without the ceiling measurements. Exit 77 when no GPU is present, 1 when
// a correctness check failed.
#include <cstdio>

#include "bench/cuda/attention_bench.cuh"

int main() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    std::printf("SKIPPED bench_attention: no CUDA device\n");
    return 77;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  gpt2::bench::BenchReport report;
  report.device = prop.name;
  gpt2::bench::run_attention_bench(report);
  std::printf("bench_attention on %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
  std::printf("%-24s %-34s %10s %12s  %s\n", "kernel", "shape", "ms", "value", "check");
  bool all_ok = true;
  for (const auto& r : report.rows) {
    std::printf("%-24s %-34s %10.3f %8.1f %-7s %s\n", r.name.c_str(), r.shape.c_str(), r.ms, r.value, r.unit.c_str(),
                r.checked_ok ? "ok" : "FAILED");
    all_ok = all_ok && r.checked_ok;
  }
  std::printf("targets (H100, d12): fwd >= 229 TFLOP/s, fwd+bwd >= 192 TFLOP/s\n");
  return all_ok ? 0 : 1;
}
