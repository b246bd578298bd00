// Auto-fit: `--micro-batch auto` picks micro-batch B, gradient accumulation, recompute policy and
// logits chunk analytically. It builds a memory plan for each candidate (no trial allocations),
// keeps those whose total fits the budget and ranks them by predicted throughput
// (engine/plan/throughput_model.h); ties go to less recompute, then the larger chunk.
//
// Headroom: the fastest plan often fills the card to the last MiB for a gain of a few hundredths
// of a percent over a plan half its size, and then fails for a user whose desktop or another
// process holds a little of the card. So among the plans predicted within kAutoFitSpeedTolerance
// (3 %) of the fastest, auto-fit takes the fastest that leaves at least
// autofit_headroom_bytes(budget) = max(256 MiB, 2 % of the budget) unused; when none of them
// does (a small budget), the one of them that leaves the most. A plan more than 3 % slower than
// the fastest is never chosen for its headroom.
//
// Optimizer offload is the last resort: auto-fit searches plans with the optimizer on the device
// first, and only when none of them fits searches again with --offload optimizer (the fp32
// master weights, m and v in a host arena; engine/plan/memory_plan.h). An offloaded plan must fit
// both the device budget and the host budget. A request with fix_offload keeps base.offload.
#pragma once
#include <string>
#include <vector>

#include "engine/plan/gpu_catalog.h"
#include "engine/plan/memory_plan.h"
#include "engine/plan/throughput_model.h"

namespace gpt2 {

constexpr int kMaxAutoLogitsChunk = 8192;
constexpr int kMaxAutoMicroBatch = 4096;
constexpr double kAutoFitSpeedTolerance = 0.03;
constexpr int64_t kAutoFitMinHeadroomBytes = int64_t{256} << 20;

// The memory auto-fit tries to leave unused: max(256 MiB, 2 % of the budget).
int64_t autofit_headroom_bytes(int64_t budget_bytes);

struct AutoFitRequest {
  RunConfig base;                 // T, total batch, precision, zero, world... are kept as given
  bool fix_micro_batch = false;   // search B unless the user gave one
  bool fix_recompute = false;     // keep base.recompute when the user gave one
  bool fix_logits_chunk = false;  // keep base.logits_chunk when the user gave one
  bool fix_offload = false;       // keep base.offload when the user gave --offload; else offload is the fallback
  int64_t budget_bytes = 0;
  int64_t host_budget_bytes = 0;  // host memory for an offloaded plan's host arena; 0: none
  GpuSpec gpu;                    // compute figures for the throughput model
};

struct AutoFitCandidate {
  RunConfig run;
  int grad_accum = 0;
  int64_t total_bytes = 0;  // device memory
  int64_t host_bytes = 0;   // the host arena (offloaded optimizer)
  StepTimePrediction predicted;
};

struct AutoFitResult {
  bool found = false;
  AutoFitCandidate best;                     // the choice (the headroom rule above)
  AutoFitCandidate fastest;                  // the fastest fitting plan (may be `best`)
  MemoryPlan plan;                           // the chosen plan (when found)
  int considered = 0;                        // plans built
  int fitting = 0;                           // plans that fit
  int64_t headroom_bytes = 0;                // autofit_headroom_bytes(budget)
  std::vector<AutoFitCandidate> runners_up;  // best fit of each other B, in rank order (may be faster)
  std::vector<std::string> reasons;          // human-readable: why this one
  AutoFitCandidate smallest;                 // the least-memory candidate (when nothing fits)
  bool offload_searched = false;             // plans with the optimizer offloaded were tried
  bool host_budget_exceeded = false;         // an offloaded plan fit the device but not the host budget
};

// Throws ConfigError for invalid requests (the same checks as make_memory_plan). When nothing
// fits, returns found=false with `smallest` filled (the least device memory of every plan tried,
// offloaded ones included when they were searched), so the caller can say by how much it misses.
AutoFitResult auto_fit(const ModelConfig& model, const AutoFitRequest& req);

// The flags that reproduce a run config's plan together with the run's other flags, e.g.
// "--micro-batch 16 --recompute none --logits-chunk 8192 --total-batch-tokens 524288", and
// "--offload optimizer" at the end for an offloaded run.
std::string run_flags(const RunConfig& run);

}  // namespace gpt2
