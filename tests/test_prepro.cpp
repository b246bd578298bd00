// prepro: documents from files, directories and JSONL become EOT-separated token files; the
// train/val split; both output formats; thread-count independence; input errors.
#include <catch2/catch.hpp>
#include <sstream>

#include "engine/data/data_shard.h"
#include "engine/data/documents.h"
#include "engine/data/prepro.h"
#include "engine/util/errors.h"
#include "tests/data_test_util.h"

using namespace gpt2;
using gpt2_test::scratch_dir;
using gpt2_test::write_bytes;

namespace {

PreproOptions base(const std::vector<std::string>& inputs, const std::string& out) {
  PreproOptions o;
  o.inputs = inputs;
  o.out_dir = out;
  o.tokenizer_dir = gpt2_test::src_path("data/tokenizer");
  o.progress = ProgressBar::Mode::kNever;
  return o;
}

std::vector<int32_t> read_all(const std::vector<std::string>& files, DataFormat fmt) {
  std::vector<int32_t> out;
  for (const auto& f : files) {
    for (uint16_t t : read_shard(f, fmt, 50257)) out.push_back(t);
  }
  return out;
}

// Splits a token stream at EOTs into decoded documents (the stream must start with EOT).
std::vector<std::string> documents(const std::vector<int32_t>& ids) {
  const gpt2::Tokenizer& tk = gpt2_test::gpt2_tokenizer();
  std::vector<std::string> docs;
  REQUIRE(!ids.empty());
  REQUIRE(ids[0] == 50256);
  std::vector<int32_t> cur;
  for (size_t i = 1; i <= ids.size(); ++i) {
    if (i == ids.size() || ids[i] == 50256) {
      docs.push_back(tk.decode(cur));
      cur.clear();
    } else {
      cur.push_back(ids[i]);
    }
  }
  return docs;
}

}  // namespace

TEST_CASE("prepro: files, directories and JSONL to EOT-separated shards", "[data][prepro]") {
  gpt2_test::gpt2_tokenizer();
  const std::string dir = scratch_dir("prepro_mixed");
  const std::string in = dir + "/in";
  std::filesystem::create_directories(in + "/sub");
  std::vector<std::string> texts;
  for (int i = 0; i < 30; ++i) texts.push_back("Document number " + std::to_string(i) + ".\nIt has text.");
  // 10 plain files in a directory (read in sorted order), 20 JSONL records.
  for (int i = 0; i < 10; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "/sub/doc%02d.txt", i);
    write_bytes(in + name, texts[size_t(i)]);
  }
  write_bytes(in + "/.hidden", "skipped");
  std::string jsonl;
  for (int i = 10; i < 30; ++i) jsonl += nlohmann::json{{"text", texts[size_t(i)]}, {"id", i}}.dump() + "\n\n";
  write_bytes(dir + "/records.jsonl", jsonl);

  PreproOptions o = base({in, dir + "/records.jsonl"}, dir + "/out");
  o.val_fraction = 0.1;  // documents 9, 19, 29
  o.shard_tokens = 100;
  std::ostringstream log;
  const PreproResult r = run_prepro(o, log);
  CHECK(r.train.documents == 27);
  CHECK(r.val.documents == 3);
  CHECK(r.train.files.size() > 1);  // 100-token shards
  CHECK(r.train.files.front() == dir + "/out/train_000000.bin");
  CHECK(r.val.files.front() == dir + "/out/val_000000.bin");
  CHECK_THAT(log.str(), Catch::Contains("30 documents"));

  const auto train = read_all(r.train.files, DataFormat::kLlmc);
  const auto val = read_all(r.val.files, DataFormat::kLlmc);
  CHECK(train.size() == r.train.tokens);
  CHECK(val.size() == r.val.tokens);
  std::vector<std::string> want_train, want_val;
  for (size_t i = 0; i < texts.size(); ++i) (is_val_document(i, 0.1) ? want_val : want_train).push_back(texts[i]);
  CHECK(documents(train) == want_train);
  CHECK(documents(val) == want_val);
  CHECK(want_val == std::vector<std::string>{texts[9], texts[19], texts[29]});
  CHECK(gpt2_test::exists(dir + "/out/gpt2_tokenizer.bin"));
  const auto manifest = nlohmann::json::parse(read_file(dir + "/out/prepro.json"));
  CHECK(manifest["train"]["tokens"] == r.train.tokens);
  CHECK(manifest["val"]["documents"] == 3);

  // Running again refuses to mix with old shards, unless told to overwrite.
  CHECK_THROWS_WITH(run_prepro(o, log), Catch::Contains("--overwrite"));
  o.overwrite = true;
  o.shard_tokens = 100000;
  const PreproResult again = run_prepro(o, log);
  CHECK(again.train.files.size() == 1);
  CHECK_FALSE(gpt2_test::exists(dir + "/out/train_000001.bin"));
  CHECK(read_all(again.train.files, DataFormat::kLlmc) == train);
}

