// Checkpoints with exact resume.
//
// A checkpoint of step S in DIR is two files and a marker:
//   DIR/model_SSSSSSSS.bin   the parameters in llm.c's model format, in the run's dtype (version 3
//                            fp32 or 5 bf16), so llm.c, tools/sample and tools/convert read it;
//   DIR/state_SSSSSSSS.bin   everything else a bitwise-exact resume needs (its layout:
//                            checkpoint_state_file.h, included here);
//   DIR/latest               the text "S\n", written LAST.
// Every file is written to a temporary name unique to the writing process, fsync'ed, renamed into
// place and the directory fsync'ed (AtomicFile). A crash (even SIGKILL) at any moment leaves
// `latest` naming a complete checkpoint; a half-written newer one is ignored and overwritten later.
// A run holds DIR/lock (CheckpointDirLock) while it uses the directory.
//
// Every random stream of a run is derived from (seed, step) — AdamW's stochastic rounding seed
// is seed + step, the data order is in the data position — so step and seed are the RNG state.
//
// Resume checks, in order, each failing with an error naming the file or the flag: the files
// exist, sizes and checksums match (truncation, corruption), every saved setting equals this
// run's (model shape, batch shape, precision, optimizer and schedule settings, seed, data),
// then the plan hash. --steps may differ (to extend a run), though a cosine/linear schedule
// then follows the new total.
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/data/batch_source.h"
#include "engine/model/model.h"
#include "engine/train/checkpoint_state_file.h"  // CheckpointData, read_state_file
#include "engine/train/trainer.h"

namespace gpt2 {

// The settings a resumed run must share with the checkpoint, keyed by the flag that sets them.
nlohmann::json checkpoint_settings(const MemoryPlan& plan, const TrainOptions& train, const std::string& train_data);

std::string checkpoint_model_path(const std::string& dir, int64_t step);
std::string checkpoint_state_path(const std::string& dir, int64_t step, int rank = 0, int world = 1);

// The step `latest` names, or -1 when DIR has no `latest`. Throws FileError for a bad marker.
int64_t latest_checkpoint_step(const std::string& dir);

// Writes the checkpoint of trainer.step() and then `latest`; keeps the newest `keep` checkpoints
// (0 = all) of `lineage` and never deletes others. Only rank 0 writes the model file and `latest`.
// `lineage` names the chain of runs the checkpoint belongs to: a fresh run draws a new one
// (new_checkpoint_lineage) and a resumed run continues the lineage of its checkpoint.
// With several ranks, `all_succeeded` (all ranks call it with whether their part succeeded; it
// returns whether every rank's did) orders the stages and stops every rank together when one
// fails: the model file exists before the other ranks hash it, every rank's state file exists
// before `latest` names them, and a failed state write removes that step's files on every rank.
void save_checkpoint(const std::string& dir, Model& model, const Trainer& trainer, const BatchSource& train,
                     const nlohmann::json& settings, uint64_t seed, int keep,
                     const std::function<bool(bool)>& all_succeeded = {}, const std::string& lineage = {});

// A new lineage id: 16 hex digits from the clock and the process id.
std::string new_checkpoint_lineage();

// Loads and verifies checkpoint `step` (-1 = latest) against this run's plan and settings, and
// restores the model (parameters, master weights, m, v), the trainer's step and the data
// position. Throws FileError / ConfigError("--flag") before touching anything on mismatch.
// Returns the step resumed from, and the checkpoint's lineage in `lineage` when given ("" for a
// checkpoint written before lineages were recorded).
int64_t resume_from_checkpoint(const std::string& dir, int64_t step, Model& model, Trainer& trainer, BatchSource& train,
                               const nlohmann::json& settings, std::string* lineage = nullptr);

// One run's claim on a checkpoint directory: DIR/lock, opened without following links, holds
// the owner's process id and an exclusive flock() for the object's lifetime. The kernel drops
// the flock when the process ends, however it ends, so a lock file left by a dead process is
// simply taken over. A directory locked by a live process: ConfigError("--checkpoint-dir", "...
// in use by process N ...").
class CheckpointDirLock {
 public:
  explicit CheckpointDirLock(const std::string& dir);
  ~CheckpointDirLock();
  CheckpointDirLock(const CheckpointDirLock&) = delete;
  CheckpointDirLock& operator=(const CheckpointDirLock&) = delete;

 private:
  int fd_ = -1;
};

// Removes the temporary checkpoint files (model_*, state_*, latest, named by AtomicFile) that a
// writer which no longer runs left in DIR: their names carry the writer's process id, and the
// caller holds the directory's lock, so no run using DIR can be writing them. Returns their names.
std::vector<std::string> remove_dead_writers_temporaries(const std::string& dir);

}  // namespace gpt2
