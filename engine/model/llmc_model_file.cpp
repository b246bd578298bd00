#include "engine/model/llmc_model_file.h"

#include <cstring>
#include <fstream>
#include <stdexcept>

#include "engine/util/bf16.h"
#include "engine/util/errors.h"

namespace gpt2 {

// The model shape of a 256-int32 header, checked.
ModelConfig llmc_header_config(const std::string& path, const int32_t* h) {
  if (h[0] != kLlmcModelMagic)
    throw FileError(path,
                    "bad magic " + std::to_string(h[0]) + " at byte offset 0 (expected 20240326, an llm.c model file)");
  if (h[1] != 3 && h[1] != 5)
    throw FileError(
        path, "unsupported version " + std::to_string(h[1]) + " at byte offset 4 (expected 3 = fp32 or 5 = bf16)");
  ModelConfig c;
  c.name = "custom";
  c.max_seq_len = h[2];
  c.vocab_size = h[3];
  c.num_layers = h[4];
  c.num_heads = h[5];
  c.channels = h[6];
  c.padded_vocab = h[7];
  check_model_file_config(path, c);
  return c;
}

uint64_t llmc_model_file_bytes(const int32_t* h, const ModelConfig& c) {
  return 1024 + static_cast<uint64_t>(num_parameters(c)) * (h[1] == 5 ? 2 : 4);
}

ModelConfig read_llmc_model_config(const std::string& path, int heads_hint) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    throw FileError(path, "cannot open model file",
                    "give a preset (d12, d24, d36, d48), an llm.c .bin or a .safetensors file");
  int32_t h[256];
  f.read(reinterpret_cast<char*>(h), sizeof h);
  if (f.gcount() != static_cast<std::streamsize>(sizeof h))
    throw FileError(path,
                    "file is shorter than the 1024-byte llm.c model header (" + std::to_string(f.gcount()) + " bytes)");
  ModelConfig c = llmc_header_config(path, h);
  if (heads_hint > 0) c.num_heads = heads_hint;
  return c;
}

ModelWeights load_llmc_model(const std::string& path) {
  MappedFile map(path);
  if (map.size() < 1024)
    throw FileError(path,
                    "file is " + std::to_string(map.size()) + " bytes, shorter than the 1024-byte llm.c model header");
  int32_t h[256];
  std::memcpy(h, map.data(), sizeof h);
  ModelWeights w;
  w.config = llmc_header_config(path, h);
  w.source_dtype = h[1] == 5 ? WeightDType::BF16 : WeightDType::FP32;
  const int64_t n = num_parameters(w.config);
  const uint64_t esize = h[1] == 5 ? 2 : 4;
  const uint64_t want = llmc_model_file_bytes(h, w.config);
  if (map.size() != want)
    throw FileError(path, "file is " + std::to_string(map.size()) + " bytes but its header (L=" +
                              std::to_string(w.config.num_layers) + " C=" + std::to_string(w.config.channels) +
                              " maxT=" + std::to_string(w.config.max_seq_len) +
                              " Vp=" + std::to_string(w.config.padded_vocab) + ", " + (esize == 2 ? "bf16" : "fp32") +
                              ") needs exactly " + std::to_string(want) +
                              (map.size() < want ? " (truncated)" : " (trailing bytes: wrong shapes in the header?)"));
  w.data.resize(static_cast<size_t>(n));
  const uint8_t* body = map.data() + 1024;
  if (esize == 4) {
    std::memcpy(w.data.data(), body, static_cast<size_t>(n) * 4);
  } else {
    for (int64_t i = 0; i < n; ++i) {
      uint16_t b;
      std::memcpy(&b, body + 2 * i, 2);
      w.data[i] = bf16_bits_to_float(b);
    }
  }
  return w;
}

void save_llmc_model(const std::string& path, const ModelWeights& w, WeightDType dtype) {
  if (static_cast<int64_t>(w.data.size()) != num_parameters(w.config))
    throw std::invalid_argument("save_llmc_model: weights do not match their config");
  int32_t h[256] = {};
  h[0] = kLlmcModelMagic;
  h[1] = dtype == WeightDType::BF16 ? 5 : 3;
  h[2] = w.config.max_seq_len;
  h[3] = w.config.vocab_size;
  h[4] = w.config.num_layers;
  h[5] = w.config.num_heads;
  h[6] = w.config.channels;
  h[7] = w.config.padded_vocab;
  AtomicFile f(path);
  f.write(h, sizeof h);
  write_weight_values(f, w.data.data(), static_cast<int64_t>(w.data.size()), dtype);
  f.commit();
}

}  // namespace gpt2
