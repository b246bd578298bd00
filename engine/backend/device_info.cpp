#include "engine/backend/device_info.h"

#include <unistd.h>

#include <chrono>
#include <fstream>

#include "kernels/cpu/machine_probe.h"

#if defined(GPT2_HAVE_CUDA)
#include <cuda_runtime_api.h>
#endif

namespace gpt2 {

bool built_with_cuda() {
#if defined(GPT2_HAVE_CUDA)
  return true;
#else
  return false;
#endif
}

CudaDeviceInfo query_cuda_device() {
  CudaDeviceInfo info;
#if defined(GPT2_HAVE_CUDA)
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    info.why_absent =
        err != cudaSuccess ? std::string("no usable CUDA device (") + cudaGetErrorString(err) + ")" : "no CUDA device";
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return info;
  }
  int dev = 0;
  cudaGetDevice(&dev);
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, dev) != cudaSuccess) {
    info.why_absent = "cudaGetDeviceProperties failed";
    return info;
  }
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
    info.why_absent = "cudaMemGetInfo failed";
    return info;
  }
  info.present = true;
  info.name = prop.name;
  info.total_bytes = static_cast<int64_t>(total_b);
  info.free_bytes = static_cast<int64_t>(free_b);
  info.sm_major = prop.major;
  info.sm_minor = prop.minor;
#else
  info.why_absent = "this build has no CUDA backend";
#endif
  return info;
}

int64_t host_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page : 0;
}

int64_t host_available_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  const long pages = sysconf(_SC_AVPHYS_PAGES);
  const long page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page : 0;
}

const CpuRates& probe_cpu_rates() {
  static const CpuRates rates = [] {
    const auto t0 = std::chrono::steady_clock::now();
    CpuRates r;
    r.peak_gflops = cpu::fma_peak_gflops(0.01, 3);
    r.bandwidth_gbs = cpu::stream_bandwidth_gbs(size_t{32} << 20, 2);
    r.probe_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return r;
  }();
  return rates;
}

}  // namespace gpt2
