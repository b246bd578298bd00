// `train_gpt2 --dry-run`: resolve the flags, pick the budget, run auto-fit when asked, and print
// the memory plan (tables or JSON) with a verdict. Needs no GPU.
#pragma once
#include <iosfwd>

#include "engine/cli/run_options.h"
#include "engine/plan/autofit.h"
#include "engine/plan/plan_report.h"

namespace gpt2 {

// Exit codes of train_gpt2.
constexpr int kExitOk = 0;
constexpr int kExitError = 1;       // bad flag, bad file, nothing can fit, runtime failure
constexpr int kExitUsage = 2;       // the command line could not be parsed
constexpr int kExitDoesNotFit = 3;  // dry run: the plan does not fit the budget

// The budget: --gpu-mem, else --gpu's memory, else the present GPU's free memory (CUDA device),
// else host memory (CPU device). Throws ConfigError when none can be determined.
Budget resolve_budget(const RunOptions& opts, Device device);
// Fills budget.host_bytes: --host-mem, else the host memory available now less
// max(2 GiB, 10 %) for the rest of the process and the system.
void resolve_host_budget(const RunOptions& opts, Budget& budget);

// The CPU as a device for the roofline: --cpu-gflops and --cpu-bandwidth, or the probe's figures.
GpuSpec cpu_device_for(const RunOptions& opts, int64_t memory_bytes);

// Resolves model + run config, and runs auto-fit when --micro-batch auto. Throws ConfigError
// when nothing fits ("--gpu-mem"/"--gpu" named).
struct ResolvedRun {
  ModelConfig model;
  RunConfig run;
  Budget budget;
  bool autofit_used = false;
  AutoFitResult autofit;
};
// A real CUDA run measures the device first (make_cuda_backend): the memory held outside the
// arena becomes the plan's reserve (unless --reserve is given), and the budget is the device's
// total memory (unless --gpu-mem or --gpu say otherwise).
struct MeasuredDevice {
  std::string name;
  int64_t total_bytes = 0;
  int64_t reserve_bytes = 0;
};
ResolvedRun resolve_with_autofit(const RunOptions& opts, const MeasuredDevice* measured = nullptr);

// After a plan that does not fit: what auto-fit would use for the same tokens per step. Its
// run_flags(), added to the run's other flags, give exactly its plan (tests/test_fit_suggestion.cpp).
AutoFitResult fit_suggestion(const ResolvedRun& rr);
void print_fit_suggestion(std::ostream& out, const ResolvedRun& rr);

// Prints the plan; returns kExitOk when it fits and kExitDoesNotFit when it does not.
int dry_run(const RunOptions& opts, std::ostream& out);

}  // namespace gpt2
