#include "engine/model/inference.h"

#include <algorithm>

#include "engine/backend/backend_factory.h"
#include "engine/model/model_io.h"
#include "engine/util/errors.h"

namespace gpt2 {

InferenceModel open_for_inference(const ModelWeights& w, const InferenceOptions& o) {
  const Device device = device_from_flag(o.device);
  RunConfig run;
  run.device = device;
  run.precision = device == Device::CPU ? Precision::FP32 : Precision::BF16;
  run.micro_batch = 1;
  if (o.context > w.config.max_seq_len)
    throw ConfigError("--context", std::to_string(o.context) + " is beyond the model's context of " +
                                       std::to_string(w.config.max_seq_len) + " tokens");
  run.seq_len = o.context > 0 ? o.context : std::min(1024, w.config.max_seq_len);
  run.recompute = parse_recompute("none");
  run.training = false;  // parameters, KV cache and logits only
  const MemoryPlan plan = make_memory_plan(w.config, run);
  InferenceModel m;
  m.backend = make_backend(device, 0);
  m.model = std::make_unique<Model>(plan, *m.backend);
  m.model->set_parameters(to_flat(plan, w));
  return m;
}

void check_prompt_in_vocabulary(const std::vector<int32_t>& prompt, int vocab_size, const std::string& flag) {
  for (const int32_t id : prompt)
    if (id < 0 || id >= vocab_size)
      throw ConfigError(
          flag, "token " + std::to_string(id) + " is outside the model's vocabulary of " + std::to_string(vocab_size));
}

}  // namespace gpt2
