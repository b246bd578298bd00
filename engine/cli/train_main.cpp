#include "engine/cli/train_main.h"

#include <omp.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <ostream>

#include "engine/backend/comm.h"
#include "engine/backend/cpu_backend.h"
#include "engine/backend/cuda_backend_factory.h"
#include "engine/backend/op_profiler.h"
#include "engine/cli/dry_run.h"
#include "engine/cli/flag_checks.h"
#include "engine/data/dataloader.h"
#include "engine/data/tokenizer.h"
#include "engine/model/model_io.h"
#include "engine/model/sampler.h"
#include "engine/plan/gpu_catalog.h"
#include "engine/plan/throughput_model.h"
#include "engine/train/checkpoint.h"
#include "engine/train/hellaswag.h"
#include "engine/train/profile_report.h"
#include "engine/train/trainer.h"
#include "engine/util/errors.h"
#include "engine/util/file_io.h"
#include "engine/util/stop_signal.h"
#include "engine/util/units.h"

namespace gpt2 {

namespace {

std::unique_ptr<BatchSource> make_source(const std::string& spec, const RunOptions& o, const MemoryPlan& plan,
                                         bool shuffle, uint64_t seed) {
  if (spec == "synthetic")
    return std::make_unique<SyntheticSource>(plan.model.vocab_size, plan.run.micro_batch, plan.run.seq_len, seed, 0.1,
                                             plan.run.rank, plan.run.world_size);
  DataLoaderOptions d;
  d.pattern = spec;
  d.format = parse_data_format(o.data_format, "--data-format");
  d.B = plan.run.micro_batch;
  d.T = plan.run.seq_len;
  d.rank = plan.run.rank;
  d.world = plan.run.world_size;
  d.seed = seed;
  d.shuffle = shuffle;
  d.vocab_size = plan.model.vocab_size;
  return std::make_unique<LoaderSource>(d);
}

// The CUDA backend comes up before the plan: its context and handles are the measured reserve.
// Throws ConfigError("--device") when CUDA was asked for and there is no usable GPU.
std::unique_ptr<Backend> make_backend(Device device, int local_rank, MeasuredDevice* measured) {
  if (device == Device::CPU) return std::make_unique<CpuBackend>();
  std::unique_ptr<CudaBackendBase> cuda = make_cuda_backend(local_rank);
  const CudaMemoryReport r = cuda->memory_report();
  measured->name = cuda->device_name();
  measured->total_bytes = r.total_bytes;
  measured->reserve_bytes = r.reserve_bytes;
  return cuda;
}

// The GPT-2 tokenizer, loaded on first use: only sampling and a HellaSwag .jsonl need it (a
// FileError with the data/fetch_tokenizer.sh hint when its files are missing).
class LazyTokenizer {
 public:
  explicit LazyTokenizer(std::string dir) : dir_(dir.empty() ? default_tokenizer_dir() : std::move(dir)) {}
  const Tokenizer& get() {
    if (!tok_) tok_ = std::make_unique<Tokenizer>(Tokenizer::from_dir(dir_));
    return *tok_;
  }

 private:
  std::string dir_;
  std::unique_ptr<Tokenizer> tok_;
};

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
std::optional<int64_t> resume_if_asked(const RunOptions& o, const nlohmann::json& settings, Model& model,
                                       Trainer& trainer, BatchSource& train, Communicator* comm, std::ostream& out,
                                       std::string* lineage) {
  if (!o.resume) {
    *lineage = fresh_lineage(comm);
    return std::nullopt;
  }
  const int64_t s = resume_from_checkpoint(o.checkpoint_dir, -1, model, trainer, train, settings, lineage);
  if (lineage->empty()) *lineage = fresh_lineage(comm);  // written before lineages were recorded
  if (!o.eval_only && s >= o.steps)
    throw ConfigError("--steps", std::to_string(o.steps) + " steps, but the checkpoint in " + o.checkpoint_dir +
                                     " is already at step " + std::to_string(s) + "; give --steps above " +
                                     std::to_string(s) + " to train on");
  out << "resume  from step " << s << " of " << o.checkpoint_dir << "\n";
  return s;
}

// Samples during or instead of training (--sample-every, or --eval-only with --sample-prompt).
class Sampling {
 public:
  Sampling(const RunOptions& o, Model& model, LazyTokenizer& tok) : o_(o), model_(model), tok_(tok) {
    enabled_ = o.sample_every > 0 || (o.eval_only && o.was_set("--sample-prompt"));
    if (!enabled_) return;
    if (!model.can_decode())
      throw ConfigError("--sample-every",
                        "sampling keeps its KV cache in the stored activations; use a --recompute "
                        "policy other than block/budget");
    const Tokenizer& t = tok.get();
    prompt_ = o.sample_prompt.empty() ? std::vector<int32_t>{t.eot_token()} : t.encode(o.sample_prompt);
    for (int32_t id : prompt_)
      if (id >= model.config().vocab_size)
        throw ConfigError("--sample-prompt", "token " + std::to_string(id) + " is outside the model's vocabulary of " +
                                                 std::to_string(model.config().vocab_size));
  }
  bool enabled() const { return enabled_; }
  bool due(int64_t step) const { return enabled_ && o_.sample_every > 0 && step % o_.sample_every == 0; }

