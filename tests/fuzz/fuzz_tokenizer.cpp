// libFuzzer target: GPT-2 encode on arbitrary bytes (valid or invalid UTF-8). Checks that
// nothing crashes, that every id is in the vocab, that decode(encode(x)) == x, and that the
// cached and uncached paths agree. Needs the tokenizer files: $GPT2_TOKENIZER_DIR, else the
// source tree's data/tokenizer (data/fetch_tokenizer.sh).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "engine/data/bpe.h"
#include "engine/data/tokenizer.h"
#include "tests/fuzz/fuzz_gpt2_tokenizer.h"

namespace {

const gpt2::Tokenizer& tokenizer() { return gpt2::fuzz::gpt2_tokenizer(); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const gpt2::Tokenizer& tk = tokenizer();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  static gpt2::BpeCache cache(1 << 12);
  std::vector<int32_t> ids;
  tk.encode(text, ids, cache);
  for (int32_t id : ids) {
    if (id < 0 || id >= tk.vocab_size()) std::abort();
  }
  if (tk.decode(ids) != text) {
    std::fprintf(stderr, "decode(encode(x)) != x\n");
    std::abort();
  }
  if (tk.encode(text) != ids) {
    std::fprintf(stderr, "cached and fresh encodings differ\n");
    std::abort();
  }
  return 0;
}