TEST_CASE("prepro: nanoGPT format, one-document split, and thread independence", "[data][prepro]") {
  const gpt2::Tokenizer& tk = gpt2_test::gpt2_tokenizer();
  const std::string dir = scratch_dir("prepro_nano");
  std::string big;
  for (int i = 0; i < 9000; ++i) big += "Line " + std::to_string(i) + " of a single long document.\n";
  write_bytes(dir + "/one.txt", big);
  PreproOptions o = base({dir + "/one.txt"}, dir + "/nano");
  o.format = DataFormat::kNanoGpt;
  o.val_fraction = 0.1;
  std::ostringstream log;
  const PreproResult r = run_prepro(o, log);
  REQUIRE(r.train.files == std::vector<std::string>{dir + "/nano/train.bin"});
  REQUIRE(r.val.files == std::vector<std::string>{dir + "/nano/val.bin"});
  const auto train = read_all(r.train.files, DataFormat::kNanoGpt);
  const auto val = read_all(r.val.files, DataFormat::kNanoGpt);
  // The tail of the one document (from a line start) is val, after its own EOT; together they
  // are the document.
  std::vector<int32_t> whole = train;
  whole.insert(whole.end(), val.begin() + 1, val.end());
  CHECK(val[0] == 50256);
  CHECK(tk.decode(std::vector<int32_t>(whole.begin() + 1, whole.end())) == big);
  const double frac = double(val.size() - 1) / double(whole.size());
  CHECK(frac == Approx(0.1).margin(0.01));
  CHECK(tk.decode(std::vector<int32_t>(val.begin() + 1, val.end())).rfind("Line ", 0) == 0);

  // The same bytes with 1 and 2 threads (long documents are cut into pieces).
  for (int threads : {1, 2}) {
    PreproOptions t = base({dir + "/one.txt"}, dir + "/t" + std::to_string(threads));
    t.threads = threads;
    t.val_fraction = 0;
    const PreproResult rt = run_prepro(t, log);
    CHECK(rt.val.files.empty());
    CHECK(read_all(rt.train.files, DataFormat::kLlmc) == std::vector<int32_t>(whole.begin(), whole.end()));
  }
}

TEST_CASE("prepro: input and option errors", "[data][prepro]") {
  gpt2_test::gpt2_tokenizer();
  const std::string dir = scratch_dir("prepro_errors");
  std::ostringstream log;
  write_bytes(dir + "/bad.jsonl", "{\"text\": \"fine\"}\n{\"text\": 5}\n");
  try {
    run_prepro(base({dir + "/bad.jsonl"}, dir + "/o1"), log);
    FAIL("no error");
  } catch (const FileError& e) {
    CHECK(e.path() == dir + "/bad.jsonl");
    CHECK_THAT(e.what(), Catch::Contains("line 2 (byte offset 17)"));
    CHECK_THAT(e.what(), Catch::Contains("\"text\""));
  }
  write_bytes(dir + "/broken.jsonl", "{\"text\": \"unterminated}\n");
  CHECK_THROWS_WITH(run_prepro(base({dir + "/broken.jsonl"}, dir + "/o2"), log),
                    Catch::Contains("line 1 (byte offset 0) is not valid JSON"));
  CHECK_THROWS_WITH(run_prepro(base({dir + "/missing.txt"}, dir + "/o3"), log), Catch::Contains("does not exist"));
  std::filesystem::create_directories(dir + "/emptydir");
  CHECK_THROWS_WITH(run_prepro(base({dir + "/emptydir"}, dir + "/o4"), log), Catch::Contains("no files"));
  write_bytes(dir + "/ok.txt", "hello");
  PreproOptions o = base({dir + "/ok.txt"}, dir + "/o5");
  o.val_fraction = 1.0;
  CHECK_THROWS_WITH(run_prepro(o, log), Catch::Contains("--val-fraction"));
  o.val_fraction = 0.5;
  o.tokenizer_dir = dir + "/no_tokenizer";
  try {
    run_prepro(o, log);
    FAIL("no error");
  } catch (const FileError& e) {
    CHECK_THAT(e.hint(), Catch::Contains("data/fetch_tokenizer.sh"));
  }
}

