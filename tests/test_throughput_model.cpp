// The step's op list (engine/plan/op_costs.h) and the roofline prediction built on it.
#include <catch2/catch.hpp>
#include <cstring>

#include "engine/plan/autofit.h"
#include "engine/plan/op_costs.h"
#include "engine/plan/throughput_model.h"
#include "engine/util/units.h"
#include "engine_test_util.h"

using namespace gpt2;

namespace {

MemoryPlan plan_for(const ModelConfig& m, int B, int T, const char* recompute = "none", int chunk = 0,
                    int64_t total = 0, Precision prec = Precision::BF16) {
  RunConfig r;
  r.micro_batch = B;
  r.seq_len = T;
  r.recompute = parse_recompute(recompute);
  r.logits_chunk = chunk;
  r.total_batch_tokens = total;
  r.precision = prec;
  return make_memory_plan(m, r);
}

const OpCost* find(const std::vector<OpCost>& ops, const char* name) {
  for (const auto& o : ops)
    if (std::strcmp(o.name, name) == 0) return &o;
  return nullptr;
}

double matmul_flops(const std::vector<OpCost>& ops) {
  double f = 0;
  for (const auto& o : ops)
    if (o.cls == OpClass::MatmulLarge || o.cls == OpClass::MatmulSmall) f += o.flops;
  return f;
}

}  // namespace

TEST_CASE("op costs: the matmuls of a step are 6 FLOPs per weight per token", "[throughput]") {
  const ModelConfig m = preset_config("d12");
  const MemoryPlan p = plan_for(m, 4, 1024);
  const auto ops = step_op_costs(p);
  const double tokens = 4.0 * 1024;
  const double C = m.channels, L = m.num_layers, Vp = m.padded_vocab;
  const double weights = L * (3 * C * C + C * C + 4 * C * C + 4 * C * C) + Vp * C;
  // The matmul groups also count the GELU and bias-gradient arithmetic: within 0.5 %.
  CHECK(matmul_flops(ops) == Approx(6 * weights * tokens).epsilon(0.005));
  // Attention forward: QKᵀ and PV over the causal half, 2·T·C per token and layer.
  REQUIRE(find(ops, op::kAttentionForward));
  CHECK(find(ops, op::kAttentionForward)->flops == Approx(2 * 1024 * C * L * tokens));
  CHECK(find(ops, op::kAttentionBackward)->flops == Approx(2.5 * 2 * 1024 * C * L * tokens));
  // One call of each per-layer op per layer, one AdamW.
  CHECK(find(ops, op::kMatmulQkvForward)->calls == 12);
  CHECK(find(ops, op::kLayernormBackward)->calls == 25);
  CHECK(find(ops, op::kAdamW)->calls == 1);
  CHECK(find(ops, op::kGeluForward) == nullptr);  // nothing recomputed
}

TEST_CASE("op costs follow grad accumulation, chunks and recompute", "[throughput]") {
  const ModelConfig m = preset_config("d12");
  const auto one = step_op_costs(plan_for(m, 4, 1024, "none", 1024, 4 * 1024));
  const auto four = step_op_costs(plan_for(m, 4, 1024, "none", 1024, 4 * 4 * 1024));
  CHECK(find(four, op::kMatmulQkvForward)->calls == 4 * find(one, op::kMatmulQkvForward)->calls);
  CHECK(find(four, op::kMatmulQkvForward)->flops == Approx(4 * find(one, op::kMatmulQkvForward)->flops));
  CHECK(find(four, op::kAdamW)->calls == 1);
  CHECK(find(one, op::kMatmulLmHeadForward)->calls == 4);  // 4096 tokens in chunks of 1024
  CHECK(find(one, op::kClassifier)->calls == 4);

  const auto gelu = step_op_costs(plan_for(m, 4, 1024, "gelu"));
  CHECK(find(gelu, op::kGeluForward)->calls == 12);
  CHECK(find(gelu, op::kLayernormRecompute) == nullptr);
  const auto norm = step_op_costs(plan_for(m, 4, 1024, "norm"));
  CHECK(find(norm, op::kLayernormRecompute)->calls == 24);
  // Block recompute reruns the forward of every layer except the fcproj and its residual.
  const auto block = step_op_costs(plan_for(m, 4, 1024, "block"));
  CHECK(find(block, op::kMatmulQkvForward)->calls == 24);
  CHECK(find(block, op::kMatmulFcprojForward)->calls == 12);
  const auto budget = step_op_costs(plan_for(m, 4, 1024, "budget:5"));
  CHECK(find(budget, op::kAttentionForward)->calls == 17);
}

