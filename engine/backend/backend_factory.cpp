#include "engine/backend/backend_factory.h"

#include "engine/backend/cpu_backend.h"
#include "engine/backend/cuda_backend_factory.h"
#include "engine/backend/device_info.h"

namespace gpt2 {

Device device_from_flag(const std::string& flag) {
  if (flag == "auto") return query_cuda_device().present ? Device::CUDA : Device::CPU;
  return parse_device(flag);
}

std::unique_ptr<Backend> make_backend(Device device, int cuda_device) {
  if (device == Device::CPU) return std::make_unique<CpuBackend>();
  return make_cuda_backend(cuda_device);
}

}  // namespace gpt2
