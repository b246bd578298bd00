// GPT-2 model shape: presets d12/d24/d36/d48 and custom configs, validation, and the 16
// parameter tensors in llm.c's order (the order of the model file and of the flat parameter
// buffer). Shape letters: L layers, C width, NH heads, HS = C/NH, maxT context, V vocab,
// Vp vocab padded to a multiple of 128.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace gpt2 {

struct ModelConfig {
  int max_seq_len = 1024;    // maxT
  int vocab_size = 50257;    // V
  int padded_vocab = 50304;  // Vp: V rounded up to a multiple of 128 (tensor-core friendly)
  int num_layers = 12;       // L
  int num_heads = 12;        // NH
  int channels = 768;        // C

  int head_size() const { return channels / num_heads; }
  bool operator==(const ModelConfig& o) const;
  bool operator!=(const ModelConfig& o) const { return !(*this == o); }
  std::string describe() const;  // "d12: L=12 C=768 NH=12 maxT=1024 V=50257 (Vp=50304)"
  std::string name;              // preset name, or "custom"
};

// Rounds V up to a multiple of 128.
int pad_vocab(int vocab_size);

// The presets: "d12", "d24", "d36", "d48" (GPT-2 124M, 350M, 774M, 1558M). Aliases "gpt2",
// "gpt2-medium", "gpt2-large", "gpt2-xl" are accepted. Throws ConfigError("--model") otherwise.
ModelConfig preset_config(const std::string& name);
bool is_preset_name(const std::string& name);
std::vector<std::string> preset_names();

// GPT-2's head count for a width, from the preset table (768→12, 1024→16, 1280→20, 1600→25), else 0.
int default_heads_for_width(int channels);

// Throws ConfigError naming the flag (--layers, --heads, --width, --vocab, --max-seq-len) when
// the shape is nonsensical: non-positive sizes, heads not dividing width, odd head size, etc.
void validate(const ModelConfig& cfg);

constexpr int kNumParamTensors = 16;

// The index of each parameter tensor in param_tensor_specs() (llm.c's order).
enum ParamIndex {
  WTE,
  WPE,
  LN1W,
  LN1B,
  QKVW,
  QKVB,
  ATTPROJW,
  ATTPROJB,
  LN2W,
  LN2B,
  FCW,
  FCB,
  FCPROJW,
  FCPROJB,
  LNFW,
  LNFB
};
static_assert(LNFB + 1 == kNumParamTensors, "one ParamIndex per parameter tensor");

// One parameter tensor: name (llm.c's), shape, and whether AdamW applies weight decay (2-D
// weights only; biases, layernorm gains and biases get none).
struct ParamTensorSpec {
  const char* name;
  std::vector<int64_t> shape;
  int64_t numel() const;
  bool weight_decay;
};

// The 16 tensors in llm.c order:
//   wte (Vp, C), wpe (maxT, C), ln1w (L, C), ln1b (L, C), qkvw (L, 3C, C), qkvb (L, 3C),
//   attprojw (L, C, C), attprojb (L, C), ln2w (L, C), ln2b (L, C), fcw (L, 4C, C), fcb (L, 4C),
//   fcprojw (L, C, 4C), fcprojb (L, C), lnfw (C), lnfb (C).
// Weights are stored (out, in), so a matmul computes out = in · Wᵀ + b.
std::array<ParamTensorSpec, kNumParamTensors> param_tensor_specs(const ModelConfig& cfg);

// Total parameter count including wte's padding rows (Vp·C), as llm.c counts it.
int64_t num_parameters(const ModelConfig& cfg);

// Forward+backward FLOPs per token for training (6·N for the matmuls plus attention),
// used by the throughput model and MFU reports. T is the sequence length actually trained.
double training_flops_per_token(const ModelConfig& cfg, int T);

}  // namespace gpt2
