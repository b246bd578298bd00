#include "engine/backend/op_profiler.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "engine/plan/op_costs.h"

namespace gpt2 {

OpProfiler::OpProfiler(Backend& backend, const MemoryPlan& plan)
    : backend_(backend), channels_(plan.model.channels), timer_(backend.make_op_timer()) {
  if (backend_.op_observer()) throw std::logic_error("OpProfiler: the backend already has an observer");
  backend_.set_op_observer(this);
}

OpProfiler::~OpProfiler() { backend_.set_op_observer(nullptr); }

const char* OpProfiler::group_name(const OpCall& c) const {
  switch (c.kind) {
    case OpKind::Upload:
    case OpKind::Download: return op::kTransfer;
    case OpKind::Zero: return op::kZero;
    // The offloaded optimizer's three ops. The wait is what the step sees of the gradients' copy
    // to the host: the part the backward did not hide.
    case OpKind::WaitHostCopies: return op::kOffloadGradientsToHost;
    case OpKind::HostAdamW: return op::kOffloadHostAdamW;
    case OpKind::UploadOffloadedParameters: return op::kOffloadParametersToDevice;
    case OpKind::EncoderForward: return op::kEncoderForward;
    case OpKind::EncoderBackward: return op::kEncoderBackward;
    case OpKind::LayernormForward: return op::kLayernormForward;
    case OpKind::ResidualLayernormForward: return op::kResidualLayernormForward;
    case OpKind::LayernormRecompute: return op::kLayernormRecompute;
    case OpKind::LayernormBackward: return op::kLayernormBackward;
    case OpKind::MatmulForward:
    case OpKind::MatmulForwardGelu:
    case OpKind::MatmulBackward:
    case OpKind::MatmulBackwardGelu: {
      const bool gelu = c.kind == OpKind::MatmulForwardGelu || c.kind == OpKind::MatmulBackwardGelu;
      const bool backward = c.kind == OpKind::MatmulBackward || c.kind == OpKind::MatmulBackwardGelu;
      return matmul_op_name(channels_, c.in_channels, c.out_channels, c.has_bias, gelu, backward);
    }
    case OpKind::GeluForward: return op::kGeluForward;
    case OpKind::GeluBackward: return op::kGeluBackward;
    case OpKind::ResidualForward: return op::kResidualForward;
    case OpKind::AttentionForward:
    case OpKind::AttentionDecode: return op::kAttentionForward;
    case OpKind::AttentionBackward: return op::kAttentionBackward;
    case OpKind::Classifier: return op::kClassifier;
    case OpKind::GlobalNorm: return op::kGlobalNorm;
    case OpKind::AdamW: return op::kAdamW;
  }
  return op::kOther;
}

int OpProfiler::group_index(const char* name) {
  for (size_t i = 0; i < groups_.size(); ++i)
    if (groups_[i] == name || std::strcmp(groups_[i], name) == 0) return static_cast<int>(i);
  groups_.push_back(name);
  return static_cast<int>(groups_.size()) - 1;
}

// A call made from inside another (a backend implementation calling a public op) is part of
// the outer call's time: only the outermost call is timed and counted.
void OpProfiler::op_begin(const OpCall& call) {
  if (depth_++ > 0) return;
  timing_call_ = in_step_;
  if (!timing_call_) return;
  pending_.push_back(group_index(group_name(call)));
  timer_->start();
}

void OpProfiler::op_end() {
  if (--depth_ > 0 || !timing_call_) return;
  timing_call_ = false;
  timer_->stop();
}

void OpProfiler::begin_step() {
  if (in_step_) throw std::logic_error("OpProfiler: begin_step twice");
  in_step_ = true;
  depth_ = 0;  // a call that threw in an earlier step ended no scope
  pending_.clear();
}

void OpProfiler::end_step(double step_seconds) {
  if (!in_step_) throw std::logic_error("OpProfiler: end_step without begin_step");
  in_step_ = false;
  const std::vector<double> seconds = timer_->collect();
  if (seconds.size() != pending_.size())
    throw std::logic_error("OpProfiler: " + std::to_string(seconds.size()) + " timings for " +
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

ProfileData OpProfiler::data() const {
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

}  // namespace gpt2
