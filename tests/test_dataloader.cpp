// Data loader: windows and targets, determinism from the seed, exact resume from a saved
// state, rank slices, validation order, formats, and its errors.
#include <catch2/catch.hpp>
#include <cstring>
#include <set>

#include "engine/data/dataloader.h"
#include "engine/util/errors.h"
#include "tests/data_test_util.h"

using namespace gpt2;
using gpt2_test::scratch_dir;
using gpt2_test::write_bytes;

namespace {

// Token i of file f is (f * 10007 + i) % 50000: every window is recognisable by its first token.
std::vector<uint16_t> file_tokens(int f, size_t n) {
  std::vector<uint16_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint16_t((size_t(f) * 10007 + i) % 50000);
  return v;
}

std::string make_shards(const std::string& name, std::vector<size_t> sizes, DataFormat fmt = DataFormat::kLlmc) {
  const std::string dir = scratch_dir(name);
  for (size_t f = 0; f < sizes.size(); ++f) {
    const auto toks = file_tokens(int(f), sizes[f]);
    char file[64];
    std::snprintf(file, sizeof file, "/train_%06zu.bin", f);
    write_shard(dir + file, fmt, toks.data(), toks.size());
  }
  return dir;
}

struct Batch {
  std::vector<int32_t> in, tg;
  bool operator==(const Batch& o) const { return in == o.in && tg == o.tg; }
};

Batch next(DataLoader& dl) {
  const size_t n = size_t(dl.options().B) * size_t(dl.options().T);
  Batch b{std::vector<int32_t>(n), std::vector<int32_t>(n)};
  dl.next_batch(b.in.data(), b.tg.data());
  return b;
}

std::vector<Batch> take(DataLoader& dl, int n) {
  std::vector<Batch> v;
  for (int i = 0; i < n; ++i) v.push_back(next(dl));
  return v;
}

DataLoaderOptions opts(const std::string& pattern, int B, int T, bool shuffle, uint64_t seed = 1, int rank = 0,
                       int world = 1) {
  DataLoaderOptions o;
  o.pattern = pattern;
  o.B = B;
  o.T = T;
  o.shuffle = shuffle;
  o.seed = seed;
  o.rank = rank;
  o.world = world;
  return o;
}

}  // namespace

TEST_CASE("dataloader: in-order batches are (B, T+1) windows", "[data][loader]") {
  const std::string dir = make_shards("dl_order", {1001});
  DataLoader dl(opts(dir + "/train_*.bin", 2, 10, false));
  CHECK(dl.num_tokens() == 1001);
  CHECK(dl.steps_per_epoch() == 50);  // 100 windows of 11 tokens (stride 10), 2 per step
  const auto toks = file_tokens(0, 1001);
  for (int step = 0; step < 50; ++step) {
    const Batch b = next(dl);
    for (int r = 0; r < 2; ++r) {
      const size_t start = size_t(step * 2 + r) * 10;
      for (int t = 0; t < 10; ++t) {
        REQUIRE(b.in[size_t(r * 10 + t)] == toks[start + size_t(t)]);
        REQUIRE(b.tg[size_t(r * 10 + t)] == toks[start + size_t(t) + 1]);
      }
    }
  }
  CHECK(dl.epoch() == 1);
  // Wraps to the same first batch (no shuffle).
  dl.reset();
  const Batch first = next(dl);
  CHECK(first.in[0] == toks[0]);
  CHECK(dl.epoch() == 0);
}

TEST_CASE("dataloader: the same seed gives the same batches, another seed others", "[data][loader]") {
  const std::string dir = make_shards("dl_seed", {3001, 2001, 4001});
  DataLoader a(opts(dir + "/train_*.bin", 4, 16, true, 42));
  DataLoader b(opts(dir + "/train_*.bin", 4, 16, true, 42));
  DataLoader c(opts(dir + "/train_*.bin", 4, 16, true, 43));
  const auto ba = take(a, 300), bb = take(b, 300), bc = take(c, 300);
  CHECK(ba == bb);
  CHECK_FALSE(ba == bc);
  // Shuffling does happen: the first batch is not the file's first windows.
  DataLoader plain(opts(dir + "/train_*.bin", 4, 16, false));
  CHECK_FALSE(next(plain) == ba[0]);
}

