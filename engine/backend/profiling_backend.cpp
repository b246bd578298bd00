#include "engine/backend/profiling_backend.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "engine/plan/op_costs.h"

namespace gpt2 {

ProfilingBackend::ProfilingBackend(Backend& inner, const MemoryPlan& plan)
    : inner_(inner), channels_(plan.model.channels), timer_(inner.make_op_timer()) {}

int ProfilingBackend::group_index(const char* name) {
  for (size_t i = 0; i < groups_.size(); ++i)
    if (groups_[i] == name || std::strcmp(groups_[i], name) == 0) return static_cast<int>(i);
  groups_.push_back(name);
  return static_cast<int>(groups_.size()) - 1;
}

template <typename Fn>
void ProfilingBackend::timed(const char* name, Fn&& fn) {
  if (!in_step_) {
    fn();
    return;
  }
  pending_.push_back(group_index(name));
  timer_->start();
  fn();
  timer_->stop();
}

void ProfilingBackend::begin_step() {
  if (in_step_) throw std::logic_error("ProfilingBackend: begin_step twice");
  in_step_ = true;
  pending_.clear();
}

void ProfilingBackend::end_step(double step_seconds) {
  if (!in_step_) throw std::logic_error("ProfilingBackend: end_step without begin_step");
  in_step_ = false;
  const std::vector<double> seconds = timer_->collect();
  if (seconds.size() != pending_.size())
    throw std::logic_error("ProfilingBackend: " + std::to_string(seconds.size()) + " timings for " +
                           std::to_string(pending_.size()) + " calls");
  Totals& t = warmup_.steps == 0 ? warmup_ : measured_;
  t.calls.resize(groups_.size(), 0);
  t.seconds.resize(groups_.size(), 0.0);
  for (size_t i = 0; i < seconds.size(); ++i) {
    t.calls[pending_[i]] += 1;
    t.seconds[pending_[i]] += seconds[i];
  }
  t.steps += 1;
  t.step_seconds += step_seconds;
  t.step_walls.push_back(step_seconds);
}

ProfileData ProfilingBackend::data() const {
  const bool after_warmup = measured_.steps > 0;
  const Totals& t = after_warmup ? measured_ : warmup_;
  ProfileData d;
  d.steps = t.steps;
  d.skipped_steps = after_warmup ? warmup_.steps : 0;
  d.step_seconds = t.step_seconds;
  std::vector<double> walls = t.step_walls;
  std::sort(walls.begin(), walls.end());
  if (!walls.empty())
    d.median_step_seconds =
        walls.size() % 2 ? walls[walls.size() / 2] : 0.5 * (walls[walls.size() / 2 - 1] + walls[walls.size() / 2]);
  for (size_t i = 0; i < t.calls.size(); ++i)
    if (t.calls[i] > 0) d.ops.push_back({groups_[i], t.calls[i], t.seconds[i]});
  return d;
}

// ---- forwarding ----------------------------------------------------------------------------------

void ProfilingBackend::upload(void* dst, const void* src, size_t bytes) {
  timed(op::kTransfer, [&] { inner_.upload(dst, src, bytes); });
}
// The offloaded optimizer's three ops. The wait is what the step sees of the gradients' copy to
// the host: the part the backward did not hide.
void ProfilingBackend::wait_host_copies() {
  timed(op::kOffloadGradientsToHost, [&] { inner_.wait_host_copies(); });
}
void ProfilingBackend::host_adamw(TensorRef params_out, float* master, TensorRef grads, float* m, float* v,
                                  const AdamWStep& step) {
  timed(op::kOffloadHostAdamW, [&] { inner_.host_adamw(params_out, master, grads, m, v, step); });
}
void ProfilingBackend::upload_offloaded_parameters(void* dst, const void* src, size_t bytes) {
  timed(op::kOffloadParametersToDevice, [&] { inner_.upload_offloaded_parameters(dst, src, bytes); });
}
void ProfilingBackend::download(void* dst, const void* src, size_t bytes) {
  timed(op::kTransfer, [&] { inner_.download(dst, src, bytes); });
}
void ProfilingBackend::zero(void* dst, size_t bytes) {
  timed(op::kZero, [&] { inner_.zero(dst, bytes); });
}

void ProfilingBackend::encoder_forward(TensorRef out, const int32_t* tokens, TensorRef wte, TensorRef wpe, int B, int T,
                                       int C) {
  timed(op::kEncoderForward, [&] { inner_.encoder_forward(out, tokens, wte, wpe, B, T, C); });
}
void ProfilingBackend::encoder_backward(TensorRef dwte, TensorRef dwpe, TensorRef dout, const int32_t* tokens,
                                        const int32_t* tokens_host, int B, int T, int C, int V) {
  timed(op::kEncoderBackward, [&] { inner_.encoder_backward(dwte, dwpe, dout, tokens, tokens_host, B, T, C, V); });
}
void ProfilingBackend::layernorm_forward(TensorRef out, float* mean, float* rstd, TensorRef inp, TensorRef weight,
                                         TensorRef bias, int N, int C) {
  timed(op::kLayernormForward, [&] { inner_.layernorm_forward(out, mean, rstd, inp, weight, bias, N, C); });
}
void ProfilingBackend::residual_layernorm_forward(TensorRef residual, TensorRef out, float* mean, float* rstd,
                                                  TensorRef a, TensorRef b, TensorRef weight, TensorRef bias, int N,
                                                  int C) {
  timed(op::kResidualLayernormForward,
        [&] { inner_.residual_layernorm_forward(residual, out, mean, rstd, a, b, weight, bias, N, C); });
}
void ProfilingBackend::layernorm_recompute(TensorRef out, TensorRef inp, const float* mean, const float* rstd,
                                           TensorRef weight, TensorRef bias, int N, int C) {
  timed(op::kLayernormRecompute, [&] { inner_.layernorm_recompute(out, inp, mean, rstd, weight, bias, N, C); });
}
void ProfilingBackend::layernorm_backward(TensorRef dinp, TensorRef dweight, TensorRef dbias, TensorRef dout,
                                          TensorRef inp, TensorRef weight, const float* mean, const float* rstd, int N,
                                          int C) {
  timed(op::kLayernormBackward,
        [&] { inner_.layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C); });
}
void ProfilingBackend::matmul_forward(TensorRef out, TensorRef inp, TensorRef weight, TensorRef bias, int N, int C,
                                      int OC) {
  timed(matmul_op_name(channels_, C, OC, static_cast<bool>(bias), false, false),
        [&] { inner_.matmul_forward(out, inp, weight, bias, N, C, OC); });
}
void ProfilingBackend::matmul_forward_gelu(TensorRef pre, TensorRef out, TensorRef inp, TensorRef weight,
                                           TensorRef bias, int N, int C, int OC) {
  timed(matmul_op_name(channels_, C, OC, static_cast<bool>(bias), true, false),
        [&] { inner_.matmul_forward_gelu(pre, out, inp, weight, bias, N, C, OC); });
}
void ProfilingBackend::matmul_backward(TensorRef dinp, TensorRef dweight, TensorRef dbias, TensorRef dout,
                                       TensorRef inp, TensorRef weight, int N, int C, int OC) {
  timed(matmul_op_name(channels_, C, OC, static_cast<bool>(dbias), false, true),
        [&] { inner_.matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC); });
}
void ProfilingBackend::matmul_backward_gelu(TensorRef dinp, TensorRef dweight, TensorRef dbias, TensorRef dout,
                                            TensorRef inp, TensorRef weight, TensorRef pre_gelu, int N, int C, int OC) {
  timed(matmul_op_name(channels_, C, OC, static_cast<bool>(dbias), true, true),
        [&] { inner_.matmul_backward_gelu(dinp, dweight, dbias, dout, inp, weight, pre_gelu, N, C, OC); });
}
void ProfilingBackend::gelu_forward(TensorRef out, TensorRef inp, int64_t n) {
  timed(op::kGeluForward, [&] { inner_.gelu_forward(out, inp, n); });
}
void ProfilingBackend::gelu_backward(TensorRef dinp, TensorRef inp, TensorRef dout, int64_t n) {
  timed(op::kGeluBackward, [&] { inner_.gelu_backward(dinp, inp, dout, n); });
}
void ProfilingBackend::residual_forward(TensorRef out, TensorRef a, TensorRef b, int64_t n) {
  timed(op::kResidualForward, [&] { inner_.residual_forward(out, a, b, n); });
}
void ProfilingBackend::attention_forward(TensorRef y, float* lse, float* scratch, TensorRef qkv, int B, int T, int C,
                                         int NH) {
  timed(op::kAttentionForward, [&] { inner_.attention_forward(y, lse, scratch, qkv, B, T, C, NH); });
}
void ProfilingBackend::attention_backward(TensorRef dqkv, float* scratch, TensorRef dy, TensorRef qkv, TensorRef y,
                                          const float* lse, int B, int T, int C, int NH) {
  timed(op::kAttentionBackward, [&] { inner_.attention_backward(dqkv, scratch, dy, qkv, y, lse, B, T, C, NH); });
}
void ProfilingBackend::attention_decode(TensorRef y, float* scratch, TensorRef qkv, int pos, int C, int NH) {
  timed(op::kAttentionForward, [&] { inner_.attention_decode(y, scratch, qkv, pos, C, NH); });
}
void ProfilingBackend::classifier(float* losses, TensorRef logits, const int32_t* targets, int N, int V, int Vp,
                                  float dloss_scale, bool compute_grad) {
  timed(op::kClassifier, [&] { inner_.classifier(losses, logits, targets, N, V, Vp, dloss_scale, compute_grad); });
}
double ProfilingBackend::global_norm_squared(TensorRef x, int64_t n, float* partials) {
  double r = 0;
  timed(op::kGlobalNorm, [&] { r = inner_.global_norm_squared(x, n, partials); });
  return r;
}
void ProfilingBackend::adamw(TensorRef params, float* master, TensorRef grads, float* m, float* v,
                             const AdamWStep& step) {
  timed(op::kAdamW, [&] { inner_.adamw(params, master, grads, m, v, step); });
}

}  // namespace gpt2
