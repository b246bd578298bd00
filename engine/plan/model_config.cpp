#include "engine/plan/model_config.h"

#include <sstream>

#include "engine/util/errors.h"

namespace gpt2 {

bool ModelConfig::operator==(const ModelConfig& o) const {
  return max_seq_len == o.max_seq_len && vocab_size == o.vocab_size && padded_vocab == o.padded_vocab &&
         num_layers == o.num_layers && num_heads == o.num_heads && channels == o.channels;
}

std::string ModelConfig::describe() const {
  std::ostringstream s;
  s << (name.empty() ? "custom" : name) << ": L=" << num_layers << " C=" << channels << " NH=" << num_heads
    << " maxT=" << max_seq_len << " V=" << vocab_size << " (Vp=" << padded_vocab << ")";
  return s.str();
}

int pad_vocab(int vocab_size) { return (vocab_size + 127) / 128 * 128; }

namespace {
struct Preset {
  const char* name;
  const char* alias;
  int layers, channels, heads;
};
constexpr Preset kPresets[] = {
    {"d12", "gpt2", 12, 768, 12},
    {"d24", "gpt2-medium", 24, 1024, 16},
    {"d36", "gpt2-large", 36, 1280, 20},
    {"d48", "gpt2-xl", 48, 1600, 25},
};
}  // namespace

bool is_preset_name(const std::string& name) {
  for (const auto& p : kPresets)
    if (name == p.name || name == p.alias) return true;
  return false;
}

int default_heads_for_width(int channels) {
  for (const auto& p : kPresets)
    if (p.channels == channels) return p.heads;
  return 0;
}

std::vector<std::string> preset_names() {
  std::vector<std::string> out;
  for (const auto& p : kPresets) out.emplace_back(p.name);
  return out;
}

ModelConfig preset_config(const std::string& name) {
  for (const auto& p : kPresets) {
    if (name == p.name || name == p.alias) {
      ModelConfig c;
      c.name = p.name;
      c.num_layers = p.layers;
      c.channels = p.channels;
      c.num_heads = p.heads;
      c.max_seq_len = 1024;
      c.vocab_size = 50257;
      c.padded_vocab = pad_vocab(c.vocab_size);
      return c;
    }
  }
  throw ConfigError("--model",
                    "unknown model '" + name + "' (presets: d12, d24, d36, d48, or a .bin/.safetensors file)");
}

void validate(const ModelConfig& c) {
  auto positive = [](const char* flag, int v) {
    if (v <= 0) throw ConfigError(flag, "must be positive, got " + std::to_string(v));
  };
  positive("--layers", c.num_layers);
  positive("--heads", c.num_heads);
  positive("--width", c.channels);
  positive("--vocab", c.vocab_size);
  positive("--max-seq-len", c.max_seq_len);
  if (c.channels % c.num_heads != 0)
    throw ConfigError("--heads",
                      std::to_string(c.num_heads) + " heads do not divide width " + std::to_string(c.channels));
  if (c.head_size() % 2 != 0)
    throw ConfigError("--heads", "head size " + std::to_string(c.head_size()) + " (width/heads) must be even");
  if (c.padded_vocab < c.vocab_size || c.padded_vocab % 128 != 0)
    throw ConfigError("--vocab", "padded vocab " + std::to_string(c.padded_vocab) +
                                     " must be a multiple of 128 and at least " + std::to_string(c.vocab_size));
  if (c.num_layers > 4096 || c.channels > 65536 || c.max_seq_len > (1 << 20) || c.vocab_size > (1 << 24))
    throw ConfigError("--layers/--width/--max-seq-len/--vocab", "model size out of range");
}

int64_t ParamTensorSpec::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::array<ParamTensorSpec, kNumParamTensors> param_tensor_specs(const ModelConfig& cfg) {
  const int64_t L = cfg.num_layers, C = cfg.channels, Vp = cfg.padded_vocab, maxT = cfg.max_seq_len;
  return {{
      {"wte", {Vp, C}, true},
      {"wpe", {maxT, C}, true},
      {"ln1w", {L, C}, false},
      {"ln1b", {L, C}, false},
      {"qkvw", {L, 3 * C, C}, true},
      {"qkvb", {L, 3 * C}, false},
      {"attprojw", {L, C, C}, true},
      {"attprojb", {L, C}, false},
      {"ln2w", {L, C}, false},
      {"ln2b", {L, C}, false},
      {"fcw", {L, 4 * C, C}, true},
      {"fcb", {L, 4 * C}, false},
      {"fcprojw", {L, C, 4 * C}, true},
      {"fcprojb", {L, C}, false},
      {"lnfw", {C}, false},
      {"lnfb", {C}, false},
  }};
}

int64_t num_parameters(const ModelConfig& cfg) {
  int64_t n = 0;
  for (const auto& t : param_tensor_specs(cfg)) n += t.numel();
  return n;
}

double training_flops_per_token(const ModelConfig& cfg, int T) {
  // Matmul FLOPs: 6 per weight per token (forward 2, backward 4), counting the lm_head (Vp·C)
  // but not the position embedding, which is a lookup. Attention: per layer the forward does
  // QKᵀ and PV, 2·2·T·C per token in a full square; causal halves that. Backward is 2× forward.
  const double N = static_cast<double>(num_parameters(cfg)) - static_cast<double>(cfg.max_seq_len) * cfg.channels;
  const double attn = 3.0 * cfg.num_layers * 2.0 * 2.0 * T * cfg.channels * 0.5;
  return 6.0 * N + attn;
}

}  // namespace gpt2
