// A checkpoint's state file: everything a bitwise-exact resume needs besides the model file.
//
// Layout (little-endian):
//   "GPT2CKPT" | u32 version (1) | u32 0 | u64 payload bytes | payload | u64 FNV-1a-64 of the
//   payload | "CKPTEND\0"
//   payload = u64 n, n bytes of JSON (step, updates, seed, lineage, plan hash, model file name,
//             size and FNV-1a-64, the run settings, array sizes; written by save_checkpoint)
//           | u64 n, n bytes: the training data source's position (BatchSource::save_position)
//           | u64 n, n fp32: master weights (this rank's shard; n = 0 without a master copy)
//           | u64 n, n fp32: AdamW m          | u64 n, n fp32: AdamW v
// The file is written through an AtomicFile (temporary name, fsync, rename), so it is either
// complete or absent.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/model/model.h"

namespace gpt2 {

struct CheckpointData {
  int64_t step = 0, updates = 0;
  uint64_t seed = 0;
  std::vector<uint8_t> data_position;
  Model::OptimizerState optimizer;
  nlohmann::json settings;  // the whole JSON header
};

// Writes a state file with `meta` as its JSON header. `step` is the checkpoint's step, for the
// pause test hook (below).
void write_state_file(const std::string& path, const nlohmann::json& meta, const std::vector<uint8_t>& data_position,
                      const Model::OptimizerState& optimizer, int64_t step);

// Test hooks for the crash tests, read only when GPT2_TEST_HOOKS=1 is also set: with
// GPT2_TEST_CHECKPOINT_PAUSE=S, the writer of step S's state file stops halfway through (after
// an fsync, so the partial temporary file is on disk), prints "checkpoint: paused mid-write" to
// stderr, and sleeps until it is killed.
constexpr const char* kTestHooksEnv = "GPT2_TEST_HOOKS";
constexpr const char* kCheckpointPauseEnv = "GPT2_TEST_CHECKPOINT_PAUSE";

// Reads and verifies a state file (checksum, sizes) without a model; for tests and tools.
// Every failure is a FileError naming the file.
CheckpointData read_state_file(const std::string& path);

// The lineage recorded in a state file's JSON header, read without mapping the whole file;
// nothing when the file is missing, unreadable or records none.
std::optional<std::string> read_state_file_lineage(const std::string& path);

// 16 lowercase hex digits: how the state file records hashes.
std::string hex64(uint64_t v);

}  // namespace gpt2
