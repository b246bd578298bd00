// AdamWStep (the engine's description of one optimizer step) in the form the AdamW kernels take:
// both the CPU and the CUDA kernels use kernels/cpu/adamw.h's AdamWParams and AdamWRange.
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

}  // namespace gpt2
