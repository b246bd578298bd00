// Small helpers shared by the engine tests: a tiny model shape, a fresh scratch directory under
// the build tree, whole-file reads and writes, bitwise comparison of float vectors, and the
// message of an expected exception.
#pragma once
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "engine/backend/cpu_backend.h"
#include "engine/model/model.h"
#include "engine/plan/memory_plan.h"
#include "engine/plan/model_config.h"

namespace gpt2::testutil {

// A tiny GPT-2 shape with 4 heads: L layers, width C, vocabulary V (padded to a multiple of
// 128), context maxT.
inline ModelConfig tiny_config(int layers, int channels, int vocab, int max_seq_len, const char* name = "custom") {
  ModelConfig m;
  m.name = name;
  m.num_layers = layers;
  m.num_heads = 4;
  m.channels = channels;
  m.vocab_size = vocab;
  m.padded_vocab = pad_vocab(vocab);
  m.max_seq_len = max_seq_len;
  return m;
}

// A CPU, fp32 run of micro-batch B and sequence length T (everything else RunConfig's defaults).
inline RunConfig cpu_run(int micro_batch, int seq_len) {
  RunConfig r;
  r.device = Device::CPU;
  r.precision = Precision::FP32;
  r.micro_batch = micro_batch;
  r.seq_len = seq_len;
  return r;
}

// A model on a CPU backend of its own, with GPT-2's initialisation from `seed`.
struct CpuModel {
  CpuBackend backend;
  Model model;
  CpuModel(const MemoryPlan& plan, uint64_t seed) : model(plan, backend) { model.init_gpt2(seed); }
};

// <build>/test_tmp/<name>, emptied.
inline std::string tmp_dir(const std::string& name) {
  const std::string d = std::string(GPT2_BINARY_DIR) + "/test_tmp/" + name;
  std::system(("rm -rf '" + d + "' && mkdir -p '" + d + "'").c_str());
  return d;
}

// A whole file as bytes, and bytes as a whole file (for corrupting files on purpose).
inline std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}
inline void spit(const std::string& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(s.data(), static_cast<std::streamsize>(s.size()));
}

inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The what() of the exception f throws, or "" when it throws none.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace gpt2::testutil
