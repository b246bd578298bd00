#include "engine/cli/dry_run.h"

#include <ostream>

#include "engine/backend/device_info.h"
#include "engine/util/errors.h"
#include "engine/util/units.h"

namespace gpt2 {

GpuSpec cpu_device_for(const RunOptions& o, int64_t memory_bytes) {
  double gflops = o.cpu_gflops, gbs = o.cpu_bandwidth;
  if (gflops <= 0 || gbs <= 0) {
    const CpuRates& probed = probe_cpu_rates();
    if (gflops <= 0) gflops = probed.peak_gflops;
    if (gbs <= 0) gbs = probed.bandwidth_gbs;
  }
  return cpu_device(memory_bytes, gflops, gbs);
}

Budget resolve_budget(const RunOptions& o, Device device) {
  Budget b;
  const GpuSpec* card = o.gpu.empty() ? nullptr : &find_gpu(o.gpu);
  if (!o.gpu_mem.empty()) {
    b.bytes = parse_bytes(o.gpu_mem, "--gpu-mem");
    b.source = "--gpu-mem " + o.gpu_mem;
    b.gpu = card ? *card : (device == Device::CPU ? cpu_device_for(o, b.bytes) : generic_gpu(b.bytes));
    b.gpu.memory_bytes = b.bytes;
    return b;
  }
  if (card) {
    b.bytes = card->memory_bytes;
    b.source = "--gpu " + card->name;
    b.gpu = *card;
    return b;
  }
  if (device == Device::CPU) {
    b.bytes = host_memory_bytes();
    b.source = "host memory";
    b.gpu = cpu_device_for(o, b.bytes);
    return b;
  }
  const CudaDeviceInfo dev = query_cuda_device();
  if (!dev.present)
    throw ConfigError("--gpu-mem", "no budget given and no GPU to measure (" + dev.why_absent +
                                       "); pass --gpu-mem SIZE or --gpu NAME");
  // The query created this process's CUDA context, so the free memory already excludes it;
  // add the planned reserve back so the context is not counted twice.
  b.bytes = dev.free_bytes + kDefaultCudaReserveBytes;
  b.source = "free memory of " + dev.name + " (" + format_bytes(dev.free_bytes) + " free of " +
             format_bytes(dev.total_bytes) + ", plus the context)";
  b.gpu = generic_gpu(b.bytes);
  b.gpu.description = dev.name;
  return b;
}

ResolvedRun resolve_with_autofit(const RunOptions& o, const MeasuredDevice* measured) {
  ResolvedRun rr;
  rr.model = resolve_model(o);
  const Device device = resolve_device(o);
  rr.run = resolve_run(o, rr.model, device);
  if (measured && o.gpu_mem.empty() && o.gpu.empty()) {
    rr.budget.bytes = measured->total_bytes;
    rr.budget.source = measured->name + ", " + format_bytes(measured->reserve_bytes) + " of it held outside the arena";
    const GpuSpec* card = match_gpu_by_device_name(measured->name);
    rr.budget.gpu = card ? *card : generic_gpu(measured->total_bytes);
    rr.budget.gpu.memory_bytes = measured->total_bytes;
  } else {
    rr.budget = resolve_budget(o, device);
  }
  if (measured && o.reserve.empty()) rr.run.reserve_bytes = measured->reserve_bytes;
  if (o.micro_batch == "auto") {
    AutoFitRequest req;
    req.base = rr.run;
    req.fix_recompute = o.was_set("--recompute");
    req.fix_logits_chunk = o.was_set("--logits-chunk") && o.logits_chunk != "auto";
    req.budget_bytes = rr.budget.bytes;
    req.gpu = rr.budget.gpu;
    rr.autofit = auto_fit(rr.model, req);
    rr.autofit_used = true;
    if (!rr.autofit.found) {
      const std::string flag = o.gpu_mem.empty() && !o.gpu.empty() ? "--gpu" : "--gpu-mem";
      throw ConfigError(flag, "the budget of " + format_bytes(rr.budget.bytes) + " (" + rr.budget.source +
                                  ") is too small even for B=1 with block recompute: the smallest plan (" +
                                  run_flags(rr.autofit.smallest.run) + ") needs " +
                                  format_bytes(rr.autofit.smallest.total_bytes));
    }
    rr.run = rr.autofit.best.run;
  }
  return rr;
}

AutoFitResult fit_suggestion(const ResolvedRun& rr) {
  AutoFitRequest req;
  req.base = rr.run;
  // The same tokens per step as the plan that did not fit (B·T·world when not given).
  req.base.total_batch_tokens = make_memory_plan(rr.model, rr.run).run.total_batch_tokens;
  req.base.micro_batch = 1;  // auto-fit searches the micro-batch
  req.budget_bytes = rr.budget.bytes;
  req.gpu = rr.budget.gpu;
  return auto_fit(rr.model, req);
}

void print_fit_suggestion(std::ostream& out, const ResolvedRun& rr) {
  print_suggestion(out, fit_suggestion(rr), rr.budget);
}

int dry_run(const RunOptions& o, std::ostream& out) {
  if (o.profile || !o.profile_json.empty())
    throw ConfigError(o.profile ? "--profile" : "--profile-json",
                      "measures a real run's steps; a dry run prints the prediction alone (drop --dry-run)");
  ResolvedRun rr = resolve_with_autofit(o);
  const MemoryPlan plan = make_memory_plan(rr.model, rr.run);
  const Verdict v = judge(plan, rr.budget);
  if (o.json) {
    out << plan_json(plan, rr.budget, rr.autofit_used ? &rr.autofit : nullptr) << "\n";
    return v.fits ? kExitOk : kExitDoesNotFit;
  }
  print_plan(out, plan, rr.budget, rr.autofit_used ? &rr.autofit : nullptr);
  if (!v.fits) print_fit_suggestion(out, rr);
  return v.fits ? kExitOk : kExitDoesNotFit;
}

}  // namespace gpt2
