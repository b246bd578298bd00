// One way to launch a kernel: launch(kernel, grid, block, dynamic_smem, stream, args...) returns
// the launch's cudaError_t. With nvcc it is the <<<>>> launch; under the SIMT layer (GPT2_SIMT)
// the same call checks the launch against the emulated card and runs the kernel on the CPU.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#if defined(GPT2_SIMT)
#include "simt/launch.h"
// Dynamic shared memory of the running block, as a pointer named `name` of type `type*`.
#define GPT2_DYNAMIC_SHARED(type, name) type* name = static_cast<type*>(::simt::dynamic_shared())
#else
#define GPT2_DYNAMIC_SHARED(type, name) extern __shared__ __align__(16) type name[]
#endif

namespace gpt2::cuda {

template <typename... Params, typename... Args>
inline cudaError_t launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t dynamic_smem, cudaStream_t stream,
                          Args&&... args) {
#if defined(GPT2_SIMT)
  return ::simt::launch(kernel, grid, block, dynamic_smem, stream, std::forward<Args>(args)...);
#else
  kernel<<<grid, block, dynamic_smem, stream>>>(std::forward<Args>(args)...);
  return cudaGetLastError();
#endif
}

}  // namespace gpt2::cuda
