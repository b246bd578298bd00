#include "engine/plan/gpu_catalog.h"

#include "engine/util/errors.h"
#include "engine/util/units.h"

namespace gpt2 {

const std::vector<GpuSpec>& gpu_catalog() {
  static const std::vector<GpuSpec> cards = {
      {"rtx3060-12gb", "NVIDIA GeForce RTX 3060 12GB", 12288 * kMiB, 25.6, 12.7, 360},
      {"rtx3090", "NVIDIA GeForce RTX 3090 24GB", 24576 * kMiB, 35.6, 35.6, 936},
      {"rtx4090", "NVIDIA GeForce RTX 4090 24GB", 24564 * kMiB, 165.2, 82.6, 1008},
      {"a100-40gb", "NVIDIA A100 40GB", 40960 * kMiB, 312, 19.5, 1555},
      {"a100-80gb", "NVIDIA A100 80GB", 81920 * kMiB, 312, 19.5, 2039},
      {"h100-80gb", "NVIDIA H100 80GB (SXM)", 81559 * kMiB, 989, 67, 3350},
      {"h100-pcie", "NVIDIA H100 PCIe 80GB", 81559 * kMiB, 756, 51, 2000},
      {"h200", "NVIDIA H200 141GB", 143771 * kMiB, 989, 67, 4800},
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
  return {"custom",     "a card with " + format_bytes(memory_bytes) + " (A100-class speed assumed)",
          memory_bytes, 312,
          19.5,         1555};
}

GpuSpec generic_cpu(int64_t memory_bytes) {
  return {"cpu", "host memory " + format_bytes(memory_bytes), memory_bytes, 0.1, 0.1, 20};
}

}  // namespace gpt2