TEST_CASE("op costs: bytes scale with the storage dtype", "[throughput]") {
  const ModelConfig m = preset_config("d12");
  const auto bf16 = step_op_costs(plan_for(m, 4, 1024, "none", 0, 0, Precision::BF16));
  const auto fp32 = step_op_costs(plan_for(m, 4, 1024, "none", 0, 0, Precision::FP32));
  CHECK(find(fp32, op::kResidualForward)->bytes == Approx(2 * find(bf16, op::kResidualForward)->bytes));
  CHECK(find(fp32, op::kMatmulQkvForward)->flops == Approx(find(bf16, op::kMatmulQkvForward)->flops));
}

TEST_CASE("matmul calls are named by shape; the lm_head is the one without a bias", "[throughput]") {
  const int C = 768;
  CHECK(std::strcmp(matmul_op_name(C, C, 3 * C, true, false, false), op::kMatmulQkvForward) == 0);
  CHECK(std::strcmp(matmul_op_name(C, C, C, true, false, true), op::kMatmulAttprojBackward) == 0);
  CHECK(std::strcmp(matmul_op_name(C, C, 4 * C, true, true, false), op::kMatmulFcGeluForward) == 0);
  CHECK(std::strcmp(matmul_op_name(C, C, 4 * C, true, false, true), op::kMatmulFcBackward) == 0);
  CHECK(std::strcmp(matmul_op_name(C, 4 * C, C, true, true, true), op::kMatmulFcprojBackward) == 0);
  CHECK(std::strcmp(matmul_op_name(C, 4 * C, C, true, false, false), op::kMatmulFcprojForward) == 0);
  CHECK(std::strcmp(matmul_op_name(C, C, 50304, false, false, false), op::kMatmulLmHeadForward) == 0);
  CHECK(std::strcmp(matmul_op_name(C, C, 7, true, false, false), op::kOther) == 0);
}

TEST_CASE("roofline: the step is the sum of its ops, each the larger of its two roofs", "[throughput]") {
  const ModelConfig m = preset_config("d12");
  const GpuSpec gpu = find_gpu("rtx3060-12gb");
  const MemoryPlan p = plan_for(m, 8, 1024, "gelu", 0, 524288);
  const StepTimePrediction pr = predict_step_time(p, gpu);
  double sum = 0;
  for (const auto& o : pr.ops) {
    sum += o.seconds;
    const double launch = o.cost.calls * gpu.eff.launch_s;
    const double mem = o.cost.bytes / (gpu.mem_bandwidth_gbs * 1e9 * gpu.eff.memory);
    INFO(o.cost.name);
    // An op the kernel audit covers has its own efficiency (at most the whole bandwidth).
    CHECK(o.seconds >= (o.audited ? mem * gpu.eff.memory : mem) + launch - 1e-12);
    if (o.cost.cls == OpClass::MatmulLarge)
      CHECK(o.seconds >= o.cost.flops / (gpu.bf16_tflops * 1e12 * gpu.eff.matmul_large) + launch - 1e-12);
  }
  CHECK(pr.step_s == Approx(sum));
  CHECK(pr.tokens_per_s == Approx(524288 / pr.step_s));
  CHECK(pr.mfu == Approx(pr.flops_per_step / (pr.step_s * gpu.bf16_tflops * 1e12)));
  CHECK(pr.estimate);  // the card's efficiencies are not measured yet
}

TEST_CASE("roofline: auto-fit on an RTX 3060 predicts an MFU such a card can reach", "[throughput]") {
  // llm.c reaches 38-56 % MFU on A100/H100; a prediction near the peak would be a bug.
  const ModelConfig m = preset_config("d12");
  AutoFitRequest req;
  req.base.seq_len = 1024;
  req.base.total_batch_tokens = 524288;
  req.gpu = find_gpu("rtx3060-12gb");
  req.budget_bytes = req.gpu.memory_bytes;
  const AutoFitResult fit = auto_fit(m, req);
  REQUIRE(fit.found);
  INFO("predicted MFU " << fit.best.predicted.mfu << ", " << fit.best.predicted.tokens_per_s << " tok/s");
  CHECK(fit.best.predicted.mfu > 0.25);
  CHECK(fit.best.predicted.mfu < 0.65);
  CHECK(fit.best.predicted.estimate);
  CHECK(fit.reasons.front().find("MFU") != std::string::npos);
  CHECK(fit.reasons.front().find("estimate") != std::string::npos);
}

