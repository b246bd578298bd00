#include "engine/cli/resolve.h"

#include <algorithm>
#include <ostream>

#include "engine/backend/backend_factory.h"
#include "engine/backend/cuda_backend_factory.h"
#include "engine/backend/device_info.h"
#include "engine/model/model_io.h"
#include "engine/util/errors.h"
#include "engine/util/file_io.h"
#include "engine/util/units.h"

namespace gpt2 {

Device resolve_device(const RunOptions& o) {
  if (o.device == "auto" && o.dry_run) return Device::CUDA;  // a dry run plans for a GPU unless told otherwise
  return device_from_flag(o.device);
}

std::optional<MeasuredDevice> measure_device(Backend& backend) {
  const CudaBackendBase* cuda = as_cuda_backend(backend);
  if (!cuda) return std::nullopt;
  const CudaMemoryReport r = cuda->memory_report();
  MeasuredDevice m;
  m.name = cuda->device_name();
  m.total_bytes = r.total_bytes;
  m.reserve_bytes = r.reserve_bytes;
  return m;
}

ModelConfig resolve_model(const RunOptions& o) {
  ModelConfig m;
  if (is_preset_name(o.model)) {
    m = preset_config(o.model);
  } else if (ends_with(o.model, ".bin") || ends_with(o.model, ".safetensors")) {
    m = read_model_config(o.model, o.heads);  // the file's header or tensors; heads: see model_io.h
  } else {
    m = preset_config(o.model);  // throws ConfigError("--model") naming the presets
  }
  bool custom = false;
  auto take = [&](int value, const char* flag, int& field) {
    if (value != 0 || o.was_set(flag)) {
      if (value <= 0) throw ConfigError(flag, "must be positive, got " + std::to_string(value));
      field = value;
      custom = true;
    }
  };
  take(o.layers, "--layers", m.num_layers);
  take(o.heads, "--heads", m.num_heads);
  take(o.width, "--width", m.channels);
  take(o.max_seq_len, "--max-seq-len", m.max_seq_len);
  if (o.vocab != 0 || o.was_set("--vocab")) {
    take(o.vocab, "--vocab", m.vocab_size);
    m.padded_vocab = pad_vocab(m.vocab_size);
  }
  if (custom) m.name = "custom";
  validate(m);
  return m;
}

RunConfig resolve_run_config(const RunOptions& o, const ModelConfig& m, Device device) {
  RunConfig r;
  r.device = device;
  if (o.micro_batch == "auto") {
    r.micro_batch = kAutoMicroBatch;
  } else {
    const std::string& s = o.micro_batch;
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos)
      throw ConfigError("--micro-batch", "expected a positive number or 'auto', got '" + s + "'");
    r.micro_batch = std::stoi(s);
  }
  if (o.seq_len < 0) throw ConfigError("--seq-len", "must be positive, got " + std::to_string(o.seq_len));
  r.seq_len = o.seq_len > 0 ? o.seq_len : std::min(1024, m.max_seq_len);
  if (o.total_batch_tokens < 0) throw ConfigError("--total-batch-tokens", "must be positive");
  r.total_batch_tokens = o.total_batch_tokens;
  if (o.precision == "auto")
    r.precision = device == Device::CPU ? Precision::FP32 : Precision::BF16;
  else
    r.precision = parse_precision(o.precision);
  if (o.master_weights == "auto")
    r.master_weights = -1;
  else if (o.master_weights == "on")
    r.master_weights = 1;
  else if (o.master_weights == "off")
    r.master_weights = 0;
  else
    throw ConfigError("--master-weights", "expected auto, on or off, got '" + o.master_weights + "'");
  r.recompute = parse_recompute(o.recompute);
  if (o.logits_chunk == "auto") {
    r.logits_chunk = 0;
  } else {
    const std::string& s = o.logits_chunk;
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos || std::stoi(s) == 0)
      throw ConfigError("--logits-chunk", "expected a positive token count or 'auto', got '" + s + "'");
    r.logits_chunk = std::stoi(s);
  }
  r.zero_stage = o.zero;
  if (o.world_size < 0 || (o.world_size == 0 && o.was_set("--world-size")))
    throw ConfigError("--world-size", "must be positive, got " + std::to_string(o.world_size));
  r.world_size = o.world_size > 0 ? o.world_size : 1;
  r.rank = o.rank;
  if (!o.reserve.empty()) {
    r.reserve_bytes = o.reserve == "0" ? 0 : parse_bytes(o.reserve, "--reserve");
  }
  r.offload = parse_offload(o.offload);
  return r;
}

GpuSpec cpu_device_for(const RunOptions& o, int64_t memory_bytes) {
  double gflops = o.cpu_gflops, gbs = o.cpu_bandwidth;
  if (gflops <= 0 || gbs <= 0) {
    const CpuRates& probed = probe_cpu_rates();
    if (gflops <= 0) gflops = probed.peak_gflops;
    if (gbs <= 0) gbs = probed.bandwidth_gbs;
  }
  return cpu_device(memory_bytes, gflops, gbs);
}

Budget resolve_budget(const RunOptions& o, Device device, const MeasuredDevice* measured) {
  Budget b;
  if (measured && o.gpu_mem.empty() && o.gpu.empty()) {
    b.bytes = measured->total_bytes;
    b.source = measured->name + ", " + format_bytes(measured->reserve_bytes) + " of it held outside the arena";
    const GpuSpec* card = match_gpu_by_device_name(measured->name);
    b.gpu = card ? *card : generic_gpu(measured->total_bytes);
    b.gpu.memory_bytes = measured->total_bytes;
    return b;
  }
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

// --micro-batch auto: auto-fit chooses the micro-batch, and recompute, logits chunk and offload
// where their flags leave them open, for the budget. Throws nothing_fits when no plan fits.
void run_autofit(const RunOptions& o, ResolvedRun& rr) {
  AutoFitRequest req;
  req.base = rr.run;
  req.fix_recompute = o.was_set("--recompute");
  req.fix_logits_chunk = rr.run.logits_chunk > 0;  // a --logits-chunk count; 0 is "auto"
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

}  // namespace

ResolvedRun resolve(const RunOptions& o) { return resolve(o, resolve_device(o), nullptr); }

ResolvedRun resolve(const RunOptions& o, Device device, const MeasuredDevice* measured) {
  ResolvedRun rr;
  rr.model = resolve_model(o);
  rr.run = resolve_run_config(o, rr.model, device);
  rr.budget = resolve_budget(o, device, measured);
  if (measured && o.reserve.empty()) rr.run.reserve_bytes = measured->reserve_bytes;
  resolve_host_budget(o, rr.budget);
  if (rr.run.micro_batch == kAutoMicroBatch) run_autofit(o, rr);
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

}  // namespace gpt2
