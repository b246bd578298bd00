#include "engine/plan/gpu_catalog.h"

#include <algorithm>
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

// What a PCIe link carries in practice, GB/s per direction (about 80 % of its 15.75 / 31.5 / 63
// GB/s for 4.0 x8 / 4.0 x16 / 5.0 x16), and NVLink 5 scaled from the H100 entry (twice NVLink 4's
// 900 GB/s, so twice 360). Used twice: as every card's host link (host_link_gbs, the offloaded
// optimizer's copies), and as the gradient exchange's bandwidth per rank of the cards added with
// the RTX 50 series. The older PCIe entries keep their earlier, lower exchange figure (16, and
// 25 for h100-pcie).
constexpr double kPcie4x8 = 12.5, kPcie4x16 = 25, kPcie5x16 = 50, kNvlink5 = 720;

const std::vector<GpuSpec>& gpu_catalog() {
  // Memory: the datasheet's capacity (GDDR and HBM capacities are binary) for the entries below
  // the H200; the driver reports some 100-300 MiB less, which auto-fit's headroom covers.
  // The second-to-last figure of each entry is the SM count (NVIDIA's architecture whitepapers'
  // appendix tables and the datasheets), which the kernel audit's model (kernel_cost_model.h)
  // needs. The last is the host link (host_link_gbs) from the datasheet's PCIe generation and
  // lanes: GeForce RTX 30/40, A100, L4, L40S and the RTX workstation cards PCIe 4.0 x16 (the RTX
  // 4060 Ti x8), RTX 50 and H100 PCIe 5.0 x16. The SXM parts reach their host's CPU over PCIe
  // too, whatever links the GPUs to each other: 4.0 x16 for the A100, 5.0 x16 for the H100, H200
  // and B200.
  static const std::vector<GpuSpec> cards = {
      {"rtx3060-12gb", "NVIDIA GeForce RTX 3060 12GB", 12288 * kMiB, 25.6, 12.7, 360, gpu_estimate(0.25, 16), 28,
       kPcie4x16},
      {"rtx3090", "NVIDIA GeForce RTX 3090 24GB", 24576 * kMiB, 35.6, 35.6, 936, gpu_estimate(0.25, 16), 82, kPcie4x16},
      {"rtx4090", "NVIDIA GeForce RTX 4090 24GB", 24564 * kMiB, 165.2, 82.6, 1008, gpu_estimate(0.25, 16), 128,
       kPcie4x16},
      {"a100-40gb", "NVIDIA A100 40GB", 40960 * kMiB, 312, 19.5, 1555, gpu_estimate(0.25, 230), 108, kPcie4x16},
      {"a100-80gb", "NVIDIA A100 80GB", 81920 * kMiB, 312, 19.5, 2039, gpu_estimate(0.25, 230), 108, kPcie4x16},
      {"h100-80gb", "NVIDIA H100 80GB (SXM)", 81559 * kMiB, 989, 67, 3350, gpu_estimate(0.10, 360), 132, kPcie5x16},
      {"h100-pcie", "NVIDIA H100 PCIe 80GB", 81559 * kMiB, 756, 51, 2000, gpu_estimate(0.10, 25), 114, kPcie5x16},
      {"h200", "NVIDIA H200 141GB", 143771 * kMiB, 989, 67, 4800, gpu_estimate(0.10, 360), 132, kPcie5x16},
      // GeForce RTX 50 (Blackwell, sm_120): NVIDIA RTX Blackwell GPU Architecture whitepaper
      // (appendix tables) and the GeForce product pages. The bf16 figure is the dense FP16/BF16
      // tensor rate with FP32 accumulate, half the FP16-accumulate rate on GeForce: the product
      // pages' "AI TOPS" (FP4 with sparsity: 3352, 1801, 1406, 988) / 8 is the dense FP16-accumulate
      // rate (RTX 5090: 419, 838 with sparsity), / 16 the figure here. PCIe 5.0 x16. sm_120 has no
      // wgmma/tcgen05: the attention kernels' mma.sync runs at the full tensor rate as on
      // Ampere/Ada, hence 0.25.
      {"rtx5090", "NVIDIA GeForce RTX 5090 32GB", 32768 * kMiB, 209.5, 104.8, 1792, gpu_estimate(0.25, kPcie5x16), 170,
       kPcie5x16},
      {"rtx5080", "NVIDIA GeForce RTX 5080 16GB", 16384 * kMiB, 112.6, 56.3, 960, gpu_estimate(0.25, kPcie5x16), 84,
       kPcie5x16},
      {"rtx5070-ti", "NVIDIA GeForce RTX 5070 Ti 16GB", 16384 * kMiB, 87.9, 43.9, 896, gpu_estimate(0.25, kPcie5x16),
       70, kPcie5x16},
      {"rtx5070", "NVIDIA GeForce RTX 5070 12GB", 12288 * kMiB, 61.7, 30.9, 672, gpu_estimate(0.25, kPcie5x16), 48,
       kPcie5x16},
      // GeForce RTX 40 (Ada, sm_89): NVIDIA Ada GPU Architecture whitepaper (appendix tables) and
      // the product pages; bf16 as above, half the FP16-accumulate rate (RTX 4080: 194.9 dense),
      // i.e. "AI TOPS" (FP8 with sparsity: 780, 466, 353) / 8. PCIe 4.0 x16, the RTX 4060 Ti x8.
      {"rtx4080", "NVIDIA GeForce RTX 4080 16GB", 16384 * kMiB, 97.5, 48.7, 716.8, gpu_estimate(0.25, kPcie4x16), 76,
       kPcie4x16},
      {"rtx4070", "NVIDIA GeForce RTX 4070 12GB", 12288 * kMiB, 58.3, 29.1, 504.2, gpu_estimate(0.25, kPcie4x16), 46,
       kPcie4x16},
      {"rtx4060-ti-16gb", "NVIDIA GeForce RTX 4060 Ti 16GB", 16384 * kMiB, 44.1, 22.1, 288,
       gpu_estimate(0.25, kPcie4x8), 34, kPcie4x8},
      // Data-centre and workstation cards, PCIe 4.0 x16, from NVIDIA's datasheets (L4, L40S, RTX
      // A6000, RTX 6000 Ada Generation): these run FP32 accumulate at the full tensor rate, so the
      // bf16 figure is the datasheet's dense BF16/FP16 tensor rate (half its sparse figure: L4 242,
      // L40S 733, RTX A6000 309.7, RTX 6000 Ada 728.5 TFLOPS with sparsity). Ampere/Ada: 0.25.
      {"l4", "NVIDIA L4 24GB", 24576 * kMiB, 121, 30.3, 300, gpu_estimate(0.25, kPcie4x16), 58, kPcie4x16},
      {"l40s", "NVIDIA L40S 48GB", 49152 * kMiB, 362.05, 91.6, 864, gpu_estimate(0.25, kPcie4x16), 142, kPcie4x16},
      {"rtx-a6000", "NVIDIA RTX A6000 48GB", 49152 * kMiB, 154.8, 38.7, 768, gpu_estimate(0.25, kPcie4x16), 84,
       kPcie4x16},
      {"rtx6000-ada", "NVIDIA RTX 6000 Ada Generation 48GB", 49152 * kMiB, 364.2, 91.1, 960,
       gpu_estimate(0.25, kPcie4x16), 142, kPcie4x16},
      // B200 (Blackwell, sm_100), HGX B200 at 1000 W, NVIDIA's HGX B200 datasheet: 180 GB HBM3e at
      // 8 TB/s, BF16 4.5 PFLOPS with sparsity (2250 dense), FP32 80 TFLOPS; NVLink 5. Attention: the
      // datasheet peak needs tcgen05, the kernels use mma.sync; at Hopper's mma.sync rate per SM
      // (H100's ~100 TFLOP/s × 148/132 SMs) that is ~110 TFLOP/s, 0.05 of the peak.
      {"b200", "NVIDIA B200 180GB (SXM)", 184320 * kMiB, 2250, 80, 8000, gpu_estimate(0.05, kNvlink5), 148, kPcie5x16},
  };
  return cards;
}

