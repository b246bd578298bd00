// Where training and validation batches come from: the data loader over llm.c shards / nanoGPT
// files, or a synthetic learnable token stream (for smoke tests and machines without data).
// Batches are written into caller-owned (B, T) int32 buffers.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/data/dataloader.h"

namespace gpt2 {

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual void next(int32_t* inputs, int32_t* targets) = 0;
  virtual void reset() = 0;  // back to the first batch (validation)
  virtual std::string describe() const = 0;
  // The read position as opaque bytes, for checkpoints; restore_position() continues exactly
  // there and throws ConfigError("--resume") for a position from another source.
  virtual std::vector<uint8_t> save_position() const = 0;
  virtual void restore_position(const std::vector<uint8_t>& bytes) = 0;
};

// A stream anyone can learn: each row starts at a random token, and each next token follows
// x → (a·x + c) mod K with probability 1 - noise, else is drawn uniformly from [0, K), where
// K = min(V, 256). The best possible loss is about noise·ln(K) + H(noise), far below ln(V).
class SyntheticSource final : public BatchSource {
 public:
  // With world > 1, rank r gets micro-batches r, r + world, r + 2·world, ... of the one-process
  // stream, so W ranks at accumulation A see the same rows per step as one process at W·A.
  SyntheticSource(int vocab_size, int B, int T, uint64_t seed, double noise = 0.1, int rank = 0, int world = 1);
  void next(int32_t* inputs, int32_t* targets) override;
  void reset() override { batch_index_ = 0; }
  std::string describe() const override;
  std::vector<uint8_t> save_position() const override;
  void restore_position(const std::vector<uint8_t>& bytes) override;

 private:
  int K_, B_, T_;
  uint64_t seed_;
  int rank_ = 0, world_ = 1;
  double noise_;
  uint64_t batch_index_ = 0;
};

class LoaderSource final : public BatchSource {
 public:
  explicit LoaderSource(const DataLoaderOptions& options) : loader_(options) {}
  void next(int32_t* inputs, int32_t* targets) override { loader_.next_batch(inputs, targets); }
  void reset() override { loader_.reset(); }
  std::string describe() const override { return loader_.describe(); }
  std::vector<uint8_t> save_position() const override;
  void restore_position(const std::vector<uint8_t>& bytes) override;
  DataLoader& loader() { return loader_; }

 private:
  DataLoader loader_;
};

}  // namespace gpt2
