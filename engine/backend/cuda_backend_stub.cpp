// make_cuda_backend for builds without CUDA: a clear error instead of a link failure.
#include "engine/backend/cuda_backend_factory.h"
#include "engine/util/errors.h"

#if !defined(GPT2_HAVE_CUDA)
namespace gpt2 {
std::unique_ptr<CudaBackendBase> make_cuda_backend(int) {
  throw ConfigError("--device",
                    "this build has no CUDA backend (nvcc was not found when it was configured); "
                    "use --device cpu");
}
}  // namespace gpt2
#endif
