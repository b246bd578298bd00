// The kernel audit's time model (engine/plan/kernel_cost_model.h) and the per-op efficiencies the
// roofline takes from the checked-in audit (engine/plan/audited_ops.h).
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <set>

#include "engine/plan/audited_ops.h"
#include "engine/plan/kernel_cost_model.h"
#include "engine/plan/op_costs.h"
#include "engine/plan/throughput_model.h"
#include "engine/util/errors.h"

using namespace gpt2;

namespace {

Occupancy warps(int per_sm) {
  Occupancy o;
  o.warps_per_sm = per_sm;
  return o;
}

}  // namespace

TEST_CASE("kernel cost model: a streaming kernel at full occupancy runs at 90% of the bandwidth", "[cost_model]") {
  const GpuSpec& h100 = find_gpu("h100-80gb");
  const SmArchitecture& sm = catalog_card_architecture("h100-80gb");
  KernelTraffic k;
  k.unique_bytes = 1e9;
  k.load_requests = 1e9 / 512 / 2;  // 16 bytes per lane
  k.load_bytes = 1e9 / 2;
  k.load_sectors = k.store_sectors = 1e9 / 2 / 32;
  k.blocks = 100000;
  k.threads_per_block = 256;
  const KernelTimePrediction p = predict_kernel_time(k, warps(64), h100, sm);
  // 64 warps × 132 SMs × 512 B × 2 in flight = 8.6 MB, over 3.35 TB/s × 600 ns = 2.0 MB: capped at 0.9.
  CHECK(p.dram_fraction == Approx(0.9));
  CHECK(p.dram_s == Approx(1e9 / (3350e9 * 0.9)));
  CHECK(p.l2_s == Approx(1e9 / (2 * 3350e9)));
  CHECK(std::string(p.bound) == "dram");
  CHECK(p.seconds == Approx(p.dram_s + h100.eff.launch_s));
}

TEST_CASE("kernel cost model: few resident warps cannot cover the memory latency", "[cost_model]") {
  const GpuSpec& h100 = find_gpu("h100-80gb");
  const SmArchitecture& sm = catalog_card_architecture("h100-80gb");
  KernelTraffic k;
  k.unique_bytes = 1e8;
  k.load_requests = 1000;
  k.load_bytes = 512000;
  k.blocks = 100000;
  k.threads_per_block = 128;
  const KernelTimePrediction full = predict_kernel_time(k, warps(64), h100, sm);
  const KernelTimePrediction low = predict_kernel_time(k, warps(4), h100, sm);
  // 4 warps × 132 × 512 × 2 = 540,672 bytes in flight of the 2,010,000 the latency needs.
  CHECK(low.dram_fraction == Approx(4.0 * 132 * 512 * 2 / (3350e9 * 600e-9)));
  CHECK(low.seconds > 3 * full.seconds);
  // A launch too small to fill the card is limited by its own warps: 2 blocks of 4 warps.
  k.blocks = 2;
  const KernelTimePrediction tiny = predict_kernel_time(k, warps(64), h100, sm);
  CHECK(tiny.dram_fraction == Approx(8.0 * 512 * 2 / (3350e9 * 600e-9)));
}

TEST_CASE("kernel cost model: mma.sync runs at its share of the tensor peak", "[cost_model]") {
  KernelTraffic k;
  k.mma = 1e6;
  k.blocks = 1000;
  k.threads_per_block = 128;
  const GpuSpec& h100 = find_gpu("h100-80gb");
  const KernelTimePrediction h = predict_kernel_time(k, warps(16), h100, catalog_card_architecture("h100-80gb"));
  CHECK(h.tensor_s == Approx(1e6 * 4096 / (989e12 * 0.6)));
  CHECK(std::string(h.bound) == "tensor");
  const GpuSpec& rtx = find_gpu("rtx4090");
  const KernelTimePrediction r = predict_kernel_time(k, warps(16), rtx, catalog_card_architecture("rtx4090"));
  CHECK(r.tensor_s == Approx(1e6 * 4096 / (165.2e12 * 1.0)));
  // Shared-memory wavefronts: one per SM per clock; the clock from the fp32 peak (2.0 GHz on H100).
  CHECK(sm_clock_hz(h100, catalog_card_architecture("h100-80gb")) == Approx(67e12 / (132 * 128 * 2)));
  CHECK(sm_clock_hz(find_gpu("a100-40gb"), catalog_card_architecture("a100-40gb")) ==
        Approx(19.5e12 / (108 * 64 * 2)));
}