TEST_CASE("dataloader: an epoch visits every window exactly once, in a new order each epoch", "[data][loader]") {
  const std::string dir = make_shards("dl_epoch", {1601, 801});
  DataLoader dl(opts(dir + "/train_*.bin", 4, 8, true, 7));
  // File 0: 200 windows = 50 steps; file 1: 100 windows = 25 steps.
  REQUIRE(dl.steps_per_epoch() == 75);
  std::vector<std::vector<int32_t>> epochs(2);
  for (int e = 0; e < 2; ++e) {
    std::multiset<int32_t> firsts;
    for (int s = 0; s < 75; ++s) {
      const Batch b = next(dl);
      for (int r = 0; r < 4; ++r) {
        firsts.insert(b.in[size_t(r * 8)]);
        epochs[size_t(e)].push_back(b.in[size_t(r * 8)]);
      }
    }
    CHECK(firsts.size() == 300);
    CHECK(std::set<int32_t>(firsts.begin(), firsts.end()).size() == 300);
  }
  CHECK(epochs[0] != epochs[1]);
  CHECK(dl.epoch() == 2);
}

TEST_CASE("dataloader: save and restore resume exactly, across file and epoch ends", "[data][loader]") {
  const std::string dir = make_shards("dl_resume", {1601, 801, 1201});
  const auto o = opts(dir + "/train_*.bin", 4, 8, true, 99);
  for (int split : {0, 1, 49, 50, 74, 130, 260}) {
    DataLoader dl(o);
    take(dl, split);
    const DataLoaderState st = dl.state();
    // The state is plain bytes: round-trip it through a buffer as a checkpoint would.
    unsigned char raw[sizeof(DataLoaderState)];
    std::memcpy(raw, &st, sizeof raw);
    const auto expected = take(dl, 120);

    DataLoaderState loaded;
    std::memcpy(&loaded, raw, sizeof raw);
    DataLoaderOptions other = o;
    other.seed = 12345;  // the state's seed wins
    DataLoader resumed(other);
    resumed.restore(loaded);
    INFO("split at step " << split);
    CHECK(take(resumed, 120) == expected);
  }
}

TEST_CASE("dataloader: restore refuses a state from other data or another shape", "[data][loader]") {
  const std::string dir = make_shards("dl_refuse", {1601});
  DataLoader dl(opts(dir + "/train_*.bin", 4, 8, true));
  take(dl, 3);
  const DataLoaderState st = dl.state();
  DataLoader other_b(opts(dir + "/train_*.bin", 2, 8, true));
  CHECK_THROWS_AS(other_b.restore(st), ConfigError);
  DataLoaderState bad = st;
  bad.magic = 1;
  CHECK_THROWS_WITH(dl.restore(bad), Catch::Contains("--resume"));
  bad = st;
  bad.step_in_file = 1000;
  CHECK_THROWS_AS(dl.restore(bad), ConfigError);
}

