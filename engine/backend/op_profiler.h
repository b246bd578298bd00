// The profile of `train_gpt2 --profile`: an OpObserver attached to the backend that, between
// begin_step() and end_step(), times every op call with that backend's OpTimer (host clock on the
// CPU, events on CUDA: one wait per step, not per call). Calls are grouped under the op names of
// engine/plan/op_costs.h, so each group lines up with its roofline prediction.
//
// Observing changes nothing the backend computes: losses are bitwise the same with or without
// the profile (tests/cli/profile.sh checks it on the CPU, tests/simt/cli/profile.sh under the
// SIMT layer).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/backend/backend.h"

namespace gpt2 {

struct OpProfile {
  std::string name;  // an op group name of engine/plan/op_costs.h
  int64_t calls = 0;
  double seconds = 0;
};

struct ProfileData {
  int64_t steps = 0;               // steps measured
  int64_t skipped_steps = 0;       // warm-up steps left out (the first one, when there are more)
  double step_seconds = 0;         // wall time of the measured steps, host clock
  double median_step_seconds = 0;  // the median of the measured steps' wall times
  std::vector<OpProfile> ops;      // in the order first seen
};

class OpProfiler final : public OpObserver {
 public:
  // Attaches itself to `backend` (which must outlive this) until destroyed. `plan` names the
  // matmuls (by the model's channels).
  OpProfiler(Backend& backend, const MemoryPlan& plan);
  ~OpProfiler() override;
  OpProfiler(const OpProfiler&) = delete;
  OpProfiler& operator=(const OpProfiler&) = delete;

  // Timing is on between these calls. end_step collects the step's timings (one wait for the
  // device) and adds them to the profile unless the step is a warm-up step.
  void begin_step();
  void end_step(double step_seconds);
  // The profile so far: steps after the first when more than one was measured.
  ProfileData data() const;

  void op_begin(const OpCall& call) override;
  void op_end() override;

 private:
  // The op group (engine/plan/op_costs.h) a call is counted under.
  const char* group_name(const OpCall& call) const;
  int group_index(const char* name);

  struct Totals {
    std::vector<int64_t> calls;
    std::vector<double> seconds;
    int64_t steps = 0;
    double step_seconds = 0;
    std::vector<double> step_walls;
  };

  Backend& backend_;
  int channels_;
  std::unique_ptr<OpTimer> timer_;
  bool in_step_ = false;
  bool timing_call_ = false;         // between op_begin and op_end of a timed call
  int depth_ = 0;                    // calls begun and not ended (nested calls are not timed)
  std::vector<const char*> groups_;  // op group names, in the order first seen
  std::vector<int> pending_;         // the group of each timed call of the current step
  Totals warmup_, measured_;         // the first step, and the ones after it
};

}  // namespace gpt2
