// Data loader over llm.c shards / nanoGPT files. See dataloader.h for the sampling rules.
#include "engine/data/dataloader.h"

#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "engine/util/errors.h"
#include "engine/util/units.h"

namespace gpt2 {
namespace {

// splitmix64: the project's own generator, so permutations do not depend on the standard
// library's distributions (which differ between implementations).
struct SplitMix64 {
  uint64_t s;
  explicit SplitMix64(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) without modulo bias (rejection sampling).
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = next();
    while (x >= limit);
    return x % n;
  }
};

uint64_t mix(uint64_t a, uint64_t b) {
  SplitMix64 g(a ^ (b * 0xD1B54A32D192ED03ull));
  return g.next();
}

// Fisher-Yates with SplitMix64.
void permute(std::vector<uint32_t>& v, uint64_t seed) {
  SplitMix64 g(seed);
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[size_t(g.below(i))]);
}

constexpr uint64_t kFileStream = 0x66696c65;    // "file"
constexpr uint64_t kWindowStream = 0x77696e64;  // "wind"

}  // namespace

std::vector<std::string> expand_data_glob(const std::string& pattern) {
  const char* hint =
      "make shards with data/fetch_corpus.sh (the Brown corpus) or with prepro --input FILES "
      "--out-dir DIR";
  if (pattern.empty()) throw ConfigError("--train-data", "no data path given");
  struct stat st {};
  if (::stat(pattern.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    throw FileError(pattern, "is a directory; pass a glob of files such as '" + pattern + "/train_*.bin'");
  }
  glob_t g{};
  const int rc = ::glob(pattern.c_str(), GLOB_ERR, nullptr, &g);
  std::vector<std::string> out;
  if (rc == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  }
  ::globfree(&g);
  if (rc == GLOB_NOSPACE) throw std::bad_alloc();
  if (rc == GLOB_ABORTED) {
    // The directory part, when it is a plain path, is the usual culprit: a folder not made yet.
    const size_t slash = pattern.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : pattern.substr(0, slash);
    if (dir.find_first_of("*?[") == std::string::npos && ::stat(dir.c_str(), &st) != 0)
      throw FileError(pattern, "the directory " + dir + " does not exist", hint);
    throw FileError(pattern, "cannot read a directory in this glob", hint);
  }
  if (out.empty()) throw FileError(pattern, "matches no files", hint);
  std::sort(out.begin(), out.end());
  return out;
}

DataLoader::DataLoader(const std::string& pattern, DataFormat format, int B, int T, int rank, int world, uint64_t seed,
                       bool shuffle, int vocab_size)
    : DataLoader(DataLoaderOptions{pattern, format, B, T, rank, world, seed, shuffle, vocab_size}) {}

DataLoader::DataLoader(const DataLoaderOptions& options) : opt_(options) {
  if (opt_.B <= 0) throw ConfigError("--micro-batch", "must be positive");
  if (opt_.T <= 0) throw ConfigError("--seq-len", "must be positive");
  if (opt_.world <= 0 || opt_.rank < 0 || opt_.rank >= opt_.world) {
    throw ConfigError("--rank",
                      "rank " + std::to_string(opt_.rank) + " is outside 0.." + std::to_string(opt_.world - 1));
  }
  const std::vector<std::string> paths = expand_data_glob(opt_.pattern);
  const uint64_t per_step = uint64_t(opt_.B) * uint64_t(opt_.world);
  const uint64_t need = per_step * uint64_t(opt_.T) + 1;
  for (const std::string& p : paths) {
    ShardInfo info = inspect_shard(p, opt_.format);
    if (!files_.empty() && info.format != files_.front().format) {
      throw FileError(p, std::string("is a ") + data_format_name(info.format) + " file but " + files_.front().path +
                             " is " + data_format_name(files_.front().format) + "; one glob must hold one format");
    }
    if (info.num_tokens < need) {
      throw FileError(p, "holds " + std::to_string(info.num_tokens) +
                             " tokens, fewer than one batch needs: B*ranks*T+1 = " + std::to_string(opt_.B) + "*" +
                             std::to_string(opt_.world) + "*" + std::to_string(opt_.T) +
                             "+1 = " + std::to_string(need) + " (the file ends at byte offset " +
                             std::to_string(info.offset_of(info.num_tokens)) +
                             "); use a smaller --micro-batch or --seq-len, or more data");
    }
    const uint64_t windows = (info.num_tokens - 1) / uint64_t(opt_.T);
    if (opt_.shuffle && windows > UINT32_MAX) {
      throw ConfigError("--seq-len", p + " has " + std::to_string(windows) +
                                         " windows, more than the shuffler's 2^32; split it "
                                         "into shards or use a longer --seq-len");
    }
    steps_in_file_.push_back(windows / per_step);
    steps_per_epoch_ += int64_t(windows / per_step);
    total_tokens_ += int64_t(info.num_tokens);
    files_.push_back(std::move(info));
  }
  // Every token of every file is checked now, so a bad token stops the run before step 1
  // instead of when its batch comes up (possibly hours in). Headers and sizes were checked
  // above, so a malformed file is reported before any file is scanned.
  for (const ShardInfo& f : files_) check_shard_tokens(f, opt_.vocab_size);
  // The fingerprint covers what decides the batch sequence, except the seed (kept in the state)
  // and the paths (data may move between machines).
  uint64_t fp = mix(uint64_t(opt_.B), uint64_t(opt_.T));
  fp = mix(fp, uint64_t(opt_.world));
  fp = mix(fp, opt_.shuffle ? 1 : 2);
  fp = mix(fp, uint64_t(opt_.vocab_size));
  fp = mix(fp, files_.size());
  for (const ShardInfo& f : files_) fp = mix(fp, f.num_tokens);
  fingerprint_ = fp;
  seed_ = opt_.seed;
  reset();
}

void DataLoader::reset() {
  seed_ = opt_.seed;
  epoch_ = 0;
  file_cursor_ = 0;
  step_in_file_ = 0;
  begin_epoch();
}

void DataLoader::begin_epoch() {
  file_order_.resize(files_.size());
  for (size_t i = 0; i < files_.size(); ++i) file_order_[i] = uint32_t(i);
  if (opt_.shuffle) permute(file_order_, mix(mix(seed_, kFileStream), epoch_));
  view_file_ = -1;  // the window order depends on the epoch too
}

void DataLoader::enter_file() {
  const uint32_t f = file_order_[file_cursor_];
  if (view_file_ == int64_t(f)) return;
  view_ = ShardView();  // unmap the previous file first
  view_ = ShardView(files_[f]);
  view_file_ = int64_t(f);
  window_order_.clear();
  if (opt_.shuffle) {
    const uint64_t windows = (files_[f].num_tokens - 1) / uint64_t(opt_.T);
    window_order_.resize(windows);
    for (uint64_t w = 0; w < windows; ++w) window_order_[w] = uint32_t(w);
    permute(window_order_, mix(mix(mix(seed_, kWindowStream), epoch_), f));
  }
}

uint64_t DataLoader::window_at(uint64_t slot) const { return window_order_.empty() ? slot : window_order_[slot]; }

void DataLoader::advance() {
  ++step_in_file_;
  if (step_in_file_ < steps_in_file_[file_order_[file_cursor_]]) return;
  step_in_file_ = 0;
  ++file_cursor_;
  if (file_cursor_ == files_.size()) {
    file_cursor_ = 0;
    ++epoch_;
    begin_epoch();
  }
}

void DataLoader::next_batch(int32_t* inputs, int32_t* targets) {
  enter_file();
  const ShardInfo& info = view_.info();
  const uint16_t* tok = view_.tokens();
  const uint64_t T = uint64_t(opt_.T);
  const uint64_t first_slot = step_in_file_ * uint64_t(opt_.B) * uint64_t(opt_.world) + uint64_t(opt_.rank) * opt_.B;
  for (int b = 0; b < opt_.B; ++b) {
    const uint64_t start = window_at(first_slot + uint64_t(b)) * T;
    const uint16_t* w = tok + start;
    check_token_range(info, w, start, T + 1, opt_.vocab_size);
    int32_t* in = inputs + size_t(b) * T;
    int32_t* tg = targets + size_t(b) * T;
    for (uint64_t t = 0; t < T; ++t) {
      in[t] = w[t];
      tg[t] = w[t + 1];
    }
  }
  advance();
}

DataLoaderState DataLoader::state() const {
  DataLoaderState s;
  s.magic = kDataLoaderStateMagic;
  s.fingerprint = fingerprint_;
  s.seed = seed_;
  s.epoch = epoch_;
  s.file_cursor = file_cursor_;
  s.step_in_file = step_in_file_;
  return s;
}

void DataLoader::restore(const DataLoaderState& s) {
  if (s.magic != kDataLoaderStateMagic) {
    throw ConfigError("--resume",
                      "the saved data loader state is not from this version of the "
                      "engine (bad magic)");
  }
  if (s.fingerprint != fingerprint_) {
    throw ConfigError("--resume",
                      "the saved data loader state belongs to other data or another batch shape "
                      "(files, token counts, B, T, ranks or shuffle differ from " +
                          describe() + ")");
  }
  if (s.file_cursor >= files_.size()) {
    throw ConfigError("--resume", "the saved data loader state points past the last file");
  }
  seed_ = s.seed;
  epoch_ = s.epoch;
  file_cursor_ = s.file_cursor;
  begin_epoch();
  if (s.step_in_file >= steps_in_file_[file_order_[file_cursor_]]) {
    throw ConfigError("--resume", "the saved data loader state points past the end of a file");
  }
  step_in_file_ = s.step_in_file;
}

std::string DataLoader::describe() const {
  return opt_.pattern + ": " + std::to_string(files_.size()) + " " + data_format_name(format()) +
         (files_.size() == 1 ? " file, " : " files, ") + format_count(total_tokens_) + " tokens, " +
         format_count(steps_per_epoch_) + " steps/epoch (B=" + std::to_string(opt_.B) + " T=" + std::to_string(opt_.T) +
         " x " + std::to_string(opt_.world) + (opt_.world == 1 ? " rank" : " ranks") +
         (opt_.shuffle ? ", shuffled)" : ", in order)");
}

}  // namespace gpt2
