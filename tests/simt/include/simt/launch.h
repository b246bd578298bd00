// Kernel launches under the SIMT layer. simt::launch checks the launch against the emulated card's
// limits (block and grid dimensions, dynamic shared memory against 48 KiB or the size set with
// cudaFuncSetAttribute, the opt-in maximum of the card, ptxas's registers and static shared
// memory) and fails at once with the error code the CUDA runtime returns for the same launch;
// otherwise it queues the launch on its stream and returns. The blocks run when a
// synchronisation point reaches the launch (src/streams.cpp); a fault in them is reported there.
#pragma once

#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include "simt/runtime.h"

namespace simt {

struct KernelBody {
  void (*invoke)(const void* closure);  // runs the kernel body for the current thread
  std::shared_ptr<const void> closure;  // the kernel and its arguments, kept until the launch has run
};

// Validates and queues one launch. `func` identifies the kernel (for cudaFuncSetAttribute);
// `signature` names it in fault reports.
cudaError_t launch_kernel(const void* func, const char* signature, dim3 grid, dim3 block, size_t dynamic_smem,
                          cudaStream_t stream, KernelBody body);

template <typename... P, typename... A>
cudaError_t launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t dynamic_smem, cudaStream_t stream, A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong number of arguments");
  // Arguments are converted to the parameter types once, when the launch is issued, as a launch
  // does; each thread then gets its own copy of the parameters (kernel parameters are per-thread
  // values).
  using Params = std::tuple<std::decay_t<P>...>;
  struct Closure {
    void (*kernel)(P...);
    Params params;
  };
  KernelBody body{[](const void* c) {
                    const Closure* cl = static_cast<const Closure*>(c);
                    std::apply(cl->kernel, cl->params);
                  },
                  std::make_shared<const Closure>(Closure{kernel, Params(std::forward<A>(args)...)})};
  return launch_kernel(reinterpret_cast<const void*>(kernel), __PRETTY_FUNCTION__, grid, block, dynamic_smem, stream,
                       std::move(body));
}

}  // namespace simt
