#include "engine/plan/config_json.h"

#include <vector>

namespace gpt2 {

namespace {

// One field: its key in the dry-run JSON and the flag that sets it (nullptr where it does not
// appear in that keying), and its value.
struct ConfigField {
  const char* key;
  const char* flag;
  nlohmann::json value;
};

std::vector<ConfigField> model_fields(const ModelConfig& m) {
  return {{"name", nullptr, m.name.empty() ? "custom" : m.name},
          {"layers", "--layers", m.num_layers},
          {"heads", "--heads", m.num_heads},
          {"width", "--width", m.channels},
          {"vocab", "--vocab", m.vocab_size},
          {"padded_vocab", nullptr, m.padded_vocab},
          {"max_seq_len", "--max-seq-len", m.max_seq_len}};
}

std::vector<ConfigField> run_fields(const MemoryPlan& plan) {
  const RunConfig& r = plan.run;
  return {{"device", "--device", to_string(r.device)},
          {"micro_batch", "--micro-batch", r.micro_batch},
          {"seq_len", "--seq-len", r.seq_len},
          {"total_batch_tokens", "--total-batch-tokens", r.total_batch_tokens},
          {"grad_accum", nullptr, plan.grad_accum},
          {"recompute", nullptr, to_string(r.recompute)},
          {"recompute_layers", nullptr, plan.recompute_layers},
          {"logits_chunk", nullptr, r.logits_chunk},
          {"precision", "--precision", to_string(r.precision)},
          // The report says whether the run has a master copy; a checkpoint keeps the setting
          // as given (1 on, 0 off, -1 auto).
          {"master_weights", nullptr, r.master_weights == 1},
          {nullptr, "--master-weights", r.master_weights},
          {"zero", "--zero", r.zero_stage},
          {"world_size", "--world-size", r.world_size},
          {"rank", nullptr, r.rank},
          {"training", nullptr, r.training},
          {"offload", nullptr, to_string(r.offload)}};
}

void add_by_key(nlohmann::json& j, const std::vector<ConfigField>& fields) {
  for (const ConfigField& f : fields)
    if (f.key) j[f.key] = f.value;
}

void add_by_flag(nlohmann::json& j, const std::vector<ConfigField>& fields) {
  for (const ConfigField& f : fields)
    if (f.flag) j[f.flag] = f.value;
}

}  // namespace

nlohmann::json model_config_json(const ModelConfig& m) {
  nlohmann::json j = nlohmann::json::object();
  add_by_key(j, model_fields(m));
  return j;
}

nlohmann::json run_config_json(const MemoryPlan& plan) {
  nlohmann::json j = nlohmann::json::object();
  add_by_key(j, run_fields(plan));
  return j;
}

nlohmann::json config_flags_json(const MemoryPlan& plan) {
  nlohmann::json j = nlohmann::json::object();
  add_by_flag(j, model_fields(plan.model));
  add_by_flag(j, run_fields(plan));
  return j;
}

}  // namespace gpt2
