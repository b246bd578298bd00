// Hugging Face GPT-2 `model.safetensors`, read into and written from ModelWeights.
//
// Layout: 8-byte little-endian header length n, n bytes of JSON
//   {"name": {"dtype": "F32"|"BF16"|"F16", "shape": [...], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {...}}, then the data. HF GPT-2 names (optionally prefixed "transformer."):
//   wte.weight (V, C), wpe.weight (maxT, C), h.N.ln_1.{weight,bias}, h.N.attn.c_attn.{weight,bias},
//   h.N.attn.c_proj.*, h.N.ln_2.*, h.N.mlp.c_fc.*, h.N.mlp.c_proj.*, ln_f.{weight,bias}.
//   Conv1D weights are stored (in, out) and are transposed to llm.c's (out, in). lm_head.weight
//   (tied to wte) and the attn.bias / attn.masked_bias buffers are ignored. wte gets Vp - V zero
//   rows. F16 and BF16 values are decoded to fp32. The sizes come from the tensors; the head
//   count, which no tensor carries, comes from (first match wins) the caller's hint (--heads),
//   "n_head" in a config.json beside the file, "n_head" in the safetensors __metadata__ (which
//   save_safetensors writes), and finally the GPT-2 default for the width (768→12, 1024→16,
//   1280→20, 1600→25).
//
// Every failure is a FileError naming the file (a bad header, a missing or wrongly shaped
// tensor, data offsets outside the file or overlapping).
#pragma once
#include <string>

#include "engine/model/model_weights.h"

namespace gpt2 {

// Only the shape (reads the JSON header, not the data). heads_hint > 0 sets the head count.
ModelConfig read_safetensors_config(const std::string& path, int heads_hint = 0);

ModelWeights load_safetensors(const std::string& path, int heads_hint = 0);

// Writes atomically (temporary name, fsync, rename), fp32 or bf16 (rounded to nearest even),
// with the shape in __metadata__.
void save_safetensors(const std::string& path, const ModelWeights& w, WeightDType dtype);

}  // namespace gpt2
