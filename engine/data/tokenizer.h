// GPT-2's byte-level BPE tokenizer: encode text to token ids and decode ids to bytes, with the
// exact ids of OpenAI's encoder (and of the npm gpt-3-encoder port; see pretokenizer.h for the
// two whitespace code points where that port differs).
//
//   text --pre-tokenizer regex--> words --bytes--> initial ids --BPE merges by rank--> ids
//
// Files:
//   encoder.json + vocab.bpe  (data/fetch_tokenizer.sh puts them in data/tokenizer/): full
//                              tokenizer, encode and decode;
//   llm.c tokenizer .bin       (header 256 x uint32: [0]=20240328, [1]=2, [2]=vocab, [3]=EOT;
//                              then per token a 1-byte length and the raw bytes): decode only,
//                              since the format carries no merges.
//
// `<|endoftext|>` (id 50256) is never produced by encode(): the string written in text is
// encoded as ordinary text, as GPT-2 does. Callers insert eot_token() between documents.
//
// Invalid UTF-8 never crashes and never loses bytes: each run of invalid bytes is encoded as its
// own word with the byte-level vocabulary, so decode(encode(x)) == x for every byte string x.
//
// Thread safety: a Tokenizer is immutable after loading and may be shared by threads; each
// thread passes its own BpeCache to encode().
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/data/bpe.h"

namespace gpt2 {

class Pretokenizer;

constexpr uint32_t kTokenizerMagic = 20240328;  // llm.c tokenizer .bin
constexpr int kGpt2EotToken = 50256;
constexpr int kGpt2VocabSize = 50257;

// Where tokenizer files are looked for by default: $GPT2_TOKENIZER_DIR, else data/tokenizer of the
// working directory, else data/tokenizer of the checkout the binary was built in.
std::string default_tokenizer_dir();
// The HINT for a missing tokenizer file.
extern const char* const kFetchTokenizerHint;  // "run data/fetch_tokenizer.sh"

// GPT-2's reversible byte <-> printable code point table (bytes_to_unicode in encoder.py).
uint32_t byte_to_unicode(uint8_t b);
// The inverse; returns -1 for a code point that no byte maps to.
int unicode_to_byte(uint32_t code_point);

class Tokenizer {
 public:
  // Loads encoder.json and vocab.bpe. Throws FileError (path, byte offset or key, and a HINT
  // naming data/fetch_tokenizer.sh when a file is missing). The two files must agree: every
  // token of encoder.json is one of the 256 bytes, a special token ("<|...|>") or the result of
  // exactly one merge, so vocab.bpe holds vocab - 256 - specials merges (50,000 for GPT-2); a
  // vocab.bpe that is cut short or misses a line is refused with the expected and found counts.
  static Tokenizer from_files(const std::string& encoder_json, const std::string& vocab_bpe);
  static Tokenizer from_dir(const std::string& dir = default_tokenizer_dir());
  // Loads an llm.c tokenizer .bin (decode only). Throws FileError with the byte offset.
  static Tokenizer from_llmc_bin(const std::string& path);
  // Writes the llm.c tokenizer .bin (version 2), so llm.c's tools can decode our shards.
  void save_llmc_bin(const std::string& path) const;

  bool can_encode() const { return pre_ != nullptr; }
  int vocab_size() const { return int(tokens_.size()); }
  int eot_token() const { return eot_; }
  // The raw bytes of a token. Throws std::out_of_range for a bad id.
  const std::string& token_bytes(int id) const;

  // Appends the ids of `text` to `out`. `cache` speeds up repeated words; pass one per thread.
  // Throws std::logic_error when the tokenizer was loaded from a .bin (no merges).
  void encode(std::string_view text, std::vector<int32_t>& out, BpeCache& cache) const;
  std::vector<int32_t> encode(std::string_view text) const;  // with a fresh cache

  // Concatenates the tokens' bytes. Throws std::out_of_range naming the position of an id
  // outside [0, vocab_size()).
  std::string decode(const int32_t* ids, size_t n) const;
  std::string decode(const std::vector<int32_t>& ids) const { return decode(ids.data(), ids.size()); }

  // Byte offsets where `text` can be cut so that encoding the pieces separately and
  // concatenating gives exactly encode(text). A cut goes before a '\n' that has a character
  // other than whitespace (valid UTF-8, any script) directly before or after it: that '\n'
  // always starts a pre-token and the pre-token before it never reaches past it, so an indented
  // line, a line in any language, or a line after text all give cut points. Returns cut points
  // roughly every `target_bytes` (none in short texts).
  static std::vector<size_t> split_points(std::string_view text, size_t target_bytes);
  // Whether `text` may be cut before byte p by the rule above (needs text[p + 1]).
  static bool is_safe_cut(std::string_view text, size_t p);

 private:
  Tokenizer() = default;
  std::vector<std::string> tokens_;  // id -> raw bytes
  int eot_ = -1;
  int32_t byte_token_[256] = {};  // byte -> id of the single-byte token
  BpeMerges merges_;
  std::shared_ptr<const Pretokenizer> pre_;  // null for a decode-only tokenizer
};

}  // namespace gpt2