const GpuSpec& find_gpu(const std::string& name) {
  for (const auto& c : gpu_catalog())
    if (c.name == name) return c;
  throw ConfigError("--gpu",
                    "unknown card '" + name + "' (known: " + gpu_catalog_names() + "; or give --gpu-mem SIZE)");
}

std::string gpu_catalog_names() {
  std::string known;
  for (const auto& c : gpu_catalog()) known += (known.empty() ? "" : ", ") + c.name;
  return known;
}

namespace {

// The words of a device name: "NVIDIA GeForce RTX 5070 Ti" -> NVIDIA, GeForce, RTX, 5070, Ti.
std::vector<std::string> words(const std::string& n) {
  std::vector<std::string> out;
  std::string w;
  for (char c : n + " ") {
    if (c == ' ') {
      if (!w.empty()) out.push_back(w);
      w.clear();
    } else {
      w += c;
    }
  }
  return out;
}

// The catalog key of a GeForce/RTX model: the number after "RTX" with the suffix that names a
// different chip or clock ("Ti", "SUPER", "D", "Laptop") kept, so that "RTX 5070 Ti" is not the
// RTX 5070 and "RTX 4080 SUPER" is not the RTX 4080. The RTX 4060 Ti 8GB is the 16GB card's chip
// and clocks (only the memory differs, which comes from the device).
const char* geforce_key(const std::vector<std::string>& w) {
  for (size_t i = 0; i + 1 < w.size(); ++i) {
    if (w[i] != "RTX") continue;
    const std::string model = w[i + 1];
    std::string suffix;
    for (size_t j = i + 2; j < w.size(); ++j)
      if (w[j] == "Ti" || w[j] == "SUPER" || w[j] == "D" || w[j] == "Laptop" || w[j] == "Ada" || w[j] == "Blackwell")
        suffix += (suffix.empty() ? "" : " ") + w[j];
    static const struct {
      const char* model;
      const char* suffix;
      const char* key;
    } table[] = {
        {"5090", "", "rtx5090"},      {"5080", "", "rtx5080"},           {"5070", "Ti", "rtx5070-ti"},
        {"5070", "", "rtx5070"},      {"4090", "", "rtx4090"},           {"4080", "", "rtx4080"},
        {"4070", "", "rtx4070"},      {"4060", "Ti", "rtx4060-ti-16gb"}, {"3090", "", "rtx3090"},
        {"3060", "", "rtx3060-12gb"}, {"A6000", "", "rtx-a6000"},        {"6000", "Ada", "rtx6000-ada"},
    };
    for (const auto& t : table)
      if (model == t.model && suffix == t.suffix) return t.key;
    return nullptr;
  }
  return nullptr;
}

}  // namespace

