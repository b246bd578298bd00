// The table and JSON of `train_gpt2 --profile` / `--profile-json`: the measured time of every op
// group per step (engine/backend/op_profiler.h) beside its roofline prediction
// (engine/plan/throughput_model.h), and the efficiencies the measurement implies, in the form of
// the device table (engine/plan/gpu_catalog.h) so a run on a new device can calibrate it.
#pragma once
#include <iosfwd>
#include <string>
#include <vector>

#include "engine/backend/op_profiler.h"
#include "engine/plan/throughput_model.h"

namespace gpt2 {

struct ProfileRow {
  std::string name;
  OpClass cls = OpClass::Memory;
  double calls_per_step = 0;    // measured (the prediction's count when not measured)
  double measured_s = -1;       // per step; -1 when the op was not measured (not a backend call)
  double predicted_s = -1;      // per step; -1 when the plan predicts nothing for it
  double flops = 0, bytes = 0;  // per step, from the plan
  bool compute_bound = false;   // which roof the prediction hits
  double achieved = 0;          // GFLOP/s when compute-bound, else GB/s (0 when unknown)
};

struct ProfileReport {
  std::string device;            // the device the prediction is for
  std::string efficiency_basis;  // "estimate ..." or "calibrated ..."
  int64_t steps = 0, skipped_steps = 0;
  double step_measured_s = 0;  // mean wall time per step (host clock)
  double step_median_s = 0;    // median wall time per step
  double step_predicted_s = 0;
  double model_flops_per_step = 0;  // 6·N per token + attention (engine/plan/model_config.h)
  double peak_flops = 0;            // the device's peak for the run's precision (probed on the CPU)
  double ops_measured_s = 0;     // Σ of the measured rows
  std::vector<ProfileRow> rows;  // prediction order, then measured groups the plan does not list
  // measured efficiency per class: Σ flops / (Σ s · peak) for matmuls and attention,
  // Σ bytes / (Σ s · bandwidth) for memory-bound ops; -1 when the class was not measured.
  double implied[kNumOpClasses] = {-1, -1, -1, -1, -1};
};

ProfileReport make_profile_report(const ProfileData& data, const StepTimePrediction& prediction, const GpuSpec& device);
void print_profile(std::ostream& os, const ProfileReport& report);
std::string profile_json(const ProfileReport& report);

}  // namespace gpt2
