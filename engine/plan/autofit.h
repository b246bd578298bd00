// Auto-fit: `--micro-batch auto` picks micro-batch B, gradient accumulation, recompute policy and
// logits chunk analytically. It builds a memory plan for each candidate (no trial allocations),
// keeps those whose total fits the budget, and takes the one with the highest predicted
// throughput (engine/plan/throughput_model.h). Ties go to less recompute, then the larger chunk.
#pragma once
#include <string>
#include <vector>

#include "engine/plan/gpu_catalog.h"
#include "engine/plan/memory_plan.h"
#include "engine/plan/throughput_model.h"

namespace gpt2 {

constexpr int kMaxAutoLogitsChunk = 8192;
constexpr int kMaxAutoMicroBatch = 4096;

struct AutoFitRequest {
  RunConfig base;                 // T, total batch, precision, zero, world... are kept as given
  bool fix_micro_batch = false;   // search B unless the user gave one
  bool fix_recompute = false;     // keep base.recompute when the user gave one
  bool fix_logits_chunk = false;  // keep base.logits_chunk when the user gave one
  int64_t budget_bytes = 0;
  GpuSpec gpu;  // compute figures for the throughput model
};

struct AutoFitCandidate {
  RunConfig run;
  int grad_accum = 0;
  int64_t total_bytes = 0;
  StepTimePrediction predicted;
};

struct AutoFitResult {
  bool found = false;
  AutoFitCandidate best;
  MemoryPlan plan;                           // the chosen plan (when found)
  int considered = 0;                        // plans built
  int fitting = 0;                           // plans that fit
  std::vector<AutoFitCandidate> runners_up;  // next best fits, each with a different B or policy
  std::vector<std::string> reasons;          // human-readable: why this one
  AutoFitCandidate smallest;                 // the least-memory candidate (when nothing fits)
};

// Throws ConfigError for invalid requests (the same checks as make_memory_plan). When nothing
// fits, returns found=false with `smallest` filled, so the caller can say by how much it misses.
AutoFitResult auto_fit(const ModelConfig& model, const AutoFitRequest& req);

// The flags that reproduce a run config's plan together with the run's other flags, e.g.
// "--micro-batch 16 --recompute none --logits-chunk 8192 --total-batch-tokens 524288".
std::string run_flags(const RunConfig& run);

}  // namespace gpt2
