// libFuzzer target: the model weight readers (engine/model/model_io.h) on arbitrary bytes: the
// llm.c model .bin and Hugging Face .safetensors, whole files and the shape-only header read.
// Every input must either load or raise FileError naming the file; anything else (a crash, a
// sanitizer report, an out-of-memory, another exception type) is a bug. A loaded model must
// have a valid shape and exactly num_parameters(shape) values.
//
// The first byte picks the reader (byte % 5) and a --heads hint ((byte / 5) % 5, 0 = none):
//   0  load_llmc_model
//   1  load_llmc_model with the file cut or zero-padded to the size its header asks for (when
//      that is at most 4 MiB), so mutated headers reach the body and the bf16 conversion
//   2  read_model_config of a .bin
//   3  load_safetensors
//   4  read_model_config of a .safetensors
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "engine/model/llmc_model_file.h"
#include "engine/model/model_io.h"
#include "engine/util/errors.h"
#include "tests/fuzz/fuzz_scratch.h"

namespace {

// The llm.c file size the 1024-byte header asks for, or 0 when the header is not a valid one.
uint64_t llmc_size_for_header(const uint8_t* p, size_t size) {
  if (size < 1024) return 0;
  int32_t h[256];
  std::memcpy(h, p, sizeof h);
  try {
    return gpt2::llmc_model_file_bytes(h, gpt2::llmc_header_config("header", h));
  } catch (const gpt2::FileError&) {
    return 0;
  }
}

void check_loaded(const gpt2::ModelWeights& w) {
  gpt2::validate(w.config);  // a ConfigError here escapes and is reported as a bug
  if (static_cast<int64_t>(w.data.size()) != gpt2::num_parameters(w.config)) {
    std::fprintf(stderr, "loaded %zu values for a shape of %lld parameters\n", w.data.size(),
                 static_cast<long long>(gpt2::num_parameters(w.config)));
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int selector = data[0] % 5;
  const int heads_hint = (data[0] / 5) % 5;
  const uint8_t* body = data + 1;
  size_t n = size - 1;
  const std::string& dir = gpt2::fuzz::scratch_dir("model");
  std::vector<uint8_t> fitted;
  if (selector == 1) {
    const uint64_t want = llmc_size_for_header(body, n);
    if (want != 0 && want <= (4u << 20)) {
      fitted.assign(body, body + std::min<uint64_t>(n, want));
      fitted.resize(want, 0);
      body = fitted.data();
      n = fitted.size();
    }
  }
  const bool st = selector >= 3;
  const std::string path = gpt2::fuzz::write_scratch(dir, st ? "model.safetensors" : "model.bin", body, n);
  if (path.empty()) return 0;
  try {
    switch (selector) {
      case 0:
      case 1: check_loaded(gpt2::load_llmc_model(path)); break;
      case 2: {
        const gpt2::ModelConfig c = gpt2::read_model_config(path, heads_hint);
        if (heads_hint == 0) gpt2::validate(c);  // a hint overrides the heads unchecked, by design
        break;
      }
      case 3: check_loaded(gpt2::load_safetensors(path, heads_hint)); break;
      default: gpt2::validate(gpt2::read_model_config(path, heads_hint)); break;
    }
  } catch (const gpt2::FileError& e) {
    gpt2::fuzz::check_names_file(e, dir);  // the expected outcome for malformed input
  }
  return 0;
}
