#include "engine/cli/dry_run.h"

#include <algorithm>
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

void resolve_host_budget(const RunOptions& o, Budget& b) {
  if (!o.host_mem.empty()) {
    b.host_bytes = parse_bytes(o.host_mem, "--host-mem");
    b.host_source = "--host-mem " + o.host_mem;
    return;
  }
  const int64_t available = host_available_bytes();
  const int64_t margin = std::max<int64_t>(int64_t{2} << 30, available / 10);
  b.host_bytes = std::max<int64_t>(0, available - margin);
  b.host_source = "host memory available now (" + format_bytes(available) + ") less " + format_bytes(margin);
}

namespace {

// The host's memory bandwidth for the offloaded optimizer's AdamW: --cpu-bandwidth, else the CPU
// probe (0 when it failed: the prediction then assumes kDefaultHostMemoryGbs).
double host_memory_gbs(const RunOptions& o) {
  return o.cpu_bandwidth > 0 ? o.cpu_bandwidth : probe_cpu_rates().bandwidth_gbs;
}

// Nothing fits: which budget was the limit, and by how much.
ConfigError nothing_fits(const RunOptions& o, const ResolvedRun& rr) {
  const AutoFitResult& fit = rr.autofit;
  if (fit.host_budget_exceeded) {
    // Auto-fit tried the optimizer on the device first unless --offload fixed it.
    const std::string device_budget = format_bytes(rr.budget.bytes) + " (" + rr.budget.source + ")";
    const std::string why = o.was_set("--offload")
                                ? "with --offload optimizer a plan fits the budget of " + device_budget + ", but"
                                : "no plan with the optimizer on the device fits the budget of " + device_budget +
                                      ", and with the optimizer offloaded";
    return ConfigError("--host-mem", why + " its host arena of " + format_bytes(fit.smallest.host_bytes) +
                                         " is over the host budget of " + format_bytes(rr.budget.host_bytes) + " (" +
                                         rr.budget.host_source + "); give more host memory with --host-mem");
  }
  const std::string flag = o.gpu_mem.empty() && !o.gpu.empty() ? "--gpu" : "--gpu-mem";
  return ConfigError(flag, "the budget of " + format_bytes(rr.budget.bytes) + " (" + rr.budget.source +
                               ") is too small even for B=1 with block recompute" +
                               (fit.offload_searched ? " and the optimizer offloaded to host memory" : "") +
                               ": the smallest plan (" + run_flags(fit.smallest.run) + ") needs " +
                               format_bytes(fit.smallest.total_bytes));
}

}  // namespace

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
  resolve_host_budget(o, rr.budget);
  if (o.micro_batch == "auto") {
    AutoFitRequest req;
    req.base = rr.run;
    req.fix_recompute = o.was_set("--recompute");
    req.fix_logits_chunk = o.was_set("--logits-chunk") && o.logits_chunk != "auto";
    req.fix_offload = o.was_set("--offload");
    req.budget_bytes = rr.budget.bytes;
    req.host_budget_bytes = rr.budget.host_bytes;
    if (rr.run.offload == Offload::Optimizer) rr.budget.gpu.host_memory_gbs = host_memory_gbs(o);
    req.gpu = rr.budget.gpu;
    rr.autofit = auto_fit(rr.model, req);
    rr.autofit_used = true;
    if (!rr.autofit.found) throw nothing_fits(o, rr);
    if (rr.autofit.best.run.offload == Offload::Optimizer && rr.budget.gpu.host_memory_gbs <= 0) {
      // Auto-fit fell back to offload: measure the host only now (a plan with the optimizer on the
      // device needs no figure of it) and search again, so that its predictions use the figure.
      rr.budget.gpu.host_memory_gbs = host_memory_gbs(o);
      req.gpu = rr.budget.gpu;
      rr.autofit = auto_fit(rr.model, req);
    }
    rr.run = rr.autofit.best.run;
  }
  if (rr.run.offload == Offload::Optimizer && rr.budget.gpu.host_memory_gbs <= 0)
    rr.budget.gpu.host_memory_gbs = host_memory_gbs(o);
  return rr;
}

AutoFitResult fit_suggestion(const ResolvedRun& rr) {
  AutoFitRequest req;
  req.base = rr.run;
  // The same tokens per step as the plan that did not fit (B·T·world when not given).
  req.base.total_batch_tokens = make_memory_plan(rr.model, rr.run).run.total_batch_tokens;
  req.base.micro_batch = 1;  // auto-fit searches the micro-batch
  // An offloaded run's suggestion stays offloaded; one on the device may fall back to offload.
  req.fix_offload = rr.run.offload == Offload::Optimizer;
  req.budget_bytes = rr.budget.bytes;
  req.host_budget_bytes = rr.budget.host_bytes;
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