TEST_CASE("roofline: the CPU device uses the probed peak and bandwidth", "[throughput]") {
  const ModelConfig m = preset_config("d12");
  RunConfig r = testutil::cpu_run(4, 128);
  const MemoryPlan p = make_memory_plan(m, r);
  const StepTimePrediction slow = predict_step_time(p, cpu_device(8 * kGiB, 100, 10));
  const StepTimePrediction fast = predict_step_time(p, cpu_device(8 * kGiB, 200, 20));
  CHECK(slow.peak_flops == Approx(100e9));
  CHECK_FALSE(slow.estimate);
  // Twice the peak and bandwidth: everything but the fixed call costs halves.
  double launches = 0;
  for (const auto& o : slow.ops) launches += o.cost.calls * cpu_device(0, 1, 1).eff.launch_s;
  CHECK(fast.step_s - launches == Approx((slow.step_s - launches) / 2).epsilon(1e-9));
}

TEST_CASE("roofline: the CPU attention's efficiency follows the sequence length", "[throughput]") {
  CHECK(cpu_attention_length_factor(180) == Approx(0.5));
  CHECK(cpu_attention_length_factor(128) < cpu_attention_length_factor(1024));
  CHECK(cpu_attention_length_factor(1 << 20) > 0.999);
  CHECK(cpu_attention_length_factor(0) > 0);  // no division by zero for a degenerate plan
  const ModelConfig m = preset_config("d12");
  const GpuSpec cpu = cpu_device(8 * kGiB, 100, 10);
  // Seconds per attention FLOP (less the fixed call cost) at T = 128 and 1024: the ratio of the
  // length factors, the device's efficiency figure being the long-sequence one.
  auto seconds_per_flop = [&](int T, const char* name) {
    const StepTimePrediction p = predict_step_time(make_memory_plan(m, testutil::cpu_run(1, T)), cpu);
    for (const auto& o : p.ops)
      if (std::strcmp(o.cost.name, name) == 0) {
        CHECK(o.compute_bound);
        return (o.seconds - o.cost.calls * cpu.eff.launch_s) / o.cost.flops;
      }
    FAIL("no op " << name);
    return 0.0;
  };
  for (const char* name : {op::kAttentionForward, op::kAttentionBackward}) {
    INFO(name);
    CHECK(seconds_per_flop(1024, name) == Approx(1.0 / (100e9 * cpu.eff.attention * cpu_attention_length_factor(1024))));
    CHECK(seconds_per_flop(128, name) / seconds_per_flop(1024, name) ==
          Approx(cpu_attention_length_factor(1024) / cpu_attention_length_factor(128)));
  }
}

namespace {

// A plan with the optimizer offloaded to host memory.
MemoryPlan offloaded_plan(const ModelConfig& m, int B, const char* recompute, int64_t total = 0, int world = 1,
                          Precision prec = Precision::BF16) {
  RunConfig r;
  r.micro_batch = B;
  r.seq_len = 1024;
  r.recompute = parse_recompute(recompute);
  r.total_batch_tokens = total;
  r.precision = prec;
  r.world_size = world;
  r.offload = Offload::Optimizer;
  return make_memory_plan(m, r);
}

const OpPrediction* find(const StepTimePrediction& p, const char* name) {
  for (const auto& o : p.ops)
    if (std::strcmp(o.cost.name, name) == 0) return &o;
  return nullptr;
}

}  // namespace