const GpuSpec* match_gpu_by_device_name(const std::string& n) {
  auto has = [&](const char* s) { return n.find(s) != std::string::npos; };
  const std::vector<std::string> w = words(n);
  auto word = [&](const char* s) { return std::find(w.begin(), w.end(), s) != w.end(); };
  const char* key = nullptr;
  if (word("B200"))  // not "GB200", whose B200 runs at a higher power and peak
    key = "b200";
  else if (has("H200"))
    key = "h200";
  else if (has("H100") && has("PCIe"))
    key = "h100-pcie";
  else if (has("H100"))
    key = "h100-80gb";
  else if (has("A100") && (has("80GB") || has("80G")))
    key = "a100-80gb";
  else if (has("A100"))
    key = "a100-40gb";
  else if (word("L40S"))
    key = "l40s";
  else if (word("L4"))
    key = "l4";
  else
    key = geforce_key(w);
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
          gpu_estimate(0.25, 230),
          108,
          kDefaultHostLinkGbs};
}

GpuSpec cpu_device(int64_t memory_bytes, double peak_gflops, double bandwidth_gbs) {
  // Calibrated with train_gpt2 --profile on a 2-core AVX-512 machine (bench/RESULTS.md, "Where
  // the time goes" and issue 30's sections): the fraction of the probed FMA peak and stream
  // bandwidth kernels/cpu reach.
  DeviceEfficiency e;
  e.matmul_large = 0.70;
  e.matmul_small = 0.78;
  e.attention = 0.68;  // at long sequences; the roofline scales it by T / (T + 180) (issue 30)
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
