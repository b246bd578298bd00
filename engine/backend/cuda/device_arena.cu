#include "engine/backend/cuda/device_arena.cuh"

#include <cuda_runtime.h>

#include <atomic>
#include <stdexcept>
#include <string>

namespace gpt2 {

namespace {
std::atomic<int64_t> g_allocations{0};
}  // namespace

void* device_arena_alloc(size_t bytes) {
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, bytes);
  if (err != cudaSuccess)
    throw std::runtime_error("cudaMalloc of " + std::to_string(bytes) + " bytes failed: " + cudaGetErrorString(err));
  ++g_allocations;
  return p;
}

void device_arena_free(void* p) {
  if (p) cudaFree(p);
}

#if defined(GPT2_SIMT)
// Under the SIMT layer every cudaMalloc of the process is counted, the libraries' included.
int64_t device_arena_allocations() { return static_cast<int64_t>(simt::allocation_count()); }
#else
int64_t device_arena_allocations() { return g_allocations.load(); }
#endif

}  // namespace gpt2
