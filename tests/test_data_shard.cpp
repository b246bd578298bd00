// llm.c shards and nanoGPT .bin files: round trips, the shard writer, format detection and
// every bad-file error (with its file and byte offset).
#include <catch2/catch.hpp>
#include <climits>
#include <cstring>
#include <numeric>

#include "engine/data/data_shard.h"
#include "engine/util/errors.h"
#include "tests/data_test_util.h"

using namespace gpt2;
using gpt2_test::scratch_dir;
using gpt2_test::write_bytes;

namespace {

std::vector<uint16_t> ramp(size_t n, int vocab = 50257) {
  std::vector<uint16_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint16_t((i * 7919) % size_t(vocab));
  return v;
}

std::string llmc_bytes(const std::vector<uint16_t>& toks, int32_t magic = kShardMagic, int32_t version = kShardVersion,
                       int64_t count = INT64_MIN) {
  int32_t header[256] = {};
  header[0] = magic;
  header[1] = version;
  header[2] = count == INT64_MIN ? int32_t(toks.size()) : int32_t(count);
  std::string s(reinterpret_cast<const char*>(header), sizeof header);
  s.append(reinterpret_cast<const char*>(toks.data()), toks.size() * 2);
  return s;
}

// Expects inspect/read to throw a FileError for `path` whose message holds every fragment.
void expect_file_error(const std::string& path, DataFormat fmt, std::initializer_list<const char*> fragments,
                       int vocab = 50257) {
  try {
    read_shard(path, fmt, vocab);
    FAIL("no error for " << path);
  } catch (const FileError& e) {
    INFO(e.what());
    CHECK(e.path() == path);
    CHECK_THAT(e.what(), Catch::StartsWith(path));
    for (const char* f : fragments) CHECK_THAT(e.what(), Catch::Contains(f));
  }
}

}  // namespace

TEST_CASE("data shard: llm.c round trip and exact header bytes", "[data]") {
  const std::string dir = scratch_dir("shard_llmc");
  const auto toks = ramp(12345);
  const std::string path = dir + "/train_000000.bin";
  write_shard(path, DataFormat::kLlmc, toks.data(), toks.size());
  const std::string bytes = read_file(path);
  REQUIRE(bytes.size() == 1024 + 2 * toks.size());
  int32_t header[256];
  std::memcpy(header, bytes.data(), sizeof header);
  CHECK(header[0] == 20240520);
  CHECK(header[1] == 1);
  CHECK(header[2] == 12345);
  for (int i = 3; i < 256; ++i) REQUIRE(header[i] == 0);
  ShardInfo info;
  CHECK(read_shard(path, DataFormat::kLlmc, 50257, &info) == toks);
  CHECK(info.format == DataFormat::kLlmc);
  CHECK(info.num_tokens == 12345);
  CHECK(info.data_offset == 1024);
  CHECK(read_shard(path, DataFormat::kAuto, 50257) == toks);  // detected by the magic
}

TEST_CASE("data shard: nanoGPT round trip", "[data]") {
  const std::string dir = scratch_dir("shard_nanogpt");
  const auto toks = ramp(777);
  const std::string path = dir + "/train.bin";
  write_shard(path, DataFormat::kNanoGpt, toks.data(), toks.size());
  CHECK(file_size(path) == 2 * 777);
  ShardInfo info;
  CHECK(read_shard(path, DataFormat::kNanoGpt, 50257, &info) == toks);
  CHECK(info.data_offset == 0);
  CHECK(read_shard(path, DataFormat::kAuto, 50257, &info) == toks);
  CHECK(info.format == DataFormat::kNanoGpt);
  // Memory-mapped view agrees.
  ShardView view(info);
  REQUIRE(view.size() == toks.size());
  CHECK(std::equal(toks.begin(), toks.end(), view.tokens()));
}

