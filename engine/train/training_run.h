// A training run around the Trainer (trainer.h): the checkpoint directory claimed, the resume
// from its latest checkpoint, then either --eval-only's evaluation or the training steps with a
// hook after each (a checkpoint when due, the stop signal, a sample when due), and HellaSwag at
// the end. train_gpt2 fills the options from its flags (engine/cli/train_main.cpp).
#pragma once
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/backend/comm.h"
#include "engine/data/batch_source.h"
#include "engine/model/model.h"
#include "engine/train/checkpoint.h"
#include "engine/train/sampling.h"
#include "engine/train/trainer.h"

namespace gpt2 {

struct TrainingRunOptions {
  std::string train_data = "synthetic";  // the training data, as the checkpoints' settings record it
  std::string checkpoint_dir;            // empty = no checkpoints
  int64_t checkpoint_every = 0;          // 0 = only after the last step
  int keep_checkpoints = 0;              // 0 = keep all
  bool resume = false;                   // continue from checkpoint_dir's latest checkpoint
  bool eval_only = false;                // no training: validation loss, HellaSwag, a sample
  bool preset_model = true;              // the weights start from a preset's initialisation, not a file
  bool synthetic_val = false;            // no validation data given: the loss is on synthetic tokens
  std::string tokenizer_dir;             // empty = default_tokenizer_dir()
  std::string hellaswag;                 // llm.c eval .bin or HellaSwag .jsonl; empty = none
  SamplingOptions sampling;
};

// The checkpoint directory, once every check has passed: rank 0 creates it and holds its lock for
// the job (and removes the temporary files of dead writers); then the other ranks check that
// they can write into it. A rank 0 that fails stops every rank. nullptr without a checkpoint
// directory, with --eval-only, and on ranks other than 0.
std::unique_ptr<CheckpointDirLock> claim_checkpoint_dir(const TrainingRunOptions& opts, int rank, Communicator& comm,
                                                        std::ostream& out);

// Resume, the evaluation and sampling set-up, then either --eval-only or the training run with
// its step hook, and HellaSwag at the end. Returns the step results, or nothing for --eval-only;
// `stopped_by` gets the signal (SIGINT, SIGTERM) that stopped the run early (0 when none did).
// `train_opts` are the trainer's (its steps, seed and communicator); `backend` is checked for
// allocations during training, which are an internal error.
std::optional<std::vector<StepResult>> run_training(const TrainingRunOptions& opts, const TrainOptions& train_opts,
                                                    Model& model, Trainer& trainer, BatchSource& train,
                                                    Backend& backend, std::ostream& out, int* stopped_by);

}  // namespace gpt2
