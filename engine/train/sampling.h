// Samples of the model during a training run (--sample-every) or instead of one (--eval-only with
// --sample-prompt), printed as they are generated (engine/model/sampler.h), and the GPT-2
// tokenizer they share with a HellaSwag .jsonl, loaded on first use.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "engine/data/tokenizer.h"
#include "engine/model/model.h"

namespace gpt2 {

// The GPT-2 tokenizer, loaded on first use: only sampling and a HellaSwag .jsonl need it (a
// FileError with the data/fetch_tokenizer.sh hint when its files are missing).
class LazyTokenizer {
 public:
  explicit LazyTokenizer(std::string dir);  // empty: default_tokenizer_dir()
  const Tokenizer& get();

 private:
  std::string dir_;
  std::unique_ptr<Tokenizer> tok_;
};

struct SamplingOptions {
  bool enabled = false;  // the run samples at all
  int64_t every = 0;     // a sample after every N-th step; 0 = none during training
  std::string prompt;    // empty = start from <|endoftext|>
  int tokens = 64;
  double temperature = 1.0;  // 0 = greedy
  int top_k = 40;            // 0 = all tokens
  uint64_t seed = 1337;      // the run's seed; a sample's seed is derived from it and the step
};

class Sampling {
 public:
  // Encodes the prompt now, so a prompt outside the model's vocabulary (ConfigError
  // "--sample-prompt") or a model that cannot decode (ConfigError "--sample-every": its KV cache
  // is in the recomputed activations) fails before the first step.
  Sampling(const SamplingOptions& opts, Model& model, LazyTokenizer& tok);
  bool enabled() const { return o_.enabled; }
  bool due(int64_t step) const { return o_.enabled && o_.every > 0 && step % o_.every == 0; }
  // "sample  (step N) PROMPT..." and the generated text, flushed token by token.
  void print(int64_t step, std::ostream& out);

 private:
  SamplingOptions o_;
  Model& model_;
  LazyTokenizer& tok_;
  std::vector<int32_t> prompt_;
};

}  // namespace gpt2