TEST_CASE("data shard: the writer splits into numbered shards", "[data]") {
  const std::string dir = scratch_dir("shard_writer");
  std::vector<int32_t> ids(2500);
  std::iota(ids.begin(), ids.end(), 0);
  ShardWriter w(dir, "train", DataFormat::kLlmc, 1000);
  w.append(ids.data(), 700);
  w.append(ids.data() + 700, 1800);
  const auto files = w.finish();
  REQUIRE(files.size() == 3);
  CHECK(files[0] == dir + "/train_000000.bin");
  CHECK(files[2] == dir + "/train_000002.bin");
  std::vector<uint16_t> all;
  for (const auto& f : files) {
    const auto part = read_shard(f, DataFormat::kLlmc, 50257);
    all.insert(all.end(), part.begin(), part.end());
  }
  CHECK(read_shard(files[0], DataFormat::kLlmc, 50257).size() == 1000);
  CHECK(read_shard(files[2], DataFormat::kLlmc, 50257).size() == 500);
  CHECK(std::equal(all.begin(), all.end(), ids.begin(), ids.end()));
  CHECK_FALSE(gpt2_test::exists(dir + "/train_000003.bin"));

  ShardWriter n(dir, "val", DataFormat::kNanoGpt, 1000);
  n.append(ids.data(), ids.size());
  const auto nfiles = n.finish();
  REQUIRE(nfiles == std::vector<std::string>{dir + "/val.bin"});
  CHECK(read_shard(nfiles[0], DataFormat::kNanoGpt, 50257).size() == 2500);

  ShardWriter bad(dir, "bad", DataFormat::kLlmc, 10);
  const int32_t too_big = 70000;
  CHECK_THROWS_AS(bad.append(&too_big, 1), std::out_of_range);
  CHECK_THROWS_AS(ShardWriter(dir, "x", DataFormat::kLlmc, 0), ConfigError);
}

TEST_CASE("data shard: every bad file names the file and the byte offset", "[data]") {
  const std::string dir = scratch_dir("shard_bad");
  const auto toks = ramp(100);

  SECTION("empty file") {
    write_bytes(dir + "/empty.bin", "");
    expect_file_error(dir + "/empty.bin", DataFormat::kAuto, {"is empty", "byte offset 0"});
    expect_file_error(dir + "/empty.bin", DataFormat::kNanoGpt, {"is empty"});
    expect_file_error(dir + "/empty.bin", DataFormat::kLlmc, {"is empty"});
  }
  SECTION("wrong magic") {
    write_bytes(dir + "/magic.bin", llmc_bytes(toks, 20240521));
    expect_file_error(dir + "/magic.bin", DataFormat::kLlmc, {"bad magic 20240521", "byte offset 0"});
    // Auto-detection still reports it: the zero padding says it is an llm.c header.
    expect_file_error(dir + "/magic.bin", DataFormat::kAuto, {"bad magic", "byte offset 0"});
    // A nanoGPT file read as llm.c.
    write_bytes(dir + "/nano.bin", llmc_bytes(toks).substr(1024));
    expect_file_error(dir + "/nano.bin", DataFormat::kLlmc, {"bad magic", "--data-format nanogpt"});
  }
  SECTION("wrong version") {
    write_bytes(dir + "/version.bin", llmc_bytes(toks, kShardMagic, 2));
    expect_file_error(dir + "/version.bin", DataFormat::kAuto, {"version 2", "byte offset 4"});
  }
  SECTION("shorter than the header") {
    write_bytes(dir + "/stub.bin", llmc_bytes(toks).substr(0, 600));
    expect_file_error(dir + "/stub.bin", DataFormat::kLlmc, {"shorter than the 1024-byte", "byte offset 600"});
  }
  SECTION("shorter than the header says") {
    write_bytes(dir + "/trunc.bin", llmc_bytes(toks, kShardMagic, kShardVersion, 150));
    expect_file_error(dir + "/trunc.bin", DataFormat::kAuto,
                      {"shorter than its header says", "150 tokens", "byte offset 1224"});
  }
  SECTION("longer than the header says") {
    write_bytes(dir + "/long.bin", llmc_bytes(toks, kShardMagic, kShardVersion, 60));
    expect_file_error(dir + "/long.bin", DataFormat::kAuto, {"unexpected bytes", "byte offset 1144"});
  }
  SECTION("negative count") {
    write_bytes(dir + "/neg.bin", llmc_bytes(toks, kShardMagic, kShardVersion, -5));
    expect_file_error(dir + "/neg.bin", DataFormat::kAuto, {"negative token count", "byte offset 8"});
  }
  SECTION("token >= vocab") {
    auto bad = toks;
    bad[42] = 50257;
    write_bytes(dir + "/vocab.bin", llmc_bytes(bad));
    expect_file_error(dir + "/vocab.bin", DataFormat::kLlmc,
                      {"token 50257", "byte offset 1108", "token index 42", "vocab size 50257"});
    write_bytes(dir + "/vocab_nano.bin", llmc_bytes(bad).substr(1024));
    expect_file_error(dir + "/vocab_nano.bin", DataFormat::kNanoGpt, {"token 50257", "byte offset 84"});
    // A smaller vocab limit catches more.
    write_bytes(dir + "/ok.bin", llmc_bytes(toks));
    expect_file_error(dir + "/ok.bin", DataFormat::kLlmc, {"vocab size 100"}, 100);
  }
  SECTION("odd-sized nanoGPT file") {
    write_bytes(dir + "/odd.bin", std::string(201, 'a'));
    expect_file_error(dir + "/odd.bin", DataFormat::kNanoGpt, {"odd size", "byte offset 200"});
  }
  SECTION("missing file and directory") {
    CHECK_THROWS_AS(inspect_shard(dir + "/nope.bin", DataFormat::kAuto), FileError);
    CHECK_THROWS_WITH(inspect_shard(dir, DataFormat::kAuto), Catch::Contains("directory"));
  }
}

