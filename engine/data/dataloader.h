// The training and validation data loader over llm.c shards or nanoGPT .bin files.
//
// Samples. Each file of n tokens holds W = (n - 1) / T windows of T + 1 tokens; window w starts
// at token w*T (neighbouring windows share one token, as in llm.c). A window gives one row of
// inputs (its first T tokens) and targets (its last T tokens).
//
// Steps. One step consumes B * world windows from the current file: rank r takes windows
// [r*B, (r+1)*B) of the step's group, so ranks never see the same window within an epoch. A
// file's last W % (B * world) windows are skipped; then the loader moves to the next file, and
// after the last file starts the next epoch.
//
// Order. With shuffle on, the file order of each epoch and the window order inside each file
// are permutations drawn from (seed, epoch, file) with the project's own RNG, so the same seed
// gives the same batches on every machine and standard library. With shuffle off (validation)
// files are read in sorted path order and windows front to back, and reset() rewinds.
//
// Resume. state() is a small POD that is the same on every rank; restore() continues exactly
// where it was taken. It refuses a state from a different data set or batch shape.
//
// Memory. Files are memory-mapped one at a time; batches are written into the caller's buffers
// (the engine's memory plan owns them); the loader allocates no per-batch memory.
//
// Errors. FileError for a glob matching nothing, an empty or malformed file (see data_shard.h),
// a file with fewer than B * world * T + 1 tokens, and a token >= vocab_size, with its file and
// byte offset. All of them come from the constructor: it checks every header first, then scans
// every token of every file once (check_shard_tokens), so train_gpt2 refuses bad data before
// step 1. The scan is one thread at memory speed for files in the page cache (about 5 GB/s,
// 0.04 s per 100M-token shard, on a 2-core VM) and at disk speed otherwise (1.2-1.6 GB/s
// there): about 4 s warm and 15 s cold for a 10B-token corpus. Each batch is checked again as
// it is read, in case a file changed since.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/data/data_shard.h"

namespace gpt2 {

// Expands a glob (sorted). Throws FileError naming the pattern when it matches nothing, with a
// hint on how to make data.
std::vector<std::string> expand_data_glob(const std::string& pattern);

struct DataLoaderOptions {
  std::string pattern;                    // glob of files, e.g. "data/brown/train_*.bin"
  DataFormat format = DataFormat::kAuto;  // --data-format
  int B = 4;                              // micro-batch size (rows per rank)
  int T = 1024;                           // sequence length
  int rank = 0;                           // this process, 0 <= rank < world
  int world = 1;                          // number of processes
  uint64_t seed = 1337;
  bool shuffle = true;     // false for validation
  int vocab_size = 50257;  // tokens must be below this
};

// Everything needed to resume exactly. Plain data: write it byte for byte into a checkpoint.
struct DataLoaderState {
  uint64_t magic = 0;        // kDataLoaderStateMagic (format/version of this struct)
  uint64_t fingerprint = 0;  // data set and batch shape; restore() checks it
  uint64_t seed = 0;
  uint64_t epoch = 0;         // completed passes over all files
  uint64_t file_cursor = 0;   // position in this epoch's file order
  uint64_t step_in_file = 0;  // steps already taken from that file
};
constexpr uint64_t kDataLoaderStateMagic = 0x3130534c44325047ull;  // "GP2DLS01"

class DataLoader {
 public:
  explicit DataLoader(const DataLoaderOptions& options);
  DataLoader(const std::string& pattern, DataFormat format, int B, int T, int rank, int world, uint64_t seed,
             bool shuffle, int vocab_size = 50257);

  // Writes the next batch: inputs and targets are (B, T) row-major int32 buffers of B*T
  // elements each, owned by the caller. targets[b][t] == inputs[b][t + 1] within a row.
  void next_batch(int32_t* inputs, int32_t* targets);

  // Back to the first batch of epoch 0 (same seed).
  void reset();
  DataLoaderState state() const;
  // Throws ConfigError("--resume") when the state belongs to other data or another B/T/world.
  void restore(const DataLoaderState& state);

  int64_t num_tokens() const { return total_tokens_; }
  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  int64_t epoch() const { return int64_t(epoch_); }
  size_t num_files() const { return files_.size(); }
  const std::vector<ShardInfo>& files() const { return files_; }
  DataFormat format() const { return files_.front().format; }
  const DataLoaderOptions& options() const { return opt_; }
  // One line for logs: "data/brown/train_*.bin: 1 llmc file, 1,151,436 tokens, 281 steps/epoch
  // (B=4 T=1024 x 1 rank)".
  std::string describe() const;

 private:
  void begin_epoch();
  void enter_file();
  void advance();
  uint64_t window_at(uint64_t slot) const;

  DataLoaderOptions opt_;
  std::vector<ShardInfo> files_;
  std::vector<uint64_t> steps_in_file_;  // per file, in path order
  int64_t total_tokens_ = 0;
  int64_t steps_per_epoch_ = 0;
  uint64_t fingerprint_ = 0;

  // Position.
  uint64_t seed_ = 0;
  uint64_t epoch_ = 0;
  uint64_t file_cursor_ = 0;
  uint64_t step_in_file_ = 0;

  // Derived from the position.
  std::vector<uint32_t> file_order_;    // this epoch's order of file indices
  std::vector<uint32_t> window_order_;  // current file's window permutation (empty = identity)
  ShardView view_;
  int64_t view_file_ = -1;
};

}  // namespace gpt2
