// Backend::host_adamw (run_host_adamw): the offloaded optimizer step, on the host with the CPU AdamW kernel.
#include <stdexcept>

#include "engine/backend/adamw_step.h"
#include "engine/backend/backend.h"

namespace gpt2 {

void Backend::run_host_adamw(TensorRef params_out, float* master, TensorRef grads, float* m, float* v,
                             const AdamWStep& s) {
  if (params_out.dtype != grads.dtype) throw std::logic_error("host_adamw: parameters and gradients differ in dtype");
  const std::vector<cpu::AdamWRange> ranges = adamw_kernel_ranges(s);
  const cpu::AdamWParams hp = adamw_kernel_params(s);
  const int n = static_cast<int>(ranges.size());
  if (grads.dtype == DType::FP32) {
    cpu::adamw_update_master(master, grads.as<float>(), m, v, params_out.as<float>(), ranges.data(), n, hp);
  } else {
    cpu::adamw_update_master(master, grads.as<uint16_t>(), m, v, params_out.as<uint16_t>(), ranges.data(), n, hp,
                             adamw_rounding_seed(s), static_cast<uint64_t>(s.index_base));
  }
}

}  // namespace gpt2
