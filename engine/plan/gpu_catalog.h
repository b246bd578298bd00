// A small table of devices for dry runs: `--gpu NAME` gives the memory budget, and the peak
// figures and efficiencies feed the roofline of engine/plan/throughput_model.h. Peaks are vendor
// datasheet values (dense, no sparsity; GeForce tensor rates are those with fp32 accumulate),
// memory as the driver reports it or, for the newer entries, the datasheet capacity. Each card's
// host link (PCIe generation and lanes) sets the time of the offloaded optimizer's copies
// (--offload optimizer). The CPU is a device too: its peak and bandwidth come from a probe of the
// machine (kernels/cpu/machine_probe.h) or from flags.
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
  // Host<->device copy bandwidth per direction, GB/s, as a PCIe link carries it in practice (25
  // for 4.0 x16, 50 for 5.0 x16, 12.5 for 4.0 x8): the offloaded optimizer's gradient and
  // parameter copies. 0 for the CPU device, which has no link (a prediction that needs the link
  // of a spec without one assumes kDefaultHostLinkGbs).
  double host_link_gbs = 0;
  // The host's memory bandwidth, GB/s, for the offloaded optimizer's AdamW on the CPU. A figure of
  // the machine, not of the card: the CLI fills it (--cpu-bandwidth or the CPU probe) for an
  // offloaded plan; 0 = unknown, and the prediction assumes kDefaultHostMemoryGbs.
  double host_memory_gbs = 0;
};

// The host link assumed for a card the table does not know (generic_gpu): PCIe 4.0 x16.
constexpr double kDefaultHostLinkGbs = 25;
// The host memory bandwidth assumed when it was not measured: a dual-channel DDR4/DDR5 desktop
// reaches 20-40 GB/s in a stream test, so 20 errs on the slow side.
constexpr double kDefaultHostMemoryGbs = 20;

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
