// A small table of devices for dry runs: `--gpu NAME` gives the memory budget, and the peak
// figures and efficiencies feed the roofline of engine/plan/throughput_model.h. Peaks are vendor
// datasheet values (dense, no sparsity; GeForce tensor rates are those with fp32 accumulate),
// memory as the driver reports it or, for the newer entries, the datasheet capacity. The CPU is a
// device too: its peak and bandwidth come from a probe of the machine (kernels/cpu/machine_probe.h)
// or from flags.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace gpt2 {

// The fraction of the peak each class of op reaches on a device, and the fixed costs. Either
// calibrated (measured on such a device by the profile: bench/gpu_check.sh for GPUs) or an
// estimate; `basis` says which, and the dry run and auto-fit say so next to their predictions.
struct DeviceEfficiency {
  double matmul_large = 0.70;      // of the FLOP peak, GEMMs whose every dimension is >= 512
  double matmul_small = 0.45;      // of the FLOP peak, smaller GEMMs
  double attention = 0.25;         // of the FLOP peak, fused causal attention (forward and backward)
  double memory = 0.80;            // of the DRAM bandwidth, memory-bound ops
  double launch_s = 3e-6;          // fixed cost per backend call
  double interconnect_gbs = 16;    // per-rank bandwidth of the gradient exchange, GB/s
  bool calibrated = false;         // false: an estimate
  std::string basis = "estimate";  // where the figures come from
};

struct GpuSpec {
  std::string name;          // "h100-80gb"
  std::string description;   // "NVIDIA H100 80GB (SXM)"
  int64_t memory_bytes;      // total device memory
  double bf16_tflops;        // dense bf16 tensor-core peak, fp32 accumulate
  double fp32_tflops;        // fp32 (non-tensor) peak
  double mem_bandwidth_gbs;  // DRAM bandwidth, GB/s
  DeviceEfficiency eff;
  int sm_count = 0;          // streaming multiprocessors (0 for the CPU); datasheets and whitepapers
};

const std::vector<GpuSpec>& gpu_catalog();
// Throws ConfigError("--gpu") naming the known cards when `name` is not one of them.
const GpuSpec& find_gpu(const std::string& name);
// The catalog's names in table order, comma-separated ("rtx3060-12gb, rtx3090, ...").
std::string gpu_catalog_names();

// The card-table entry for a CUDA device name ("NVIDIA H100 80GB HBM3", "NVIDIA GeForce RTX 4090",
// "NVIDIA GeForce RTX 5070 Ti", "NVIDIA RTX 6000 Ada Generation", ...), for MFU; nullptr when the
// card is not in the table (a Ti, SUPER or laptop variant of a listed GeForce card is another card).
const GpuSpec* match_gpu_by_device_name(const std::string& device_name);

// The compute figures auto-fit assumes when only a byte budget is known (--gpu-mem): an
// A100-class card. Only the ranking of configurations depends on them, not whether one fits.
GpuSpec generic_gpu(int64_t memory_bytes);

// The CPU as a device for the CPU backend (fp32 only): peak FMA rate (GFLOP/s, all threads) and
// memory bandwidth (GB/s), from kernels/cpu/machine_probe.h or from flags, with the efficiencies
// calibrated for kernels/cpu.
GpuSpec cpu_device(int64_t memory_bytes, double peak_gflops, double bandwidth_gbs);

}  // namespace gpt2
