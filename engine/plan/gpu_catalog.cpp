#include "engine/plan/gpu_catalog.h"

#include <cstdio>

#include "engine/util/errors.h"
#include "engine/util/units.h"

namespace gpt2 {

namespace {

// Estimates until a GPU run calibrates them (bench/gpu_check.sh writes the measured figures in
// this form). Matmuls: cuBLASLt at ~70 % of the dense peak on large GEMMs, ~45 % on small ones.
// Attention: kernels/cuda/ATTENTION.md predicts ~25–30 % of the mma.sync roof; on Ampere/Ada
// that roof is near the tensor peak (0.25), on Hopper mma.sync reaches ~60 % of the wgmma peak
// (0.10 of the datasheet figure, ~100 TFLOP/s forward+backward on H100). Memory-bound kernels at
// 80 % of the DRAM bandwidth. Gradient exchange: PCIe (~16 GB/s per rank) on GeForce and PCIe
// cards, NVLink bus bandwidth as NCCL reaches it on SXM parts.
DeviceEfficiency gpu_estimate(double attention, double interconnect_gbs) {
  DeviceEfficiency e;
  e.attention = attention;
  e.interconnect_gbs = interconnect_gbs;
  e.basis = "estimate (no GPU measurement yet)";
  return e;
}

}  // namespace

const std::vector<GpuSpec>& gpu_catalog() {
  static const std::vector<GpuSpec> cards = {
      {"rtx3060-12gb", "NVIDIA GeForce RTX 3060 12GB", 12288 * kMiB, 25.6, 12.7, 360, gpu_estimate(0.25, 16)},
      {"rtx3090", "NVIDIA GeForce RTX 3090 24GB", 24576 * kMiB, 35.6, 35.6, 936, gpu_estimate(0.25, 16)},
      {"rtx4090", "NVIDIA GeForce RTX 4090 24GB", 24564 * kMiB, 165.2, 82.6, 1008, gpu_estimate(0.25, 16)},
      {"a100-40gb", "NVIDIA A100 40GB", 40960 * kMiB, 312, 19.5, 1555, gpu_estimate(0.25, 230)},
      {"a100-80gb", "NVIDIA A100 80GB", 81920 * kMiB, 312, 19.5, 2039, gpu_estimate(0.25, 230)},
      {"h100-80gb", "NVIDIA H100 80GB (SXM)", 81559 * kMiB, 989, 67, 3350, gpu_estimate(0.10, 360)},
      {"h100-pcie", "NVIDIA H100 PCIe 80GB", 81559 * kMiB, 756, 51, 2000, gpu_estimate(0.10, 25)},
      {"h200", "NVIDIA H200 141GB", 143771 * kMiB, 989, 67, 4800, gpu_estimate(0.10, 360)},
  };
  return cards;
}

const GpuSpec& find_gpu(const std::string& name) {
  std::string known;
  for (const auto& c : gpu_catalog()) {
    if (c.name == name) return c;
    known += (known.empty() ? "" : ", ") + c.name;
  }
  throw ConfigError("--gpu", "unknown card '" + name + "' (known: " + known + "; or give --gpu-mem SIZE)");
}

const GpuSpec* match_gpu_by_device_name(const std::string& n) {
  auto has = [&](const char* s) { return n.find(s) != std::string::npos; };
  const char* key = nullptr;
  if (has("H200"))
    key = "h200";
  else if (has("H100") && has("PCIe"))
    key = "h100-pcie";
  else if (has("H100"))
    key = "h100-80gb";
  else if (has("A100") && (has("80GB") || has("80G")))
    key = "a100-80gb";
  else if (has("A100"))
    key = "a100-40gb";
  else if (has("4090"))
    key = "rtx4090";
  else if (has("3090"))
    key = "rtx3090";
  else if (has("3060"))
    key = "rtx3060-12gb";
  if (!key) return nullptr;
  for (const auto& c : gpu_catalog())
    if (c.name == key) return &c;
  return nullptr;
}

GpuSpec generic_gpu(int64_t memory_bytes) {
  return {"custom",
          "a card with " + format_bytes(memory_bytes) + " (A100-class speed assumed)",
          memory_bytes,
          312,
          19.5,
          1555,
          gpu_estimate(0.25, 230)};
}

GpuSpec cpu_device(int64_t memory_bytes, double peak_gflops, double bandwidth_gbs) {
  // Calibrated with train_gpt2 --profile on a 2-core AVX-512 machine (bench/RESULTS.md, "Where
  // the time goes"): the fraction of the probed FMA peak and stream bandwidth kernels/cpu reach.
  DeviceEfficiency e;
  e.matmul_large = 0.58;
  e.matmul_small = 0.62;
  e.attention = 0.095;
  e.memory = 0.56;
  e.launch_s = 5e-6;
  e.interconnect_gbs = 5;
  e.calibrated = true;
  e.basis = "calibrated on a 2-core AVX-512 CPU";
  char rates[96];
  std::snprintf(rates, sizeof rates, "; %.0f GFLOP/s FMA peak, %.1f GB/s", peak_gflops, bandwidth_gbs);
  return {"cpu",
          "host memory " + format_bytes(memory_bytes) + rates,
          memory_bytes,
          peak_gflops / 1e3,
          peak_gflops / 1e3,
          bandwidth_gbs,
          e};
}

}  // namespace gpt2
