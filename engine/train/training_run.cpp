#include "engine/train/training_run.h"

#include <cmath>
#include <cstdio>
#include <exception>
#include <ostream>
#include <stdexcept>

#include "engine/train/hellaswag.h"
#include "engine/util/errors.h"
#include "engine/util/file_io.h"
#include "engine/util/stop_signal.h"

namespace gpt2 {

namespace {

// A fresh run's checkpoint lineage, the same on every rank (rank 0's).
std::string fresh_lineage(Communicator* comm) {
  const std::string mine = new_checkpoint_lineage();
  if (!comm || !comm->active()) return mine;
  const uint64_t rank0 = comm->all_gather_u64(std::stoull(mine, nullptr, 16)).at(0);
  char id[24];
  std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(rank0));
  return id;
}

// --resume: continues from the checkpoint directory's latest checkpoint. Returns the step resumed
// from (nothing for a fresh run) and sets `lineage` to the lineage the run's checkpoints continue.
std::optional<int64_t> resume_if_asked(const TrainingRunOptions& o, const TrainOptions& t,
                                       const nlohmann::json& settings, Model& model, Trainer& trainer,
                                       BatchSource& train, std::ostream& out, std::string* lineage) {
  if (!o.resume) {
    *lineage = fresh_lineage(t.comm);
    return std::nullopt;
  }
  const int64_t s = resume_from_checkpoint(o.checkpoint_dir, -1, model, trainer, train, settings, lineage);
  if (lineage->empty()) *lineage = fresh_lineage(t.comm);  // written before lineages were recorded
  if (!o.eval_only && s >= t.steps)
    throw ConfigError("--steps", std::to_string(t.steps) + " steps, but the checkpoint in " + o.checkpoint_dir +
                                     " is already at step " + std::to_string(s) + "; give --steps above " +
                                     std::to_string(s) + " to train on");
  out << "resume  from step " << s << " of " << o.checkpoint_dir << "\n";
  return s;
}

// HellaSwag: the examples, loaded before training so a bad file fails fast. The loader tells the
// eval .bin from the .jsonl and asks for the tokenizer only for the .jsonl.
std::vector<MultipleChoiceExample> load_hellaswag_if_asked(const TrainingRunOptions& o, LazyTokenizer& tok) {
  if (o.hellaswag.empty()) return {};
  return load_hellaswag(o.hellaswag, [&]() { return &tok.get(); });
}

void print_hellaswag(Model& model, const std::vector<MultipleChoiceExample>& examples, std::ostream& out) {
  if (examples.empty()) return;
  const MultipleChoiceResult r = evaluate_multiple_choice(model, examples);
  char line[128];
  std::snprintf(line, sizeof line, "hellaswag accuracy %lld/%lld = %.4f\n", static_cast<long long>(r.correct),
                static_cast<long long>(r.examples), r.accuracy);
  out << line << std::flush;
}

// --eval-only: validation loss, HellaSwag and a sample, without training.
void evaluate_only(const TrainingRunOptions& o, Model& model, Trainer& trainer,
                   const std::vector<MultipleChoiceExample>& hellaswag, Sampling& sampling, std::ostream& out) {
  if (trainer.step() == 0 && !o.resume && o.preset_model) out << "note    --eval-only on a freshly initialised model\n";
  const double v = trainer.evaluate(&out);
  if (std::isfinite(v))
    out << "val loss " << v << (o.synthetic_val ? " (on synthetic tokens: no --val-data given)" : "") << "\n";
  print_hellaswag(model, hellaswag, out);
  if (sampling.enabled()) sampling.print(trainer.step(), out);
}

// The stop signal (SIGINT, SIGTERM) at this step boundary, or 0; the same on every rank, so all
// ranks stop after the same step: the signal of the lowest rank that received one.
int agreed_stop_signal(Communicator* comm) {
  const int mine = StopSignals::received();
  if (!comm || !comm->active()) return mine;
  for (const uint64_t s : comm->all_gather_u64(static_cast<uint64_t>(mine)))
    if (s != 0) return static_cast<int>(s);
  return 0;
}

// After each step: a checkpoint when one is due (and after the last step), then a sample when due.
// On SIGINT/SIGTERM: a checkpoint of this step (with a checkpoint directory), a line saying so,
// and the run stops; `stopped_by` gets the signal.
void install_step_hook(const TrainingRunOptions& o, const TrainOptions& t, const nlohmann::json& settings,
                       const std::string& lineage, Model& model, Trainer& trainer, BatchSource& train,
                       Sampling& sampling, int* stopped_by, std::ostream& out) {
  trainer.set_step_hook(
      [&o, &t, settings, lineage, &model, &trainer, &train, &sampling, stopped_by, &out](const StepResult& r) {
        const bool last = r.step >= t.steps;
        const int stop = agreed_stop_signal(t.comm);
        const bool due = (o.checkpoint_every > 0 && r.step % o.checkpoint_every == 0) || last || stop != 0;
        if (!o.checkpoint_dir.empty() && due) {
          save_checkpoint(
              o.checkpoint_dir, model, trainer, train, settings, t.seed, o.keep_checkpoints,
              [&](bool ok) {
                if (!t.comm || !t.comm->active()) return ok;
                return t.comm->all_reduce_scalar(ok ? 0.0 : 1.0, ReduceOp::Sum) == 0.0;  // also a barrier
              },
              lineage);
          out << "checkpoint step " << r.step << " -> " << checkpoint_model_path(o.checkpoint_dir, r.step) << "\n"
              << std::flush;
        }
        if (stop != 0) {
          *stopped_by = stop;
          trainer.request_stop();
          out << "stopped by " << stop_signal_name(stop) << " after step " << r.step << " of " << t.steps
              << (o.checkpoint_dir.empty() ? "; no --checkpoint-dir, so nothing was saved"
                                           : "; its checkpoint is in " + o.checkpoint_dir + ", continue with --resume")
              << "\n"
              << std::flush;
          return;
        }
        if (sampling.due(r.step)) sampling.print(r.step, out);
      });
}

}  // namespace

