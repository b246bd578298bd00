// Auto-fit and its throughput model.
#include <algorithm>
#include <catch2/catch.hpp>
#include <utility>

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
  // A runner-up predicted faster than the choice is within 3 % of it and leaves less than the
  // headroom (the headroom rule); none is faster than the fastest fitting plan.
  for (const auto& c : fit.runners_up) {
    CHECK(c.predicted.tokens_per_s <= fit.fastest.predicted.tokens_per_s);
    if (c.predicted.tokens_per_s > fit.best.predicted.tokens_per_s) {
      CHECK(c.predicted.tokens_per_s <= fit.best.predicted.tokens_per_s / (1 - kAutoFitSpeedTolerance));
      CHECK(11 * kGiB - c.total_bytes < fit.headroom_bytes);
    }
  }
}

// The headroom rule, checked against a brute-force grid of plans: none is faster than the plan
// auto-fit reports as the fastest; the choice is within 3 % of it; no plan within 3 % that leaves
// the headroom is faster than the choice; and when the choice leaves less than the headroom, no
// plan within 3 % leaves more.
static void check_headroom_rule(const ModelConfig& m, const AutoFitRequest& req, const AutoFitResult& fit) {
  REQUIRE(fit.found);
  const double fastest = fit.fastest.predicted.tokens_per_s, chosen = fit.best.predicted.tokens_per_s;
  const double floor_tps = fastest * (1 - kAutoFitSpeedTolerance);
  const int64_t spare = req.budget_bytes - fit.best.total_bytes;
  CHECK(fit.headroom_bytes == std::max<int64_t>(256 * kMiB, req.budget_bytes / 50));
  CHECK(chosen >= floor_tps);
  CHECK(fit.best.total_bytes <= req.budget_bytes);
  for (int B : {1, 2, 4, 8, 16, 32, 64}) {
    for (const char* pol : {"none", "gelu", "norm", "block"}) {
      for (int chunk : {256, 1024, 8192}) {
        RunConfig r = req.base;
        r.micro_batch = B;
        r.recompute = parse_recompute(pol);
        r.logits_chunk = std::min(B * 1024, chunk);
        const MemoryPlan p = make_memory_plan(m, r);
        if (p.total_bytes() > req.budget_bytes) continue;
        const double tps = predict_step_time(p, req.gpu).tokens_per_s;
        const int64_t p_spare = req.budget_bytes - p.total_bytes();
        INFO("B=" << B << " " << pol << " chunk " << r.logits_chunk << ": " << tps << " tok/s, " << p_spare
                  << " bytes spare; chose " << chosen << " tok/s, " << spare << " bytes spare");
        CHECK(tps <= fastest * (1 + 1e-9));
        if (tps < floor_tps) continue;
        if (p_spare >= fit.headroom_bytes) CHECK(tps <= chosen * (1 + 1e-9));
        if (spare < fit.headroom_bytes) CHECK(p_spare <= spare);
      }
    }
  }
}

TEST_CASE("auto-fit follows the headroom rule among the configurations that fit", "[autofit]") {
  for (const char* model : {"d12", "d24"}) {
    for (int64_t budget : {3 * kGiB, 5 * kGiB, 8 * kGiB, 12 * kGiB, 24 * kGiB}) {
      INFO(model << " in " << budget << " bytes");
      const ModelConfig m = preset_config(model);
      const AutoFitRequest req = request(budget);
      const AutoFitResult fit = auto_fit(m, req);
      if (!fit.found) continue;  // d24 in 3 and 5 GiB
      check_headroom_rule(m, req, fit);
    }
  }
}

