// GPT-2 BPE tokenizer: loading encoder.json / vocab.bpe / llm.c .bin, encode and decode.
// See tokenizer.h for the contract.
#include "engine/data/tokenizer.h"

#include <array>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <unordered_map>

#include "engine/data/pretokenizer.h"
#include "engine/util/errors.h"
#include "engine/util/file_io.h"

namespace gpt2 {

const char* const kFetchTokenizerHint = "run data/fetch_tokenizer.sh";

std::string default_tokenizer_dir() {
  const char* env = std::getenv("GPT2_TOKENIZER_DIR");
  return (env && *env) ? std::string(env) : std::string("data/tokenizer");
}

// ---- byte <-> unicode table ----------------------------------------------------------------
// Printable Latin-1 bytes ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) map to themselves; the
// other 68 bytes map, in byte order, to U+0100, U+0101, ...

namespace {

struct ByteTables {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 512> from_cp{};  // every mapped code point is below 512
  ByteTables() {
    from_cp.fill(-1);
    auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      to_cp[b] = printable(b) ? uint32_t(b) : next++;
      from_cp[to_cp[b]] = int16_t(b);
    }
  }
};

const ByteTables& byte_tables() {
  static const ByteTables t;
  return t;
}

// Decodes a byte-level token string (UTF-8 of mapped code points) to raw bytes. Returns false
// when it is not valid UTF-8 or holds a code point outside the table.
bool unmap_token(std::string_view s, std::string& out) {
  out.clear();
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    uint32_t cp;
    if (c < 0x80) {
      cp = c;
      i += 1;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < s.size() && (static_cast<unsigned char>(s[i + 1]) & 0xC0) == 0x80) {
      cp = (uint32_t(c & 0x1F) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3F);
      i += 2;
    } else {
      return false;  // every mapped code point is below U+0800: two bytes at most
    }
    const int b = unicode_to_byte(cp);
    if (b < 0) return false;
    out.push_back(char(b));
  }
  return true;
}

std::string with_offset(const std::string& what, size_t offset) {
  return what + " (byte offset " + std::to_string(offset) + ")";
}

}  // namespace

uint32_t byte_to_unicode(uint8_t b) { return byte_tables().to_cp[b]; }

int unicode_to_byte(uint32_t cp) { return cp < 512 ? byte_tables().from_cp[cp] : -1; }

// ---- loading ---------------------------------------------------------------------------------

Tokenizer Tokenizer::from_dir(const std::string& dir) { return from_files(dir + "/encoder.json", dir + "/vocab.bpe"); }

