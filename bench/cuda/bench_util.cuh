// Timing helpers for the GPU microbenchmarks: CUDA events after a warm-up, L2 flushed between
// repeats, median of the repeats; and the card's measured ceilings (device-to-device copy
// bandwidth, large bf16 GEMM throughput) that every figure is reported against.
//
// ---- The shared report ------------------------------------------------------------------------
// bench/cuda/bench_kernels.cu is the one microbenchmark executable: it measures the ceilings,
// then times the rows of the op table (tests/ops/op_table.cpp) through the CUDA backend and adds
// one BenchRow each. bench/cuda/attention_bench.cuh (run alone by bench_attention) fills a
// BenchReport the same way:
//   float ms = gpt2::bench::time_median_ms(fn, report.repeats, report.warmup, &report.flusher(), stream);
//   report.add_tflops("attention_fwd d12", "B=64 T=1024 NH=12 HS=64", ms, flops, ok);
//   // or report.add_gbps(name, shape, ms, bytes, ok) for a memory-bound kernel.
// Rows carry the % of the measured ceiling: report.copy_gbps for GB/s rows, report.gemm_tflops
// for TFLOP/s rows. A row whose check failed is still printed and written to the JSON, with
// checked_ok = false, and makes the exit code 1.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace gpt2::bench {

// A buffer larger than L2, written between repeats so every repeat starts with a cold cache.
struct L2Flusher {
  void* buf = nullptr;
  size_t bytes = 0;
  L2Flusher() {
    int dev = 0, l2 = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev);
    bytes = static_cast<size_t>(l2) * 2;
    if (bytes && cudaMalloc(&buf, bytes) != cudaSuccess) buf = nullptr;
  }
  ~L2Flusher() { cudaFree(buf); }
  void flush(cudaStream_t s = 0) {
    if (buf) cudaMemsetAsync(buf, 0, bytes, s);
  }
};

// Median milliseconds of `repeats` runs of fn (after `warmup` runs), flushing L2 before each. The
// events are recorded on `stream`, the stream fn's work runs on (the CUDA backend's is
// non-blocking: the legacy default stream would not order it).
inline float time_median_ms(const std::function<void()>& fn, int repeats = 50, int warmup = 5,
                            L2Flusher* flusher = nullptr, cudaStream_t stream = 0) {
  for (int i = 0; i < warmup; ++i) fn();
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  std::vector<float> ms(repeats);
  for (int i = 0; i < repeats; ++i) {
    if (flusher) flusher->flush(stream);
    cudaEventRecord(a, stream);
    fn();
    cudaEventRecord(b, stream);
    cudaEventSynchronize(b);
    cudaEventElapsedTime(&ms[i], a, b);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::nth_element(ms.begin(), ms.begin() + repeats / 2, ms.end());
  return ms[repeats / 2];
}

// One line of the benchmark table (and one object of the JSON file).
struct BenchRow {
  std::string name;           // e.g. "layernorm_fwd d12"
  std::string shape;          // e.g. "B=64 T=1024 C=768"
  double ms = 0;              // median over the repeats
  double value = 0;           // GB/s or TFLOP/s
  std::string unit;           // "GB/s" or "TFLOP/s"
  double pct_of_ceiling = 0;  // value / the matching measured ceiling, in %
  bool checked_ok = false;    // the kernel matched the CPU reference before timing
};

struct BenchReport {
  std::string device;      // cudaDeviceProp::name
  double copy_gbps = 0;    // measured device-to-device copy: (read + write bytes) / time
  double gemm_tflops = 0;  // measured large cuBLASLt bf16 GEMM
  std::vector<BenchRow> rows;
  int repeats = 50;
  int warmup = 5;

  L2Flusher& flusher() {
    if (!flusher_) flusher_ = std::make_unique<L2Flusher>();
    return *flusher_;
  }
  // Memory-bound kernel: bytes = one read of each input + one write of each output.
  void add_gbps(const std::string& name, const std::string& shape, double ms, double bytes, bool ok) {
    BenchRow r{name, shape, ms, bytes / (ms * 1e-3) / 1e9, "GB/s", 0, ok};
    r.pct_of_ceiling = copy_gbps > 0 ? 100.0 * r.value / copy_gbps : 0;
    rows.push_back(r);
  }
  // Compute-bound kernel: flops = 2·M·N·K for a GEMM.
  void add_tflops(const std::string& name, const std::string& shape, double ms, double flops, bool ok) {
    BenchRow r{name, shape, ms, flops / (ms * 1e-3) / 1e12, "TFLOP/s", 0, ok};
    r.pct_of_ceiling = gemm_tflops > 0 ? 100.0 * r.value / gemm_tflops : 0;
    rows.push_back(r);
  }

 private:
  std::unique_ptr<L2Flusher> flusher_;
};

}  // namespace gpt2::bench
