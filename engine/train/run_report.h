// What a training run reports about its device around the steps: the peak FLOP/s behind the MFU,
// the planned arena against the measured one, the roofline's time prediction before step 1, and
// the --profile table after the last step (engine/train/profile_report.h).
#pragma once
#include <cstdint>
#include <iosfwd>
#include <string>

#include "engine/backend/backend.h"
#include "engine/backend/op_profiler.h"
#include "engine/plan/gpu_catalog.h"
#include "engine/plan/memory_plan.h"

namespace gpt2 {

// The peak FLOP/s of all ranks for the MFU, from the card table's dense bf16 (or fp32) figure;
// 0 (logged as null) for the CPU backend, for cards not in the table and for a card emulated by
// the SIMT layer.
double peak_flops(Backend& backend, const MemoryPlan& plan, int world_size);

// The CUDA backend reports the planned arena against the measured drop in free memory (a warning
// on `err` when they differ by more than 1 MiB), and the pinned host arena of an offloaded
// optimizer. Nothing for another backend.
void report_measured_arena(Backend& backend, const MemoryPlan& plan, std::ostream& out, std::ostream& err);

// The roofline's step time for `device` (engine/plan/throughput_model.h) and the total for
// `steps`, printed before step 1 so a long run says so up front. Nothing for a device without a
// known peak (a card not in the table, or one emulated by the SIMT layer). With
// `suggest_quick_run` (the user gave no model shape), a CPU run predicted to take over half an
// hour also names a quick first run on `err`.
void print_time_prediction(Backend& backend, const MemoryPlan& plan, const GpuSpec& device, int64_t steps,
                           bool suggest_quick_run, std::ostream& out, std::ostream& err);

// --profile (`print`) and --profile-json (`json_path`, written by rank 0): the measured steps
// beside the roofline prediction for `device`.
void report_profile(const OpProfiler& profiler, const MemoryPlan& plan, const GpuSpec& device, bool print,
                    const std::string& json_path, std::ostream& out);

}  // namespace gpt2
