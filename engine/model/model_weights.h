// The host-side form of a model's weights, shared by every weight file format (llmc_model_file.h,
// safetensors_file.h), and the two things those formats share: the shape check of what a file
// says, and writing values as fp32 or bf16.
//
// ModelWeights holds the 16 tensors in llm.c order, each contiguous and back to back, exactly
// as in an llm.c file body (wte padded to Vp rows; no per-tensor padding). The memory plan's
// flat parameter view pads every tensor to 128 elements; to_flat()/from_flat() in model_io.h
// convert.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/plan/model_config.h"
#include "engine/util/file_io.h"  // AtomicFile, fnv1a64 (used with model files)

namespace gpt2 {

enum class WeightDType { FP32, BF16 };

struct ModelWeights {
  ModelConfig config;
  std::vector<float> data;                       // num_parameters(config) values, llm.c file order
  WeightDType source_dtype = WeightDType::FP32;  // how the file stored them

  // Element offset of tensor i in `data`.
  int64_t offset(int i) const;
};

// validate(c), with a failure reported as a FileError naming the file the shape came from.
void check_model_file_config(const std::string& path, const ModelConfig& c);

// Writes n values to f as fp32, or as bf16 rounded to nearest even.
void write_weight_values(AtomicFile& f, const float* v, int64_t n, WeightDType dtype);

}  // namespace gpt2
