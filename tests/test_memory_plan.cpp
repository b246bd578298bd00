// The memory plan: parameter counts, totals against an independent hand formula, layout
// invariants (aligned, non-overlapping, categories sum to the total), linearity in B, the
// ordering of the recompute policies, and the seed's 12 GB case.
#include <algorithm>
#include <catch2/catch.hpp>

#include "engine/plan/memory_plan.h"
#include "engine/plan/model_config.h"
#include "engine/util/errors.h"

using namespace gpt2;

namespace {

int64_t align_to_256(int64_t bytes) { return (bytes + 255) / 256 * 256; }

RunConfig make_run(int B, int T, Precision p = Precision::BF16, Recompute::Kind rk = Recompute::None) {
  RunConfig r;
  r.micro_batch = B;
  r.seq_len = T;
  r.precision = p;
  r.recompute.kind = rk;
  return r;
}

// Independent hand formula for plans where every buffer is already a multiple of 256 bytes
// (true for the configs below; the test checks that assumption separately).
int64_t hand_total(const ModelConfig& m, int64_t B, int64_t T, bool bf16, const std::string& policy, int64_t chunk,
                   int64_t world, bool zero1, int64_t reserve) {
  const int64_t L = m.num_layers, C = m.channels, NH = m.num_heads, Vp = m.padded_vocab;
  const int64_t P = num_parameters(m);
  const int64_t d = bf16 ? 2 : 4;
  const int64_t BT = B * T;
  int64_t total = 2 * P * d;  // params + grads
  const int64_t shard = zero1 ? P / world : P;
  total += shard * 4 * 2;        // m, v
  if (bf16) total += shard * 4;  // master weights
  // Per stored layer, per token: ln1, qkv, atty, x2, ln2, fch, g in the run dtype; four LN
  // statistics and NH logsumexps in fp32.
  int64_t per_layer_act = (C + 3 * C + C + C + C + 4 * C + 4 * C) * d + 4 * 4 + NH * 4;
  int64_t stored_layers = L;
  int64_t recompute_scratch = 0;
  if (policy == "gelu") {
    per_layer_act -= 4 * C * d;
    recompute_scratch = 4 * C * d;
  } else if (policy == "norm") {
    per_layer_act -= 4 * C * d + 2 * C * d;
    recompute_scratch = 4 * C * d + C * d;
  } else if (policy == "block") {
    stored_layers = 0;
    recompute_scratch = (C + 3 * C + C + C + C + 4 * C + 4 * C) * d + 4 * 4 + NH * 4;
  }
  total += BT * (4 + 4 + (L + 1) * C * d + stored_layers * per_layer_act + C * d + 8);
  total += BT * ((C + C + 3 * C + 4 * C) * d + NH * 4 + recompute_scratch);  // backward scratch
  total += chunk * Vp * d + BT * 4;                                          // logits + losses
  total += (32 << 20) + 1024 * 4;                                            // workspaces
  // CUDA-only kernel scratch: encoder backward token buckets, layernorm backward partials,
  // the global norm's result (one float, rounded up to the 256-byte alignment), bias staging.
  total += 4 * BT * 4 + std::min<int64_t>(BT, 1024) * 2 * C * 4 + 256 + 4 * C * 4;
  // cudaMalloc commits 2 MiB pages: the arena rounds up to whole pages.
  const int64_t page = 2 << 20;
  total = (total + page - 1) / page * page;
  total += reserve;
  return total;
}

}  // namespace

TEST_CASE("preset parameter counts match GPT-2 with Vp=50304", "[config]") {
  CHECK(num_parameters(preset_config("d12")) == 124475904);
  CHECK(num_parameters(preset_config("d24")) == 354871296);
  CHECK(num_parameters(preset_config("d36")) == 774090240);
  CHECK(num_parameters(preset_config("d48")) == 1557686400);
  CHECK(preset_config("gpt2-xl").num_layers == 48);
  CHECK(preset_config("d36").num_heads == 20);
  CHECK(preset_config("d12").padded_vocab == 50304);
  CHECK_THROWS_AS(preset_config("d13"), ConfigError);
}

