#include "engine/train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <ostream>

#include "engine/backend/comm.h"
#include "engine/backend/op_profiler.h"
#include "engine/util/errors.h"

namespace gpt2 {

float clip_scale(double grad_norm, float grad_clip) {
  if (grad_clip <= 0) return 1.0f;
  const double s = grad_clip / (grad_norm + 1e-6);
  return s < 1.0 ? static_cast<float>(s) : 1.0f;
}

Trainer::Trainer(Model& model, const TrainOptions& options, BatchSource& train, BatchSource* val)
    : model_(model), opt_(options), train_(train), val_(val) {
  const auto& r = model_.plan().run;
  inputs_.resize(static_cast<size_t>(r.micro_batch) * r.seq_len);
  targets_.resize(inputs_.size());
  if (!opt_.log_path.empty() && (!opt_.comm || opt_.comm->rank() == 0)) {
    log_.open(opt_.log_path, std::ios::out | std::ios::app);
    if (!log_) throw FileError(opt_.log_path, "cannot open the --log file for writing");
  }
}

void Trainer::load_or_fail(const int32_t* inputs, const int32_t* targets, const char* what) {
  const int64_t bad = model_.load_batch(inputs, targets);
  if (bad < 0) return;
  const int T = model_.plan().run.seq_len;
  const int32_t in = inputs[bad], tg = targets[bad];
  const int V = model_.config().vocab_size;
  const int32_t id = (in < 0 || in >= V) ? in : tg;
  throw TrainingError(step_ + 1, std::string(what) + " batch: token id " + std::to_string(id) + " at row " +
                                     std::to_string(bad / T) + ", position " + std::to_string(bad % T) +
                                     " is outside the vocabulary [0, " + std::to_string(V) + ")");
}

StepResult Trainer::train_step() {
  if (opt_.profiler) opt_.profiler->begin_step();
  const auto t0 = std::chrono::steady_clock::now();
  const MemoryPlan& plan = model_.plan();
  const int64_t tokens_per_micro = static_cast<int64_t>(plan.run.micro_batch) * plan.run.seq_len;
  const int64_t step_tokens = tokens_per_micro * plan.grad_accum;
  const float dloss_scale = 1.0f / static_cast<float>(step_tokens);

  model_.zero_grads();
  double loss_sum = 0;
  for (int micro = 0; micro < plan.grad_accum; ++micro) {
    train_.next(inputs_.data(), targets_.data());
    load_or_fail(inputs_.data(), targets_.data(), "training");
    model_.forward();
    loss_sum += model_.head(true, dloss_scale);
    // Offloaded optimizer: the last micro-batch's backward sends the finished gradients to the host.
    model_.stream_gradients_to_host(micro == plan.grad_accum - 1);
    model_.backward();
  }
  StepResult r;
  r.step = ++step_;
  r.loss = loss_sum / static_cast<double>(step_tokens);
  // Each rank's gradients are the mean over its own tokens; averaging over ranks gives the mean
  // over the global batch.
  Communicator* comm = opt_.comm;
  const int world = comm ? comm->world_size() : 1;
  const bool collective = comm && comm->active();
  const bool zero1 = plan.run.zero_stage == 1 && collective;
  double norm_sq = 0;
  if (collective) {
    if (zero1)
      comm->reduce_scatter(model_.flat_grads(), plan.flat_param_elems, ReduceOp::Avg);
    else
      comm->all_reduce(model_.flat_grads(), plan.flat_param_elems, ReduceOp::Avg);
    r.loss = comm->all_reduce_scalar(r.loss, ReduceOp::Avg);
  }
  norm_sq = zero1 ? comm->all_reduce_scalar(model_.grad_norm_squared(true), ReduceOp::Sum) : model_.grad_norm_squared();
  r.grad_norm = std::sqrt(norm_sq);
  r.lr = learning_rate(opt_.lr, r.step - 1);
  if (!std::isfinite(r.loss) || !std::isfinite(r.grad_norm)) {
    if (!opt_.skip_nonfinite)
      throw TrainingError(r.step, std::string("the ") + (std::isfinite(r.loss) ? "gradient norm" : "loss") +
                                      " is not finite (loss " + std::to_string(r.loss) + ", grad norm " +
                                      std::to_string(r.grad_norm) +
                                      "); stopping. Lower --lr, or pass --skip-nonfinite to skip such updates");
    r.skipped = true;
  } else {
    AdamWStep s = model_.adamw_template();
    s.lr = static_cast<float>(r.lr);
    s.beta1 = opt_.beta1;
    s.beta2 = opt_.beta2;
    s.eps = opt_.eps;
    s.weight_decay = opt_.weight_decay;
    s.t = ++updates_;
    s.grad_scale = clip_scale(r.grad_norm, opt_.grad_clip);
    s.seed = opt_.seed + static_cast<uint64_t>(r.step);
    model_.adamw(s);
    if (zero1) comm->all_gather(model_.flat_params(), plan.flat_param_elems);
  }
  model_.backend().synchronize();
  const auto t1 = std::chrono::steady_clock::now();
  r.ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  if (opt_.profiler) opt_.profiler->end_step(r.ms / 1e3);
  r.tokens_per_s = static_cast<double>(step_tokens * world) / (r.ms / 1000.0);
  r.tokens = step_ * step_tokens * world;
  if (opt_.peak_flops > 0)
    r.mfu = training_flops_per_token(plan.model, plan.run.seq_len) * r.tokens_per_s / opt_.peak_flops;
  return r;
}

namespace {

// Progress of a long validation: one second in, a validation expected to take 10 s or more says
// so, and then reports every 10 s.
class ValidationProgress {
 public:
  ValidationProgress(std::ostream* out, int64_t batches)
      : out_(out), batches_(batches), start_(std::chrono::steady_clock::now()), last_(start_) {}