Tokenizer Tokenizer::from_files(const std::string& encoder_json, const std::string& vocab_bpe) {
  Tokenizer tk;
  const std::string json_text = read_file(encoder_json, kFetchTokenizerHint);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::parse_error& e) {
    throw FileError(encoder_json, with_offset("is not valid JSON: " + std::string(e.what()), e.byte),
                    kFetchTokenizerHint);
  }
  if (!j.is_object() || j.empty()) {
    throw FileError(encoder_json, "expected a JSON object mapping token strings to ids", kFetchTokenizerHint);
  }
  const size_t vocab = j.size();
  tk.tokens_.assign(vocab, std::string());
  std::vector<bool> seen(vocab, false);
  std::unordered_map<std::string, int32_t> id_of;
  id_of.reserve(vocab * 2);
  std::string raw;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_number_integer()) {
      throw FileError(encoder_json, "token \"" + it.key() + "\" has a non-integer id");
    }
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || uint64_t(id) >= vocab || seen[size_t(id)]) {
      throw FileError(encoder_json, "token \"" + it.key() + "\" has id " + std::to_string(id) + ", outside 0.." +
                                        std::to_string(vocab - 1) + " or used twice");
    }
    if (!unmap_token(it.key(), raw) || raw.empty()) {
      throw FileError(encoder_json, "token \"" + it.key() + "\" is not a byte-level BPE token string");
    }
    seen[size_t(id)] = true;
    tk.tokens_[size_t(id)] = raw;
    id_of.emplace(raw, int32_t(id));
  }
  for (int b = 0; b < 256; ++b) {
    auto it = id_of.find(std::string(1, char(b)));
    if (it == id_of.end()) {
      throw FileError(encoder_json, "has no token for byte " + std::to_string(b));
    }
    tk.byte_token_[b] = it->second;
  }
  auto eot = id_of.find("<|endoftext|>");
  tk.eot_ = eot == id_of.end() ? -1 : eot->second;

  // vocab.bpe: "#version: 0.2", then one merge "left right" per line, in rank order.
  const std::string bpe = read_file(vocab_bpe, kFetchTokenizerHint);
  size_t pos = bpe.find('\n');
  if (bpe.compare(0, 8, "#version") != 0 || pos == std::string::npos) {
    throw FileError(vocab_bpe, with_offset("does not start with a '#version' line", 0), kFetchTokenizerHint);
  }
  ++pos;
  // For the ordering check below: the ranks of the merges that make and use each token.
  std::vector<int32_t> made_last(vocab, -1), used_first(vocab, INT32_MAX);
  std::string left_raw, right_raw;
  int32_t rank = 0;
  while (pos < bpe.size()) {
    size_t end = bpe.find('\n', pos);
    if (end == std::string::npos) end = bpe.size();
    std::string_view line(bpe.data() + pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) {
      const size_t sp = line.find(' ');
      if (sp == std::string_view::npos || sp == 0 || sp + 1 >= line.size() ||
          line.find(' ', sp + 1) != std::string_view::npos) {
        throw FileError(vocab_bpe,
                        with_offset("merge " + std::to_string(rank) + " is not two space-separated tokens", pos));
      }
      std::string_view l = line.substr(0, sp), r = line.substr(sp + 1);
      if (!unmap_token(l, left_raw) || !unmap_token(r, right_raw)) {
        throw FileError(
            vocab_bpe, with_offset("merge " + std::to_string(rank) + " holds a character outside the byte table", pos));
      }
      auto li = id_of.find(left_raw), ri = id_of.find(right_raw), mi = id_of.find(left_raw + right_raw);
      if (li == id_of.end() || ri == id_of.end() || mi == id_of.end()) {
        throw FileError(vocab_bpe, with_offset("merge " + std::to_string(rank) + " (\"" + std::string(line) +
                                                   "\") uses or makes a token missing from " + encoder_json,
                                               pos));
      }
      try {
        tk.merges_.add(li->second, ri->second, rank, mi->second);
      } catch (const std::invalid_argument& e) {
        throw FileError(vocab_bpe, with_offset(e.what(), pos));
      }
      made_last[size_t(mi->second)] = rank;
      for (int32_t used : {li->second, ri->second}) {
        if (used_first[size_t(used)] == INT32_MAX) used_first[size_t(used)] = rank;
      }
      ++rank;
    }
    pos = end + 1;
  }
  if (rank == 0) throw FileError(vocab_bpe, "holds no merges", kFetchTokenizerHint);
  // The O(n log n) heap merge equals the reference rule only when no token is used by a merge
  // ranked before one that makes it (see bpe.h). GPT-2's list satisfies this; for a list that
  // does not, every word takes the reference path.
  bool ordered = true;
  for (size_t id = 0; id < vocab; ++id) ordered = ordered && used_first[id] > made_last[id];
  tk.merges_.set_heap_safe(ordered);
  tk.pre_ = std::make_shared<const Pretokenizer>();
  return tk;
}

Tokenizer Tokenizer::from_llmc_bin(const std::string& path) {
  const std::string bytes = read_file(path);
  if (bytes.empty()) throw FileError(path, "is empty; expected an llm.c tokenizer file");
  if (bytes.size() < 256 * sizeof(uint32_t)) {
    throw FileError(path,
                    "is " + std::to_string(bytes.size()) + " bytes, shorter than the 1024-byte llm.c tokenizer header");
  }
  uint32_t header[256];
  std::memcpy(header, bytes.data(), sizeof header);
  if (header[0] != kTokenizerMagic) {
    throw FileError(path, with_offset("bad magic " + std::to_string(header[0]) + ", expected " +
                                          std::to_string(kTokenizerMagic) + " (not an llm.c tokenizer file)",
                                      0));
  }
  if (header[1] != 1 && header[1] != 2) {
    throw FileError(path, with_offset("unsupported version " + std::to_string(header[1]) + ", expected 1 or 2", 4));
  }
  const uint32_t vocab = header[2];
  if (vocab == 0 || vocab > (1u << 24)) {
    throw FileError(path, with_offset("implausible vocab size " + std::to_string(vocab), 8));
  }
  Tokenizer tk;
  // Version 1 has no EOT field; llm.c's GPT-2 files use 50256.
  tk.eot_ = header[1] == 2 ? int(header[3]) : (vocab == kGpt2VocabSize ? kGpt2EotToken : -1);
  if (tk.eot_ >= int(vocab)) {
    throw FileError(
        path,
        with_offset("EOT id " + std::to_string(tk.eot_) + " is not below the vocab size " + std::to_string(vocab), 12));
  }
  tk.tokens_.resize(vocab);
  size_t off = sizeof header;
  for (uint32_t i = 0; i < vocab; ++i) {
    if (off >= bytes.size()) {
      throw FileError(path, with_offset("ends at token " + std::to_string(i) + " of " + std::to_string(vocab) +
                                            " (file is truncated)",
                                        off));
    }
    const size_t len = static_cast<unsigned char>(bytes[off]);
    if (len == 0) {
      throw FileError(path, with_offset("token " + std::to_string(i) + " has length 0", off));
    }
    if (off + 1 + len > bytes.size()) {
      throw FileError(path, with_offset("token " + std::to_string(i) + " needs " + std::to_string(len) +
                                            " bytes past the end of the file (truncated)",
                                        off));
    }
    tk.tokens_[i].assign(bytes.data() + off + 1, len);
    off += 1 + len;
  }
  if (off != bytes.size()) {
    throw FileError(path,
                    with_offset(std::to_string(bytes.size() - off) + " unexpected bytes after the last token", off));
  }
  for (int b = 0; b < 256; ++b) tk.byte_token_[b] = -1;
  return tk;
}

