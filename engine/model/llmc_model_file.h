// llm.c's model .bin format (fp32 version 3, bf16 version 5), read into and written from
// ModelWeights.
//
// Layout: 256 × int32 header [0]=20240326, [1]=3 (fp32) | 5 (bf16), [2] maxT, [3] V, [4] L,
//   [5] NH, [6] C, [7] Vp; then the tensors in llm.c order. The file size must be exactly
//   1024 + num_parameters · (4 | 2) bytes.
//
// Every failure is a FileError naming the file (bad magic or version, truncated or oversized
// file, an invalid shape in the header).
#pragma once
#include <cstdint>
#include <string>

#include "engine/model/model_weights.h"

namespace gpt2 {

constexpr int32_t kLlmcModelMagic = 20240326;

// The shape in a 1024-byte header (256 int32 values); FileError naming `path` for a bad magic,
// version or shape.
ModelConfig llmc_header_config(const std::string& path, const int32_t* header);
// The exact size of the file that header describes: 1024 + num_parameters · (4 | 2) bytes.
uint64_t llmc_model_file_bytes(const int32_t* header, const ModelConfig& config);

// Only the shape, from the 1024-byte header. heads_hint > 0 overrides the head count.
ModelConfig read_llmc_model_config(const std::string& path, int heads_hint = 0);

ModelWeights load_llmc_model(const std::string& path);

// Writes atomically (temporary name, fsync, rename). bf16 rounds to nearest even.
void save_llmc_model(const std::string& path, const ModelWeights& w, WeightDType dtype);

}  // namespace gpt2