TEST_CASE("dataloader: ranks take disjoint slices of each step", "[data][loader]") {
  const std::string dir = make_shards("dl_ranks", {3201});
  DataLoader r0(opts(dir + "/train_*.bin", 2, 16, true, 5, 0, 2));
  DataLoader r1(opts(dir + "/train_*.bin", 2, 16, true, 5, 1, 2));
  DataLoader single(opts(dir + "/train_*.bin", 4, 16, true, 5, 0, 1));
  REQUIRE(r0.steps_per_epoch() == 50);
  std::set<int32_t> seen;
  for (int s = 0; s < 50; ++s) {
    const Batch a = next(r0), b = next(r1), all = next(single);
    // Rank 0 then rank 1 is exactly what one rank with 2x the batch sees.
    std::vector<int32_t> joined = a.in;
    joined.insert(joined.end(), b.in.begin(), b.in.end());
    REQUIRE(joined == all.in);
    for (int r = 0; r < 2; ++r) {
      REQUIRE(seen.insert(a.in[size_t(r * 16)]).second);
      REQUIRE(seen.insert(b.in[size_t(r * 16)]).second);
    }
  }
  // The saved state is the same on every rank, so rank 0 alone can checkpoint it.
  const DataLoaderState s0 = r0.state(), s1 = r1.state();
  CHECK(std::memcmp(&s0, &s1, sizeof s0) == 0);
  CHECK_THROWS_AS(DataLoader(opts(dir + "/train_*.bin", 2, 16, true, 5, 2, 2)), ConfigError);
}

TEST_CASE("dataloader: validation order is fixed and reset() rewinds", "[data][loader]") {
  const std::string dir = make_shards("dl_val", {501, 501});
  DataLoader v1(opts(dir + "/train_*.bin", 2, 10, false));
  DataLoader v2(opts(dir + "/train_*.bin", 2, 10, false, 777));
  const auto a = take(v1, 10);
  CHECK(a == take(v2, 10));  // the seed does not matter without shuffling
  v1.reset();
  CHECK(take(v1, 10) == a);
  // Files in sorted path order: step 25 is the first step of the second file.
  v1.reset();
  take(v1, 25);
  CHECK(next(v1).in[0] == file_tokens(1, 1)[0]);
}

TEST_CASE("dataloader: nanoGPT files, detected or named", "[data][loader]") {
  const std::string dir = make_shards("dl_nano", {2001}, DataFormat::kNanoGpt);
  DataLoader a(opts(dir + "/train_*.bin", 4, 10, false));
  CHECK(a.format() == DataFormat::kNanoGpt);
  DataLoaderOptions o = opts(dir + "/train_*.bin", 4, 10, false);
  o.format = DataFormat::kNanoGpt;
  DataLoader b(o);
  const Batch x = next(a);
  CHECK(x == next(b));
  CHECK(x.in[0] == file_tokens(0, 1)[0]);
  CHECK(x.tg[0] == file_tokens(0, 2)[1]);
  o.format = DataFormat::kLlmc;
  CHECK_THROWS_WITH(DataLoader(o), Catch::Contains("bad magic"));
  // One glob, one format.
  const auto toks = file_tokens(3, 2001);
  write_shard(dir + "/train_000001.bin", DataFormat::kLlmc, toks.data(), toks.size());
  CHECK_THROWS_WITH(DataLoader(opts(dir + "/train_*.bin", 4, 10, false)),
                    Catch::Contains("one glob must hold one format"));
}