TEST_CASE("offload: the optimizer's ops move to the host link and the host", "[throughput][offload]") {
  const ModelConfig m = preset_config("d48");
  GpuSpec gpu = find_gpu("rtx4090");
  gpu.host_memory_gbs = 16;
  const MemoryPlan p = offloaded_plan(m, 4, "block", 4 * 1024 * 8);
  const StepTimePrediction pr = predict_step_time(p, gpu);
  CHECK(find(pr, op::kAdamW) == nullptr);
  const OpPrediction* down = find(pr, op::kOffloadGradientsToHost);
  const OpPrediction* adamw = find(pr, op::kOffloadHostAdamW);
  const OpPrediction* up = find(pr, op::kOffloadParametersToDevice);
  REQUIRE(down);
  REQUIRE(adamw);
  REQUIRE(up);
  const double shard = static_cast<double>(p.shard_elems);
  // Once per step although the step has 8 micro-batches: one copy per layer slice (12 per layer)
  // and one per tensor outside the layers, one AdamW, one upload.
  CHECK(down->cost.calls == 12 * 48 + 4);
  CHECK(adamw->cost.calls == 1);
  CHECK(up->cost.calls == 1);
  CHECK(down->cost.resource == OpResource::HostLink);
  CHECK(up->cost.resource == OpResource::HostLink);
  CHECK(adamw->cost.resource == OpResource::HostMemory);
  // The copies are the shard in bf16 at the card's PCIe 4.0 x16 figure, no launch costs.
  CHECK(gpu.host_link_gbs == 25);
  CHECK(up->cost.bytes == Approx(2 * shard));
  CHECK(up->seconds == Approx(2 * shard / 25e9).epsilon(1e-12));
  CHECK(up->hidden_s == 0);
  CHECK(down->cost.bytes == Approx(2 * shard));
  CHECK(down->seconds + down->hidden_s == Approx(2 * shard / 25e9).epsilon(1e-12));
  CHECK(down->hidden_s > 0);
  // Host AdamW: master, m, v read and written, the bf16 gradient read and the bf16 parameter written.
  CHECK(adamw->cost.bytes == Approx(shard * (3 * 8 + 2 + 2)));
  CHECK(adamw->seconds == Approx(adamw->cost.bytes / 16e9).epsilon(1e-12));
  for (const OpPrediction* o : {down, adamw, up}) CHECK(o->note.find("offloaded optimizer") != std::string::npos);
  CHECK(down->note.find("hidden behind the backward") != std::string::npos);
  // The step is still the sum of what is on its critical path.
  double sum = 0;
  for (const auto& o : pr.ops) sum += o.seconds;
  CHECK(pr.step_s == Approx(sum));

  // Not measured: the default host bandwidth, said in the note; fp32 uploads its master copy.
  gpu.host_memory_gbs = 0;
  const MemoryPlan fp32 = offloaded_plan(m, 1, "block", 0, 1, Precision::FP32);
  const OpPrediction* fp32_adamw = find(predict_step_time(fp32, gpu), op::kOffloadHostAdamW);
  REQUIRE(fp32_adamw);
  CHECK(fp32_adamw->cost.bytes == Approx(static_cast<double>(fp32.shard_elems) * (3 * 8 + 4)));
  CHECK(fp32_adamw->seconds == Approx(fp32_adamw->cost.bytes / (kDefaultHostMemoryGbs * 1e9)).epsilon(1e-12));
  CHECK(fp32_adamw->note.find("assumed") != std::string::npos);
}

TEST_CASE("offload: the backward hides the gradients' copy, more of it with more layers", "[throughput][offload]") {
  const GpuSpec gpu = find_gpu("rtx4090");
  auto hidden_share = [&](int layers, int B, int world = 1) {
    ModelConfig m = preset_config("d48");
    m.num_layers = layers;
    const OpPrediction* down =
        find(predict_step_time(offloaded_plan(m, B, "none", 0, world), gpu), op::kOffloadGradientsToHost);
    REQUIRE(down);
    return down->hidden_s / (down->seconds + down->hidden_s);
  };
  const double two = hidden_share(2, 1), eight = hidden_share(8, 1), forty_eight = hidden_share(48, 1);
  INFO("hidden: " << two << " with 2 layers, " << eight << " with 8, " << forty_eight << " with 48");
  CHECK(two < eight);
  CHECK(eight < forty_eight);
  // A longer backward (a larger micro-batch) hides more too.
  CHECK(hidden_share(8, 1) <= hidden_share(8, 8));
  // One layer: nothing runs beside its copy.
  CHECK(hidden_share(1, 8) == 0);
  // With more ranks the copy follows the gradient exchange: one copy of the shard, not hidden.
  CHECK(hidden_share(48, 1, 2) == 0);
  ModelConfig m = preset_config("d48");
  const OpPrediction* down =
      find(predict_step_time(offloaded_plan(m, 1, "none", 0, 2), gpu), op::kOffloadGradientsToHost);
  REQUIRE(down);
  CHECK(down->cost.calls == 1);
  CHECK(down->note.find("not hidden") != std::string::npos);
}

TEST_CASE("offload: the same plan without offload keeps the device AdamW and no host ops", "[throughput][offload]") {
  const ModelConfig m = preset_config("d12");
  const StepTimePrediction pr = predict_step_time(plan_for(m, 4, 1024), find_gpu("rtx4090"));
  REQUIRE(find(pr, op::kAdamW));
  for (const auto& o : pr.ops) {
    INFO(o.cost.name);
    CHECK(o.cost.resource == OpResource::Device);
    CHECK(o.hidden_s == 0);
    CHECK(o.note.empty());
  }
}
