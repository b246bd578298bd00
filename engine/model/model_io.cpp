#include "engine/model/model_io.h"

#include <algorithm>
#include <stdexcept>

#include "engine/util/errors.h"
#include "engine/util/file_io.h"

namespace gpt2 {

WeightFormat weight_format_for_path(const std::string& path) {
  return ends_with(path, ".safetensors") ? WeightFormat::Safetensors : WeightFormat::LlmcBin;
}

std::string model_config_difference(const ModelConfig& a, const ModelConfig& b) {
  auto d = [](const char* what, int x, int y) {
    return std::string(what) + ": " + std::to_string(x) + " vs " + std::to_string(y);
  };
  if (a.num_layers != b.num_layers) return d("--layers (L)", a.num_layers, b.num_layers);
  if (a.channels != b.channels) return d("--width (C)", a.channels, b.channels);
  if (a.num_heads != b.num_heads) return d("--heads (NH)", a.num_heads, b.num_heads);
  if (a.max_seq_len != b.max_seq_len) return d("--max-seq-len (maxT)", a.max_seq_len, b.max_seq_len);
  if (a.vocab_size != b.vocab_size) return d("--vocab (V)", a.vocab_size, b.vocab_size);
  if (a.padded_vocab != b.padded_vocab) return d("padded vocab (Vp)", a.padded_vocab, b.padded_vocab);
  return "";
}

ModelConfig read_model_config(const std::string& path, int heads_hint) {
  if (weight_format_for_path(path) == WeightFormat::Safetensors) return read_safetensors_config(path, heads_hint);
  return read_llmc_model_config(path, heads_hint);
}

ModelWeights load_model_file(const std::string& path, int heads_hint) {
  if (weight_format_for_path(path) == WeightFormat::Safetensors) return load_safetensors(path, heads_hint);
  ModelWeights w = load_llmc_model(path);
  if (heads_hint > 0 && heads_hint != w.config.num_heads) {
    w.config.num_heads = heads_hint;
    check_model_file_config(path, w.config);
  }
  return w;
}

void save_model_file(const std::string& path, const ModelWeights& w, WeightDType dtype) {
  if (weight_format_for_path(path) == WeightFormat::Safetensors)
    save_safetensors(path, w, dtype);
  else
    save_llmc_model(path, w, dtype);
}

// ---- layout conversion -----------------------------------------------------------------------------

std::vector<float> to_flat(const MemoryPlan& plan, const ModelWeights& w) {
  const std::string diff = model_config_difference(w.config, plan.model);
  if (!diff.empty()) throw ConfigError("--model", "the weights' shape differs from the run's: " + diff);
  std::vector<float> flat(static_cast<size_t>(plan.flat_param_elems), 0.0f);
  const auto specs = param_tensor_specs(plan.model);
  int64_t src = 0;
  for (int i = 0; i < kNumParamTensors; ++i) {
    const int64_t n = specs[i].numel();
    std::copy(w.data.begin() + src, w.data.begin() + src + n, flat.begin() + plan.param_offsets[i]);
    src += n;
  }
  return flat;
}

ModelWeights from_flat(const MemoryPlan& plan, const std::vector<float>& flat) {
  if (static_cast<int64_t>(flat.size()) != plan.flat_param_elems)
    throw std::invalid_argument("from_flat: expected " + std::to_string(plan.flat_param_elems) + " values");
  ModelWeights w;
  w.config = plan.model;
  w.data.resize(static_cast<size_t>(num_parameters(plan.model)));
  const auto specs = param_tensor_specs(plan.model);
  int64_t dst = 0;
  for (int i = 0; i < kNumParamTensors; ++i) {
    const int64_t n = specs[i].numel();
    std::copy(flat.begin() + plan.param_offsets[i], flat.begin() + plan.param_offsets[i] + n, w.data.begin() + dst);
    dst += n;
  }
  return w;
}

}  // namespace gpt2
