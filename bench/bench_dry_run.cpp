// How long a dry run takes: the memory plan alone and auto-fit, for every preset.
// Usage: bench_dry_run [repeats]
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "engine/plan/autofit.h"
#include "engine/util/units.h"

int main(int argc, char** argv) {
  using namespace gpt2;
  const int repeats = argc > 1 ? std::atoi(argv[1]) : 20;
  std::printf("%-5s %14s %14s %10s\n", "model", "plan (us)", "auto-fit (ms)", "plans");
  for (const auto& name : preset_names()) {
    const ModelConfig m = preset_config(name);
    RunConfig r;
    r.micro_batch = 8;
    r.seq_len = 1024;
    auto t0 = std::chrono::steady_clock::now();
    int64_t sink = 0;
    for (int i = 0; i < repeats; ++i) sink += make_memory_plan(m, r).total_bytes();
    auto t1 = std::chrono::steady_clock::now();
    AutoFitRequest req;
    req.base = r;
    req.base.total_batch_tokens = 524288;
    req.budget_bytes = 24 * kGiB;
    req.gpu = find_gpu("rtx4090");
    int considered = 0;
    for (int i = 0; i < repeats; ++i) considered = auto_fit(m, req).considered;
    auto t2 = std::chrono::steady_clock::now();
    const double plan_us = std::chrono::duration<double, std::micro>(t1 - t0).count() / repeats;
    const double fit_ms = std::chrono::duration<double, std::milli>(t2 - t1).count() / repeats;
    std::printf("%-5s %14.1f %14.2f %10d%s\n", name.c_str(), plan_us, fit_ms, considered, sink ? "" : " ");
  }
  return 0;
}
