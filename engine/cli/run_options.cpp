#include "engine/cli/run_options.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <ostream>
#include <utility>

#include "engine/backend/comm.h"
#include "engine/backend/device_info.h"
#include "engine/cli/dry_run.h"
#include "engine/cli/flag_checks.h"
#include "engine/data/dataloader.h"
#include "engine/plan/gpu_catalog.h"
#include "engine/plan/model_config.h"
#include "engine/train/checkpoint.h"
#include "engine/util/errors.h"
#include "engine/util/file_io.h"
#include "engine/util/units.h"

namespace gpt2 {

namespace {
constexpr double kUnbounded = std::numeric_limits<double>::infinity();
}  // namespace

bool RunOptions::was_set(const std::string& name) const {
  return std::find(explicitly_set.begin(), explicitly_set.end(), name) != explicitly_set.end();
}

bool RunOptions::samples() const { return sample_every > 0 || (eval_only && was_set("--sample-prompt")); }

std::string build_info() {
  auto on = [](bool b) { return b ? "on" : "off"; };
  return std::string("gpt2engine " GPT2_VERSION " CUDA=") + on(built_with_cuda()) + " NCCL=" + on(built_with_nccl()) +
         " MPI=" + on(built_with_mpi());
}

int parse_run_options(int argc, const char* const* argv, RunOptions& o, std::ostream& out, std::ostream& err) {
  CLI::App app{
      "train_gpt2: train GPT-2 models with a memory plan computed before anything is allocated.\n"
      "Examples:\n"
      "  train_gpt2 --dry-run --model d12 --micro-batch 64 --gpu rtx3060-12gb\n"
      "  train_gpt2 --dry-run --model d12 --micro-batch auto --gpu-mem 11GiB\n"
      "  train_gpt2 --device cpu --layers 4 --heads 4 --width 128 --seq-len 64 --steps 200",
      "train_gpt2"};
  app.set_config("--config", "", "Read flags from a TOML/INI file (key = value, same names as the flags)");
  app.get_formatter()->column_width(34);
  app.set_version_flag("--version", build_info(), "Print the version and the features of this build (CUDA, NCCL, MPI)");
  app.footer(
      "Exit codes: 0 success (a dry run: the plan fits), 1 error (bad flag, file or config; nothing fits;\n"
      "a failed step), 2 the command line could not be parsed (or two flags contradict each other),\n"
      "3 a dry run whose plan does not fit.\n"
      "Multi-process runs: launch with mpirun/srun, one process per GPU (see README).\n"
      "A flag given more than once takes its last value; flags on the command line override --config.");

  auto* g_model = "Model";
  app.add_option(
         "--model", o.model,
         "Preset d12|d24|d36|d48 (gpt2, gpt2-medium, gpt2-large, gpt2-xl), an llm.c model .bin, or an HF .safetensors")
      ->capture_default_str()
      ->group(g_model);
  app.add_option("--layers", o.layers, "Custom shape: number of layers L")->check(whole_at_least(1))->group(g_model);
  app.add_option("--heads", o.heads, "Custom shape: attention heads NH")->check(whole_at_least(1))->group(g_model);
  app.add_option("--width", o.width, "Custom shape: channels C")->check(whole_at_least(1))->group(g_model);
  app.add_option("--vocab", o.vocab, "Custom shape: vocabulary V (padded to a multiple of 128)")
      ->check(whole_at_least(1))
      ->group(g_model);
  app.add_option("--max-seq-len", o.max_seq_len, "Custom shape: context length maxT")
      ->check(whole_at_least(1))
      ->group(g_model);

  auto* g_run = "Run and memory plan";
  app.add_option("--device", o.device, "auto | cpu | cuda")->capture_default_str()->group(g_run);
  app.add_option("--micro-batch,-b", o.micro_batch, "Micro-batch B, or 'auto' to fit the budget")
      ->capture_default_str()
      ->group(g_run);
  app.add_option("--seq-len,-t", o.seq_len, "Sequence length T (default: min(1024, context))")
      ->check(whole_at_least(1))
      ->group(g_run);
  app.add_option("--total-batch-tokens", o.total_batch_tokens,
                 "Tokens per optimizer step over all ranks; sets gradient accumulation "
                 "(default B*T*world, or 524288 with --micro-batch auto)")
      ->check(whole_at_least(1))
      ->group(g_run);
  app.add_option("--precision", o.precision, "auto | bf16 | fp32 (auto: bf16 on cuda, fp32 on cpu)")
      ->capture_default_str()
      ->group(g_run);
  app.add_option("--master-weights", o.master_weights, "auto | on | off: fp32 master copy for bf16 runs")
      ->capture_default_str()
      ->group(g_run);
  app.add_option("--recompute", o.recompute, "none | gelu | norm | block | budget | budget:K")
      ->capture_default_str()
      ->group(g_run);
  app.add_option("--logits-chunk", o.logits_chunk, "Tokens per lm_head chunk, or auto")
      ->capture_default_str()
      ->group(g_run);
  app.add_option("--zero", o.zero, "ZeRO stage 0 or 1")->capture_default_str()->group(g_run);
  app.add_option("--world-size", o.world_size,
                 "With --dry-run: plan for one rank of this many processes (GPUs). A training run takes "
                 "its processes from mpirun/srun; given there, it must match the launch")
      ->check(whole_at_least(1))
      ->group(g_run);
  app.add_option("--rank", o.rank, "With --dry-run: the rank to plan for (a training run: must match the launch)")
      ->check(whole_at_least(0))
      ->group(g_run);
  app.add_option("--reserve", o.reserve,
                 "Memory outside the arena (CUDA context, handles), e.g. 600MiB; "
                 "default: measured at start-up, or 512MiB in a dry run")
      ->group(g_run);
  app.add_option("--offload", o.offload,
                 "none | optimizer: keep the fp32 master weights and Adam m, v in pinned host memory and run "
                 "AdamW on the CPU (CUDA training; auto-fit chooses it when nothing else fits)")
      ->capture_default_str()
      ->group(g_run);
  app.add_option("--host-mem", o.host_mem,
                 "Host memory budget for the offloaded optimizer, e.g. 48GiB "
                 "(default: the memory available at start-up less 10% and at least 2 GiB)")
      ->group(g_run);

  auto* g_dry = "Dry run";
  CLI::Option* dry_run_flag =
      app.add_flag("--dry-run", o.dry_run, "Print the memory plan and whether it fits; needs no GPU")->group(g_dry);
  app.add_flag("--json", o.json, "With --dry-run: print the plan as JSON")->needs(dry_run_flag)->group(g_dry);
  app.add_option("--gpu-mem", o.gpu_mem, "Memory budget, e.g. 12GiB, 11.5G, 24GB")->group(g_dry);
  app.add_option("--gpu", o.gpu, "Budget of a known card: " + gpu_catalog_names())->group(g_dry);
  app.add_option("--cpu-gflops", o.cpu_gflops,
                 "The CPU's peak FMA rate, GFLOP/s on all threads, for the CPU backend's time prediction "
                 "(default: measured by a probe of under 100 ms)")
      ->check(finite_in(1e-3, 1e9))
      ->group(g_dry);
  app.add_option("--cpu-bandwidth", o.cpu_bandwidth,
                 "The CPU's memory bandwidth, GB/s, for the CPU backend's time prediction and the offloaded "
                 "optimizer's host AdamW (default: measured)")
      ->check(finite_in(1e-3, 1e9))
      ->group(g_dry);

  auto* g_train = "Training";
  app.add_option("--steps", o.steps, "Optimizer steps")
      ->capture_default_str()
      ->check(whole_at_least(1))
      ->group(g_train);
  app.add_option("--lr", o.lr, "Peak learning rate")
      ->capture_default_str()
      ->check(finite_in(0.0, 10.0))
      ->group(g_train);
  app.add_option("--warmup", o.warmup, "Warmup steps")->capture_default_str()->check(whole_at_least(0))->group(g_train);
  app.add_option("--lr-schedule", o.lr_schedule, "cosine | linear | constant | wsd")
      ->capture_default_str()
      ->check(CLI::IsMember({"cosine", "linear", "constant", "wsd"}))
      ->group(g_train);
  app.add_option("--final-lr-frac", o.final_lr_frac, "Final learning rate as a fraction of --lr")
      ->capture_default_str()
      ->check(finite_in(0.0, 1.0))
      ->group(g_train);
  app.add_option("--weight-decay", o.weight_decay, "AdamW weight decay (2-D weights only)")
      ->capture_default_str()
      ->check(finite_in(0.0, kUnbounded))
      ->group(g_train);
  app.add_option("--grad-clip", o.grad_clip, "Clip the global gradient norm to this (0 = off)")
      ->capture_default_str()
      ->check(finite_in(0.0, kUnbounded))
      ->group(g_train);
  app.add_option("--seed", o.seed, "Seed for initialisation and data order (0 to 2^64-1)")
      ->capture_default_str()
      ->check(whole_unsigned64())
      ->group(g_train);
  app.add_option("--val-every", o.val_every, "Validation loss every N steps (0 = at the end only)")
      ->capture_default_str()
      ->check(whole_at_least(0))
      ->group(g_train);
  app.add_option("--val-batches", o.val_batches, "Micro-batches per validation (per rank)")
      ->capture_default_str()
      ->check(whole_at_least(1))
      ->group(g_train);
  app.add_option("--log", o.log_file, "Write one JSON object per step to this .jsonl file")->group(g_train);
  app.add_option("--train-data", o.train_data, "Training data: glob of llm.c shards, a nanoGPT .bin, or 'synthetic'")
      ->group(g_train);
  app.add_option("--val-data", o.val_data, "Validation data (same forms as --train-data)")->group(g_train);
  app.add_option("--data-format", o.data_format, "auto | llmc | nanogpt")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "llmc", "nanogpt"}))
      ->group(g_train);
  app.add_flag("--skip-nonfinite", o.skip_nonfinite,
               "Skip an update whose loss or gradient is NaN/inf instead of stopping")
      ->group(g_train);
  app.add_option("--print-every", o.print_every, "Print a log line every N steps")
      ->capture_default_str()
      ->check(whole_at_least(1))
      ->group(g_train);

  auto* g_ckpt = "Checkpoints, sampling and evaluation";
  app.add_option("--checkpoint-dir", o.checkpoint_dir, "Write checkpoints (llm.c model .bin + state file) here")
      ->group(g_ckpt);
  app.add_option("--checkpoint-every", o.checkpoint_every, "Checkpoint every N steps (0 = after the last step only)")
      ->capture_default_str()
      ->check(whole_at_least(0))
      ->group(g_ckpt);
  app.add_option("--keep-checkpoints", o.keep_checkpoints, "Keep the newest N checkpoints (0 = all)")
      ->capture_default_str()
      ->check(whole_at_least(0))
      ->group(g_ckpt);
  app.add_flag("--resume", o.resume, "Continue exactly from the latest checkpoint in --checkpoint-dir")->group(g_ckpt);
  app.add_option("--sample-every", o.sample_every, "Print a generated sample every N steps (0 = never)")
      ->capture_default_str()
      ->check(whole_at_least(0))
      ->group(g_ckpt);
  app.add_option("--sample-prompt", o.sample_prompt, "Prompt for --sample-every (default: <|endoftext|>)")
      ->group(g_ckpt);
  app.add_option("--sample-tokens", o.sample_tokens, "Tokens to generate per sample")
      ->capture_default_str()
      ->check(whole_at_least(1))
      ->group(g_ckpt);
  app.add_option("--sample-temperature", o.sample_temperature, "Sampling temperature (0 = greedy)")
      ->capture_default_str()
      ->check(finite_in(0.0, kUnbounded))
      ->group(g_ckpt);
  app.add_option("--sample-top-k", o.sample_top_k, "Sample from the k most likely tokens (0 = all)")
      ->capture_default_str()
      ->check(whole_at_least(0))
      ->group(g_ckpt);
  app.add_option("--tokenizer-dir", o.tokenizer_dir, "encoder.json + vocab.bpe (default data/tokenizer)")
      ->group(g_ckpt);
  app.add_option("--hellaswag", o.hellaswag,
                 "Evaluate HellaSwag (llm.c hellaswag_val.bin or the .jsonl) after training")
      ->group(g_ckpt);
  app.add_flag("--eval-only", o.eval_only, "Do not train: evaluate (val loss, --hellaswag) and sample the model")
      ->group(g_ckpt);

  auto* g_prof = "Profile";
  app.add_flag("--profile", o.profile,
               "Time every backend call and print a table by op at the end: calls, ms, % of the step, "
               "achieved GFLOP/s or GB/s, and the roofline prediction")
      ->group(g_prof);
  app.add_option("--profile-json", o.profile_json, "With or without --profile: write the profile as JSON to FILE")
      ->group(g_prof);

  last_value_wins(app);

  try {
    // A --config file is checked line by line first: CLI11 would ignore what it cannot use.
    const std::string config = config_file_in_argv(argc, argv);
    if (!config.empty()) check_config_file(config, option_names(app));
  } catch (const std::exception& e) {
    err << "train_gpt2: error: " << e.what() << "\n";
    return kExitError;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e, out, err);
    return code == 0 ? 0 : 2;
  }
  o.explicitly_set.clear();
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->count() > 0 && !opt->get_lnames().empty()) o.explicitly_set.push_back("--" + opt->get_lnames()[0]);
  }
  try {
    check_flag_combinations(o);
  } catch (const ConfigError& e) {
    err << "train_gpt2: error: " << e.what() << "\n";
    return 2;
  }
  return -1;
}

