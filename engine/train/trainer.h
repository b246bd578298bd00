// The training loop: micro-batches with gradient accumulation up to the total batch, global-norm
// clipping, the LR schedule, AdamW, validation every N steps, one log line per step (and a JSONL
// record with --log), and fail-fast on bad tokens and non-finite losses.
#pragma once
#include <cstdint>
#include <fstream>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "engine/data/batch_source.h"
#include "engine/model/model.h"
#include "engine/train/lr_schedule.h"

namespace gpt2 {

class Communicator;
class OpProfiler;

struct TrainOptions {
  // Data parallelism: gradients are averaged over ranks (all-reduce, or reduce-scatter +
  // all-gather of the parameters under ZeRO-1). nullptr = one process. Only rank 0 logs.
  Communicator* comm = nullptr;
  int64_t steps = 200;
  LrSchedule lr;
  float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
  float weight_decay = 0.1f;
  float grad_clip = 1.0f;  // 0 = no clipping
  uint64_t seed = 1337;
  int64_t val_every = 0;  // 0 = only after the last step
  int64_t val_batches = 4;
  bool skip_nonfinite = false;  // skip the update instead of stopping
  int64_t print_every = 1;
  std::string log_path;   // JSONL, one object per step
  double peak_flops = 0;  // the device's peak FLOP/s for MFU; 0 = unknown (mfu is null)
  // --profile: the model's backend wrapper that times its calls; each training step (not
  // validation) is bracketed with begin_step/end_step. nullptr = no profile.
  OpProfiler* profiler = nullptr;
};

struct StepResult {
  int64_t step = 0;  // 1-based
  double loss = 0;   // mean over the step's tokens
  double lr = 0;
  double grad_norm = 0;  // before clipping
  double ms = 0;
  double tokens_per_s = 0;
  bool skipped = false;  // non-finite, update skipped
  std::optional<double> val_loss;
  int64_t tokens = 0;         // tokens trained on so far, this step included
  std::optional<double> mfu;  // model FLOPs utilisation, when the peak is known
};

// The factor torch.nn.utils.clip_grad_norm_ applies: min(1, clip / (norm + 1e-6)).
float clip_scale(double grad_norm, float grad_clip);

class Trainer {
 public:
  Trainer(Model& model, const TrainOptions& options, BatchSource& train, BatchSource* val);

  // One optimizer step over grad_accum micro-batches. Throws TrainingError naming the step for
  // an out-of-vocabulary token or (without skip_nonfinite) a non-finite loss or gradient norm.
  StepResult train_step();
  // Mean loss over val_batches micro-batches, from the start of the validation data. A long one
  // (10 s or more) says so on `progress`, when given, and reports there every 10 seconds.
  double evaluate(std::ostream* progress = nullptr);
  // Runs the remaining steps, printing one line per step and validating on schedule. Ends early,
  // after the current step, when the step hook calls request_stop().
  std::vector<StepResult> run(std::ostream& out);
  void request_stop() { stop_requested_ = true; }
  bool stop_requested() const { return stop_requested_; }
  // The --log record that opens a run, before its first step record:
  //   {"event": "run_start", "resumed_from": null|STEP, "model": ..., "micro_batch": B,
  //    "seq_len": T, "total_batch_tokens": N, "time": "YYYY-MM-DDTHH:MM:SSZ"}
  void log_run_start(std::optional<int64_t> resumed_from);

  int64_t step() const { return step_; }
  int64_t updates() const { return updates_; }
  void set_position(int64_t step, int64_t updates) {
    step_ = step;
    updates_ = updates;
  }
  // Called by run() after each step is logged (checkpoints, samples, extra evals).
  void set_step_hook(std::function<void(const StepResult&)> hook) { hook_ = std::move(hook); }

 private:
  void load_or_fail(const int32_t* inputs, const int32_t* targets, const char* what);
  void log_step(std::ostream& out, const StepResult& r);

  Model& model_;
  TrainOptions opt_;
  BatchSource& train_;
  BatchSource* val_;
  int64_t step_ = 0;                       // steps taken
  int64_t updates_ = 0;                    // AdamW updates applied (skipped steps don't count)
  std::vector<int32_t> inputs_, targets_;  // host staging for one micro-batch
  std::ofstream log_;
  std::function<void(const StepResult&)> hook_;
  bool stop_requested_ = false;
};

}  // namespace gpt2
