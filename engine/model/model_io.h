// Model weight files, whatever their format: llm.c's model .bin (llmc_model_file.h) and Hugging
// Face GPT-2 `model.safetensors` (safetensors_file.h), both read into and written from one
// host-side form, ModelWeights (model_weights.h). This header picks the format by the file's
// extension and converts ModelWeights to and from the memory plan's padded flat parameter view.
// It includes the format headers, so callers include only this one.
//
// Every failure is a FileError naming the file (see the format headers).
#pragma once
#include <string>
#include <vector>

#include "engine/model/llmc_model_file.h"
#include "engine/model/model_weights.h"
#include "engine/model/safetensors_file.h"
#include "engine/plan/memory_plan.h"
#include "engine/plan/model_config.h"

namespace gpt2 {

enum class WeightFormat { LlmcBin, Safetensors };

// By extension: ".safetensors" → Safetensors, anything else → LlmcBin.
WeightFormat weight_format_for_path(const std::string& path);

// Only the shape (reads the header, not the data). heads_hint > 0 overrides the head count.
ModelConfig read_model_config(const std::string& path, int heads_hint = 0);

ModelWeights load_model_file(const std::string& path, int heads_hint = 0);  // by extension

// Writes atomically (temporary name, fsync, rename). bf16 rounds to nearest even.
void save_model_file(const std::string& path, const ModelWeights& w, WeightDType dtype);  // by extension

// Between the file layout and the plan's padded flat parameter view. The plan's model shape
// must equal w.config (ConfigError("--model") naming the differing field otherwise).
std::vector<float> to_flat(const MemoryPlan& plan, const ModelWeights& w);
ModelWeights from_flat(const MemoryPlan& plan, const std::vector<float>& flat);

// Names the first field where two model shapes differ ("" when equal), e.g. "--width (C): 64 vs 128".
std::string model_config_difference(const ModelConfig& a, const ModelConfig& b);

}  // namespace gpt2