TEST_CASE("headroom: auto-fit leaves at least max(256 MiB, 2% of the budget) when a plan within 3% does", "[autofit]") {
  // The fastest plans fill these cards to within 18 MiB (d12 on an RTX 3060 12GB: B=32, 11.98 of
  // 12.00 GiB) and 36 MiB (d36 on an RTX 4090: B=8, 23.95 of 23.99 GiB); plans with GiBs to spare
  // are predicted within 1 % of them.
  for (const auto& [model, card] : {std::pair<const char*, const char*>{"d12", "rtx3060-12gb"}, {"d36", "rtx4090"}}) {
    INFO(model << " on " << card);
    const ModelConfig m = preset_config(model);
    AutoFitRequest req = request(1);
    req.gpu = find_gpu(card);
    req.budget_bytes = req.gpu.memory_bytes;
    const AutoFitResult fit = auto_fit(m, req);
    REQUIRE(fit.found);
    const int64_t spare = req.budget_bytes - fit.best.total_bytes;
    CHECK(spare >= 256 * kMiB);
    CHECK(spare >= req.budget_bytes / 50);
    CHECK(req.budget_bytes - fit.fastest.total_bytes < 256 * kMiB);  // what made the rule act
    CHECK(fit.best.predicted.tokens_per_s >= fit.fastest.predicted.tokens_per_s * (1 - kAutoFitSpeedTolerance));
    bool says_rule = false;
    for (const auto& why : fit.reasons) says_rule |= why.rfind("headroom rule: ", 0) == 0;
    CHECK(says_rule);
    check_headroom_rule(m, req, fit);
  }
}

TEST_CASE("headroom: a plan that leaves the headroom but is more than 3% slower is not chosen", "[autofit]") {
  // d12 without recompute, logits chunk 1024: B=2 needs 3160 MiB, B=1 2854 MiB and is predicted
  // 5.3 % slower. With 64 MiB above B=2's need, only B=1 leaves 256 MiB; auto-fit keeps B=2.
  const ModelConfig m = preset_config("d12");
  AutoFitRequest req = request(3224 * kMiB);
  req.fix_recompute = true;
  req.base.recompute = parse_recompute("none");
  req.fix_logits_chunk = true;
  req.base.logits_chunk = 1024;
  const AutoFitResult fit = auto_fit(m, req);
  REQUIRE(fit.found);
  CHECK(fit.best.run.micro_batch == 2);
  CHECK(fit.best.total_bytes == fit.fastest.total_bytes);
  CHECK(fit.best.predicted.tokens_per_s == fit.fastest.predicted.tokens_per_s);
  CHECK(req.budget_bytes - fit.best.total_bytes < fit.headroom_bytes);
  // The plan with the headroom exists and is more than 3 % slower.
  AutoFitRequest roomy = req;
  roomy.budget_bytes = req.budget_bytes - fit.headroom_bytes;
  const AutoFitResult with_headroom = auto_fit(m, roomy);
  REQUIRE(with_headroom.found);
  CHECK(with_headroom.best.run.micro_batch == 1);
  CHECK(with_headroom.fastest.predicted.tokens_per_s < fit.best.predicted.tokens_per_s * (1 - kAutoFitSpeedTolerance));
}

