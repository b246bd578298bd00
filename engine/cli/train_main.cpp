#include "engine/cli/train_main.h"

#include <omp.h>

#include <memory>
#include <optional>
#include <ostream>

#include "engine/backend/backend_factory.h"
#include "engine/backend/comm.h"
#include "engine/backend/op_profiler.h"
#include "engine/cli/dry_run.h"
#include "engine/cli/flag_checks.h"
#include "engine/cli/resolve.h"
#include "engine/data/dataloader.h"
#include "engine/model/model_io.h"
#include "engine/train/run_report.h"
#include "engine/train/trainer.h"
#include "engine/train/training_run.h"
#include "engine/util/errors.h"
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

// The trainer's settings from the flags. peak_flops, comm and profiler are the caller's.
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

// Checkpoints, resume, evaluation and sampling (engine/train/training_run.h) from the flags.
TrainingRunOptions training_run_options(const RunOptions& o) {
  TrainingRunOptions r;
  r.train_data = o.train_data.empty() ? "synthetic" : o.train_data;
  r.checkpoint_dir = o.checkpoint_dir;
  r.checkpoint_every = o.checkpoint_every;
  r.keep_checkpoints = o.keep_checkpoints;
  r.resume = o.resume;
  r.eval_only = o.eval_only;
  r.preset_model = is_preset_name(o.model);
  r.synthetic_val = o.val_data.empty();
  r.tokenizer_dir = o.tokenizer_dir;
  r.hellaswag = o.hellaswag;
  // enabled, every, prompt, tokens, temperature, top_k, seed (engine/train/sampling.h)
  r.sampling = {o.samples(), o.sample_every, o.sample_prompt, o.sample_tokens, o.sample_temperature, o.sample_top_k,
                o.seed};
  return r;
}

// Output of ranks other than 0 goes nowhere: rank 0 speaks for the job.
struct NullBuffer : std::streambuf {
  int overflow(int c) override { return c; }
};

}  // namespace

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
  // Every output is checked before anything else is done or created.
  check_training_outputs(o);
  // The device comes up before the plan: the CUDA context and handles are the measured reserve.
  const Device device = resolve_device(o);
  std::unique_ptr<Backend> backend = make_backend(device, proc.local_rank);
  const std::optional<MeasuredDevice> measured = measure_device(*backend);
  std::unique_ptr<Communicator> comm = make_communicator(proc, *backend);
  const ResolvedRun rr = resolve(o, device, measured ? &*measured : nullptr);
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

  const TrainingRunOptions run_opts = training_run_options(o);
  std::unique_ptr<BatchSource> train = make_source(run_opts.train_data, o, plan, true, o.seed);
  std::unique_ptr<BatchSource> val;
  if (!o.val_data.empty())
    val = make_source(o.val_data, o, plan, false, o.seed);
  else if (run_opts.train_data == "synthetic")
    val = make_source("synthetic", o, plan, false, o.seed ^ 0x5eed);
  const std::unique_ptr<CheckpointDirLock> checkpoint_lock = claim_checkpoint_dir(run_opts, o.rank, *comm, out);

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
  const bool shape_given = o.was_set("--model") || o.was_set("--layers") || o.was_set("--width");
  if (!o.eval_only) print_time_prediction(*backend, plan, rr.budget.gpu, o.steps, !shape_given, out, err);
  if (!run_opts.preset_model && !o.resume) {
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
  const auto results = run_training(run_opts, t, model, trainer, *train, *backend, out, &stopped_by);
  if (!results) return kExitOk;  // --eval-only
  if (profiler) report_profile(*profiler, plan, rr.budget.gpu, o.profile, o.profile_json, out);
  if (stopped_by != 0) return 128 + stopped_by;  // the shell's code for a run ended by that signal
  if (!results->empty())
    out << "done: " << results->size() << " steps, final loss " << results->back().loss
        << (results->back().val_loss ? ", val loss " + std::to_string(*results->back().val_loss) : "") << "\n";
  return kExitOk;
}

}  // namespace gpt2
