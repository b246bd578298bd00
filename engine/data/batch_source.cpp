#include "engine/data/batch_source.h"

#include <algorithm>

#include <cstring>

#include "engine/util/errors.h"
#include "engine/util/rng.h"

namespace gpt2 {

SyntheticSource::SyntheticSource(int vocab_size, int B, int T, uint64_t seed, double noise, int rank, int world)
    : K_(std::min(vocab_size, 256)), B_(B), T_(T), seed_(seed), rank_(rank), world_(world), noise_(noise) {}

void SyntheticSource::next(int32_t* inputs, int32_t* targets) {
  for (int b = 0; b < B_; ++b) {
    // Each row has its own stream, so a batch depends only on (seed, batch index, row).
    const uint64_t global_batch = batch_index_ * static_cast<uint64_t>(world_) + static_cast<uint64_t>(rank_);
    Rng rng(derive_seed(seed_, global_batch * 65536 + static_cast<uint64_t>(b)));
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

namespace {
constexpr uint64_t kSyntheticMagic = 0x314e59535432504full;  // "OP2TSYN1"
}  // namespace

std::vector<uint8_t> SyntheticSource::save_position() const {
  const uint64_t words[4] = {kSyntheticMagic, seed_, static_cast<uint64_t>(K_), batch_index_};
  std::vector<uint8_t> out(sizeof words);
  std::memcpy(out.data(), words, sizeof words);
  return out;
}

void SyntheticSource::restore_position(const std::vector<uint8_t>& bytes) {
  uint64_t words[4];
  if (bytes.size() != sizeof words) throw ConfigError("--resume", "saved data position is not a synthetic stream's");
  std::memcpy(words, bytes.data(), sizeof words);
  if (words[0] != kSyntheticMagic || words[1] != seed_ || words[2] != static_cast<uint64_t>(K_))
    throw ConfigError("--resume", "saved data position belongs to another synthetic stream (different seed or vocab)");
  batch_index_ = words[3];
}

std::vector<uint8_t> LoaderSource::save_position() const {
  const DataLoaderState st = loader_.state();
  std::vector<uint8_t> out(sizeof st);
  std::memcpy(out.data(), &st, sizeof st);
  return out;
}

void LoaderSource::restore_position(const std::vector<uint8_t>& bytes) {
  DataLoaderState st;
  if (bytes.size() != sizeof st) throw ConfigError("--resume", "saved data position is not a data loader's");
  std::memcpy(&st, bytes.data(), sizeof st);
  loader_.restore(st);
}

}  // namespace gpt2
