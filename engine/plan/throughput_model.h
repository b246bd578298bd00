// The roofline prediction of one optimizer step for a memory plan on a device.
//
// For every op group of the step (engine/plan/op_costs.h), from the plan's shapes and dtypes:
//   t(op) = max(flops / (peak · eff[class]), bytes / (bandwidth · eff.memory)) + calls · launch_s
// with eff[class] the device's efficiency for large matmuls, small matmuls, attention or
// memory-bound ops (engine/plan/gpu_catalog.h) — for the ops the kernel audit covers, on a card
// not calibrated by measurement, the op's own audited efficiency instead (engine/plan/
// audited_ops.h): for a memory-bound op in place of eff.memory; for attention at most the class
// figure, as the audit's model (kernel_cost_model.h) counts memory, shared-memory and tensor work
// but not instruction issue, so its time for a compute-heavy kernel is a lower bound — and the
// gradient exchange at the device's
// interconnect bandwidth. The step's time is the sum (grad_accum is in the op counts). MFU is
// the model's FLOPs per step (engine/plan/model_config.h) over step time × peak.
// Auto-fit ranks every candidate plan with it, so it stays a few microseconds per plan.
#pragma once
#include <vector>

#include "engine/plan/gpu_catalog.h"
#include "engine/plan/memory_plan.h"
#include "engine/plan/op_costs.h"

namespace gpt2 {

struct OpPrediction {
  OpCost cost;
  double seconds = 0;          // per optimizer step
  bool compute_bound = false;  // the FLOP term is the larger one
  bool audited = false;        // the efficiency comes from the kernel audit (audited_ops.h)
};

struct StepTimePrediction {
  double step_s = 0;          // one optimizer step
  double tokens_per_s = 0;    // per rank
  double flops_per_step = 0;  // model FLOPs per rank (6·N per token + attention; not recompute)
  double mfu = 0;             // flops_per_step / (step_s · peak)
  double peak_flops = 0;      // the device's peak for the run's precision, FLOP/s
  bool estimate = true;       // the device's efficiencies are estimates, not calibrated
  std::vector<OpPrediction> ops;
};

// The peak FLOP/s a plan's precision gets on the device (bf16 tensor or fp32).
double device_peak_flops(const MemoryPlan& plan, const GpuSpec& device);

StepTimePrediction predict_step_time(const MemoryPlan& plan, const GpuSpec& device);

}  // namespace gpt2
