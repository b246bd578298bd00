// Every train_gpt2 flag, parsed in one place (CLI11), and the checks of flags against each other
// and against the files a run would write. What the flags resolve to (device, model, run config,
// budget, auto-fit) is resolve.h's. Lives in engine/ so tests can drive it with argv;
// tools/train_gpt2.cpp stays thin.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace gpt2 {

struct RunOptions {
  // ---- model ----
  std::string model = "d12";                                         // preset (d12/d24/d36/d48) or a model file
  int layers = 0, heads = 0, width = 0, vocab = 0, max_seq_len = 0;  // 0 = from --model (a flag of 0 is refused)

  // ---- run / memory plan ----
  std::string device = "auto";          // auto | cpu | cuda
  std::string micro_batch = "4";        // a number or "auto"
  int seq_len = 0;                      // 0 = min(1024, max_seq_len)
  int64_t total_batch_tokens = 0;       // 0 = B·T·world (524,288 with --micro-batch auto)
  std::string precision = "auto";       // auto (bf16 on cuda, fp32 on cpu) | bf16 | fp32
  std::string master_weights = "auto";  // auto | on | off
  std::string recompute = "none";
  std::string logits_chunk = "auto";
  int zero = 0;
  int world_size = 0;  // 0 = not given: 1 in a dry run; a training run takes the launcher's
  int rank = 0;
  std::string reserve;  // bytes outside the arena; default: measured / estimated
  std::string offload = "none";  // none | optimizer (auto-fit may choose optimizer)
  std::string host_mem;          // host memory budget for the host arena; default: available less a margin

  // ---- dry run / budget ----
  bool dry_run = false;
  bool json = false;
  std::string gpu_mem;       // "12GiB"
  std::string gpu;           // card name from the catalog
  double cpu_gflops = 0;     // the CPU's peak FMA rate; 0 = probe it
  double cpu_bandwidth = 0;  // the CPU's memory bandwidth, GB/s; 0 = probe it

  // ---- training ----
  int64_t steps = 200;
  double lr = 6e-4;
  int64_t warmup = 0;
  std::string lr_schedule = "cosine";  // cosine | linear | constant | wsd
  double final_lr_frac = 0.0;
  double weight_decay = 0.1;
  double grad_clip = 1.0;
  uint64_t seed = 1337;
  int64_t val_every = 0;  // 0 = only at the end
  int64_t val_batches = 4;
  std::string log_file;
  std::string train_data;  // glob of shards, nanoGPT .bin, or "synthetic"
  std::string val_data;
  std::string data_format = "auto";
  bool skip_nonfinite = false;
  int64_t print_every = 1;

  // ---- checkpoints, sampling, evaluation (engine/train/checkpoint.h, sampler.h, hellaswag.h) ----
  std::string checkpoint_dir;      // empty = no checkpoints
  int64_t checkpoint_every = 0;    // 0 = only after the last step
  int keep_checkpoints = 0;        // 0 = keep all
  bool resume = false;             // continue from checkpoint_dir/latest
  int64_t sample_every = 0;        // 0 = never
  std::string sample_prompt = "";  // empty = start from <|endoftext|>
  int sample_tokens = 64;
  double sample_temperature = 1.0;
  int sample_top_k = 40;
  std::string tokenizer_dir;  // empty = default_tokenizer_dir()
  std::string hellaswag;      // llm.c eval .bin or HellaSwag .jsonl
  bool eval_only = false;     // no training: validation, HellaSwag, a sample

  // ---- profile (engine/train/profile_report.h) ----
  bool profile = false;      // time every backend call, print a table by op at the end
  std::string profile_json;  // also write it as JSON to this file

  // Which options the user set explicitly, as flags (e.g. "--recompute").
  std::vector<std::string> explicitly_set;
  bool was_set(const std::string& name) const;
  // Whether the run generates samples: --sample-every, or --eval-only with --sample-prompt.
  bool samples() const;
};

// "gpt2engine 0.1 CUDA=on NCCL=off MPI=on": what this binary was built with, as the sources that
// use each feature see it (printed by --version).
std::string build_info();

// Parses argv. Returns -1 when the program should go on, otherwise the exit code to return
// (0 after --help, 2 after a parse error, with the message written to `err`).
int parse_run_options(int argc, const char* const* argv, RunOptions& opts, std::ostream& out, std::ostream& err);

// Checks flags against each other (--warmup against --steps); throws ConfigError naming the flag.
// parse_run_options calls it after parsing.
void check_flag_combinations(const RunOptions& opts);

// A training run takes its world size and rank from the launcher (mpirun, srun; 1 and 0 without
// one). --world-size and --rank plan dry runs; given to a training run they must agree with the
// launch. Throws ConfigError naming the flag otherwise.
void check_launch_agrees(const RunOptions& opts, int launched_world_size, int launched_rank);

// A training run's outputs, checked before anything is created, so a bad path never costs a run
// and a refused run leaves nothing behind: --checkpoint-dir (and the flags that act on it), --log
// and --profile-json must be writable, apart from each other and from the run's inputs, and not
// in a checkpoint directory that is not theirs; a sample during the run has a length limit; and
// --profile needs training steps. Throws ConfigError naming the flag. Uses opts.rank (the launch's).
void check_training_outputs(const RunOptions& opts);

}  // namespace gpt2
