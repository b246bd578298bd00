// Renders a memory plan for people (the dry-run tables) and for programs (--json).
#pragma once
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include "engine/plan/autofit.h"
#include "engine/plan/memory_plan.h"

namespace gpt2 {

struct Budget {
  int64_t bytes = 0;
  std::string source;  // "--gpu-mem 12GiB", "--gpu rtx3060-12gb", "free memory of GPU 0"
  GpuSpec gpu;         // compute figures used by auto-fit
  // Host memory for the host arena (optimizer offload): --host-mem, else what the machine had
  // available at start-up less a margin. 0 = unknown (a plan without a host arena needs none).
  int64_t host_bytes = 0;
  std::string host_source;
};

struct Verdict {
  bool fits = false;
  int64_t margin_bytes = 0;  // budget - total (negative when over)
  std::string text;          // one paragraph: fits or not, by how much, what takes the space
};

Verdict judge(const MemoryPlan& plan, const Budget& budget);

// The human-readable dry run: header, table by category, the 10 largest buffers, the host arena
// and the host budget (offloaded optimizer), the total and the verdict. `autofit` (when given)
// adds auto-fit's reasons and flags.
void print_plan(std::ostream& os, const MemoryPlan& plan, const Budget& budget, const AutoFitResult* autofit = nullptr);

// The roofline prediction of one step on `device`: a summary line and one row per op.
void print_prediction(std::ostream& os, const MemoryPlan& plan, const GpuSpec& device);
// "0.81 s/step, 1262 tok/s, MFU 53.6% of 0.419 TFLOP/s (estimate)"
std::string prediction_summary(const StepTimePrediction& p);

// Suggestion printed when a plan does not fit: the flags auto-fit would use.
void print_suggestion(std::ostream& os, const AutoFitResult& fit, const Budget& budget);

// The plan as JSON: params, total_bytes, arena_bytes, reserve_bytes, budget_bytes, fits,
// config{..., offload: "none" | "optimizer"}, categories{...}, buffers[{name, category, dtype,
// shape, offset, bytes}], prediction{..., ops[{..., bound, note and hidden_s for the offload
// ops}]}, host_arena{bytes, budget_bytes, budget_source, buffers[...]} for an offloaded plan, and
// autofit{...} when given.
std::string plan_json(const MemoryPlan& plan, const Budget& budget, const AutoFitResult* autofit = nullptr);

}  // namespace gpt2
