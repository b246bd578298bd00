// GPT-2's pre-tokenizer regex on PCRE2. See pretokenizer.h for the pattern and the rules for
// whitespace and invalid UTF-8.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "engine/data/pretokenizer.h"

#include <pcre2.h>

#include <stdexcept>
#include <string>

namespace gpt2 {
namespace {

// Unicode White_Space, written out so the set does not depend on PCRE2_UCP's idea of \s
// (which adds U+180E) or on JavaScript's (which adds U+FEFF and drops U+0085).
#define GPT2_WS                                                                               \
  "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}" \
  "\\x{205F}\\x{3000}"

const char kPattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d"
    "| ?\\p{L}+"
    "| ?\\p{N}+"
    "| ?[^" GPT2_WS
    "\\p{L}\\p{N}]+"
    "|[" GPT2_WS "]+(?![^" GPT2_WS
    "])"
    "|[" GPT2_WS "]+";

#undef GPT2_WS

pcre2_code* as_code(void* p) { return static_cast<pcre2_code*>(p); }
pcre2_match_data* as_md(void* p) { return static_cast<pcre2_match_data*>(p); }

}  // namespace

Pretokenizer::Pretokenizer() {
  int err = 0;
  PCRE2_SIZE err_off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPattern), PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &err, &err_off, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw std::runtime_error("pre-tokenizer regex failed to compile at offset " + std::to_string(err_off) + ": " +
                             reinterpret_cast<char*>(msg));
  }
  code_ = code;
  // JIT is a large speed-up; without it (a PCRE2 built without JIT) matching still works.
  jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
}

Pretokenizer::~Pretokenizer() { pcre2_code_free(as_code(code_)); }

Pretokenizer::Cursor::Cursor(const Pretokenizer& pre, std::string_view text) : pre_(pre), text_(text) {
  match_data_ = pcre2_match_data_create_from_pattern(as_code(pre.code_), nullptr);
  if (!match_data_) throw std::bad_alloc();
}

Pretokenizer::Cursor::~Cursor() { pcre2_match_data_free(as_md(match_data_)); }

bool Pretokenizer::Cursor::next(PreToken& out) {
  if (has_pending_) {
    out = pending_;
    has_pending_ = false;
    pos_ = out.begin + out.size;
    return true;
  }
  if (pos_ >= text_.size()) return false;

  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text_.data());
  pcre2_code* code = as_code(pre_.code_);
  pcre2_match_data* md = as_md(match_data_);
  int rc = pre_.jit_ ? pcre2_jit_match(code, subject, text_.size(), pos_, 0, md, nullptr)
                     : pcre2_match(code, subject, text_.size(), pos_, 0, md, nullptr);
  if (rc == PCRE2_ERROR_NOMATCH) {
    // Only invalid bytes are left: every valid character matches one of the alternatives.
    out = PreToken{pos_, text_.size() - pos_, false};
    pos_ = text_.size();
    return true;
  }
  if (rc < 0) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(rc, msg, sizeof msg);
    throw std::runtime_error("pre-tokenizer match failed at byte " + std::to_string(pos_) + ": " +
                             reinterpret_cast<char*>(msg));
  }
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
  const size_t begin = ov[0], end = ov[1];
  if (end <= begin) {
    // No alternative can match the empty string; guard against a silent infinite loop anyway.
    throw std::logic_error("pre-tokenizer produced an empty match");
  }
  PreToken match{begin, end - begin, true};
  if (begin > pos_) {
    // PCRE2 skipped bytes that are not valid UTF-8: hand them out first, as one pre-token.
    out = PreToken{pos_, begin - pos_, false};
    pending_ = match;
    has_pending_ = true;
    pos_ = begin;
    return true;
  }
  out = match;
  pos_ = end;
  return true;
}

}  // namespace gpt2
