// Model weight files: llm.c's model .bin (fp32 version 3, bf16 version 5) and Hugging Face GPT-2
// `model.safetensors`, read into and written from one host-side form, ModelWeights.
//
// ModelWeights holds the 16 tensors in llm.c order, each contiguous and back to back, exactly
// as in an llm.c file body (wte padded to Vp rows; no per-tensor padding). The memory plan's
// flat parameter view pads every tensor to 128 elements; to_flat()/from_flat() convert.
//
// llm.c model file: 256 × int32 header [0]=20240326, [1]=3 (fp32) | 5 (bf16), [2] maxT, [3] V,
//   [4] L, [5] NH, [6] C, [7] Vp; then the tensors. The file size must be exactly
//   1024 + num_parameters · (4 | 2) bytes.
//
// safetensors: 8-byte little-endian header length n, n bytes of JSON
//   {"name": {"dtype": "F32"|"BF16"|"F16", "shape": [...], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {...}}, then the data. HF GPT-2 names (optionally prefixed "transformer."):
//   wte.weight (V, C), wpe.weight (maxT, C), h.N.ln_1.{weight,bias}, h.N.attn.c_attn.{weight,bias},
//   h.N.attn.c_proj.*, h.N.ln_2.*, h.N.mlp.c_fc.*, h.N.mlp.c_proj.*, ln_f.{weight,bias}.
//   Conv1D weights are stored (in, out) and are transposed to llm.c's (out, in). lm_head.weight
//   (tied to wte) and the attn.bias / attn.masked_bias buffers are ignored. wte gets Vp - V zero
//   rows. The sizes come from the tensors; the head count, which no tensor carries, comes from
//   (first match wins) the caller's hint (--heads), "n_head" in a config.json beside the file,
//   "n_head" in the safetensors __metadata__ (which save_safetensors writes), and finally the
//   GPT-2 default for the width (768→12, 1024→16, 1280→20, 1600→25).
//
// Every failure is a FileError naming the file (bad magic or version, truncated or oversized
// file, a missing or wrongly shaped tensor, a bad header).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/plan/memory_plan.h"
#include "engine/plan/model_config.h"
#include "engine/util/file_io.h"  // AtomicFile, fnv1a64 (used with model files)

namespace gpt2 {

enum class WeightFormat { LlmcBin, Safetensors };
enum class WeightDType { FP32, BF16 };

constexpr int32_t kLlmcModelMagic = 20240326;

struct ModelWeights {
  ModelConfig config;
  std::vector<float> data;                       // num_parameters(config) values, llm.c file order
  WeightDType source_dtype = WeightDType::FP32;  // how the file stored them

  // Element offset of tensor i in `data`.
  int64_t offset(int i) const;
};

// By extension: ".safetensors" → Safetensors, anything else → LlmcBin.
WeightFormat weight_format_for_path(const std::string& path);

// Only the shape (reads the header, not the data). heads_hint > 0 overrides the head count.
ModelConfig read_model_config(const std::string& path, int heads_hint = 0);

ModelWeights load_llmc_model(const std::string& path);
ModelWeights load_safetensors(const std::string& path, int heads_hint = 0);
ModelWeights load_model_file(const std::string& path, int heads_hint = 0);  // by extension

// Writes atomically (temporary name, fsync, rename). bf16 rounds to nearest even.
void save_llmc_model(const std::string& path, const ModelWeights& w, WeightDType dtype);
void save_safetensors(const std::string& path, const ModelWeights& w, WeightDType dtype);
void save_model_file(const std::string& path, const ModelWeights& w, WeightDType dtype);  // by extension

// Between the file layout and the plan's padded flat parameter view. The plan's model shape
// must equal w.config (ConfigError("--model") naming the differing field otherwise).
std::vector<float> to_flat(const MemoryPlan& plan, const ModelWeights& w);
ModelWeights from_flat(const MemoryPlan& plan, const std::vector<float>& flat);

// Names the first field where two model shapes differ ("" when equal), e.g. "--width (C): 64 vs 128".
std::string model_config_difference(const ModelConfig& a, const ModelConfig& b);

}  // namespace gpt2
