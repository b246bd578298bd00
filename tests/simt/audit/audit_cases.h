// The kernel audit's cases: every kernel of kernels/cuda, launched through its own launcher at
// GPT-2 widths (C = 768 and 1600, head size 64) and storage types, with its memory accesses
// recorded by the SIMT layer (simt/access_trace.h). Built with nvcc for a real GPU
// (bench/cuda/bench_audit_cases.cu), the same cases are timed instead, so one GPU run puts a
// measured time beside every prediction.
//
// Shapes are scaled down from a real step (fewer rows, one sequence), keeping each warp's access
// pattern: counts scale with rows. Attention is counted on 4 heads and predicted for a training
// shape (AuditCase::scale). Each case states, per launched kernel, its compulsory bytes
// (every input read once, every output written once, the partial sums a two-pass design writes
// between its kernels included), so the audit can compare them with the unique bytes touched.
#pragma once

#include <functional>
#include <string>
#include <vector>

#if defined(GPT2_SIMT)
#include "simt/access_trace.h"
#endif

namespace gpt2::audit {

#if defined(GPT2_SIMT)
using LaunchRecord = simt::trace::LaunchCounts;
#else
struct LaunchRecord {};  // on a real GPU the cases are timed, not counted
#endif

// One launch of a case, as recorded under the SIMT layer; on a real GPU one entry per case, timed.
struct KernelRun {
  LaunchRecord counts;
  std::string kernel;          // "layernorm/layernorm_forward_kernel<bf16, 1, 1, false>"; on a GPU the file stem
  double compulsory_bytes = 0;
  double measured_us = 0;      // on a real GPU: the launcher's mean time over repeated calls
};

struct AuditCase {
  std::string op;      // the op group of engine/plan/op_costs.h it serves ("layernorm forward")
  std::string file;    // kernels/cuda source stem ("layernorm")
  std::string dtype;   // "bf16" or "fp32"
  int C = 0;           // model width
  std::string shape;   // "N=4096 C=768"
  bool memory_bound = true;
  double flops = 0;    // for attention: the causal FLOPs of the shape the case stands for
  // How many times over `run` launches the work it counts. Attention's (sequence, head) blocks
  // are independent and alike, so under the SIMT layer the audit counts a few heads and stands
  // them for a training shape: every count, the grid, the unique and compulsory bytes and the
  // FLOPs multiply by `scale`, and the prediction is made for the scaled launch. On a real GPU
  // the case launches the whole shape (scale 1).
  int scale = 1;
  std::string counted_shape;  // what `run` launches when scale > 1 ("B=1 T=1024 NH=4 HS=64")
  // Allocates, launches under recording (SIMT layer) or timing (real GPU), frees; returns the
  // launches in order with their compulsory bytes, or throws std::runtime_error.
  std::function<std::vector<KernelRun>()> run;
};

// Every case at widths `widths` (default 768 and 1600).
std::vector<AuditCase> audit_cases(const std::vector<int>& widths);

// One attention forward (or backward: row_dot, dK/dV, dQ) over B sequences of T tokens with NH
// heads of size 64, in "bf16" (the flash kernels) or "fp32" (the simple ones), recorded or timed
// as a case's run is. The scale check (audit_report.h) compares two of them.
std::vector<KernelRun> attention_runs(const std::string& dtype, bool backward, int B, int NH, int T);

// "void gpt2::cuda::layernorm_forward_kernel<__nv_bfloat16, 1>(...)" → "layernorm_forward_kernel<bf16, 1>".
std::string short_kernel_name(const std::string& demangled);

}  // namespace gpt2::audit
