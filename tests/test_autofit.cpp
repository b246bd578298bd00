// Auto-fit and its throughput model.
#include <catch2/catch.hpp>

#include "engine/plan/autofit.h"
#include "engine/util/errors.h"
#include "engine/util/units.h"

using namespace gpt2;

namespace {
AutoFitRequest request(int64_t budget, int T = 1024) {
  AutoFitRequest req;
  req.base.seq_len = T;
  req.base.total_batch_tokens = 524288;
  req.budget_bytes = budget;
  req.gpu = generic_gpu(budget);
  return req;
}
}  // namespace

TEST_CASE("seed case: --micro-batch auto --gpu-mem 11GiB fits 524,288 tokens per step", "[autofit]") {
  const ModelConfig m = preset_config("d12");
  const AutoFitResult fit = auto_fit(m, request(11 * kGiB));
  REQUIRE(fit.found);
  const MemoryPlan& p = fit.plan;
  CHECK(p.total_bytes() <= 11 * kGiB);
  CHECK(static_cast<int64_t>(p.run.micro_batch) * p.run.seq_len * p.grad_accum * p.run.world_size == 524288);
  CHECK(fit.fitting > 0);
  CHECK(fit.considered >= fit.fitting);
  CHECK_FALSE(fit.reasons.empty());
  // Every runner-up is predicted no faster than the choice.
  for (const auto& c : fit.runners_up) CHECK(c.predicted.tokens_per_s <= fit.best.predicted.tokens_per_s);
}

TEST_CASE("auto-fit picks the best predicted configuration among those that fit", "[autofit]") {
  const ModelConfig m = preset_config("d24");
  const AutoFitRequest req = request(24 * kGiB);
  const AutoFitResult fit = auto_fit(m, req);
  REQUIRE(fit.found);
  // Brute-force check over a coarser grid: nothing that fits is predicted faster.
  for (int B : {1, 2, 4, 8, 16, 32, 64}) {
    for (const char* pol : {"none", "gelu", "norm", "block"}) {
      RunConfig r = req.base;
      r.micro_batch = B;
      r.recompute = parse_recompute(pol);
      r.logits_chunk = std::min(B * 1024, 8192);
      const MemoryPlan p = make_memory_plan(m, r);
      if (p.total_bytes() > req.budget_bytes) continue;
      INFO("B=" << B << " " << pol);
      CHECK(predict_step_time(p, req.gpu).tokens_per_s <= fit.best.predicted.tokens_per_s * (1 + 1e-9));
    }
  }
}

TEST_CASE("a larger budget never gives a slower choice", "[autofit]") {
  const ModelConfig m = preset_config("d12");
  double prev = 0;
  for (int gib : {4, 6, 8, 12, 24, 80}) {
    const AutoFitResult fit = auto_fit(m, request(gib * kGiB));
    REQUIRE(fit.found);
    CHECK(fit.best.predicted.tokens_per_s >= prev);
    prev = fit.best.predicted.tokens_per_s;
  }
}

TEST_CASE("throughput model: bigger micro-batches are faster, recompute costs time", "[autofit]") {
  const ModelConfig m = preset_config("d12");
  const GpuSpec gpu = find_gpu("a100-80gb");
  auto tps = [&](int B, const char* pol, int chunk) {
    RunConfig r;
    r.micro_batch = B;
    r.seq_len = 1024;
    r.total_batch_tokens = 524288;
    r.recompute = parse_recompute(pol);
    r.logits_chunk = chunk;
    return predict_step_time(make_memory_plan(m, r), gpu).tokens_per_s;
  };
  CHECK(tps(2, "none", 2048) < tps(4, "none", 2048));
  CHECK(tps(4, "none", 2048) < tps(16, "none", 2048));
  CHECK(tps(8, "gelu", 2048) < tps(8, "none", 2048));
  CHECK(tps(8, "norm", 2048) < tps(8, "gelu", 2048));
  CHECK(tps(8, "block", 2048) < tps(8, "norm", 2048));
  CHECK(tps(8, "none", 512) < tps(8, "none", 4096));
  // Block recompute reruns the forward of every layer: about a third more body FLOPs.
  CHECK(tps(8, "block", 2048) > 0.6 * tps(8, "none", 2048));
}

TEST_CASE("auto-fit reports when nothing fits, and respects fixed choices", "[autofit]") {
  const ModelConfig m = preset_config("d48");
  const AutoFitResult none = auto_fit(m, request(2 * kGiB));
  CHECK_FALSE(none.found);
  CHECK(none.smallest.total_bytes > 2 * kGiB);
  CHECK(none.smallest.run.micro_batch == 1);

  AutoFitRequest req = request(40 * kGiB);
  req.fix_recompute = true;
  req.base.recompute = parse_recompute("gelu");
  const AutoFitResult fixed = auto_fit(preset_config("d12"), req);
  REQUIRE(fixed.found);
  CHECK(fixed.best.run.recompute.kind == Recompute::Gelu);

  AutoFitRequest bad = request(12 * kGiB);
  bad.base.total_batch_tokens = 1000;
  CHECK_THROWS_AS(auto_fit(preset_config("d12"), bad), ConfigError);
}
