// What a GPU test or benchmark executable does first: require_device_or_skip() exits 77 (ctest:
// skipped) with the reason when no CUDA device is present, else prints the device. Used by
// tests/cuda/test_cuda_engine.cu and bench/cuda/bench_train.cu; the op tests (tests/ops) skip
// when the CUDA backend cannot be created.
#pragma once
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

namespace gpt2::gputest {

constexpr int kSkipExitCode = 77;

inline void require_device_or_skip(const char* test_name) {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess || n == 0) {
    std::printf("SKIPPED %s: no CUDA device (%s)\n", test_name,
                err != cudaSuccess ? cudaGetErrorString(err) : "device count is 0");
    std::exit(kSkipExitCode);
  }
  cudaDeviceProp p{};
  cudaGetDeviceProperties(&p, 0);
  std::printf("%s on %s (sm_%d%d)\n", test_name, p.name, p.major, p.minor);
}

}  // namespace gpt2::gputest