TEST_CASE("prepro: long files are streamed in pieces cut at safe points", "[data][prepro]") {
  const gpt2::Tokenizer& tk = gpt2_test::gpt2_tokenizer();
  const std::string dir = scratch_dir("prepro_stream");
  std::string a, b;
  for (int i = 0; i < 4000; ++i) a += "Sentence " + std::to_string(i) + " goes here,\n  indented\n";
  for (int i = 0; i < 100; ++i) b += "b" + std::to_string(i) + " ";  // no newline at all
  write_bytes(dir + "/a.txt", a);
  write_bytes(dir + "/b.txt", b);
  write_bytes(dir + "/c.jsonl", "{\"text\": \"json doc\"}\n");
  DocumentReader reader({dir + "/a.txt", dir + "/b.txt", dir + "/c.jsonl"}, 4096);
  std::vector<std::string> docs;
  std::vector<int32_t> ids_a;
  gpt2::BpeCache cache;
  std::string piece;
  bool starts = false;
  size_t pieces = 0;
  while (reader.next(piece, starts)) {
    ++pieces;
    if (starts) docs.emplace_back();
    REQUIRE(!docs.empty());
    if (docs.size() == 1) {
      if (!piece.empty() && docs[0].size() > 0) CHECK(piece[0] == '\n');  // cut before "\nX"
      tk.encode(piece, ids_a, cache);
    }
    docs.back() += piece;
  }
  CHECK(pieces > 10);
  REQUIRE(docs.size() == 3);
  CHECK(docs[0] == a);
  CHECK(docs[1] == b);
  CHECK(docs[2] == "json doc");
  CHECK(ids_a == tk.encode(a));  // pieces encode to exactly the whole
  CHECK(reader.bytes_read() >= a.size() + b.size());

  // Line starts, counting through the files as one stream.
  const std::vector<std::string> ab = {dir + "/a.txt", dir + "/b.txt"};
  const uint64_t ls = next_line_start(ab, 50000);
  CHECK(ls >= 50000);
  CHECK(a[size_t(ls) - 1] == '\n');
  CHECK(a.find('\n', 49999) == size_t(ls) - 1);
  CHECK(next_line_start(ab, 0) == 0);
  CHECK(next_line_start(ab, a.size()) == a.size());            // b.txt starts there
  CHECK(next_line_start(ab, a.size() - 3) == a.size());        // a's last line ends where b starts
  CHECK(next_line_start(ab, a.size() + 10) == a.size() + 10);  // b has no '\n': no line start
}

TEST_CASE("prepro: the val rule spreads documents evenly", "[data][prepro]") {
  int val = 0;
  for (uint64_t i = 0; i < 1000; ++i) val += is_val_document(i, 0.05) ? 1 : 0;
  CHECK(val == 50);
  CHECK(is_val_document(19, 0.05));
  CHECK_FALSE(is_val_document(0, 0.05));
  CHECK_FALSE(is_val_document(5, 0.0));
}

namespace {

// Runs prepro on `text` as one file and checks the split: a train and a val file, val is the
// tail after its own EOT, and train + val are exactly the tokens of the whole text.
void check_tail_split(const std::string& name, const std::string& text, double fraction) {
  const gpt2::Tokenizer& tk = gpt2_test::gpt2_tokenizer();
  const std::string dir = scratch_dir("prepro_" + name);
  write_bytes(dir + "/" + name + ".txt", text);
  PreproOptions o = base({dir + "/" + name + ".txt"}, dir + "/out");
  o.val_fraction = fraction;
  o.threads = 2;
  std::ostringstream log;
  const PreproResult r = run_prepro(o, log);
  INFO(log.str());
  REQUIRE(r.train.files.size() == 1);
  REQUIRE(r.val.files.size() == 1);
  CHECK_THAT(log.str(), !Catch::Contains("warning"));
  const auto train = read_all(r.train.files, DataFormat::kLlmc);
  const auto val = read_all(r.val.files, DataFormat::kLlmc);
  REQUIRE(val.size() >= 2);
  CHECK(val[0] == 50256);
  std::vector<int32_t> joined(train.begin(), train.end());
  joined.insert(joined.end(), val.begin() + 1, val.end());
  std::vector<int32_t> whole{50256};
  const std::vector<int32_t> ids = tk.encode(text);
  whole.insert(whole.end(), ids.begin(), ids.end());
  CHECK(joined == whole);
  CHECK(double(val.size() - 1) / double(whole.size()) == Approx(fraction).margin(0.02));
  // The val text starts at a line start when the text has lines.
  const std::string tail = tk.decode(std::vector<int32_t>(val.begin() + 1, val.end()));
  const size_t at = text.size() - tail.size();
  if (text.find('\n') != std::string::npos) {
    CHECK(text.compare(at, std::string::npos, tail) == 0);
    CHECK(text.rfind('\n', at) != std::string::npos);
    CHECK(text.substr(text.rfind('\n', at) + 1, at - text.rfind('\n', at) - 1).find_first_not_of(" \t") ==
          std::string::npos);  // only the indentation lies between the line start and the cut
  }
}

}  // namespace

