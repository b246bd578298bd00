// GPT-2's pre-tokenizer: the regex that cuts text into words before byte-level BPE runs on each
// word separately. It is OpenAI's pattern,
//
//     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// run through PCRE2 (JIT-compiled) in UTF mode with Unicode letter and number classes.
//
// Whitespace. `\s` is spelled out as the Unicode White_Space set (what OpenAI's Python `regex`
// module, tiktoken and Hugging Face use): \t \n \v \f \r, space, U+0085, U+00A0, U+1680,
// U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000. The npm gpt-3-encoder port differs on
// two code points only: its JavaScript `\s` also counts U+FEFF and does not count U+0085.
//
// Invalid UTF-8. PCRE2 is compiled with PCRE2_MATCH_INVALID_UTF, so bytes that are not valid
// UTF-8 never match and act as boundaries. Each maximal run of invalid bytes becomes a pre-token
// of its own (flagged `valid_utf8 = false`), which BPE encodes with the byte-level vocabulary
// like any other bytes. Nothing is dropped or replaced, so decode(encode(x)) == x for any bytes.
#pragma once
#include <cstddef>
#include <memory>
#include <string_view>

namespace gpt2 {

struct PreToken {
  size_t begin = 0;  // byte offset in the text
  size_t size = 0;   // bytes
  bool valid_utf8 = true;
};

class Pretokenizer {
 public:
  Pretokenizer();  // compiles the pattern; throws std::runtime_error if PCRE2 refuses it
  ~Pretokenizer();
  Pretokenizer(const Pretokenizer&) = delete;
  Pretokenizer& operator=(const Pretokenizer&) = delete;

  // Walks the pre-tokens of one text in order. The cursor owns its PCRE2 match data, so any
  // number of cursors (one per thread) may share one Pretokenizer. `text` must outlive it.
  class Cursor {
   public:
    Cursor(const Pretokenizer& pre, std::string_view text);
    ~Cursor();
    Cursor(const Cursor&) = delete;
    Cursor& operator=(const Cursor&) = delete;
    // Writes the next pre-token and returns true, or returns false at the end of the text.
    bool next(PreToken& out);

   private:
    const Pretokenizer& pre_;
    std::string_view text_;
    size_t pos_ = 0;
    void* match_data_ = nullptr;  // pcre2_match_data_8*
    PreToken pending_;            // a match found after a run of invalid bytes
    bool has_pending_ = false;
  };

 private:
  void* code_ = nullptr;  // pcre2_code_8*
  bool jit_ = false;
};

}  // namespace gpt2
