// GPT-2 tokenizer: ids against the npm gpt-3-encoder reference (run with node), round trips,
// invalid UTF-8, the llm.c tokenizer .bin, BPE internals and file errors.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <random>
#include <sstream>
#include <unordered_map>

#include "engine/data/bpe.h"
#include "engine/data/pretokenizer.h"
#include "engine/data/tokenizer.h"
#include "engine/util/errors.h"
#include "tests/data_test_util.h"

using gpt2::Tokenizer;
using namespace gpt2_test;

namespace {

// Appends code point cp as UTF-8.
void put_utf8(std::string& s, uint32_t cp) {
  if (cp < 0x80) {
    s += char(cp);
  } else if (cp < 0x800) {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += char(0xE0 | (cp >> 12));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  } else {
    s += char(0xF0 | (cp >> 18));
    s += char(0x80 | ((cp >> 12) & 0x3F));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  }
}

// encoder.json's 256 byte tokens: the byte-to-unicode string of byte b has id b.
nlohmann::json byte_vocab() {
  nlohmann::json enc;
  for (int b = 0; b < 256; ++b) {
    std::string k;
    put_utf8(k, gpt2::byte_to_unicode(uint8_t(b)));
    enc[k] = b;
  }
  return enc;
}

// Random valid UTF-8 mixing ASCII words, spaces, digits, punctuation, Latin-1, Greek, CJK,
// combining marks and emoji. Avoids U+0085 and U+FEFF, where the JS port's \s differs from
// GPT-2's (tested separately), and surrogates.
std::string random_text(std::mt19937& rng, size_t n_chars) {
  static const uint32_t pools[][2] = {{'a', 'z'},       {'A', 'Z'},       {'0', '9'},         {' ', ' '},
                                      {'!', '/'},       {'\n', '\n'},     {0xA0, 0xFF},       {0x391, 0x3C9},
                                      {0x4E00, 0x4E80}, {0x300, 0x36F},   {0x1F600, 0x1F64F}, {'\'', '\''},
                                      {'\t', '\t'},     {0x3000, 0x3002}, {0x660, 0x669}};
  std::string s;
  for (size_t i = 0; i < n_chars; ++i) {
    const auto& p = pools[rng() % (sizeof pools / sizeof pools[0])];
    put_utf8(s, p[0] + uint32_t(rng() % (p[1] - p[0] + 1)));
  }
  return s;
}

std::vector<std::string> hard_strings() {
  std::vector<std::string> v = {
      // contractions (GPT-2 only splits lower-case ones)
      "I'm here, you're there, they've gone, he'll stay, she'd know, it's fine, don't, can't",
      "IT'S LOUD, I'M SURE",
      "rock'n'roll O'Neil's 'quoted' ''double'' '''",
      "'s 't 're 've 'm 'll 'd",
      // digits
      "123 1234567890 3.14159 2024-01-01 $1,000,000.00 x1y2z3 42nd",
      " 42  007",
      "١٢٣ ½ Ⅻ ²³",
      // whitespace runs
      "a    b",
      "   leading",
      "trailing   ",
      "\n\n\n",
      "tab\t\tsep",
      "mixed \t\n \t end",
      std::string(1000, ' ') + "x",
      std::string(300, '\n'),
      "line\r\nline\r\n",
      "a\u00a0b \u00a0 c",
      "wide\u3000space\u2028sep\u2029par",
      "  \t  \n  ",
      // emoji
      "😀",
      "👨‍👩‍👧‍👦 family",
      "🇯🇵 flag",
      "I ❤️ NY",
      "🤖🤖🤖 robots!!",
      "emoji😀in😀words",
      // CJK and other scripts
      "你好，世界！",
      "日本語のテキストです。カタカナ",
      "한국어 텍스트",
      "Ελληνικά Русский עברית العربية",
      // combining marks
      "e\u0301 cafe\u0301 café",
      "Z\u0351\u0345a\u0344l\u034cg\u0350o",
      "\u0915\u094d\u0937\u093f",
      "a\u0300\u0301\u0302\u0303\u0304",
      // <|endoftext|> written in text is ordinary text
      "<|endoftext|>",
      "Hello<|endoftext|>world",
      " <|endoftext|> \n<|endoftext|>",
      // punctuation, code, URLs, control characters
      "!!!???...---",
      "https://example.com/path?q=1&r=2#frag",
      "for (int i = 0; i < n; ++i) {}",
      "∑∫√∞ ≤ ≥",
      std::string("nul\0byte", 8),
      "\x01\x02\x7f ctrl",
      "",
      "a",
      " ",
      "Ġ Ċ ĠĠ",
      // long words: the heap merge path (> 48 bytes)
      std::string(500, 'a'),
      "pneumonoultramicroscopicsilicovolcanoconiosis" + std::string(400, 'z'),
  };
  std::string rep;
  for (int i = 0; i < 20; ++i) rep += "pneumonoultramicroscopicsilicovolcanoconiosis";
  v.push_back(rep);
  std::mt19937 rng(1234);
  for (int i = 0; i < 150; ++i) v.push_back(random_text(rng, 1 + rng() % 120));
  std::string long_letters;
  for (int i = 0; i < 3000; ++i) long_letters += char('a' + rng() % 26);
  v.push_back(long_letters);
  return v;
}

int byte_token(const Tokenizer& tk, unsigned char b) {
  for (int id = 0; id < 256; ++id) {
    if (tk.token_bytes(id) == std::string(1, char(b))) return id;
  }
  return -1;
}

std::vector<std::string> pretokens(const std::string& text) {
  static gpt2::Pretokenizer pre;
  gpt2::Pretokenizer::Cursor cur(pre, text);
  gpt2::PreToken pt;
  std::vector<std::string> out;
  while (cur.next(pt)) out.push_back(text.substr(pt.begin, pt.size));
  return out;
}

std::vector<int32_t> concat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace

TEST_CASE("tokenizer: GPT-2's byte-to-unicode table", "[tokenizer]") {
  // Printable bytes map to themselves; the rest to U+0100.. in byte order.
  CHECK(gpt2::byte_to_unicode('!') == '!');
  CHECK(gpt2::byte_to_unicode(0) == 0x100);
  CHECK(gpt2::byte_to_unicode('\n') == 0x10A);  // "Ċ"
  CHECK(gpt2::byte_to_unicode(' ') == 0x120);   // "Ġ"
  CHECK(gpt2::byte_to_unicode(0xAD) == 0x143);  // the last non-printable byte
  std::vector<bool> seen(512, false);
  for (int b = 0; b < 256; ++b) {
    const uint32_t cp = gpt2::byte_to_unicode(uint8_t(b));
    REQUIRE(cp < 512);
    CHECK_FALSE(seen[cp]);
    seen[cp] = true;
    CHECK(gpt2::unicode_to_byte(cp) == b);
  }
  CHECK(gpt2::unicode_to_byte(0x7FF) == -1);
}

TEST_CASE("tokenizer: loads GPT-2's vocabulary and merges", "[tokenizer]") {
  const Tokenizer& tk = gpt2_tokenizer();
  CHECK(tk.vocab_size() == 50257);
  CHECK(tk.eot_token() == 50256);
  CHECK(tk.token_bytes(50256) == "<|endoftext|>");
  CHECK(tk.token_bytes(262) == " the");
  CHECK(tk.token_bytes(198) == "\n");
  CHECK(tk.encode("Hello world") == std::vector<int32_t>{15496, 995});
  CHECK(tk.encode(" the") == std::vector<int32_t>{262});
  CHECK_THROWS_AS(tk.token_bytes(50257), std::out_of_range);
}

TEST_CASE("tokenizer: ids equal the JS reference encoder on hard strings", "[tokenizer][reference]") {
  const Tokenizer& tk = gpt2_tokenizer();
  const std::vector<std::string> inputs = hard_strings();
  const auto expected = js_reference_encode(inputs, "strings", 2);
  size_t mismatches = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::vector<int32_t> got = tk.encode(inputs[i]);
    if (got != expected[i]) {
      ++mismatches;
      UNSCOPED_INFO("input " << i << " (" << inputs[i].size() << " bytes): '" << inputs[i].substr(0, 80) << "'");
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("tokenizer: ids equal the JS reference encoder on every Brown corpus file", "[tokenizer][reference][brown]") {
  const Tokenizer& tk = gpt2_tokenizer();
  const std::vector<std::string> files = brown_text_files();
  const auto expected = js_reference_encode(files, "files", 2);
  gpt2::BpeCache cache;
  size_t mismatches = 0, tokens = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    std::vector<int32_t> got;
    tk.encode(gpt2::read_file(files[i]), got, cache);
    tokens += got.size();
    if (got != expected[i]) {
      ++mismatches;
      UNSCOPED_INFO("differs from the reference: " << files[i]);
    }
  }
  CHECK(mismatches == 0);
  CHECK(tokens > 1'000'000);
}

TEST_CASE("tokenizer: <|endoftext|> in text is encoded as ordinary text", "[tokenizer]") {
  const Tokenizer& tk = gpt2_tokenizer();
  const std::string s = "a<|endoftext|>b <|endoftext|>";
  const auto ids = tk.encode(s);
  CHECK(std::find(ids.begin(), ids.end(), 50256) == ids.end());
  CHECK(tk.decode(ids) == s);
  // The special token still decodes to its text.
  CHECK(tk.decode(std::vector<int32_t>{50256}) == "<|endoftext|>");
}

TEST_CASE("tokenizer: whitespace is Unicode White_Space (U+0085 yes, U+FEFF no)", "[tokenizer]") {
  // GPT-2's Python regex: U+0085 is \s and U+FEFF is not. The JS port has it the other way
  // round, so these two are checked against the Python splits, not against node.
  CHECK(pretokens("a \u0085b") == std::vector<std::string>{"a", " ", "\u0085", "b"});
  CHECK(pretokens("a \ufeffb") == std::vector<std::string>{"a", " \ufeff", "b"});
  CHECK(pretokens("x\u0085\u0085 y") == std::vector<std::string>{"x", "\u0085\u0085", " y"});
  CHECK(pretokens("a\u180e b") == std::vector<std::string>{"a", "\u180e", " b"});
  // And the ordinary cases.
  // A whitespace run before a word leaves its last character to stand alone.
  CHECK(pretokens("I'm  fine\n\nok") == std::vector<std::string>{"I", "'m", " ", " fine", "\n", "\n", "ok"});
  CHECK(pretokens("x   \ny") == std::vector<std::string>{"x", "   ", "\n", "y"});
}

TEST_CASE("tokenizer: invalid UTF-8 is encoded byte-exactly and never crashes", "[tokenizer]") {
  const Tokenizer& tk = gpt2_tokenizer();
  const int ff = byte_token(tk, 0xFF), x80 = byte_token(tk, 0x80);
  REQUIRE(ff >= 0);
  REQUIRE(x80 >= 0);
  // The documented rule: a run of invalid bytes is a pre-token of its own, between the valid
  // runs around it, which encode as they would alone.
  CHECK(tk.encode("abc\xff"
                  "def") == concat({tk.encode("abc"), {ff}, tk.encode("def")}));
  CHECK(tk.encode("hel\x80lo") == concat({tk.encode("hel"), {x80}, tk.encode("lo")}));
  CHECK(pretokens("ok \xc0\xaf\xed\xa0\x80 end\xe4\xbd") ==
        std::vector<std::string>{"ok", " ", "\xc0\xaf\xed\xa0\x80", " end", "\xe4\xbd"});
  // Overlong, surrogate, truncated, stray continuation, bytes 0xF8..0xFF: round trip exactly.
  for (const std::string s : {"\xc0\xaf", "\xed\xa0\x80", "\xe4\xbd", "\x80\x80\x80", "\xf8\xff\xfe", "caf\xe9 au lait",
                              "\xf4\x90\x80\x80 beyond U+10FFFF"}) {
    CHECK(tk.decode(tk.encode(s)) == s);
  }
  std::mt19937 rng(99);
  for (int i = 0; i < 3000; ++i) {
    std::string s(rng() % 200, '\0');
    for (char& c : s) c = char(rng() % 256);
    const auto ids = tk.encode(s);
    REQUIRE(tk.decode(ids) == s);
  }
}

TEST_CASE("tokenizer: decode(encode(x)) == x for valid UTF-8", "[tokenizer]") {
  const Tokenizer& tk = gpt2_tokenizer();
  for (const std::string& s : hard_strings()) CHECK(tk.decode(tk.encode(s)) == s);
  std::mt19937 rng(7);
  for (int i = 0; i < 500; ++i) {
    const std::string s = random_text(rng, rng() % 400);
    REQUIRE(tk.decode(tk.encode(s)) == s);
  }
  const auto files = brown_text_files();
  for (size_t i = 0; i < files.size(); i += 25) {
    const std::string text = gpt2::read_file(files[i]);
    CHECK(tk.decode(tk.encode(text)) == text);
  }
}

TEST_CASE("tokenizer: encoding in pieces at split points equals encoding whole", "[tokenizer]") {
  const Tokenizer& tk = gpt2_tokenizer();
  std::string text;
  const auto files = brown_text_files();
  for (size_t i = 0; i < files.size(); i += 10) text += gpt2::read_file(files[i]) + "\n";
  text += "tail with  \n\n  spaces\nand\n\nLetters";
  const auto whole = tk.encode(text);
  for (size_t target : {size_t(1), size_t(777), size_t(65536)}) {
    const auto cuts = Tokenizer::split_points(text, target);
    CHECK(!cuts.empty());
    std::vector<int32_t> pieces;
    gpt2::BpeCache cache;
    size_t begin = 0;
    for (size_t c : cuts) {
      REQUIRE(c > begin);
      tk.encode(std::string_view(text).substr(begin, c - begin), pieces, cache);
      begin = c;
    }
    tk.encode(std::string_view(text).substr(begin), pieces, cache);
    CHECK(pieces == whole);
  }
  CHECK(Tokenizer::split_points("short", 1 << 20).empty());
}

TEST_CASE("bpe: heap merge equals the reference rule, and long words are not quadratic", "[tokenizer]") {
  const Tokenizer& tk = gpt2_tokenizer();
  // Rebuild the merge table through the public encode path: compare the two algorithms on the
  // byte tokens of random words (letters and spaces give many merges).
  gpt2::BpeMerges merges;
  {
    // Parse vocab.bpe again to get a table of our own.
    const std::string bpe = gpt2::read_file(src_path("data/tokenizer/vocab.bpe"));
    std::unordered_map<std::string, int32_t> id_of;
    for (int id = 0; id < tk.vocab_size(); ++id) id_of[tk.token_bytes(id)] = id;
    auto unmap = [](const std::string& s) {
      std::string raw;
      for (size_t i = 0; i < s.size();) {
        uint32_t cp = uint8_t(s[i]);
        if (cp >= 0x80) {
          cp = ((cp & 0x1F) << 6) | (uint8_t(s[i + 1]) & 0x3F);
          i += 2;
        } else {
          i += 1;
        }
        raw += char(gpt2::unicode_to_byte(cp));
      }
      return raw;
    };
    std::istringstream in(bpe);
    std::string line;
    std::getline(in, line);
    int32_t rank = 0;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const size_t sp = line.find(' ');
      const std::string l = unmap(line.substr(0, sp)), r = unmap(line.substr(sp + 1));
      merges.add(id_of.at(l), id_of.at(r), rank++, id_of.at(l + r));
    }
    merges.set_heap_safe(true);
  }
  std::mt19937 rng(5);
  const char alphabet[] = "aeioulnrst etaoin";
  for (int i = 0; i < 400; ++i) {
    const size_t n = 2 + rng() % 300;
    std::vector<int32_t> sym(n);
    for (auto& s : sym) s = int32_t(tk.encode(std::string(1, alphabet[rng() % 17]))[0]);
    std::vector<int32_t> a, b;
    gpt2::bpe_merge_naive(merges, sym.data(), n, a);
    gpt2::bpe_merge_heap(merges, sym.data(), n, b);
    REQUIRE(a == b);
    REQUIRE(tk.decode(a) == tk.decode(sym));
  }
  // A 1 MB word: O(n log n) takes well under a second; a quadratic loop would take minutes.
  std::string word;
  for (int i = 0; i < 1'000'000; ++i) word += char('a' + rng() % 26);
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = tk.encode(word);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(tk.decode(ids) == word);
  CHECK(s < 10.0);
  const auto spaces = tk.encode(std::string(1'000'000, ' '));
  CHECK(tk.decode(spaces) == std::string(1'000'000, ' '));
}

TEST_CASE("bpe: the per-word cache gives the same ids and stays bounded", "[tokenizer]") {
  const Tokenizer& tk = gpt2_tokenizer();
  std::mt19937 rng(11);
  std::string text;
  for (int i = 0; i < 200; ++i) text += random_text(rng, 50) + " ";
  gpt2::BpeCache tiny(16);  // cleared again and again
  std::vector<int32_t> a, b;
  tk.encode(text, a, tiny);
  tk.encode(text, b, tiny);
  CHECK(a == tk.encode(text));
  CHECK(b == a);
  CHECK(tiny.size() <= 16);
}

// The tokenizer saved as an llm.c tokenizer .bin in a fresh scratch folder `name`; its path.
static std::string saved_llmc_tokenizer(const Tokenizer& tk, const std::string& name) {
  const std::string path = scratch_dir(name) + "/gpt2_tokenizer.bin";
  tk.save_llmc_bin(path);
  return path;
}

TEST_CASE("tokenizer: llm.c tokenizer .bin round trip", "[tokenizer]") {
  const Tokenizer& tk = gpt2_tokenizer();
  const std::string path = saved_llmc_tokenizer(tk, "tokenizer_bin");
  const std::string bytes = gpt2::read_file(path);
  uint32_t header[256];
  REQUIRE(bytes.size() > sizeof header);
  std::memcpy(header, bytes.data(), sizeof header);
  CHECK(header[0] == 20240328);
  CHECK(header[1] == 2);
  CHECK(header[2] == 50257);
  CHECK(header[3] == 50256);
  const Tokenizer back = Tokenizer::from_llmc_bin(path);
  CHECK_FALSE(back.can_encode());
  CHECK_THROWS_AS(back.encode("x"), std::logic_error);
  REQUIRE(back.vocab_size() == tk.vocab_size());
  CHECK(back.eot_token() == 50256);
  for (int id = 0; id < tk.vocab_size(); ++id) REQUIRE(back.token_bytes(id) == tk.token_bytes(id));
  const std::string text = "Decoding with the llm.c file: ok ✓";
  CHECK(back.decode(tk.encode(text)) == text);
}

TEST_CASE("tokenizer: bad llm.c tokenizer files give errors with byte offsets", "[tokenizer]") {
  const Tokenizer& tk = gpt2_tokenizer();
  const std::string good_path = saved_llmc_tokenizer(tk, "tokenizer_bad");
  const std::string dir = good_path.substr(0, good_path.rfind('/'));
  const std::string good = gpt2::read_file(good_path);
  auto expect_error = [&](const std::string& name, const std::string& bytes, const std::string& what) {
    const std::string p = dir + "/" + name;
    write_bytes(p, bytes);
    try {
      Tokenizer::from_llmc_bin(p);
      FAIL("no error for " << name);
    } catch (const gpt2::FileError& e) {
      INFO(e.what());
      CHECK(e.path() == p);
      CHECK_THAT(e.what(), Catch::Contains(what));
    }
  };
  expect_error("empty.bin", "", "is empty");
  expect_error("short.bin", good.substr(0, 100), "shorter than the 1024-byte");
  std::string bad_magic = good;
  bad_magic[0] ^= 1;
  expect_error("magic.bin", bad_magic, "bad magic");
  std::string bad_version = good;
  bad_version[4] = 9;
  expect_error("version.bin", bad_version, "byte offset 4");
  expect_error("truncated.bin", good.substr(0, good.size() - 3), "truncated");
  expect_error("trailing.bin", good + "xx", "unexpected bytes");
  std::string zero_len = good;
  zero_len[1024] = 0;
  expect_error("zerolen.bin", zero_len, "byte offset 1024");
}

TEST_CASE("tokenizer: missing or malformed encoder.json / vocab.bpe", "[tokenizer]") {
  const std::string dir = scratch_dir("tokenizer_files");
  try {
    Tokenizer::from_dir(dir + "/nowhere");
    FAIL("no error for a missing directory");
  } catch (const gpt2::FileError& e) {
    CHECK_THAT(e.what(), Catch::Contains("encoder.json"));
    CHECK_THAT(e.hint(), Catch::Contains("data/fetch_tokenizer.sh"));
  }
  write_bytes(dir + "/encoder.json", "{\"a\": 0, ");
  write_bytes(dir + "/vocab.bpe", "#version: 0.2\n");
  CHECK_THROWS_WITH(Tokenizer::from_dir(dir), Catch::Contains("not valid JSON"));
  // A minimal consistent vocabulary: 256 byte tokens plus one merge.
  nlohmann::json enc = byte_vocab();
  enc["ab"] = 256;
  write_bytes(dir + "/encoder.json", enc.dump());
  write_bytes(dir + "/vocab.bpe", "#version: 0.2\na b\n");
  const Tokenizer small = Tokenizer::from_dir(dir);
  CHECK(small.encode("abab") == std::vector<int32_t>{256, 256});
  CHECK(small.eot_token() == -1);
  write_bytes(dir + "/vocab.bpe", "#version: 0.2\na b\nab c d\n");
  CHECK_THROWS_WITH(Tokenizer::from_dir(dir), Catch::Contains("byte offset 18"));
  write_bytes(dir + "/vocab.bpe", "#version: 0.2\nb c\n");
  CHECK_THROWS_WITH(Tokenizer::from_dir(dir), Catch::Contains("missing from"));
  write_bytes(dir + "/vocab.bpe", "no header\n");
  CHECK_THROWS_WITH(Tokenizer::from_dir(dir), Catch::Contains("#version"));
}

TEST_CASE("tokenizer: a vocab.bpe with merges missing is refused, not loaded with other ids", "[tokenizer]") {
  const std::string src = src_path("data/tokenizer");
  if (!exists(src + "/vocab.bpe")) FAIL("GPT-2 tokenizer files are missing: run data/fetch_tokenizer.sh first");
  const std::string encoder = src + "/encoder.json";
  const std::string bpe = gpt2::read_file(src + "/vocab.bpe");
  CHECK(Tokenizer::from_files(encoder, src + "/vocab.bpe").vocab_size() == 50257);
  // Offsets of the starts of lines.
  std::vector<size_t> starts;
  for (size_t p = 0; p < bpe.size(); p = bpe.find('\n', p) + 1) starts.push_back(p);
  REQUIRE(starts.size() == 50001);  // the #version line and 50,000 merges
  const std::string dir = scratch_dir("tokenizer_missing_merges");
  auto expect_refused = [&](const std::string& name, const std::string& bytes, const std::string& found) {
    const std::string path = dir + "/" + name;
    write_bytes(path, bytes);
    try {
      Tokenizer::from_files(encoder, path);
      FAIL("loaded " << name);
    } catch (const gpt2::FileError& e) {
      CHECK(e.path() == path);
      CHECK_THAT(e.what(), Catch::Contains("holds " + found + " merges"));
      CHECK_THAT(e.what(), Catch::Contains("expects 50000"));
      CHECK_THAT(e.hint(), Catch::Contains("truncated"));
      CHECK_THAT(e.hint(), Catch::Contains("data/fetch_tokenizer.sh"));
    }
  };
  // Cut at a line boundary: the last line, the last 10,000 lines, all but the first merge.
  expect_refused("cut1.bpe", bpe.substr(0, starts[50000]), "49999");
  expect_refused("cut10k.bpe", bpe.substr(0, starts[40001]), "40000");
  expect_refused("cut_no_newline.bpe", bpe.substr(0, starts[40001] - 1), "40000");
  // One line dropped in the middle (merge 25,000) and the first merge dropped.
  expect_refused("dropped_middle.bpe", bpe.substr(0, starts[25001]) + bpe.substr(starts[25002]), "49999");
  expect_refused("dropped_first.bpe", bpe.substr(0, starts[1]) + bpe.substr(starts[2]), "49999");
  // CRLF line ends and a missing final newline load the same merges.
  std::string crlf;
  for (char c : bpe) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  write_bytes(dir + "/crlf.bpe", crlf);
  CHECK(Tokenizer::from_files(encoder, dir + "/crlf.bpe").encode("Hello world") == std::vector<int32_t>{15496, 995});
  write_bytes(dir + "/nofinal.bpe", bpe.substr(0, bpe.size() - 1));
  CHECK(Tokenizer::from_files(encoder, dir + "/nofinal.bpe").encode("Hello world") == std::vector<int32_t>{15496, 995});
  // A line repeated in place of another: the pair is a duplicate.
  const std::string dup = bpe.substr(0, starts[25001]) + bpe.substr(starts[25000], starts[25001] - starts[25000]) +
                          bpe.substr(starts[25002]);
  write_bytes(dir + "/dup.bpe", dup);
  CHECK_THROWS_AS(Tokenizer::from_files(encoder, dir + "/dup.bpe"), gpt2::FileError);
}

TEST_CASE("tokenizer: merges and encoder.json must agree token for token", "[tokenizer]") {
  const std::string dir = scratch_dir("tokenizer_agree");
  nlohmann::json enc = byte_vocab();
  enc["ab"] = 256;
  enc["abc"] = 257;
  enc["<|endoftext|>"] = 258;
  write_bytes(dir + "/encoder.json", enc.dump());
  write_bytes(dir + "/vocab.bpe", "#version: 0.2\na b\nab c\n");
  const Tokenizer ok = Tokenizer::from_dir(dir);
  CHECK(ok.encode("abc") == std::vector<int32_t>{257});
  CHECK(ok.eot_token() == 258);
  // "abc" is made by no merge: named in the message.
  write_bytes(dir + "/vocab.bpe", "#version: 0.2\na b\n");
  CHECK_THROWS_WITH(Tokenizer::from_dir(dir), Catch::Contains("holds 1 merges") && Catch::Contains("expects 2") &&
                                                  Catch::Contains("no merge makes token 257 (\"abc\")"));
  // Two merges that make the same token.
  enc["bc"] = 259;
  write_bytes(dir + "/encoder.json", enc.dump());
  write_bytes(dir + "/vocab.bpe", "#version: 0.2\na b\nab c\nb c\na bc\n");
  CHECK_THROWS_WITH(Tokenizer::from_dir(dir), Catch::Contains("merge 3") && Catch::Contains("merge 1 already makes"));
}

TEST_CASE("tokenizer: every safe cut splits the encoding exactly, in any script", "[tokenizer]") {
  const Tokenizer& tk = gpt2_tokenizer();
  // Fragments around newlines: ASCII and other scripts, digits, punctuation, contractions,
  // ASCII and Unicode whitespace (U+0085, U+00A0, U+2003, U+3000), U+FEFF, invalid bytes,
  // truncated sequences, overlong forms and surrogates.
  const std::vector<std::string> frags = {"\n",
                                          "\n",
                                          "\n",
                                          "\n\n",
                                          " ",
                                          "  ",
                                          "\t",
                                          "\r\n",
                                          "a",
                                          "Word",
                                          "'s",
                                          "'ll",
                                          "7",
                                          "42",
                                          ".",
                                          "!?",
                                          "\"",
                                          "Слово",
                                          "ё",
                                          "λόγος",
                                          "中文",
                                          "😀",
                                          "é",
                                          "\xC2\x85",
                                          "\xC2\xA0",
                                          "\xE2\x80\x83",
                                          "\xE3\x80\x80",
                                          "\xEF\xBB\xBF",
                                          "\xFF",
                                          "\xC3",
                                          "\x80",
                                          "\xE0\x80\xAF",
                                          "\xED\xA0\x80",
                                          "\xF4\x90\x80\x80",
                                          "\x0B",
                                          "\x1B",
                                          "-",
                                          "    indented"};
  std::mt19937 rng(20240601);
  size_t cuts_checked = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    const int n = 2 + int(rng() % 12);
    for (int i = 0; i < n; ++i) text += frags[rng() % frags.size()];
    const auto whole = tk.encode(text);
    for (size_t p = 0; p < text.size(); ++p) {
      if (!Tokenizer::is_safe_cut(text, p)) continue;
      ++cuts_checked;
      std::vector<int32_t> pieces = tk.encode(std::string_view(text).substr(0, p));
      const auto right = tk.encode(std::string_view(text).substr(p));
      pieces.insert(pieces.end(), right.begin(), right.end());
      INFO("text (escaped below) cut at " << p);
      INFO([&] {
        std::ostringstream o;
        for (unsigned char c : text) o << (c >= 0x20 && c < 0x7F ? std::string(1, char(c)) : "\\x" + std::to_string(c));
        return o.str();
      }());
      REQUIRE(pieces == whole);
    }
  }
  CHECK(cuts_checked > 1000);
  // The cases prepro relies on: a line in another script, an indented line after text.
  CHECK(Tokenizer::is_safe_cut("а\nб", 2));  // "а" is two bytes
  CHECK(Tokenizer::is_safe_cut("x:\n    y", 2));
  CHECK(Tokenizer::is_safe_cut("a\nb", 1));
  // Whitespace or invalid bytes on both sides: not a cut.
  CHECK_FALSE(Tokenizer::is_safe_cut("a \n  b", 2));
  CHECK_FALSE(Tokenizer::is_safe_cut("\xFF\n\xFF", 1));
  CHECK_FALSE(Tokenizer::is_safe_cut("\xE3\x80\x80\n\xC2\xA0", 3));
}