TEST_CASE("plan totals equal an independent hand formula", "[plan]") {
  struct Case {
    const char* model;
    int B, T;
    bool bf16;
    const char* policy;
    int chunk, world, zero;
  };
  const Case cases[] = {
      {"d12", 4, 1024, true, "none", 2048, 1, 0},
      {"d24", 8, 512, false, "block", 1024, 1, 0},
      {"d36", 2, 1024, true, "gelu", 512, 4, 1},
      {"d12", 16, 256, true, "norm", 4096, 2, 1},
  };
  for (const auto& c : cases) {
    INFO(c.model << " B=" << c.B << " T=" << c.T << " " << c.policy);
    const ModelConfig m = preset_config(c.model);
    RunConfig r = make_run(c.B, c.T, c.bf16 ? Precision::BF16 : Precision::FP32);
    r.recompute = parse_recompute(c.policy);
    r.logits_chunk = c.chunk;
    r.world_size = c.world;
    r.zero_stage = c.zero;
    const MemoryPlan plan = make_memory_plan(m, r);
    for (const auto& b : plan.buffers) {
      INFO(b.name);
      if (b.name == "workspace.norm_result") continue;    // counted as 256 in the formula
      REQUIRE(b.bytes == b.numel * dtype_size(b.dtype));  // the hand formula's assumption
    }
    const int64_t reserve = kDefaultCudaReserveBytes + (c.world > 1 ? kDefaultNcclReserveBytes : 0);
    CHECK(plan.total_bytes() == hand_total(m, c.B, c.T, c.bf16, c.policy, c.chunk, c.world, c.zero == 1, reserve));
  }
}

TEST_CASE("categories sum to the total; buffers are aligned and never overlap", "[plan]") {
  for (const char* name : {"d12", "d48"}) {
    for (const char* policy : {"none", "gelu", "norm", "block", "budget:5"}) {
      ModelConfig m = preset_config(name);
      RunConfig r = make_run(3, 1000);  // odd sizes on purpose
      r.recompute = parse_recompute(policy);
      r.logits_chunk = 777;
      r.world_size = 3;
      r.zero_stage = 1;
      const MemoryPlan plan = make_memory_plan(m, r);
      INFO(name << " " << policy);
      int64_t sum = 0;
      for (int c = 0; c < kNumCategories; ++c) sum += plan.category_bytes(static_cast<Category>(c));
      CHECK(sum == plan.total_bytes());
      int64_t end = 0;
      for (const auto& b : plan.buffers) {
        INFO(b.name);
        CHECK(b.offset % kArenaAlignment == 0);
        CHECK(b.bytes % kArenaAlignment == 0);
        CHECK(b.offset >= end);
        CHECK(b.bytes >= b.numel * dtype_size(b.dtype));
        end = b.offset + b.bytes;
      }
      CHECK(end == plan.arena_bytes);
      CHECK(plan.flat_param_elems % (kParamAlignElems * 3) == 0);
      CHECK(plan.shard_elems * 3 == plan.flat_param_elems);
      for (int i = 0; i < kNumParamTensors; ++i) CHECK(plan.param_offsets[i] % kParamAlignElems == 0);
    }
  }
}

TEST_CASE("parameter tensors sit at their flat offsets inside the params region", "[plan]") {
  const MemoryPlan plan = make_memory_plan(preset_config("d48"), make_run(1, 64));
  const auto specs = param_tensor_specs(plan.model);
  const int64_t base = plan.find("params.wte").offset;
  for (int i = 0; i < kNumParamTensors; ++i) {
    const Buffer& b = plan.find(std::string("params.") + specs[i].name);
    CHECK(b.offset == base + plan.param_offsets[i] * 2);
    const Buffer& g = plan.find(std::string("grads.") + specs[i].name);
    CHECK(g.offset - plan.find("grads.wte").offset == plan.param_offsets[i] * 2);
  }
  const Buffer& last = plan.find("params.lnfb");
  CHECK(last.offset + last.bytes == base + plan.flat_param_elems * 2);
}