void Tokenizer::save_llmc_bin(const std::string& path) const {
  uint32_t header[256] = {};
  header[0] = kTokenizerMagic;
  header[1] = 2;
  header[2] = uint32_t(tokens_.size());
  header[3] = uint32_t(eot_ < 0 ? 0 : eot_);
  std::string out(reinterpret_cast<const char*>(header), sizeof header);
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const std::string& t = tokens_[i];
    if (t.empty() || t.size() > 255) {
      throw FileError(path, "token " + std::to_string(i) + " is " + std::to_string(t.size()) +
                                " bytes; the llm.c format stores 1 to 255");
    }
    out.push_back(char(uint8_t(t.size())));
    out += t;
  }
  write_file_atomic(path, out);
}

// ---- encode / decode -------------------------------------------------------------------------

const std::string& Tokenizer::token_bytes(int id) const {
  if (id < 0 || size_t(id) >= tokens_.size()) {
    throw std::out_of_range("token id " + std::to_string(id) + " is outside the vocab [0, " +
                            std::to_string(tokens_.size()) + ")");
  }
  return tokens_[size_t(id)];
}

void Tokenizer::encode(std::string_view text, std::vector<int32_t>& out, BpeCache& cache) const {
  if (!pre_) {
    throw std::logic_error(
        "this tokenizer was loaded from an llm.c .bin file, which has no merges: it can decode "
        "but not encode (load encoder.json and vocab.bpe instead)");
  }
  Pretokenizer::Cursor cursor(*pre_, text);
  std::vector<int32_t> symbols;
  PreToken pt;
  while (cursor.next(pt)) {
    const std::string_view word = text.substr(pt.begin, pt.size);
    if (word.size() == 1) {
      out.push_back(byte_token_[static_cast<unsigned char>(word[0])]);
      continue;
    }
    if (cache.lookup(word, out)) continue;
    symbols.resize(word.size());
    for (size_t i = 0; i < word.size(); ++i) {
      symbols[i] = byte_token_[static_cast<unsigned char>(word[i])];
    }
    const size_t before = out.size();
    bpe_merge(merges_, symbols.data(), symbols.size(), out);
    cache.insert(word, out.data() + before, out.size() - before);
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  BpeCache cache(size_t{1} << 16);
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 8);
  encode(text, out, cache);
  return out;
}

std::string Tokenizer::decode(const int32_t* ids, size_t n) const {
  std::string out;
  out.reserve(n * 4);
  for (size_t i = 0; i < n; ++i) {
    const int32_t id = ids[i];
    if (id < 0 || size_t(id) >= tokens_.size()) {
      throw std::out_of_range("token id " + std::to_string(id) + " at position " + std::to_string(i) +
                              " is outside the vocab [0, " + std::to_string(tokens_.size()) + ")");
    }
    out += tokens_[size_t(id)];
  }
  return out;
}

std::vector<size_t> Tokenizer::split_points(std::string_view text, size_t target_bytes) {
  std::vector<size_t> cuts;
  if (target_bytes == 0) return cuts;
  size_t p = target_bytes;
  while (p + 1 < text.size()) {
    p = text.find('\n', p);
    if (p == std::string_view::npos) break;
    if (is_safe_cut(text, p)) {
      cuts.push_back(p);
      p += target_bytes;
    } else {
      ++p;
    }
  }
  return cuts;
}

}  // namespace gpt2