void check_flag_combinations(const RunOptions& o) {
  if (o.warmup > o.steps && !o.eval_only)
    throw ConfigError("--warmup", std::to_string(o.warmup) + " warmup steps is more than --steps " +
                                      std::to_string(o.steps) + "; the learning rate would never reach --lr");
}

void check_launch_agrees(const RunOptions& o, int launched_world_size, int launched_rank) {
  const bool launched = launched_world_size > 1;
  const std::string launch = launched ? "the launcher started " + std::to_string(launched_world_size) +
                                            " processes and this is rank " + std::to_string(launched_rank)
                                      : "this process was not started by mpirun or srun";
  const std::string hint = launched ? "" : "; plan with --dry-run, or launch with mpirun -np N";
  if (o.was_set("--world-size") && o.world_size != launched_world_size)
    throw ConfigError("--world-size", std::to_string(o.world_size) + " does not match the launch: " + launch + hint);
  if (o.was_set("--rank") && o.rank != launched_rank)
    throw ConfigError("--rank", std::to_string(o.rank) + " does not match the launch: " + launch + hint);
}

namespace {

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
  if (o.samples() && o.sample_tokens > kMaxTrainingSampleTokens)
    throw ConfigError("--sample-tokens", std::to_string(o.sample_tokens) + " is more than the " +
                                             format_count(kMaxTrainingSampleTokens) +
                                             " tokens a sample during a run may have; use the sample tool on a "
                                             "checkpoint for longer texts");
}

}  // namespace

void check_training_outputs(const RunOptions& o) {
  // --eval-only writes no checkpoint.
  check_checkpoint_flags(o);
  if (!o.checkpoint_dir.empty() && !o.eval_only) check_output_dir(o.checkpoint_dir, "--checkpoint-dir");
  if (!o.log_file.empty() && o.rank == 0) check_output_file(o.log_file, "--log");
  if (!o.profile_json.empty() && o.rank == 0) check_output_file(o.profile_json, "--profile-json", true);
  check_outputs_apart(o);
  refuse_used_checkpoint_dir(o);
  check_sample_length(o);
  if ((o.profile || !o.profile_json.empty()) && o.eval_only)
    throw ConfigError(o.profile ? "--profile" : "--profile-json", "times training steps; --eval-only runs none");
}

}  // namespace gpt2