  void batch_done(int64_t done) {
    if (!out_ || done == batches_) return;
    const auto now = std::chrono::steady_clock::now();
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double left = secs / static_cast<double>(done) * static_cast<double>(batches_ - done);
    char line[200];
    if (!judged_) {
      if (secs < 1.0) return;
      judged_ = true;
      long_ = secs + left >= 10.0;
      if (!long_) return;
      std::snprintf(line, sizeof line,
                    "val     a long validation: %lld batches (--val-batches), about %.0f s; progress every 10 s\n",
                    static_cast<long long>(batches_), secs + left);
    } else if (long_ && now - last_ >= std::chrono::seconds(10)) {
      std::snprintf(line, sizeof line, "val     %lld/%lld batches (%.1f%%), %.0f s so far, about %.0f s left\n",
                    static_cast<long long>(done), static_cast<long long>(batches_),
                    100.0 * static_cast<double>(done) / static_cast<double>(batches_), secs, left);
    } else {
      return;
    }
    last_ = now;
    *out_ << line << std::flush;
  }

 private:
  std::ostream* out_;
  int64_t batches_;
  std::chrono::steady_clock::time_point start_, last_;
  bool judged_ = false, long_ = false;
};

}  // namespace

double Trainer::evaluate(std::ostream* progress) {
  if (!val_) return NAN;
  const MemoryPlan& plan = model_.plan();
  const int64_t tokens = static_cast<int64_t>(plan.run.micro_batch) * plan.run.seq_len;
  val_->reset();
  double sum = 0;
  ValidationProgress report(progress, opt_.val_batches);
  for (int64_t i = 0; i < opt_.val_batches; ++i) {
    val_->next(inputs_.data(), targets_.data());
    load_or_fail(inputs_.data(), targets_.data(), "validation");
    model_.forward();
    sum += model_.head(false, 0.0f);
    report.batch_done(i + 1);
  }
  const double mean = sum / static_cast<double>(tokens * opt_.val_batches);
  return opt_.comm && opt_.comm->active() ? opt_.comm->all_reduce_scalar(mean, ReduceOp::Avg) : mean;
}

void Trainer::log_step(std::ostream& out, const StepResult& r) {
  if (opt_.comm && opt_.comm->rank() != 0) return;  // rank 0 speaks for the job
  if (r.step % opt_.print_every == 0 || r.step == opt_.steps || r.skipped || r.val_loss) {
    char line[256];
    std::snprintf(line, sizeof line, "step %6lld/%lld | loss %.4f | lr %.2e | norm %.4f | %8.1f ms | %9.0f tok/s%s",
                  static_cast<long long>(r.step), static_cast<long long>(opt_.steps), r.loss, r.lr, r.grad_norm, r.ms,
                  r.tokens_per_s, r.skipped ? " | SKIPPED (non-finite)" : "");
    out << line;
    if (r.mfu) {
      std::snprintf(line, sizeof line, " | MFU %.1f%%", 100.0 * *r.mfu);
      out << line;
    }
    if (r.val_loss) {
      std::snprintf(line, sizeof line, " | val %.4f", *r.val_loss);
      out << line;
    }
    out << "\n" << std::flush;
  }
  if (log_.is_open()) {
    nlohmann::json j = {{"step", r.step},
                        {"loss", r.loss},
                        {"lr", r.lr},
                        {"grad_norm", r.grad_norm},
                        {"tokens", r.tokens},
                        {"ms", r.ms},
                        {"tok_per_s", r.tokens_per_s},
                        {"mfu", nullptr},
                        {"memory", model_.plan().arena_bytes}};
    if (r.mfu) j["mfu"] = *r.mfu;
    if (r.skipped) j["skipped"] = true;
    if (r.val_loss) j["val_loss"] = *r.val_loss;
    log_ << j.dump() << "\n" << std::flush;
    if (!log_) throw FileError(opt_.log_path, "cannot write the --log file (disk full?)");
  }
}

void Trainer::log_run_start(std::optional<int64_t> resumed_from) {
  if (!log_.is_open()) return;
  const MemoryPlan& plan = model_.plan();
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &utc);
  nlohmann::ordered_json j = {{"event", "run_start"},
                              {"resumed_from", nullptr},
                              {"model", plan.model.describe()},
                              {"micro_batch", plan.run.micro_batch},
                              {"seq_len", plan.run.seq_len},
                              {"total_batch_tokens", plan.run.total_batch_tokens},
                              {"time", when}};
  if (resumed_from) j["resumed_from"] = *resumed_from;
  log_ << j.dump() << "\n" << std::flush;
  if (!log_) throw FileError(opt_.log_path, "cannot write the --log file (disk full?)");
}

std::vector<StepResult> Trainer::run(std::ostream& out) {
  std::vector<StepResult> results;
  while (step_ < opt_.steps && !stop_requested_) {
    StepResult r = train_step();
    const bool last = r.step == opt_.steps;
    if (val_ && ((opt_.val_every > 0 && r.step % opt_.val_every == 0) || last)) r.val_loss = evaluate(&out);
    log_step(out, r);
    results.push_back(r);
    if (hook_) hook_(r);
  }
  return results;
}

}  // namespace gpt2
