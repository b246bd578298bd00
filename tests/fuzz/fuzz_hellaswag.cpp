// libFuzzer target: the HellaSwag readers (engine/train/hellaswag.h) on arbitrary bytes: llm.c's
// eval .bin and the jsonl (encoded with the GPT-2 tokenizer: $GPT2_TOKENIZER_DIR, else the
// source tree's data/tokenizer). Every input must either load or raise FileError naming the
// file; anything else (a crash, a sanitizer report, an out-of-memory, another exception type)
// is a bug. Loaded examples must have at least one non-empty ending, a label that indexes the
// endings, and tokens in the vocabulary.
//
// The first byte picks the reader (byte % 3): 0 load_eval_bin, 1 load_hellaswag_jsonl,
// 2 load_hellaswag (which picks by content).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/data/tokenizer.h"
#include "tests/fuzz/fuzz_gpt2_tokenizer.h"
#include "engine/train/hellaswag.h"
#include "engine/util/errors.h"
#include "tests/fuzz/fuzz_scratch.h"

namespace {

const gpt2::Tokenizer& tokenizer() { return gpt2::fuzz::gpt2_tokenizer(); }

void fail(const char* what) {
  std::fprintf(stderr, "loaded example: %s\n", what);
  std::abort();
}

void check_loaded(const std::vector<gpt2::MultipleChoiceExample>& examples, int vocab) {
  for (const auto& e : examples) {
    if (e.endings.empty()) fail("no endings");
    if (e.label < 0 || e.label >= static_cast<int>(e.endings.size())) fail("label out of range");
    for (int32_t t : e.context)
      if (t < 0 || t >= vocab) fail("context token out of range");
    for (const auto& end : e.endings) {
      if (end.empty()) fail("empty ending");
      for (int32_t t : end)
        if (t < 0 || t >= vocab) fail("ending token out of range");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const gpt2::Tokenizer& tk = tokenizer();
  const int selector = data[0] % 3;
  const std::string& dir = gpt2::fuzz::scratch_dir("hellaswag");
  const std::string path =
      gpt2::fuzz::write_scratch(dir, selector == 0 ? "eval.bin" : "eval.jsonl", data + 1, size - 1);
  if (path.empty()) return 0;
  try {
    switch (selector) {
      case 0: check_loaded(gpt2::load_eval_bin(path), 65536); break;
      case 1: check_loaded(gpt2::load_hellaswag_jsonl(path, tk), tk.vocab_size()); break;
      default: check_loaded(gpt2::load_hellaswag(path, &tk), 65536); break;
    }
  } catch (const gpt2::FileError& e) {
    gpt2::fuzz::check_names_file(e, dir);  // the expected outcome for malformed input
  }
  return 0;
}
