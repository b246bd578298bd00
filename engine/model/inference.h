// A model opened for inference (the sample tool): its weights on a backend, under an inference
// memory plan (RunConfig::training false: parameters, KV cache, logits and workspaces; no
// gradients or optimizer state).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/model/model.h"
#include "engine/model/model_weights.h"

namespace gpt2 {

struct InferenceOptions {
  std::string device = "cpu";  // cpu | cuda | auto (device_from_flag); fp32 on the CPU, bf16 on CUDA
  int context = 0;             // the context window T; 0 = the model's maxT, at most 1024
};

// The backend and the model on it. The model holds a reference to the backend, so it is
// destroyed first (members are destroyed in reverse order).
struct InferenceModel {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
};

// Resolves the device, checks the context window against the model's (ConfigError "--context"),
// plans memory for a batch of one sequence, brings up the backend and uploads `weights`.
InferenceModel open_for_inference(const ModelWeights& weights, const InferenceOptions& opts);

// A prompt must lie inside the model's vocabulary: throws ConfigError(flag, "token N is outside
// the model's vocabulary of V") for the first id that does not.
void check_prompt_in_vocabulary(const std::vector<int32_t>& prompt, int vocab_size, const std::string& flag);

}  // namespace gpt2