TEST_CASE("prepro: one file in any script or line structure gets a train and a val split", "[data][prepro]") {
  // Cyrillic prose: no line starts with an ASCII letter.
  std::string cyr;
  for (int i = 0; i < 3000; ++i) {
    cyr += "Строка номер " + std::to_string(i) + ": съешь же ещё этих мягких французских булок, да выпей чаю.\n";
  }
  check_tail_split("cyrillic", cyr, 0.05);
  // Every line indented; blank lines between paragraphs.
  std::string indented;
  for (int i = 0; i < 3000; ++i) {
    indented += "    def f" + std::to_string(i) + "(x):\n        return x * " + std::to_string(i) + "\n\n";
  }
  check_tail_split("indented", indented, 0.1);
  // Greek and CJK with Windows line ends, and one long line with no newline at all.
  std::string mixed;
  for (int i = 0; i < 2000; ++i) mixed += "Αυτή είναι η γραμμή " + std::to_string(i) + "。这是第几行。\r\n";
  check_tail_split("mixed", mixed, 0.05);
  std::string one_line;
  for (int i = 0; i < 5000; ++i) one_line += "слово" + std::to_string(i) + " ";
  check_tail_split("one_line", one_line, 0.05);
}

TEST_CASE("prepro: fewer plain files than the document rule needs split the input's tail", "[data][prepro]") {
  gpt2_test::gpt2_tokenizer();
  const std::string dir = scratch_dir("prepro_few_files");
  std::string a, b;
  for (int i = 0; i < 1000; ++i) a += "  Первый файл, строка " + std::to_string(i) + "\n";
  for (int i = 0; i < 1000; ++i) b += "  Второй файл, строка " + std::to_string(i) + "\n";
  write_bytes(dir + "/a.txt", a);
  write_bytes(dir + "/b.txt", b);
  PreproOptions o = base({dir + "/a.txt", dir + "/b.txt"}, dir + "/out");
  o.val_fraction = 0.1;  // the document rule needs 10 documents
  std::ostringstream log;
  const PreproResult r = run_prepro(o, log);
  REQUIRE(r.val.files.size() == 1);
  CHECK(r.train.documents == 2);
  CHECK(r.val.documents == 1);
  const auto val = read_all(r.val.files, DataFormat::kLlmc);
  CHECK(double(val.size()) / double(r.train.tokens + r.val.tokens) == Approx(0.1).margin(0.02));
  CHECK_THAT(gpt2_test::gpt2_tokenizer().decode(std::vector<int32_t>(val.begin() + 1, val.end())),
             Catch::StartsWith("  Второй файл, строка 8"));
  CHECK_THAT(log.str(), Catch::Contains("val: the last 10% of the input bytes"));
}

TEST_CASE("prepro: a tiny input gets no val file and a warning that says why", "[data][prepro]") {
  gpt2_test::gpt2_tokenizer();
  const std::string dir = scratch_dir("prepro_tiny");
  write_bytes(dir + "/tiny.txt", "Привет");
  PreproOptions o = base({dir + "/tiny.txt"}, dir + "/out");
  std::ostringstream log;
  const PreproResult r = run_prepro(o, log);
  CHECK(r.val.files.empty());
  CHECK(r.train.files.size() == 1);
  CHECK_THAT(log.str(), Catch::Contains("warning: no val file") && Catch::Contains("--val-fraction 0.05") &&
                            Catch::Contains("12 input bytes") && Catch::Contains("give more text"));
  // JSONL documents are counted: too few for the document rule.
  write_bytes(dir + "/few.jsonl", "{\"text\": \"one\"}\n{\"text\": \"two\"}\n");
  std::ostringstream log2;
  const PreproResult r2 = run_prepro(base({dir + "/few.jsonl"}, dir + "/out2"), log2);
  CHECK(r2.val.files.empty());
  CHECK_THAT(log2.str(), Catch::Contains("warning: no val file") && Catch::Contains("among 20 or more") &&
                             Catch::Contains("holds 2"));
}