TEST_CASE("audited ops: efficiency from the predicted time less the launches", "[cost_model]") {
  AuditedOp a;
  a.op = "layernorm forward";
  a.dtype = "bf16";
  a.compulsory_bytes = 3e7;
  a.launches = 1;
  a.predicted_s["h100-80gb"] = 13e-6;
  // 30 MB in 10 µs of work = 3 TB/s of 3.35.
  CHECK(audited_efficiency(a, "h100-80gb", 3.35e12, 989e12, 3e-6) == Approx(3e7 / (10e-6 * 3.35e12)));
  CHECK(audited_efficiency(a, "rtx4090", 1e12, 1e14, 3e-6) < 0);  // no prediction for that card
  a.predicted_s["h100-80gb"] = 2e-6;                                // all launch: no figure
  CHECK(audited_efficiency(a, "h100-80gb", 3.35e12, 989e12, 3e-6) < 0);
  a.memory_bound = false;
  a.flops = 1e9;
  a.predicted_s["h100-80gb"] = 13e-6;
  CHECK(audited_efficiency(a, "h100-80gb", 3.35e12, 989e12, 3e-6) == Approx(1e9 / (10e-6 * 989e12)));
}

TEST_CASE("audited ops: the checked-in audit covers the step's memory-bound and attention ops", "[cost_model]") {
  const AuditedOps& ops = default_audited_ops();
  REQUIRE_FALSE(ops.path.empty());
  // Every audited op is an op group of the step (a misspelt name would silently fall back).
  const std::set<std::string> step_ops = {
      op::kEncoderForward, op::kLayernormForward, op::kAttentionForward, op::kResidualLayernormForward,
      op::kResidualForward, op::kClassifier, op::kGeluForward, op::kGeluBackward, op::kLayernormRecompute,
      op::kLayernormBackward, op::kAttentionBackward, op::kEncoderBackward, op::kGlobalNorm, op::kAdamW};
  std::set<std::string> audited;
  for (const AuditedOp& a : ops.ops) {
    INFO(a.op);
    CHECK((step_ops.count(a.op) == 1 || a.op == "attention decode"));
    CHECK(a.predicted_s.size() == gpu_catalog().size());
    audited.insert(a.op);
  }
  for (const std::string& o : step_ops) {
    INFO(o);
    CHECK(audited.count(o) == 1);
  }
  // Nearest width: C = 1024 takes the C = 768 case, C = 1280 the C = 1600 one.
  REQUIRE(ops.find("layernorm forward", "bf16", 1024));
  CHECK(ops.find("layernorm forward", "bf16", 1024)->C == 768);
  CHECK(ops.find("layernorm forward", "bf16", 1280)->C == 1600);
  CHECK(ops.find("layernorm forward", "fp8", 768) == nullptr);
}

TEST_CASE("audited ops: the roofline uses them on a catalog card, not on a calibrated or unknown one",
          "[cost_model]") {
  RunConfig r;
  r.micro_batch = 8;
  r.seq_len = 1024;
  r.precision = Precision::BF16;
  const MemoryPlan p = make_memory_plan(preset_config("d12"), r);
  auto audited_ops = [&](const GpuSpec& g) {
    std::set<std::string> names;
    for (const OpPrediction& o : predict_step_time(p, g).ops)
      if (o.audited) names.insert(o.cost.name);
    return names;
  };
  GpuSpec h100 = find_gpu("h100-80gb");
  const std::set<std::string> audited = audited_ops(h100);
  for (const char* name : {op::kEncoderForward, op::kLayernormForward, op::kAttentionForward, op::kClassifier,
                           op::kLayernormBackward, op::kAttentionBackward, op::kAdamW, op::kGlobalNorm}) {
    INFO(name);
    CHECK(audited.count(name) == 1);
  }
  CHECK(audited.count("matmul qkv forward") == 0);  // cuBLASLt: not audited
  CHECK(audited_ops(generic_gpu(8 * int64_t{1} << 30)).empty());
  h100.eff.calibrated = true;  // measured efficiencies win over the audit's prediction
  CHECK(audited_ops(h100).empty());
}

TEST_CASE("audited ops: a malformed report is refused naming the file", "[cost_model]") {
  const std::string path = "test_kernel_cost_model_bad.json";
  {
    std::ofstream f(path);
    f << "{\"cases\": [{\"op\": 3}]}";
  }
  CHECK_THROWS_AS(load_audited_ops(path), FileError);
  try {
    load_audited_ops(path);
  } catch (const FileError& e) {
    CHECK(std::string(e.what()).find(path) != std::string::npos);
  }
  std::remove(path.c_str());
  CHECK_THROWS_AS(load_audited_ops("no/such/kernel_audit.json"), FileError);
}
