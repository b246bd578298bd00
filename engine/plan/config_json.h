// A memory plan's model shape and run configuration as JSON, keyed two ways from one table of
// fields: by report key for the dry-run JSON (plan_json: "layers", "micro_batch", ...) and by
// the flag that sets each value for the settings a resumed run must share with its checkpoint
// (checkpoint_settings: "--layers", "--micro-batch", ...). Some fields appear in only one of the
// two. Tools, tests and saved checkpoints read these keys: keep them as they are.
#pragma once
#include <nlohmann/json.hpp>

#include "engine/plan/memory_plan.h"
#include "engine/plan/model_config.h"

namespace gpt2 {

// {"name", "layers", "heads", "width", "vocab", "padded_vocab", "max_seq_len"}
nlohmann::json model_config_json(const ModelConfig& m);

// {"device", "micro_batch", "seq_len", "total_batch_tokens", "grad_accum", "recompute",
//  "recompute_layers", "logits_chunk", "precision", "master_weights" (true/false), "zero",
//  "world_size", "rank", "training", "offload"}
nlohmann::json run_config_json(const MemoryPlan& plan);

// The model and run fields a checkpoint compares on resume, keyed by flag: --layers, --width,
// --heads, --max-seq-len, --vocab, --micro-batch, --seq-len, --total-batch-tokens, --precision,
// --master-weights (1, 0 or -1), --zero, --world-size, --device.
nlohmann::json config_flags_json(const MemoryPlan& plan);

}  // namespace gpt2