TEST_CASE("dataloader: errors for missing data, short shards and bad tokens", "[data][loader]") {
  const std::string dir = scratch_dir("dl_errors");
  SECTION("glob matching nothing") {
    try {
      DataLoader dl(opts(dir + "/nothing_*.bin", 1, 8, true));
      FAIL("no error");
    } catch (const FileError& e) {
      CHECK_THAT(e.what(), Catch::Contains("matches no files"));
      CHECK_THAT(e.hint(), Catch::Contains("data/fetch_corpus.sh"));
    }
    CHECK_THROWS_WITH(DataLoader(opts(dir, 1, 8, true)), Catch::Contains("is a directory"));
  }
  SECTION("shard shorter than one batch") {
    const auto toks = file_tokens(0, 64);
    write_shard(dir + "/train_000000.bin", DataFormat::kLlmc, toks.data(), toks.size());
    try {
      DataLoader dl(opts(dir + "/train_*.bin", 4, 16, true));  // needs 65 tokens
      FAIL("no error");
    } catch (const FileError& e) {
      CHECK(e.path() == dir + "/train_000000.bin");
      CHECK_THAT(e.what(), Catch::Contains("fewer than one batch needs"));
      CHECK_THAT(e.what(), Catch::Contains("= 65"));
      CHECK_THAT(e.what(), Catch::Contains("byte offset 1152"));
      CHECK_THAT(e.what(), Catch::Contains("use a smaller --micro-batch or --seq-len"));
    }
    DataLoader ok(opts(dir + "/train_*.bin", 3, 16, true));  // 49 tokens are enough
    CHECK(ok.steps_per_epoch() == 1);
  }
  SECTION("token >= vocab, found when the loader is built, in any file") {
    // A clean first file and a bad token in the second, at its last position: refused by the
    // constructor, before any batch is read.
    const auto clean = file_tokens(0, 401);
    auto toks = file_tokens(1, 401);
    toks[400] = 60000;
    write_shard(dir + "/train_000000.bin", DataFormat::kLlmc, clean.data(), clean.size());
    write_shard(dir + "/train_000001.bin", DataFormat::kLlmc, toks.data(), toks.size());
    for (bool shuffle : {true, false}) {
      try {
        DataLoader dl(opts(dir + "/train_*.bin", 1, 100, shuffle));
        FAIL("no error");
      } catch (const FileError& e) {
        CHECK(e.path() == dir + "/train_000001.bin");
        CHECK_THAT(e.what(), Catch::Contains("token 60000 at byte offset 1824 (token index 400)"));
        CHECK_THAT(e.hint(), Catch::Contains("prepro"));
      }
    }
    // A file that gains a bad token after the loader was built is caught when its batch is read.
    write_shard(dir + "/train_000001.bin", DataFormat::kLlmc, clean.data(), clean.size());
    DataLoader dl(opts(dir + "/train_*.bin", 1, 100, false));
    auto later = clean;
    later[250] = 60000;
    write_shard(dir + "/train_000000.bin", DataFormat::kLlmc, later.data(), later.size());
    std::vector<int32_t> in(100), tg(100);
    dl.next_batch(in.data(), tg.data());  // tokens 0..100
    dl.next_batch(in.data(), tg.data());  // tokens 100..200
    CHECK_THROWS_WITH(dl.next_batch(in.data(), tg.data()), Catch::Contains("byte offset 1524"));
  }
  SECTION("empty file and malformed shards") {
    write_bytes(dir + "/train_000000.bin", "");
    CHECK_THROWS_WITH(DataLoader(opts(dir + "/train_*.bin", 1, 8, true)), Catch::Contains("is empty"));
  }
  SECTION("bad options") {
    const auto toks = file_tokens(0, 401);
    write_shard(dir + "/train_000000.bin", DataFormat::kLlmc, toks.data(), toks.size());
    CHECK_THROWS_WITH(DataLoader(opts(dir + "/train_*.bin", 0, 8, true)), Catch::StartsWith("--micro-batch"));
    CHECK_THROWS_AS(DataLoader(opts(dir + "/train_*.bin", 1, 0, true)), ConfigError);
  }
}

TEST_CASE("dataloader: the prepared Brown corpus loads", "[data][loader][brown]") {
  const std::string pattern = gpt2_test::src_path("data/brown/train_*.bin");
  DataLoader train(opts(pattern, 4, 64, true, 1337));
  DataLoader val(opts(gpt2_test::src_path("data/brown/val_*.bin"), 4, 64, false));
  CHECK(train.num_tokens() > 1'000'000);
  CHECK(val.num_tokens() > 30'000);
  CHECK_THAT(train.describe(), Catch::Contains("steps/epoch"));
  const Batch b = next(train);
  for (int32_t t : b.in) REQUIRE((t >= 0 && t < 50257));
  // Validation starts at the first document, which starts with EOT.
  CHECK(next(val).in[0] == 50256);
}
