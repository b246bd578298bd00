// libFuzzer target: the text inputs the project reads besides the tokenizer's own encode/decode,
// on arbitrary bytes. Every input must either load or raise FileError naming the file; anything
// else (a crash, a sanitizer report, an out-of-memory, another exception type) is a bug.
//
// The first byte picks the reader (byte % 3):
//   0  the tokenizer files (Tokenizer::from_files): the rest is split at its first NUL byte into
//      encoder.json and vocab.bpe. A tokenizer that loads must round-trip a text exactly
//      (decode(encode(x)) == x for every byte string).
//   1  prepro's document reader on a .jsonl file (one document per line, field "text").
//   2  prepro's document reader on a plain file, in small pieces (the safe-cut carry logic).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "engine/data/documents.h"
#include "engine/data/tokenizer.h"
#include "engine/util/errors.h"
#include "tests/fuzz/fuzz_scratch.h"

namespace {

void check_tokenizer(const gpt2::Tokenizer& tk) {
  static const char kText[] = "Hello world, it's 2024!\n  caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd \xff end";
  const std::string text(kText, sizeof kText - 1);
  const std::vector<int32_t> ids = tk.encode(text);
  for (int32_t id : ids)
    if (id < 0 || id >= tk.vocab_size()) {
      std::fprintf(stderr, "encode gave id %d outside the vocabulary of %d\n", id, tk.vocab_size());
      std::abort();
    }
  if (tk.decode(ids) != text) {
    std::fprintf(stderr, "decode(encode(x)) != x\n");
    std::abort();
  }
}

void read_documents(const std::string& path, size_t piece_bytes) {
  gpt2::DocumentReader reader({path}, piece_bytes);
  std::string text;
  bool starts = false;
  uint64_t bytes = 0;
  for (int pieces = 0; reader.next(text, starts); ++pieces) {
    bytes += text.size();
    if (pieces > 1000000) {
      std::fprintf(stderr, "the document reader does not end\n");
      std::abort();
    }
  }
  (void)bytes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int selector = data[0] % 3;
  const std::string& dir = gpt2::fuzz::scratch_dir("text_inputs");
  const uint8_t* body = data + 1;
  const size_t n = size - 1;
  try {
    if (selector == 0) {
      const uint8_t* nul = static_cast<const uint8_t*>(std::memchr(body, 0, n));
      const size_t enc_size = nul ? static_cast<size_t>(nul - body) : n;
      const std::string enc = gpt2::fuzz::write_scratch(dir, "encoder.json", body, enc_size);
      const std::string bpe = gpt2::fuzz::write_scratch(dir, "vocab.bpe", nul ? nul + 1 : body + n,
                                                        nul ? n - enc_size - 1 : 0);
      if (enc.empty() || bpe.empty()) return 0;
      check_tokenizer(gpt2::Tokenizer::from_files(enc, bpe));
    } else {
      const std::string path = gpt2::fuzz::write_scratch(dir, selector == 1 ? "docs.jsonl" : "docs.txt", body, n);
      if (path.empty()) return 0;
      read_documents(path, selector == 1 ? size_t{1} << 20 : 64);
    }
  } catch (const gpt2::FileError& e) {
    gpt2::fuzz::check_names_file(e, dir);  // the expected outcome for malformed input
  }
  return 0;
}
