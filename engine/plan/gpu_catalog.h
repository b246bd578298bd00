// A small table of cards for dry runs: `--gpu NAME` gives the memory budget, and the peak
// figures feed auto-fit's throughput model. Figures are vendor datasheet values (dense, no
// sparsity; GeForce tensor rates are those with fp32 accumulate), memory as the driver reports it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace gpt2 {

struct GpuSpec {
  std::string name;          // "h100-80gb"
  std::string description;   // "NVIDIA H100 80GB (SXM)"
  int64_t memory_bytes;      // total device memory
  double bf16_tflops;        // dense bf16 tensor-core peak, fp32 accumulate
  double fp32_tflops;        // fp32 (non-tensor) peak
  double mem_bandwidth_gbs;  // DRAM bandwidth, GB/s
};

const std::vector<GpuSpec>& gpu_catalog();
// Throws ConfigError("--gpu") naming the known cards when `name` is not one of them.
const GpuSpec& find_gpu(const std::string& name);

// The card-table entry for a CUDA device name ("NVIDIA H100 80GB HBM3", "NVIDIA GeForce RTX 4090",
// ...), for MFU; nullptr when the card is not in the table.
const GpuSpec* match_gpu_by_device_name(const std::string& device_name);

// The compute figures auto-fit assumes when only a byte budget is known (--gpu-mem): an
// A100-class card. Only the ranking of configurations depends on them, not whether one fits.
GpuSpec generic_gpu(int64_t memory_bytes);

// A nominal CPU "card" for dry runs of the CPU backend.
GpuSpec generic_cpu(int64_t memory_bytes);

}  // namespace gpt2
