// What the machine has: CUDA devices (when the binary was built with CUDA) and host memory.
// Never allocates device memory; creating the CUDA context is left to the backend.
#pragma once
#include <cstdint>
#include <string>

namespace gpt2 {

struct CudaDeviceInfo {
  bool present = false;
  std::string name;
  int64_t total_bytes = 0;
  int64_t free_bytes = 0;
  int sm_major = 0, sm_minor = 0;
  std::string why_absent;  // when !present: "built without CUDA", "no CUDA device", driver error
};

// Queries device 0 (or the current device). Cheap and safe on machines without a GPU.
CudaDeviceInfo query_cuda_device();

bool built_with_cuda();

int64_t host_memory_bytes();
// Host memory available to a new allocation now (MemAvailable in /proc/meminfo, else the free
// physical pages); 0 when unknown.
int64_t host_available_bytes();

// The CPU's peak FMA rate and memory bandwidth on all OpenMP threads (kernels/cpu/machine_probe.h),
// measured on the first call (well under 100 ms) and cached for the process.
struct CpuRates {
  double peak_gflops = 0;
  double bandwidth_gbs = 0;
  double probe_ms = 0;  // how long the probe took
};
const CpuRates& probe_cpu_rates();

}  // namespace gpt2
