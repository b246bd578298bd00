#include "engine/train_main.h"

#include <memory>
#include <ostream>

#include "engine/cpu_backend.h"
#include "engine/device_info.h"
#include "engine/dry_run.h"
#include "engine/errors.h"
#include "engine/trainer.h"
#include "engine/units.h"

namespace gpt2 {

namespace {

DataFormat parse_format(const std::string& s) {
  if (s == "llmc") return DataFormat::kLlmc;
  if (s == "nanogpt") return DataFormat::kNanoGpt;
  return DataFormat::kAuto;
}

std::unique_ptr<BatchSource> make_source(const std::string& spec, const RunOptions& o, const MemoryPlan& plan,
                                         bool shuffle, uint64_t seed) {
  if (spec == "synthetic")
    return std::make_unique<SyntheticSource>(plan.model.vocab_size, plan.run.micro_batch, plan.run.seq_len, seed);
  DataLoaderOptions d;
  d.pattern = spec;
  d.format = parse_format(o.data_format);
  d.B = plan.run.micro_batch;
  d.T = plan.run.seq_len;
  d.rank = plan.run.rank;
  d.world = plan.run.world_size;
  d.seed = seed;
  d.shuffle = shuffle;
  d.vocab_size = plan.model.vocab_size;
  return std::make_unique<LoaderSource>(d);
}

std::unique_ptr<Backend> make_backend(Device device) {
  if (device == Device::CPU) return std::make_unique<CpuBackend>();
  const CudaDeviceInfo info = query_cuda_device();
  if (!info.present) throw ConfigError("--device", "cuda was asked for, but " + info.why_absent + "; use --device cpu");
  throw ConfigError("--device", "the CUDA training backend is not part of this build yet; use --device cpu or --dry-run");
}

}  // namespace

int train_main(const RunOptions& o, std::ostream& out, std::ostream& err) {
  ResolvedRun rr = resolve_with_autofit(o);
  const MemoryPlan plan = make_memory_plan(rr.model, rr.run);
  const Verdict verdict = judge(plan, rr.budget);
  if (!verdict.fits) {
    // Fail fast: nothing has been allocated yet.
    print_plan(err, plan, rr.budget);
    AutoFitRequest req;
    req.base = rr.run;
    req.budget_bytes = rr.budget.bytes;
    req.gpu = rr.budget.gpu;
    print_suggestion(err, auto_fit(rr.model, req), rr.budget);
    throw ConfigError(o.gpu_mem.empty() ? "--micro-batch" : "--gpu-mem",
                      "the plan needs " + format_bytes(plan.total_bytes()) + " but the budget is " +
                          format_bytes(rr.budget.bytes) + " (" + rr.budget.source + "); see the flags above");
  }
  std::unique_ptr<Backend> backend = make_backend(rr.run.device);

  const std::string train_spec = o.train_data.empty() ? "synthetic" : o.train_data;
  std::unique_ptr<BatchSource> train = make_source(train_spec, o, plan, true, o.seed);
  std::unique_ptr<BatchSource> val;
  if (!o.val_data.empty()) val = make_source(o.val_data, o, plan, false, o.seed);
  else if (train_spec == "synthetic") val = make_source("synthetic", o, plan, false, o.seed ^ 0x5eed);

  out << "model   " << plan.model.describe() << ", " << format_count(plan.num_params) << " parameters\n";
  out << "run     B=" << plan.run.micro_batch << " T=" << plan.run.seq_len << " grad_accum=" << plan.grad_accum
      << " (" << format_count(plan.run.total_batch_tokens) << " tokens/step) recompute="
      << to_string(plan.run.recompute) << " logits_chunk=" << plan.run.logits_chunk << "\n";
  if (rr.autofit_used)
    for (const auto& why : rr.autofit.reasons) out << "auto-fit: " << why << "\n";
  out << "memory  arena " << format_bytes(plan.arena_bytes) << " planned; " << verdict.text << "\n";
  out << "data    train: " << train->describe() << (o.train_data.empty() ? " (no --train-data given)" : "") << "\n";
  if (val) out << "        val:   " << val->describe() << "\n";

  Model model(plan, *backend);
  out << "backend " << backend->describe() << "\n";
  model.init_gpt2(o.seed);

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
  Trainer trainer(model, t, *train, val.get());
  const int64_t allocs = backend->allocation_count();
  const auto results = trainer.run(out);
  if (backend->allocation_count() != allocs) {
    err << "train_gpt2: internal error: the backend allocated memory during training\n";
    return kExitError;
  }
  if (!results.empty())
    out << "done: " << results.size() << " steps, final loss " << results.back().loss
        << (results.back().val_loss ? ", val loss " + std::to_string(*results.back().val_loss) : "") << "\n";
  return kExitOk;
}

}  // namespace gpt2
