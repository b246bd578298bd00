// The one header through which host-only code reaches the CUDA backend library (engine/backend/cuda).
// make_cuda_backend lives in engine/backend/cuda/cuda_backend.cu when the build has CUDA, and in
// engine/backend/cuda_backend_stub.cpp (which throws a ConfigError naming --device) when it does not;
// make_nccl_communicator lives in engine/backend/cuda/nccl_comm.cu and exists in builds with NCCL and MPI.
#pragma once
#include <cstdint>
#include <memory>

#include "engine/backend/backend.h"
#include "engine/backend/comm.h"

namespace gpt2 {

// What the CUDA backend measured about device memory.
struct CudaMemoryReport {
  int64_t total_bytes = 0;        // device memory
  int64_t free_before_arena = 0;  // after the context and library handles exist
  int64_t free_after_arena = 0;
  int64_t reserve_bytes = 0;  // total - free_before_arena: context, handles, other processes
  int64_t arena_drop_bytes() const { return free_before_arena - free_after_arena; }
  int64_t host_arena_bytes = 0;  // pinned host memory allocated for the host arena (offload)
};

class CudaBackendBase : public Backend {
 public:
  // Measured after the context and handles exist, before the arena.
  virtual CudaMemoryReport memory_report() const = 0;
  virtual std::string device_name() const = 0;
  virtual double peak_bf16_tflops() const = 0;  // from the card table when known, else 0
  virtual void* native_stream() const = 0;      // the cudaStream_t every op runs on
  // True when the card is emulated on the CPU by the SIMT layer (tests/simt): its name is the
  // emulated card's, and it has no speed worth an MFU.
  virtual bool emulated() const = 0;
};

// Creates the context, stream and cuBLASLt handle on device `device`. Throws ConfigError("--device")
// when there is no usable device or the build has no CUDA.
std::unique_ptr<CudaBackendBase> make_cuda_backend(int device = 0);

// The CUDA backend behind `backend`, or nullptr when it is another backend. Asks the backend
// (Backend::is_cuda, as ggml's ggml_backend_is_cuda does) instead of casting by RTTI.
inline CudaBackendBase* as_cuda_backend(Backend& backend) {
  return backend.is_cuda() ? static_cast<CudaBackendBase*>(&backend) : nullptr;
}

#if defined(GPT2_HAVE_NCCL) && defined(GPT2_HAVE_MPI)
// NCCL collectives on the CUDA backend's stream; the NCCL id travels through MPI. Throws
// std::logic_error when `backend` is not the CUDA backend.
std::unique_ptr<Communicator> make_nccl_communicator(Backend& backend);
#endif

}  // namespace gpt2
