// The run that train_gpt2's flags describe, resolved once and in one place, in this order: the
// device, the model, the run's settings, the memory budget, then --micro-batch auto through
// auto-fit. A dry run resolves from the flags alone; a training run first brings its device up
// (engine/backend/backend_factory.h) and passes what it measured. The flags themselves are parsed
// and checked in run_options.h.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

#include "engine/backend/backend.h"
#include "engine/cli/run_options.h"
#include "engine/plan/autofit.h"
#include "engine/plan/gpu_catalog.h"
#include "engine/plan/memory_plan.h"
#include "engine/plan/model_config.h"
#include "engine/plan/plan_report.h"

namespace gpt2 {

// What a real CUDA run measured of its device before planning: the memory held outside the arena
// becomes the plan's reserve (unless --reserve is given), and the budget is the device's total
// memory (unless --gpu-mem or --gpu say otherwise).
struct MeasuredDevice {
  std::string name;
  int64_t total_bytes = 0;
  int64_t reserve_bytes = 0;
};

// The resolved run: the model, the run config (run.device is the device; micro_batch is auto-fit's
// choice with --micro-batch auto), and the budget the plan is judged against.
struct ResolvedRun {
  ModelConfig model;
  RunConfig run;
  Budget budget;
  bool autofit_used = false;  // --micro-batch auto
  AutoFitResult autofit;
};

// --device: "auto" plans a dry run for a GPU; a training run takes CUDA when a CUDA device is
// present and the binary has the CUDA backend, else the CPU.
Device resolve_device(const RunOptions& opts);

// A dry run: the device from the flags, nothing measured.
ResolvedRun resolve(const RunOptions& opts);
// A training run: `device` is resolve_device's, already brought up; `measured` is what its CUDA
// backend measured (nullptr on the CPU). Throws ConfigError naming a flag when a flag is wrong or
// auto-fit finds no plan that fits ("--gpu-mem", "--gpu" or "--host-mem").
ResolvedRun resolve(const RunOptions& opts, Device device, const MeasuredDevice* measured);

// What the CUDA backend behind `backend` measured of its device; nothing for another backend.
std::optional<MeasuredDevice> measure_device(Backend& backend);

// The steps of resolve after the device, in its order (tests call them one by one).

// The model shape: preset or model file, then --layers/--heads/... overrides.
ModelConfig resolve_model(const RunOptions& opts);
// The run config the flags give. micro_batch is kAutoMicroBatch for --micro-batch auto, which
// auto-fit replaces; reserve_bytes is --reserve, or -1 (the default estimate).
constexpr int kAutoMicroBatch = 0;
RunConfig resolve_run_config(const RunOptions& opts, const ModelConfig& model, Device device);
// The budget: --gpu-mem, else --gpu's memory, else the measured device's total memory, else the
// present GPU's free memory (CUDA device), else host memory (CPU device). Throws ConfigError
// when none can be determined. resolve_host_budget then fills in the host side.
Budget resolve_budget(const RunOptions& opts, Device device, const MeasuredDevice* measured = nullptr);
// Fills budget.host_bytes: --host-mem, else the host memory available now less
// max(2 GiB, 10 %) for the rest of the process and the system.
void resolve_host_budget(const RunOptions& opts, Budget& budget);

// The CPU as a device for the roofline: --cpu-gflops and --cpu-bandwidth, or the probe's figures.
GpuSpec cpu_device_for(const RunOptions& opts, int64_t memory_bytes);

// After a plan that does not fit: what auto-fit would use for the same tokens per step. Its
// run_flags(), added to the run's other flags, give exactly its plan (tests/test_fit_suggestion.cpp).
AutoFitResult fit_suggestion(const ResolvedRun& rr);
void print_fit_suggestion(std::ostream& out, const ResolvedRun& rr);

}  // namespace gpt2
