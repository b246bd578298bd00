// GPT-2 BPE tokenizer: loading encoder.json / vocab.bpe / llm.c .bin, encode and decode.
// See tokenizer.h for the contract.
#include "engine/data/tokenizer.h"

#include <unistd.h>

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
  if (env && *env) return env;
  // data/tokenizer of the working directory, else of the checkout the binary was built in (the
  // binary lives in build/ or build/<sub>/), so the tools work from any directory.
  auto has_files = [](const std::string& dir) { return ::access((dir + "/encoder.json").c_str(), R_OK) == 0; };
  if (has_files("data/tokenizer")) return "data/tokenizer";
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    std::string dir(exe, static_cast<size_t>(n));
    for (int up = 0; up < 3; ++up) {
      const size_t slash = dir.rfind('/');
      if (slash == std::string::npos || slash == 0) break;
      dir.resize(slash);
      if (has_files(dir + "/data/tokenizer")) return dir + "/data/tokenizer";
    }
  }
  return "data/tokenizer";
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

const char* const kWrongMergesHint =
    "the file is truncated, has lines missing, or belongs to another tokenizer than encoder.json; "
    "run data/fetch_tokenizer.sh for GPT-2's files";

// Special tokens such as "<|endoftext|>" are in encoder.json but made by no merge.
bool is_special_token(const std::string& t) {
  return t.size() > 4 && t.compare(0, 2, "<|") == 0 && t.compare(t.size() - 2, 2, "|>") == 0;
}

// The encoder.json spelling of a token's raw bytes (the inverse of unmap_token).
std::string map_token(const std::string& raw) {
  std::string s;
  for (const char ch : raw) {
    const uint32_t cp = byte_tables().to_cp[static_cast<unsigned char>(ch)];
    if (cp < 0x80) {
      s += char(cp);
    } else {
      s += char(0xC0 | (cp >> 6));
      s += char(0x80 | (cp & 0x3F));
    }
  }
  return s;
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
  } catch (const nlohmann::json::exception& e) {  // e.g. a number too large for a double
    throw FileError(encoder_json, "is not valid JSON: " + std::string(e.what()), kFetchTokenizerHint);
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
  // For the completeness check below: which merge makes each token.
  std::vector<int32_t> made_by(vocab, -1);
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
      const size_t made = size_t(mi->second);
      if (made_by[made] >= 0 || is_special_token(tk.tokens_[made])) {
        throw FileError(
            vocab_bpe,
            with_offset("merge " + std::to_string(rank) + " (\"" + std::string(line) + "\") makes token " +
                            std::to_string(made) +
                            (made_by[made] >= 0 ? ", which merge " + std::to_string(made_by[made]) + " already makes"
                                                : ", a special token"),
                        pos),
            kWrongMergesHint);
      }
      made_by[made] = rank;
      made_last[made] = rank;
      for (int32_t used : {li->second, ri->second}) {
        if (used_first[size_t(used)] == INT32_MAX) used_first[size_t(used)] = rank;
      }
      ++rank;
    }
    pos = end + 1;
  }
  if (rank == 0) throw FileError(vocab_bpe, "holds no merges", kFetchTokenizerHint);
  // Every token of encoder.json is a byte, a special token or the result of exactly one merge.
  // Merge results are distinct (checked above), so a count mismatch means lines are missing:
  // a file cut at a line boundary or with a line dropped would otherwise load and give ids
  // that differ from GPT-2's.
  size_t specials = 0;
  for (const std::string& t : tk.tokens_) specials += is_special_token(t) ? 1 : 0;
  const size_t expected = vocab - 256 - specials;
  if (size_t(rank) != expected) {
    size_t first_unmade = vocab;
    for (size_t id = 0; id < vocab && first_unmade == vocab; ++id) {
      if (made_by[id] < 0 && tk.tokens_[id].size() > 1 && !is_special_token(tk.tokens_[id])) first_unmade = id;
    }
    std::string msg = "holds " + std::to_string(rank) + " merges, but " + encoder_json + " (" + std::to_string(vocab) +
                      " tokens = 256 bytes + " + std::to_string(specials) + " special + one per merge) expects " +
                      std::to_string(expected);
    if (first_unmade < vocab) {
      msg += "; no merge makes token " + std::to_string(first_unmade) + " (\"" + map_token(tk.tokens_[first_unmade]) +
             "\")";
    }
    throw FileError(vocab_bpe, msg, kWrongMergesHint);
  }
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

namespace {

// The code point of the valid UTF-8 sequence of exactly `len` bytes at s[0..len), or -1 (bad
// lead or continuation byte, overlong form, surrogate, above U+10FFFF: what PCRE2 refuses).
int32_t utf8_at(const unsigned char* s, size_t len) {
  const unsigned c = s[0];
  if (c < 0x80) return len == 1 ? int32_t(c) : -1;
  size_t n;
  uint32_t cp;
  unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2, cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3, cp = c & 0x0F;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4, cp = c & 0x07;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  if (n != len || s[1] < lo || s[1] > hi) return -1;
  for (size_t i = 1; i < n; ++i) {
    if ((s[i] & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  return int32_t(cp);
}

// The pre-tokenizer's whitespace: Unicode White_Space (see pretokenizer.h).
bool is_white_space(int32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// Whether the valid UTF-8 character that starts at byte i (or ends just before byte i) is
// present and is not whitespace.
bool graphic_starting_at(std::string_view t, size_t i) {
  const auto* s = reinterpret_cast<const unsigned char*>(t.data());
  for (size_t len = 1; len <= 4 && i + len <= t.size(); ++len) {
    const int32_t cp = utf8_at(s + i, len);
    if (cp >= 0) return !is_white_space(cp);
  }
  return false;
}

bool graphic_ending_before(std::string_view t, size_t i) {
  const auto* s = reinterpret_cast<const unsigned char*>(t.data());
  for (size_t len = 1; len <= 4 && len <= i; ++len) {
    if ((s[i - len] & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    const int32_t cp = utf8_at(s + i - len, len);
    return cp >= 0 && !is_white_space(cp);
  }
  return false;
}

}  // namespace

bool Tokenizer::is_safe_cut(std::string_view text, size_t p) {
  if (p == 0 || p + 1 >= text.size() || text[p] != '\n') return false;
  return graphic_starting_at(text, p + 1) || graphic_ending_before(text, p);
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