TEST_CASE("activation bytes are linear in B", "[plan]") {
  const ModelConfig m = preset_config("d12");
  for (const char* policy : {"none", "norm", "block"}) {
    auto act = [&](int B) {
      RunConfig r = make_run(B, 1024);
      r.recompute = parse_recompute(policy);
      return make_memory_plan(m, r).category_bytes(Category::Activations);
    };
    const int64_t a1 = act(1), a2 = act(2), a3 = act(3), a7 = act(7);
    const int64_t slope = a2 - a1;
    INFO(policy);
    CHECK(slope > 0);
    CHECK(a3 - a2 == slope);
    CHECK(a7 - a3 == 4 * slope);
    CHECK(a1 - slope == 0);  // no activation is independent of B
  }
}

TEST_CASE("recompute policies strictly reduce activation bytes: none > gelu > norm > block", "[plan]") {
  for (const char* name : {"d12", "d24", "d48"}) {
    const ModelConfig m = preset_config(name);
    int64_t prev_act = INT64_MAX, prev_total = INT64_MAX;
    for (const char* policy : {"none", "gelu", "norm", "block"}) {
      RunConfig r = make_run(8, 1024);
      r.recompute = parse_recompute(policy);
      const MemoryPlan p = make_memory_plan(m, r);
      INFO(name << " " << policy);
      CHECK(p.category_bytes(Category::Activations) < prev_act);
      CHECK(p.total_bytes() < prev_total);
      prev_act = p.category_bytes(Category::Activations);
      prev_total = p.total_bytes();
    }
    // budget:k sits between none (k=0) and block (k=L), decreasing in k.
    int64_t prev = INT64_MAX;
    for (int k = 0; k <= m.num_layers; k += 4) {
      RunConfig r = make_run(8, 1024);
      r.recompute = {Recompute::Budget, k};
      const int64_t act = make_memory_plan(m, r).category_bytes(Category::Activations);
      CHECK(act < prev);
      prev = act;
    }
  }
}

TEST_CASE("the seed's case: d12 B=64 T=1024 bf16 without recompute does not fit 12 GiB", "[plan]") {
  const MemoryPlan plan = make_memory_plan(preset_config("d12"), make_run(64, 1024));
  CHECK(plan.total_bytes() > 12ll * 1024 * 1024 * 1024);
  // and the logits never take B·T·Vp: only one chunk.
  CHECK(plan.category_bytes(Category::Logits) < 64ll * 1024 * 50304 * 2 / 16);
}

TEST_CASE("gradient accumulation follows the total batch", "[plan]") {
  RunConfig r = make_run(16, 1024);
  r.total_batch_tokens = 524288;
  r.world_size = 2;
  CHECK(make_memory_plan(preset_config("d12"), r).grad_accum == 16);
  r.total_batch_tokens = 0;
  CHECK(make_memory_plan(preset_config("d12"), r).grad_accum == 1);
}

TEST_CASE("nonsense configs name the flag", "[plan][errors]") {
  auto flag_of = [](const ModelConfig& m, const RunConfig& r) -> std::string {
    try {
      make_memory_plan(m, r);
    } catch (const ConfigError& e) {
      return e.flag();
    }
    return "(no error)";
  };
  ModelConfig bad_heads = preset_config("d12");
  bad_heads.num_heads = 7;
  CHECK(flag_of(bad_heads, make_run(4, 64)) == "--heads");
  CHECK(flag_of(preset_config("d12"), make_run(4, 2048)) == "--seq-len");
  RunConfig r = make_run(4, 1024);
  r.total_batch_tokens = 5000;
  CHECK(flag_of(preset_config("d12"), r) == "--total-batch-tokens");
  r = make_run(0, 1024);
  CHECK(flag_of(preset_config("d12"), r) == "--micro-batch");
  r = make_run(4, 1024);
  r.zero_stage = 2;
  CHECK(flag_of(preset_config("d12"), r) == "--zero");
  r = make_run(4, 1024);
  r.recompute = {Recompute::Budget, 13};
  CHECK(flag_of(preset_config("d12"), r) == "--recompute");
  r = make_run(4, 1024);
  r.device = Device::CPU;  // bf16 on the CPU backend
  CHECK(flag_of(preset_config("d12"), r) == "--precision");
  CHECK_THROWS_AS(parse_recompute("sometimes"), ConfigError);
  CHECK_THROWS_AS(parse_recompute("budget:x"), ConfigError);
  CHECK(parse_recompute("budget(3)").budget_layers == 3);
  CHECK(to_string(parse_recompute("budget:12")) == "budget:12");
}

