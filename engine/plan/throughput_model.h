// Auto-fit's throughput model: predicted time of one optimizer step for a memory plan on a card.
//
//   step = grad_accum · micro + optimizer
//   micro = matmul_flops / (peak · eff(B·T))          body matmuls + attention (fwd+bwd)
//         + head_flops   / (peak · eff(chunk))        lm_head runs chunk tokens at a time
//         + recompute_flops / (peak · eff(B·T))       block recompute reruns those layers' forward
//         + recompute_bytes / bandwidth               gelu/norm recompute is memory-bound
//         + launches · kLaunchSeconds                 fixed cost per micro-step and per chunk
//   optimizer = AdamW's bytes (params, grads, master, m, v read and written) / bandwidth
//   eff(m) = m / (m + kHalfEfficiencyTokens): a matmul with m rows reaches half the peak at
//            kHalfEfficiencyTokens rows and approaches the peak for large m.
// It is deliberately simple: it only has to rank configurations the right way round (bigger
// micro-batches and chunks are faster; recompute costs its extra work), and it is tested for that.
#pragma once
#include "engine/plan/gpu_catalog.h"
#include "engine/plan/memory_plan.h"

namespace gpt2 {

constexpr double kHalfEfficiencyTokens = 1024.0;
constexpr double kLaunchSeconds = 5e-6;

struct StepTimePrediction {
  double micro_step_s = 0;    // one micro-batch forward+backward
  double optimizer_s = 0;     // one AdamW update
  double step_s = 0;          // grad_accum · micro + optimizer
  double tokens_per_s = 0;    // per rank
  double flops_per_step = 0;  // model FLOPs incl. recompute, per rank
};

StepTimePrediction predict_step_time(const MemoryPlan& plan, const GpuSpec& gpu);

}  // namespace gpt2
