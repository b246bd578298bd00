// Shared by the fuzz targets that tokenize: GPT-2's tokenizer, loaded once from
// $GPT2_TOKENIZER_DIR (tests/fuzz/run.sh sets it) or the source tree's data/tokenizer.
#pragma once
#include <cstdlib>

#include "engine/data/tokenizer.h"

namespace gpt2::fuzz {

inline const Tokenizer& gpt2_tokenizer() {
  static const Tokenizer tk = [] {
    const char* env = std::getenv("GPT2_TOKENIZER_DIR");
    return Tokenizer::from_dir(env && *env ? env : GPT2_SOURCE_DIR "/data/tokenizer");
  }();
  return tk;
}

}  // namespace gpt2::fuzz
