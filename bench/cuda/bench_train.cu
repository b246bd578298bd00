// End-to-end GPU training throughput: the seed case, GPT-2 124M (d12) at T=1024 in bf16.
//   1. unconstrained: B=64, no recompute (total batch 524,288 tokens → grad_accum 8);
//   2. auto-fit at an 11 GiB budget (--micro-batch auto --gpu-mem 11GiB), same total batch.
// For each it reports ms/step, tok/s, MFU against the card's bf16 peak, the planned total, and
// the measured peak device memory (total - min free while training). Steps are timed after
// one warm-up step. Usage: bench_train [steps=5] [--json FILE]
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "engine/backend/cuda_backend_factory.h"
#include "engine/model/model.h"
#include "engine/plan/autofit.h"
#include "engine/plan/gpu_catalog.h"
#include "engine/train/trainer.h"
#include "engine/util/units.h"
#include "tests/cuda/gpu_test_util.cuh"

using namespace gpt2;

namespace {

struct Result {
  std::string name;
  RunConfig run;
  int grad_accum = 0;
  int64_t planned = 0, peak = 0;
  double ms = 0, tok_s = 0, mfu = 0;
};

Result measure(const std::string& name, RunConfig run, int steps) {
  const ModelConfig m = preset_config("d12");
  std::unique_ptr<CudaBackendBase> be = make_cuda_backend(0);
  run.reserve_bytes = be->memory_report().reserve_bytes;
  const MemoryPlan plan = make_memory_plan(m, run);
  Model model(plan, *be);
  model.init_gpt2(1);
  SyntheticSource data(m.vocab_size, run.micro_batch, run.seq_len, 1);
  TrainOptions t;
  t.steps = steps + 1;
  t.lr.kind = LrScheduleKind::Constant;
  t.lr.lr = 6e-4;
  Trainer trainer(model, t, data, nullptr);
  size_t free_b = 0, total_b = 0, min_free = SIZE_MAX;
  trainer.train_step();  // warm-up: cuBLASLt heuristics, first touch
  double total_ms = 0;
  for (int i = 0; i < steps; ++i) {
    total_ms += trainer.train_step().ms;
    cudaMemGetInfo(&free_b, &total_b);
    min_free = std::min(min_free, free_b);
  }
  Result r;
  r.name = name;
  r.run = plan.run;
  r.grad_accum = plan.grad_accum;
  r.planned = plan.total_bytes();
  r.peak = static_cast<int64_t>(total_b - min_free);
  r.ms = total_ms / steps;
  r.tok_s = static_cast<double>(plan.run.total_batch_tokens) / (r.ms / 1e3);
  const double peak_flops = be->peak_bf16_tflops() * 1e12;
  r.mfu = peak_flops > 0 ? training_flops_per_token(m, run.seq_len) * r.tok_s / peak_flops : 0;
  std::printf(
      "%-14s B=%-3d accum=%-2d recompute=%-9s chunk=%-5d %9.1f ms/step %10.0f tok/s  MFU %5.1f%%  planned %s  "
      "measured peak %s\n",
      name.c_str(), plan.run.micro_batch, plan.grad_accum, to_string(plan.run.recompute).c_str(), plan.run.logits_chunk,
      r.ms, r.tok_s, 100 * r.mfu, format_bytes(r.planned).c_str(), format_bytes(r.peak).c_str());
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  gputest::require_device_or_skip("bench_train");
  int steps = 5;
  std::string json;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0 && i + 1 < argc)
      json = argv[++i];
    else
      steps = std::atoi(argv[i]);
  }
  RunConfig base;
  base.device = Device::CUDA;
  base.precision = Precision::BF16;
  base.seq_len = 1024;
  base.total_batch_tokens = 524288;

  RunConfig unconstrained = base;
  unconstrained.micro_batch = 64;
  unconstrained.logits_chunk = 8192;
  const Result a = measure("unconstrained", unconstrained, steps);

  AutoFitRequest req;
  req.base = base;
  req.base.reserve_bytes = a.peak - make_memory_plan(preset_config("d12"), a.run).arena_bytes;  // measured reserve
  req.budget_bytes = 11 * kGiB;
  req.gpu = generic_gpu(req.budget_bytes);
  const AutoFitResult fit = auto_fit(preset_config("d12"), req);
  if (!fit.found) {
    std::printf("auto-fit found nothing within 11 GiB\n");
    return 1;
  }
  const Result b = measure("auto 11GiB", fit.best.run, steps);
  std::printf(
      "auto-fit at 11 GiB reaches %.1f%% of the unconstrained tok/s (target >= 75%%); its measured peak is "
      "%s of the 11 GiB budget\n",
      100.0 * b.tok_s / a.tok_s, format_bytes(b.peak).c_str());
  if (!json.empty()) {
    std::ofstream f(json);
    for (const Result* r : {&a, &b})
      f << "{\"name\":\"" << r->name << "\",\"micro_batch\":" << r->run.micro_batch
        << ",\"grad_accum\":" << r->grad_accum << ",\"recompute\":\"" << to_string(r->run.recompute)
        << "\",\"ms\":" << r->ms << ",\"tok_per_s\":" << r->tok_s << ",\"mfu\":" << r->mfu
        << ",\"planned_bytes\":" << r->planned << ",\"peak_bytes\":" << r->peak << "}\n";
  }
  return 0;
}