TEST_CASE("a larger budget never gives a slower fastest plan, nor a choice more than 3% slower", "[autofit]") {
  const ModelConfig m = preset_config("d12");
  double prev = 0;
  for (int gib : {4, 6, 8, 12, 24, 80}) {
    const AutoFitResult fit = auto_fit(m, request(gib * kGiB));
    REQUIRE(fit.found);
    CHECK(fit.fastest.predicted.tokens_per_s >= prev);
    CHECK(fit.best.predicted.tokens_per_s >= fit.fastest.predicted.tokens_per_s * (1 - kAutoFitSpeedTolerance));
    prev = fit.fastest.predicted.tokens_per_s;
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

TEST_CASE("auto-fit offloads the optimizer only when no plan with it on the device fits", "[autofit][offload]") {
  auto card_request = [](const char* card, int64_t host_budget) {
    AutoFitRequest req;
    req.base.seq_len = 1024;
    req.base.total_batch_tokens = 524288;
    req.gpu = find_gpu(card);
    req.budget_bytes = req.gpu.memory_bytes;
    req.host_budget_bytes = host_budget;
    return req;
  };
  // d12 on an RTX 3060 and d36 on an RTX 4090 fit with the optimizer on the card.
  for (const auto& [model, card] : {std::pair<const char*, const char*>{"d12", "rtx3060-12gb"}, {"d36", "rtx4090"}}) {
    INFO(model << " on " << card);
    const AutoFitResult fit = auto_fit(preset_config(model), card_request(card, 64 * kGiB));
    REQUIRE(fit.found);
    CHECK(fit.best.run.offload == Offload::None);
    CHECK_FALSE(fit.offload_searched);
    CHECK(run_flags(fit.best.run).find("--offload") == std::string::npos);
  }
  // d48 on an RTX 4090 and d36 on an RTX 3060 do not: their fp32 master weights, m and v alone
  // (18.7 and 9.3 GB) leave too little of the card.
  for (const auto& [model, card] : {std::pair<const char*, const char*>{"d48", "rtx4090"}, {"d36", "rtx3060-12gb"}}) {
    INFO(model << " on " << card);
    const ModelConfig m = preset_config(model);
    const AutoFitRequest req = card_request(card, 64 * kGiB);
    const AutoFitResult fit = auto_fit(m, req);
    REQUIRE(fit.found);
    CHECK(fit.offload_searched);
    CHECK(fit.best.run.offload == Offload::Optimizer);
    CHECK(fit.plan.offloaded());
    CHECK(fit.best.total_bytes <= req.budget_bytes);
    CHECK(fit.best.host_bytes == fit.plan.host_arena_bytes);
    CHECK(fit.best.host_bytes <= req.host_budget_bytes);
    CHECK(req.budget_bytes - fit.best.total_bytes >= fit.headroom_bytes);
    CHECK(run_flags(fit.best.run).find("--offload optimizer") != std::string::npos);
    REQUIRE_FALSE(fit.reasons.empty());
    CHECK(fit.reasons.front().rfind("no plan with the optimizer on the device fits", 0) == 0);
    CHECK(fit.reasons.front().find("host budget of 64.00 GiB") != std::string::npos);
    // Every candidate of the fallback is offloaded.
    for (const auto& c : fit.runners_up) CHECK(c.run.offload == Offload::Optimizer);
    // The same search with the optimizer kept on the device finds nothing.
    AutoFitRequest on_device = req;
    on_device.fix_offload = true;
    const AutoFitResult none = auto_fit(m, on_device);
    CHECK_FALSE(none.found);
    CHECK_FALSE(none.offload_searched);
  }
}

TEST_CASE("auto-fit with offload: the host budget must hold the host arena", "[autofit][offload]") {
  AutoFitRequest req;
  req.base.seq_len = 1024;
  req.base.total_batch_tokens = 524288;
  req.gpu = find_gpu("rtx4090");
  req.budget_bytes = req.gpu.memory_bytes;
  req.host_budget_bytes = 1 * kGiB;
  const AutoFitResult fit = auto_fit(preset_config("d48"), req);
  CHECK_FALSE(fit.found);
  CHECK(fit.offload_searched);
  CHECK(fit.host_budget_exceeded);
  // The smallest plan tried is an offloaded one: it fits the card, not the host budget.
  CHECK(fit.smallest.run.offload == Offload::Optimizer);
  CHECK(fit.smallest.total_bytes <= req.budget_bytes);
  CHECK(fit.smallest.host_bytes > req.host_budget_bytes);
}

TEST_CASE("auto-fit keeps an offload the request fixes", "[autofit][offload]") {
  AutoFitRequest req = request(24 * kGiB);
  req.host_budget_bytes = 64 * kGiB;
  req.fix_offload = true;
  req.base.offload = Offload::Optimizer;
  const AutoFitResult fit = auto_fit(preset_config("d12"), req);
  REQUIRE(fit.found);
  CHECK(fit.best.run.offload == Offload::Optimizer);
  for (const auto& c : fit.runners_up) CHECK(c.run.offload == Offload::Optimizer);
  CHECK(fit.reasons.front().find("offloaded to host memory as asked") != std::string::npos);
  // Offload needs a CUDA training run: the CPU device is refused as make_memory_plan refuses it.
  AutoFitRequest cpu = req;
  cpu.base.device = Device::CPU;
  cpu.base.precision = Precision::FP32;
  CHECK_THROWS_AS(auto_fit(preset_config("d12"), cpu), ConfigError);
  // Not fixed, a CPU run never falls back to offload.
  cpu.fix_offload = false;
  cpu.base.offload = Offload::None;
  cpu.budget_bytes = 1 * kGiB;
  const AutoFitResult cpu_fit = auto_fit(preset_config("d48"), cpu);
  CHECK_FALSE(cpu_fit.found);
  CHECK_FALSE(cpu_fit.offload_searched);
}