TEST_CASE("the plan hash changes with the layout and not otherwise", "[plan]") {
  const ModelConfig m = preset_config("d12");
  const uint64_t h1 = make_memory_plan(m, make_run(4, 1024)).hash();
  CHECK(h1 == make_memory_plan(m, make_run(4, 1024)).hash());
  CHECK(h1 != make_memory_plan(m, make_run(8, 1024)).hash());
  CHECK(h1 != make_memory_plan(m, make_run(4, 1024, Precision::BF16, Recompute::Gelu)).hash());
}

TEST_CASE("optimizer offload moves master weights, m and v to the host arena, byte for byte", "[plan][offload]") {
  const ModelConfig m = preset_config("d12");
  for (Precision p : {Precision::BF16, Precision::FP32}) {
    RunConfig r = make_run(4, 1024, p);
    const MemoryPlan dev = make_memory_plan(m, r);
    r.offload = Offload::Optimizer;
    const MemoryPlan off = make_memory_plan(m, r);
    CAPTURE(to_string(p));
    CHECK(dev.host_buffers.empty());
    CHECK(dev.host_arena_bytes == 0);
    CHECK(off.offloaded());
    // The device arena without its page tail shrinks by exactly the optimizer's device bytes.
    auto without_tail = [](const MemoryPlan& plan) {
      const Buffer* tail = plan.find_if("workspace.page_tail");
      return plan.arena_bytes - (tail ? tail->bytes : 0);
    };
    const int64_t moved = dev.category_bytes(Category::MasterWeights) + dev.category_bytes(Category::AdamM) +
                          dev.category_bytes(Category::AdamV);
    CHECK(moved == (p == Precision::BF16 ? 3 : 2) * align_to_256(dev.shard_elems * 4));
    CHECK(without_tail(dev) - without_tail(off) == moved);
    CHECK(off.find_if("adam_m") == nullptr);
    CHECK(off.find_if("master_weights") == nullptr);
    CHECK(off.category_bytes(Category::AdamV) == 0);
    // The host arena: fp32 master copy (for fp32 runs too), m, v, the gradients in the run dtype and,
    // for bf16, the rounded parameters on their way back; aligned and back to back.
    const int64_t f32 = align_to_256(off.shard_elems * 4), act = align_to_256(off.shard_elems * dtype_size(
                                                                  p == Precision::BF16 ? DType::BF16 : DType::FP32));
    CHECK(off.host_arena_bytes == 3 * f32 + act + (p == Precision::BF16 ? act : 0));
    int64_t cursor = 0;
    for (const Buffer& b : off.host_buffers) {
      CHECK(b.offset == cursor);
      cursor += b.bytes;
    }
    CHECK(cursor == off.host_arena_bytes);
    CHECK(off.find_host("offload.grads").dtype == (p == Precision::BF16 ? DType::BF16 : DType::FP32));
    CHECK((off.find_host_if("offload.params") != nullptr) == (p == Precision::BF16));
    CHECK(off.hash() != dev.hash());
  }
}

TEST_CASE("optimizer offload is refused where it cannot apply, naming the flag", "[plan][offload][errors]") {
  const ModelConfig m = preset_config("d12");
  auto flag_of = [&](RunConfig r) {
    try {
      make_memory_plan(m, r);
    } catch (const ConfigError& e) {
      return e.flag();
    }
    return std::string("(accepted)");
  };
  RunConfig r = make_run(4, 1024, Precision::FP32);
  r.offload = Offload::Optimizer;
  r.device = Device::CPU;
  CHECK(flag_of(r) == "--offload");
  r.device = Device::CUDA;
  r.training = false;
  CHECK(flag_of(r) == "--offload");
  r = make_run(4, 1024, Precision::BF16);
  r.offload = Offload::Optimizer;
  r.master_weights = 0;
  CHECK(flag_of(r) == "--master-weights");
  CHECK(parse_offload("optimizer") == Offload::Optimizer);
  CHECK(parse_offload("none") == Offload::None);
  CHECK_THROWS_AS(parse_offload("gpu"), ConfigError);
}
