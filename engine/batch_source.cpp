#include "engine/batch_source.h"

#include <algorithm>

#include "engine/rng.h"

namespace gpt2 {

SyntheticSource::SyntheticSource(int vocab_size, int B, int T, uint64_t seed, double noise)
    : K_(std::min(vocab_size, 256)), B_(B), T_(T), seed_(seed), noise_(noise) {}

void SyntheticSource::next(int32_t* inputs, int32_t* targets) {
  for (int b = 0; b < B_; ++b) {
    // Each row has its own stream, so a batch depends only on (seed, batch index, row).
    Rng rng(derive_seed(seed_, batch_index_ * 65536 + static_cast<uint64_t>(b)));
    int32_t x = static_cast<int32_t>(rng.below(K_));
    for (int t = 0; t <= T_; ++t) {
      if (t < T_) inputs[b * T_ + t] = x;
      if (t > 0) targets[b * T_ + t - 1] = x;
      x = rng.uniform() < noise_ ? static_cast<int32_t>(rng.below(K_)) : (5 * x + 3) % K_;
    }
  }
  ++batch_index_;
}

std::string SyntheticSource::describe() const {
  return "synthetic learnable stream (x -> 5x+3 mod " + std::to_string(K_) + ", " +
         std::to_string(static_cast<int>(noise_ * 100)) + "% noise)";
}

}  // namespace gpt2
