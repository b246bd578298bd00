#include "engine/train/run_report.h"

#include <ostream>

#include "engine/backend/cuda_backend_factory.h"
#include "engine/plan/throughput_model.h"
#include "engine/train/profile_report.h"
#include "engine/util/file_io.h"
#include "engine/util/units.h"

namespace gpt2 {

double peak_flops(Backend& backend, const MemoryPlan& plan, int world_size) {
  CudaBackendBase* cuda = as_cuda_backend(backend);
  const GpuSpec* card = cuda && !cuda->emulated() ? match_gpu_by_device_name(cuda->device_name()) : nullptr;
  if (!card) return 0;
  return (plan.run.precision == Precision::BF16 ? card->bf16_tflops : card->fp32_tflops) * 1e12 * world_size;
}

void report_measured_arena(Backend& backend, const MemoryPlan& plan, std::ostream& out, std::ostream& err) {
  CudaBackendBase* cuda = as_cuda_backend(backend);
  if (!cuda) return;
  const CudaMemoryReport r = cuda->memory_report();
  const int64_t diff = r.arena_drop_bytes() - plan.arena_bytes;
  out << "memory  arena planned " << format_count(plan.arena_bytes) << " bytes, measured drop in free memory "
      << format_count(r.arena_drop_bytes()) << " bytes (" << (diff >= 0 ? "+" : "") << format_bytes(diff)
      << "); reserve measured " << format_bytes(r.reserve_bytes) << "\n";
  if (diff > kMiB || diff < -kMiB) err << "train_gpt2: warning: planned and measured arena differ by more than 1 MiB\n";
  if (plan.host_arena_bytes > 0)
    out << "memory  host arena planned " << format_count(plan.host_arena_bytes) << " bytes, pinned "
        << format_count(r.host_arena_bytes) << " bytes (offloaded optimizer)\n";
}

void print_time_prediction(Backend& backend, const MemoryPlan& plan, const GpuSpec& device, int64_t steps,
                           bool suggest_quick_run, std::ostream& out, std::ostream& err) {
  const CudaBackendBase* cuda = as_cuda_backend(backend);
  if ((cuda && cuda->emulated()) || device_peak_flops(plan, device) <= 0) return;
  const StepTimePrediction p = predict_step_time(plan, device);
  const double total_s = p.step_s * static_cast<double>(steps);
  out << "predict " << format_duration(p.step_s) << "/step, " << format_duration(total_s) << " for " << steps
      << " steps (roofline for " << device.name << (p.estimate ? ", an estimate" : "") << ")\n";
  if (!cuda && suggest_quick_run && total_s > 1800)
    err << "train_gpt2: note: GPT-2 " << plan.model.describe() << " on the CPU is predicted to take "
        << format_duration(total_s) << "; for a quick first run try --layers 4 --heads 4 --width 128 --seq-len 128 "
        << "--micro-batch 8 (or --dry-run to see the plan)\n"
        << std::flush;
}

void report_profile(const OpProfiler& profiler, const MemoryPlan& plan, const GpuSpec& device, bool print,
                    const std::string& json_path, std::ostream& out) {
  const ProfileReport report = make_profile_report(profiler.data(), predict_step_time(plan, device), device);
  if (print) print_profile(out, report);
  if (!json_path.empty() && plan.run.rank == 0) {
    write_file_atomic(json_path, profile_json(report) + "\n");
    out << "profile written to " << json_path << "\n";
  }
}

}  // namespace gpt2