  void print(int64_t step, std::ostream& out) {
    SampleOptions so;
    so.max_tokens = o_.sample_tokens;
    so.temperature = o_.sample_temperature;
    so.top_k = o_.sample_top_k;
    so.seed = derive_seed(o_.seed, static_cast<uint64_t>(step));
    out << "sample  (step " << step << ") " << o_.sample_prompt << std::flush;
    const Tokenizer& tok = tok_.get();
    generate(model_, prompt_, so, [&](int32_t id) { out << tok.decode(&id, 1) << std::flush; });
    out << "\n" << std::flush;
  }

 private:
  const RunOptions& o_;
  Model& model_;
  LazyTokenizer& tok_;
  bool enabled_ = false;
  std::vector<int32_t> prompt_;
};

// --hellaswag: the examples, loaded before training so a bad file fails fast. The loader tells
// the eval .bin from the .jsonl and asks for the tokenizer only for the .jsonl.
std::vector<MultipleChoiceExample> load_hellaswag_if_asked(const RunOptions& o, LazyTokenizer& tok) {
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
void evaluate_only(const RunOptions& o, Model& model, Trainer& trainer,
                   const std::vector<MultipleChoiceExample>& hellaswag, Sampling& sampling, std::ostream& out) {
  if (trainer.step() == 0 && !o.resume && is_preset_name(o.model))
    out << "note    --eval-only on a freshly initialised model\n";
  const double v = trainer.evaluate(&out);
  if (std::isfinite(v))
    out << "val loss " << v << (o.val_data.empty() ? " (on synthetic tokens: no --val-data given)" : "") << "\n";
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
// On SIGINT/SIGTERM: a checkpoint of this step (with --checkpoint-dir), a line saying so, and the
// run stops; `stopped_by` gets the signal.
void install_step_hook(const RunOptions& o, const TrainOptions& t, const nlohmann::json& settings,
                       const std::string& lineage, Model& model, Trainer& trainer, BatchSource& train,
                       Sampling& sampling, int* stopped_by, std::ostream& out) {
  trainer.set_step_hook(
      [&o, &t, settings, lineage, &model, &trainer, &train, &sampling, stopped_by, &out](const StepResult& r) {
        const bool last = r.step >= t.steps;
        const int stop = agreed_stop_signal(t.comm);
        const bool due = (o.checkpoint_every > 0 && r.step % o.checkpoint_every == 0) || last || stop != 0;
        if (!o.checkpoint_dir.empty() && due) {
          save_checkpoint(
              o.checkpoint_dir, model, trainer, train, settings, o.seed, o.keep_checkpoints,
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

// Resume, the evaluation and sampling set-up, then either --eval-only or the training run with
// its step hook, and HellaSwag at the end. Returns the step results, or nothing for --eval-only;
// `stopped_by` gets the signal that stopped the run early (0 when none did).
std::optional<std::vector<StepResult>> run_training(const RunOptions& o, const std::string& train_spec, Model& model,
                                                    Trainer& trainer, BatchSource& train, const TrainOptions& t,
                                                    std::ostream& out, Backend& backend, int* stopped_by) {
  const nlohmann::json settings = checkpoint_settings(model.plan(), t, train_spec);
  std::string lineage;
  const std::optional<int64_t> resumed = resume_if_asked(o, settings, model, trainer, train, t.comm, out, &lineage);
  LazyTokenizer tok(o.tokenizer_dir);
  Sampling sampling(o, model, tok);
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

// The trainer's settings from the flags. peak_flops and comm are the caller's.
TrainOptions train_options(const RunOptions& o) {
  TrainOptions t;
  t.steps = o.steps;
  t.lr.kind = parse_lr_schedule(o.lr_schedule);
  t.lr.lr = o.lr;
  t.lr.warmup = o.warmup;
  t.lr.total_steps = o.steps;
  t.lr.final_lr_frac = o.final_lr_frac;
  t.weight_decay = static_cast<float>(o.weight_decay);
  t.grad_clip = static_cast<float>(o.grad_clip);
  t.seed = o.seed;
  t.val_every = o.val_every;
  t.val_batches = o.val_batches;
  t.skip_nonfinite = o.skip_nonfinite;
  t.print_every = o.print_every;
  t.log_path = o.log_file;
  return t;
}

// MFU per GPU against the card table's dense bf16 (or fp32) peak; 0 (logged as null) for the
// CPU backend, for cards not in the table and for a card emulated by the SIMT layer.
double peak_flops(Backend& backend, const MemoryPlan& plan, int world_size) {
  CudaBackendBase* cuda = as_cuda_backend(backend);
  const GpuSpec* card = cuda && !cuda->emulated() ? match_gpu_by_device_name(cuda->device_name()) : nullptr;
  if (!card) return 0;
  return (plan.run.precision == Precision::BF16 ? card->bf16_tflops : card->fp32_tflops) * 1e12 * world_size;
}

// The CUDA backend reports the planned arena against the measured drop in free memory.
void report_measured_arena(Backend& backend, const MemoryPlan& plan, std::ostream& out, std::ostream& err) {
  CudaBackendBase* cuda = as_cuda_backend(backend);
  if (!cuda) return;
  const CudaMemoryReport r = cuda->memory_report();
  const int64_t diff = r.arena_drop_bytes() - plan.arena_bytes;
  out << "memory  arena planned " << format_count(plan.arena_bytes) << " bytes, measured drop in free memory "
      << format_count(r.arena_drop_bytes()) << " bytes (" << (diff >= 0 ? "+" : "") << format_bytes(diff)
      << "); reserve measured " << format_bytes(r.reserve_bytes) << "\n";
  if (diff > kMiB || diff < -kMiB) err << "train_gpt2: warning: planned and measured arena differ by more than 1 MiB\n";
  if (plan.host_arena_bytes > 0)
    out << "memory  host arena planned " << format_count(plan.host_arena_bytes) << " bytes, pinned "
        << format_count(r.host_arena_bytes) << " bytes (offloaded optimizer)\n";
}

// An output file must not be one of the run's inputs, the other output, or a file in
// --checkpoint-dir (whose files the checkpoints own: a log appended to `latest`, or a profile
// written over a model file, would ruin the checkpoint).
void check_outputs_apart(const RunOptions& o) {
  std::vector<std::pair<std::string, std::string>> inputs;  // flag, path
  if (!is_preset_name(o.model)) inputs.push_back({"--model", o.model});
  if (!o.hellaswag.empty()) inputs.push_back({"--hellaswag", o.hellaswag});
  for (const auto& [flag, spec] : {std::pair<std::string, std::string>{"--train-data", o.train_data},
                                   std::pair<std::string, std::string>{"--val-data", o.val_data}}) {
    if (spec.empty() || spec == "synthetic") continue;
    try {
      for (const std::string& f : expand_data_glob(spec)) inputs.push_back({flag, f});
    } catch (const std::exception&) {
      // The data loader reports a pattern that matches nothing.
    }
  }
  const std::pair<std::string, std::string> outputs[] = {{"--log", o.log_file}, {"--profile-json", o.profile_json}};
  for (const auto& [flag, path] : outputs) {
    if (path.empty()) continue;
    for (const auto& [in_flag, in_path] : inputs)
      if (same_file(path, in_path))
        throw ConfigError(flag, path + " is the " + in_flag + " input " + in_path + "; refusing to overwrite it");
    if (!o.checkpoint_dir.empty() && same_file(dir_of(path), o.checkpoint_dir))
      throw ConfigError(flag, path + " is inside --checkpoint-dir " + o.checkpoint_dir +
                                  ", whose files belong to the checkpoints; write it elsewhere");
    // A checkpoint directory of another run: its marker and its model and state files.
    const std::string dir = dir_of(path), base = path.substr(path.find_last_of('/') + 1);
    if (::access((dir + "/latest").c_str(), F_OK) == 0 &&
        (base == "latest" || base.rfind("model_", 0) == 0 || base.rfind("state_", 0) == 0))
      throw ConfigError(flag, path + " is a file of the checkpoint directory " + dir + "; write it elsewhere");
  }
  if (!o.log_file.empty() && !o.profile_json.empty() &&
      (o.log_file == o.profile_json || same_file(o.log_file, o.profile_json)))
    throw ConfigError("--profile-json", o.profile_json + " is also the --log file");
}

// --resume, --checkpoint-every and --keep-checkpoints act on --checkpoint-dir.
void check_checkpoint_flags(const RunOptions& o) {
  if (!o.checkpoint_dir.empty()) return;
  const char* flag = o.resume                 ? "--resume"
                     : o.checkpoint_every > 0 ? "--checkpoint-every"
                     : o.keep_checkpoints > 0 ? "--keep-checkpoints"
                                              : nullptr;
  if (flag) throw ConfigError(flag, "needs --checkpoint-dir DIR");
}

// A run without --resume never writes into a checkpoint directory that holds a run's checkpoints
// (a `latest` marker): it would overwrite them and move `latest` back to its own steps.
void refuse_used_checkpoint_dir(const RunOptions& o) {
  if (o.checkpoint_dir.empty() || o.resume || o.eval_only) return;
  const int64_t latest = latest_checkpoint_step(o.checkpoint_dir);
  if (latest < 0) return;
  throw ConfigError("--checkpoint-dir", o.checkpoint_dir + " already holds the checkpoints of a run (latest: step " +
                                            std::to_string(latest) +
                                            "); pass --resume to continue that run, or give another "
                                            "--checkpoint-dir for a new one");
}

// The longest sample generated during training: a peek at the model, printed as it is generated;
// the sample tool is for long texts.
constexpr int kMaxTrainingSampleTokens = 100000;

void check_sample_length(const RunOptions& o) {
  const bool sampling = o.sample_every > 0 || (o.eval_only && o.was_set("--sample-prompt"));
  if (sampling && o.sample_tokens > kMaxTrainingSampleTokens)
    throw ConfigError("--sample-tokens", std::to_string(o.sample_tokens) + " is more than the " +
                                             format_count(kMaxTrainingSampleTokens) +
                                             " tokens a sample during a run may have; use the sample tool on a "
                                             "checkpoint for longer texts");
}

// --checkpoint-dir, once every check has passed: rank 0 creates it and holds its lock for the
// job (and removes the temporary files of dead writers); then the other ranks check that they
// can write into it. A rank 0 that fails stops every rank.
std::unique_ptr<CheckpointDirLock> claim_checkpoint_dir(const RunOptions& o, Communicator& comm, std::ostream& out) {
  if (o.checkpoint_dir.empty() || o.eval_only) return nullptr;
  std::unique_ptr<CheckpointDirLock> lock;
  std::exception_ptr failure;
  if (o.rank == 0) {
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
  if (o.rank != 0) create_output_dir(o.checkpoint_dir, "--checkpoint-dir");
  return lock;
}

// The roofline's step time for this device (engine/plan/throughput_model.h) and the run's total,
// printed before step 1 so a long run says so up front. Nothing for a device without a known
// peak (a card not in the table, or one emulated by the SIMT layer). A run of the default GPT-2
// 124M on the CPU that is predicted to take over half an hour also names a quick first run.
void print_time_prediction(const RunOptions& o, Backend& backend, const MemoryPlan& plan, const GpuSpec& device,
                           std::ostream& out, std::ostream& err) {
  const CudaBackendBase* cuda = as_cuda_backend(backend);
  if ((cuda && cuda->emulated()) || device_peak_flops(plan, device) <= 0 || o.eval_only) return;
  const StepTimePrediction p = predict_step_time(plan, device);
  const double total_s = p.step_s * static_cast<double>(o.steps);
  out << "predict " << format_duration(p.step_s) << "/step, " << format_duration(total_s) << " for " << o.steps
      << " steps (roofline for " << device.name << (p.estimate ? ", an estimate" : "") << ")\n";
  const bool shape_given = o.was_set("--model") || o.was_set("--layers") || o.was_set("--width");
  if (!cuda && !shape_given && total_s > 1800)
    err << "train_gpt2: note: GPT-2 " << plan.model.describe() << " on the CPU is predicted to take "
        << format_duration(total_s) << "; for a quick first run try --layers 4 --heads 4 --width 128 --seq-len 128 "
        << "--micro-batch 8 (or --dry-run to see the plan)\n"
        << std::flush;
}

// --profile / --profile-json: the measured steps beside the roofline prediction for this device.
void report_profile(const RunOptions& o, const OpProfiler& profiler, const MemoryPlan& plan,
                    const GpuSpec& device, std::ostream& out) {
  const ProfileReport report = make_profile_report(profiler.data(), predict_step_time(plan, device), device);
  if (o.profile) print_profile(out, report);
  if (!o.profile_json.empty() && plan.run.rank == 0) {
    write_file_atomic(o.profile_json, profile_json(report) + "\n");
    out << "profile written to " << o.profile_json << "\n";
  }
}

}  // namespace

// Output of ranks other than 0 goes nowhere: rank 0 speaks for the job.
struct NullBuffer : std::streambuf {
  int overflow(int c) override { return c; }
};

int train_main(const RunOptions& opts_in, std::ostream& out_rank0, std::ostream& err) {
  // Multi-process runs: rank and world size come from the launcher (mpirun, srun).
  const ProcessInfo proc = detect_process();
  RunOptions o = opts_in;
  check_launch_agrees(o, proc.world_size, proc.rank);  // --world-size/--rank: dry-run flags otherwise
  o.world_size = proc.world_size;
  o.rank = proc.rank;
  if (o.rank == 0) {
    const std::string warning = thread_oversubscription_warning("train_gpt2", omp_get_max_threads());
    if (!warning.empty()) err << warning << "\n" << std::flush;
  }
  NullBuffer null_buffer;
  std::ostream null_stream(&null_buffer);
  std::ostream& out = o.rank == 0 ? out_rank0 : null_stream;
  // Every output is checked before anything else, so a bad path never costs a run, and before
  // anything is created, so a refused run leaves nothing behind. --eval-only writes no checkpoint.
  check_checkpoint_flags(o);
  if (!o.checkpoint_dir.empty() && !o.eval_only) check_output_dir(o.checkpoint_dir, "--checkpoint-dir");
  if (!o.log_file.empty() && o.rank == 0) check_output_file(o.log_file, "--log");
  if (!o.profile_json.empty() && o.rank == 0) check_output_file(o.profile_json, "--profile-json", true);
  check_outputs_apart(o);
  refuse_used_checkpoint_dir(o);
  check_sample_length(o);
  if ((o.profile || !o.profile_json.empty()) && o.eval_only)
    throw ConfigError(o.profile ? "--profile" : "--profile-json", "times training steps; --eval-only runs none");
  const Device device = resolve_device(o);
  MeasuredDevice measured;
  std::unique_ptr<Backend> backend = make_backend(device, proc.local_rank, &measured);
  std::unique_ptr<Communicator> comm = make_communicator(proc, *backend);
  ResolvedRun rr = resolve_with_autofit(o, device == Device::CUDA ? &measured : nullptr);
  const MemoryPlan plan = make_memory_plan(rr.model, rr.run);
  if (comm->active()) {  // before anything is allocated
    check_ranks_agree(*comm, plan.hash(), "the memory plan (model, batch, precision, recompute, ZeRO settings)");
    out << "ranks   " << comm->world_size() << " processes (" << comm->describe() << "), ZeRO-" << plan.run.zero_stage
        << "\n";
  }
  const Verdict verdict = judge(plan, rr.budget);
  if (!verdict.fits && plan.total_bytes() <= rr.budget.bytes) {
    // Fits the device, not the host: the offloaded optimizer's host arena is over --host-mem.
    throw ConfigError("--host-mem", "the offloaded optimizer's host arena needs " + format_bytes(plan.host_arena_bytes) +
                                        " of pinned host memory but the budget is " +
                                        format_bytes(rr.budget.host_bytes) + " (" + rr.budget.host_source + ")");
  }
  if (!verdict.fits) {
    // Fail fast: nothing has been allocated yet.
    print_plan(err, plan, rr.budget);
    print_fit_suggestion(err, rr);
    throw ConfigError(o.gpu_mem.empty() ? "--micro-batch" : "--gpu-mem",
                      "the plan needs " + format_bytes(plan.total_bytes()) + " but the budget is " +
                          format_bytes(rr.budget.bytes) + " (" + rr.budget.source + "); see the flags above");
  }

  const std::string train_spec = o.train_data.empty() ? "synthetic" : o.train_data;
  std::unique_ptr<BatchSource> train = make_source(train_spec, o, plan, true, o.seed);
  std::unique_ptr<BatchSource> val;
  if (!o.val_data.empty())
    val = make_source(o.val_data, o, plan, false, o.seed);
  else if (train_spec == "synthetic")
    val = make_source("synthetic", o, plan, false, o.seed ^ 0x5eed);
  const std::unique_ptr<CheckpointDirLock> checkpoint_lock = claim_checkpoint_dir(o, *comm, out);

  out << "model   " << plan.model.describe() << ", " << format_count(plan.num_params) << " parameters\n";
  out << "run     B=" << plan.run.micro_batch << " T=" << plan.run.seq_len << " grad_accum=" << plan.grad_accum << " ("
      << format_count(plan.run.total_batch_tokens) << " tokens/step) recompute=" << to_string(plan.run.recompute)
      << " logits_chunk=" << plan.run.logits_chunk << (plan.offloaded() ? " offload=optimizer" : "") << "\n";
  if (rr.autofit_used)
    for (const auto& why : rr.autofit.reasons) out << "auto-fit: " << why << "\n";
  out << "memory  arena " << format_bytes(plan.arena_bytes) << " planned; " << verdict.text << "\n";
  out << "data    train: " << train->describe() << (o.train_data.empty() ? " (no --train-data given)" : "") << "\n";
  if (val) out << "        val:   " << val->describe() << "\n";

  std::unique_ptr<OpProfiler> profiler;
  if (o.profile || !o.profile_json.empty()) profiler = std::make_unique<OpProfiler>(*backend, plan);
  Model model(plan, *backend);
  out << "backend " << backend->describe() << "\n";
  report_measured_arena(*backend, plan, out, err);
  print_time_prediction(o, *backend, plan, rr.budget.gpu, out, err);
  if (!is_preset_name(o.model) && !o.resume) {
    // Pretrained initialisation: an llm.c .bin or an HF .safetensors (engine/model/model_io.h).
    const ModelWeights w = load_model_file(o.model, o.heads);
    model.set_parameters(to_flat(plan, w));
    out << "init    weights from " << o.model << "\n";
  } else {
    model.init_gpt2(o.seed);
  }

  TrainOptions t = train_options(o);
  t.comm = comm.get();
  t.peak_flops = peak_flops(*backend, plan, comm->world_size());
  t.profiler = profiler.get();
  Trainer trainer(model, t, *train, val.get());
  int stopped_by = 0;
  const auto results = run_training(o, train_spec, model, trainer, *train, t, out, *backend, &stopped_by);
  if (!results) return kExitOk;  // --eval-only
  if (profiler) report_profile(o, *profiler, plan, rr.budget.gpu, out);
  if (stopped_by != 0) return 128 + stopped_by;  // the shell's code for a run ended by that signal
  if (!results->empty())
    out << "done: " << results->size() << " steps, final loss " << results->back().loss
        << (results->back().val_loss ? ", val loss " + std::to_string(*results->back().val_loss) : "") << "\n";
  return kExitOk;
}

}  // namespace gpt2