TEST_CASE("data shard: the whole-file scan finds the first bad token", "[data]") {
  const std::string dir = scratch_dir("shard_scan");
  auto toks = ramp(3'000'000);
  write_shard(dir + "/clean.bin", DataFormat::kLlmc, toks.data(), toks.size());
  const ShardInfo clean = inspect_shard(dir + "/clean.bin");
  check_shard_tokens(clean, 50257);
  CHECK_THROWS_WITH(check_shard_tokens(clean, 50256), Catch::Contains("token 50256"));
  toks[2'999'999] = 50257;  // the last token
  toks[2'000'001] = 65535;  // an earlier one: reported first
  write_shard(dir + "/bad.bin", DataFormat::kLlmc, toks.data(), toks.size());
  try {
    check_shard_tokens(inspect_shard(dir + "/bad.bin"), 50257);
    FAIL("no error");
  } catch (const FileError& e) {
    CHECK(e.path() == dir + "/bad.bin");
    CHECK_THAT(e.what(), Catch::Contains("token 65535 at byte offset " + std::to_string(1024 + 2 * 2'000'001)));
    CHECK_THAT(e.what(), Catch::Contains("(token index 2000001)"));
  }
  // nanoGPT: no header, the offset is 2 * index.
  write_shard(dir + "/bad_nano.bin", DataFormat::kNanoGpt, toks.data(), toks.size());
  CHECK_THROWS_WITH(check_shard_tokens(inspect_shard(dir + "/bad_nano.bin", DataFormat::kNanoGpt), 50257),
                    Catch::Contains("byte offset " + std::to_string(2 * 2'000'001)));
}

TEST_CASE("data shard: format names", "[data]") {
  CHECK(parse_data_format("auto") == DataFormat::kAuto);
  CHECK(parse_data_format("llmc") == DataFormat::kLlmc);
  CHECK(parse_data_format("nanogpt") == DataFormat::kNanoGpt);
  CHECK_THROWS_AS(parse_data_format("hdf5"), ConfigError);
  CHECK_THROWS_WITH(parse_data_format("x", "--data-format"), Catch::Contains("--data-format"));
  CHECK(std::string(data_format_name(DataFormat::kNanoGpt)) == "nanogpt");
}