std::unique_ptr<CheckpointDirLock> claim_checkpoint_dir(const TrainingRunOptions& o, int rank, Communicator& comm,
                                                        std::ostream& out) {
  if (o.checkpoint_dir.empty() || o.eval_only) return nullptr;
  std::unique_ptr<CheckpointDirLock> lock;
  std::exception_ptr failure;
  if (rank == 0) {
    try {
      create_output_dir(o.checkpoint_dir, "--checkpoint-dir");
      lock = std::make_unique<CheckpointDirLock>(o.checkpoint_dir);
      for (const std::string& name : remove_dead_writers_temporaries(o.checkpoint_dir))
        out << "checkpoint removed " << o.checkpoint_dir << "/" << name << ", left by a writer that was killed\n";
    } catch (...) {
      failure = std::current_exception();
    }
  }
  const bool rank0_failed = comm.active() && comm.all_reduce_scalar(failure ? 1.0 : 0.0, ReduceOp::Sum) != 0.0;
  if (failure) std::rethrow_exception(failure);
  if (rank0_failed) throw ConfigError("--checkpoint-dir", "rank 0 could not claim " + o.checkpoint_dir);
  if (rank != 0) create_output_dir(o.checkpoint_dir, "--checkpoint-dir");
  return lock;
}

std::optional<std::vector<StepResult>> run_training(const TrainingRunOptions& o, const TrainOptions& t, Model& model,
                                                    Trainer& trainer, BatchSource& train, Backend& backend,
                                                    std::ostream& out, int* stopped_by) {
  const nlohmann::json settings = checkpoint_settings(model.plan(), t, o.train_data);
  std::string lineage;
  const std::optional<int64_t> resumed = resume_if_asked(o, t, settings, model, trainer, train, out, &lineage);
  LazyTokenizer tok(o.tokenizer_dir);
  Sampling sampling(o.sampling, model, tok);
  const std::vector<MultipleChoiceExample> hellaswag = load_hellaswag_if_asked(o, tok);
  if (o.eval_only) {
    evaluate_only(o, model, trainer, hellaswag, sampling, out);
    return std::nullopt;
  }
  install_step_hook(o, t, settings, lineage, model, trainer, train, sampling, stopped_by, out);
  trainer.log_run_start(resumed);
  out << std::flush;  // the start-up lines reach a redirected stdout before step 1 begins
  const int64_t allocs = backend.allocation_count();
  std::vector<StepResult> results;
  {
    const StopSignals signals;
    results = trainer.run(out);
    if (*stopped_by == 0 && StopSignals::received() != 0) {
      *stopped_by = StopSignals::received();
      out << "stopped by " << stop_signal_name(*stopped_by) << " during the last step, which completed\n";
    }
  }
  const int64_t after = backend.allocation_count() - allocs;
  out << "memory  allocations after start-up: " << after << "\n";
  if (after != 0) throw std::logic_error("internal error: the backend allocated memory during training");
  print_hellaswag(model, hellaswag, out);
  return results;
}

}  // namespace gpt2
