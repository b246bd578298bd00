// AdamWStep (the engine's description of one optimizer step) in the form the AdamW kernels take:
// the CPU and the CUDA kernels share kernels/shared/adamw_math.h's Params and Range.
#pragma once
#include <vector>

#include "engine/backend/backend.h"
#include "kernels/cpu/adamw.h"

namespace gpt2 {

inline cpu::AdamWParams adamw_kernel_params(const AdamWStep& s) {
  cpu::AdamWParams hp;
  hp.lr = s.lr;
  hp.beta1 = s.beta1;
  hp.beta2 = s.beta2;
  hp.eps = s.eps;
  hp.weight_decay = s.weight_decay;
  hp.t = static_cast<int>(s.t);
  hp.grad_scale = s.grad_scale;
  return hp;
}

inline std::vector<cpu::AdamWRange> adamw_kernel_ranges(const AdamWStep& s) {
  std::vector<cpu::AdamWRange> ranges;
  ranges.reserve(s.ranges.size());
  for (const auto& r : s.ranges)
    ranges.push_back({static_cast<size_t>(r.offset), static_cast<size_t>(r.count), r.decay});
  return ranges;
}

// The 32-bit seed the kernels' stochastic rounding takes, from the step's 64-bit seed.
inline uint32_t adamw_rounding_seed(const AdamWStep& s) { return static_cast<uint32_t>(s.seed ^ (s.seed >> 32)); }

}  // namespace gpt2
