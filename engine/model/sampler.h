// Text generation from a Model with a KV cache (engine/model/model.h, decode_step).
//
// The prompt is prefilled with one forward pass over its tokens (B = 1), which leaves every
// layer's keys and values in its qkv activation; each new token then runs the network on one
// row and attends over the cached rows (Backend::attention_decode). So generating n tokens
// costs one prefill plus n single-row steps, never a forward pass over the whole prefix per
// token. When the context (the plan's T) is full, the last T/2 tokens are prefilled again and
// generation goes on from there (a sliding window; the only recomputation).
//
// Sampling: logits / temperature, keep the top_k largest (0 = all; ties broken by lower id),
// softmax in double, then one draw from the project's Rng. temperature 0 is greedy (argmax).
// The same model, prompt, options and seed give the same tokens on every machine.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "engine/model/model.h"
#include "engine/util/rng.h"

namespace gpt2 {

struct SampleOptions {
  int max_tokens = 64;
  double temperature = 1.0;
  int top_k = 40;
  uint64_t seed = 1337;
  int stop_token = -1;  // stop after generating this token (e.g. <|endoftext|>); -1 = never
};

// One draw from the V logits.
int32_t sample_token(const std::vector<float>& logits, double temperature, int top_k, Rng& rng);

// Generates up to o.max_tokens tokens after `prompt` (at least one token). Returns the new
// tokens only. `on_token` (optional) sees each token as it is generated. Throws
// std::invalid_argument for an empty prompt or a token outside the model's vocabulary, and
// std::logic_error for a plan whose layers are block-recomputed (no KV cache).
std::vector<int32_t> generate(Model& model, const std::vector<int32_t>& prompt, const SampleOptions& o,
                              const std::function<void(int32_t)>& on_token = {});

}  // namespace gpt2
