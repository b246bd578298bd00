#include "engine/train_main.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <ostream>

#include "engine/checkpoint.h"
#include "engine/comm.h"
#include "engine/cpu_backend.h"
#include "engine/cuda_backend_factory.h"
#include "engine/hellaswag.h"
#include "engine/model_io.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"
#include "engine/device_info.h"
#include "engine/dry_run.h"
#include "engine/errors.h"
#include "engine/gpu_catalog.h"
#include "engine/trainer.h"
#include "engine/units.h"

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

// Checkpoints (resume and periodic saves), samples, HellaSwag: everything that runs around
// the training loop. Returns the step results, or nothing for --eval-only.
std::optional<std::vector<StepResult>> run_hooks(const RunOptions& o, const std::string& train_spec, Model& model,
                                                 Trainer& trainer, BatchSource& train, const TrainOptions& t,
                                                 std::ostream& out, Backend& backend) {
  const nlohmann::json settings = checkpoint_settings(model.plan(), t, train_spec);
  if ((o.resume || o.checkpoint_every > 0 || o.keep_checkpoints > 0) && o.checkpoint_dir.empty())
    throw ConfigError(o.resume ? "--resume" : "--checkpoint-every", "needs --checkpoint-dir DIR");
  if (o.resume) {
    const int64_t s = resume_from_checkpoint(o.checkpoint_dir, -1, model, trainer, train, settings);
    out << "resume  from step " << s << " of " << o.checkpoint_dir << "\n";
  }
  const bool sampling = o.sample_every > 0 || (o.eval_only && o.was_set("--sample-prompt"));
  std::unique_ptr<Tokenizer> tok;
  auto load_tokenizer = [&]() {
    if (!tok) tok = std::make_unique<Tokenizer>(Tokenizer::from_dir(o.tokenizer_dir.empty() ? default_tokenizer_dir() : o.tokenizer_dir));
  };
  std::vector<int32_t> prompt;
  if (sampling) {
    if (!model.can_decode())
      throw ConfigError("--sample-every", "sampling keeps its KV cache in the stored activations; use a --recompute "
                                          "policy other than block/budget");
    load_tokenizer();  // FileError with the data/fetch_tokenizer.sh hint when the files are missing
    prompt = o.sample_prompt.empty() ? std::vector<int32_t>{tok->eot_token()} : tok->encode(o.sample_prompt);
    for (int32_t id : prompt)
      if (id >= model.config().vocab_size)
        throw ConfigError("--sample-prompt", "token " + std::to_string(id) + " is outside the model's vocabulary of " +
                                                 std::to_string(model.config().vocab_size));
  }
  std::vector<MultipleChoiceExample> hellaswag;
  if (!o.hellaswag.empty()) {
    std::ifstream probe(o.hellaswag, std::ios::binary);
    int32_t magic = 0;
    probe.read(reinterpret_cast<char*>(&magic), 4);
    if (magic != kEvalFileMagic) load_tokenizer();
    hellaswag = load_hellaswag(o.hellaswag, tok.get());
  }
  auto sample = [&](int64_t step) {
    SampleOptions so;
    so.max_tokens = o.sample_tokens;
    so.temperature = o.sample_temperature;
    so.top_k = o.sample_top_k;
    so.seed = derive_seed(o.seed, static_cast<uint64_t>(step));
    const std::vector<int32_t> ids = generate(model, prompt, so);
    out << "sample  (step " << step << ") " << o.sample_prompt << tok->decode(ids) << "\n" << std::flush;
  };
  auto eval_hellaswag = [&]() {
    if (hellaswag.empty()) return;
    const MultipleChoiceResult r = evaluate_multiple_choice(model, hellaswag);
    char line[128];
    std::snprintf(line, sizeof line, "hellaswag accuracy %lld/%lld = %.4f\n", static_cast<long long>(r.correct),
                  static_cast<long long>(r.examples), r.accuracy);
    out << line << std::flush;
  };
  if (o.eval_only) {
    if (trainer.step() == 0 && !o.resume && is_preset_name(o.model))
      out << "note    --eval-only on a freshly initialised model\n";
    const double v = trainer.evaluate();
    if (std::isfinite(v)) out << "val loss " << v << "\n";
    eval_hellaswag();
    if (sampling) sample(trainer.step());
    return std::nullopt;
  }
  trainer.set_step_hook([&](const StepResult& r) {
    const bool last = r.step >= t.steps;
    if (!o.checkpoint_dir.empty() && ((o.checkpoint_every > 0 && r.step % o.checkpoint_every == 0) || last)) {
      save_checkpoint(o.checkpoint_dir, model, trainer, train, settings, o.seed, o.keep_checkpoints,
                      [&] { if (t.comm) t.comm->barrier(); });
      out << "checkpoint step " << r.step << " -> " << checkpoint_model_path(o.checkpoint_dir, r.step) << "\n"
          << std::flush;
    }
    if (sampling && r.step % o.sample_every == 0) sample(r.step);
  });
  const int64_t allocs = backend.allocation_count();
  auto results = trainer.run(out);
  if (backend.allocation_count() != allocs)
    throw std::logic_error("internal error: the backend allocated memory during training");
  eval_hellaswag();
  return results;
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
  if (proc.world_size > 1) {
    if (o.world_size > 0 && o.world_size != proc.world_size)
      throw ConfigError("--world-size", std::to_string(o.world_size) + " does not match the " +
                                            std::to_string(proc.world_size) + " processes the launcher started");
    o.world_size = proc.world_size;
    o.rank = proc.rank;
  }
  NullBuffer null_buffer;
  std::ostream null_stream(&null_buffer);
  std::ostream& out = o.rank == 0 ? out_rank0 : null_stream;
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
  if (auto* cuda = dynamic_cast<CudaBackendBase*>(backend.get())) {
    const CudaMemoryReport r = cuda->memory_report();
    const int64_t diff = r.arena_drop_bytes() - plan.arena_bytes;
    out << "memory  arena planned " << format_count(plan.arena_bytes) << " bytes, measured drop in free memory "
        << format_count(r.arena_drop_bytes()) << " bytes (" << (diff >= 0 ? "+" : "") << format_bytes(diff)
        << "); reserve measured " << format_bytes(r.reserve_bytes) << "\n";
    if (diff > kMiB || diff < -kMiB)
      err << "train_gpt2: warning: planned and measured arena differ by more than 1 MiB\n";
  }
  if (!is_preset_name(o.model) && !o.resume) {
    // Pretrained initialisation: an llm.c .bin or an HF .safetensors (engine/model_io.h).
    const ModelWeights w = load_model_file(o.model, o.heads);
    model.set_parameters(to_flat(plan, w));
    out << "init    weights from " << o.model << "\n";
  } else {
    model.init_gpt2(o.seed);
  }

  TrainOptions t;
  t.comm = comm.get();
  if (auto* cuda = dynamic_cast<CudaBackendBase*>(backend.get())) {
    // MFU per GPU against the card table's dense bf16 (or fp32) peak; unknown cards log null.
    const GpuSpec* card = match_gpu_by_device_name(cuda->device_name());
    if (card)
      t.peak_flops = (plan.run.precision == Precision::BF16 ? card->bf16_tflops : card->fp32_tflops) * 1e12 *
                     comm->world_size();
  }
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
  const auto results = run_hooks(o, train_spec, model, trainer, *train, t, out, *backend);
  if (!results) return kExitOk;  // --eval-only
  if (!results->empty())
    out << "done: " << results->size() << " steps, final loss " << results->back().loss
        << (results->back().val_loss ? ", val loss " + std::to_string(*results->back().val_loss) : "") << "\n";
  return kExitOk;
}

}  // namespace gpt2
