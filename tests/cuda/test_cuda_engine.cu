// The CUDA engine end to end on a small config: one full training step (forward, backward,
// AdamW) matches the CPU backend for every recompute policy, fp32 recompute policies give
// bitwise-identical losses, two runs with one seed are bitwise identical, no allocation happens
// after start-up, and the planned arena equals the measured drop in free memory (within 1 MiB).
//
// Tolerances (written down, relative to each tensor's largest value):
//   fp32 storage: loss 1e-5, gradients 1e-4 (cuBLASLt's fp32 GEMMs sum in another order than
//                 the CPU's; attention too). Updated weights: Adam's first step moves every weight
//                 by about ±lr whatever the gradient's size, so a near-zero gradient whose sign
//                 differs between backends moves a weight 2·lr apart: at most 0.1 % of the
//                 weights may differ by more than 1e-4 relative, and none by more than 2.5·lr.
//   bf16 storage: loss 1e-2, gradients 6e-2 (bf16 has 8 bits of mantissa: 2^-8 ≈ 4e-3 per
//                 rounding, compounded through 2 layers of activations stored in bf16).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "engine/backend/cpu_backend.h"
#include "engine/backend/cuda_backend_factory.h"
#include "engine/model/model.h"
#include "engine/train/trainer.h"
#include "tests/cuda/gpu_test_util.cuh"

using namespace gpt2;

namespace {

int g_failures = 0;
void expect(bool ok, const char* what) {
  if (!ok) {
    std::printf("  FAIL %s\n", what);
    ++g_failures;
  }
}

// The shapes. Under the SIMT layer (the CUDA code on the CPU) the same checks run at a smaller
// shape: fewer channels and heads (head size stays 64), a smaller vocabulary (still padded) and
// one sequence per micro-batch, so the test's 80-odd micro-batches fit in about a minute.
#if defined(GPT2_SIMT)
constexpr int kHeads = 2, kChannels = 128, kVocab = 200, kPaddedVocab = 256, kMaxSeqLen = 64;
constexpr int kMicroBatch = 1, kSeqLen = 64;
constexpr int kChunk = 48, kChunkSmall = 32, kChunkAll = 64;  // logits chunks (B*T = 64 tokens)
#else
constexpr int kHeads = 4, kChannels = 256, kVocab = 500, kPaddedVocab = 512, kMaxSeqLen = 128;
constexpr int kMicroBatch = 4, kSeqLen = 64;
constexpr int kChunk = 100, kChunkSmall = 64, kChunkAll = 256;
#endif

ModelConfig small_model() {
  ModelConfig m;
  m.name = "small";
  m.num_layers = 2;
  m.num_heads = kHeads;
  m.channels = kChannels;  // head size 64, as the attention kernel supports
  m.vocab_size = kVocab;
  m.padded_vocab = kPaddedVocab;
  m.max_seq_len = kMaxSeqLen;
  return m;
}

RunConfig small_run(Device d, Precision p, const char* policy, int chunk = kChunk) {
  RunConfig r;
  r.device = d;
  r.precision = p;
  r.micro_batch = kMicroBatch;
  r.seq_len = kSeqLen;
  r.total_batch_tokens = kMicroBatch * kSeqLen * 2;  // grad_accum 2
  r.recompute = parse_recompute(policy);
  r.logits_chunk = chunk;
  return r;
}

// Fraction of elements differing by more than tol·max|b|, and the largest absolute difference.
std::pair<double, double> outliers(const std::vector<float>& a, const std::vector<float>& b, double tol) {
  double mr = 0, max_abs = 0;
  for (float x : b) mr = std::max(mr, std::fabs(double(x)));
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(double(a[i]) - b[i]);
    if (!(d <= tol * mr)) ++n;
    if (!(d <= max_abs)) max_abs = d;
  }
  return {double(n) / double(a.size()), max_abs};
}

double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double md = 0, mr = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(double(a[i]) - b[i]);
    if (!std::isfinite(d)) return INFINITY;
    md = std::max(md, d);
    mr = std::max(mr, std::fabs(double(b[i])));
  }
  return md / std::max(mr, 1e-30);
}

struct StepOutcome {
  std::vector<double> losses;
  std::vector<float> grads_step1;
  std::vector<float> params_step1;  // the weights after exactly one step
  std::vector<float> params;
  int64_t allocs_before = 0, allocs_after = 0;
  CudaMemoryReport mem;
  int64_t arena_bytes = 0;
};

StepOutcome run(Device d, Precision p, const char* policy, int steps, int chunk = kChunk) {
  const MemoryPlan plan = make_memory_plan(small_model(), small_run(d, p, policy, chunk));
  std::unique_ptr<Backend> be;
  if (d == Device::CPU)
    be = std::make_unique<CpuBackend>();
  else
    be = make_cuda_backend(0);
  Model model(plan, *be);
  model.init_gpt2(1234);
  SyntheticSource data(kVocab, kMicroBatch, kSeqLen, 99);
  TrainOptions t;
  t.steps = steps;
  t.lr.kind = LrScheduleKind::Constant;
  t.lr.lr = 1e-3;
  Trainer trainer(model, t, data, nullptr);
  StepOutcome o;
  o.allocs_before = be->allocation_count();
  for (int i = 0; i < steps; ++i) {
    o.losses.push_back(trainer.train_step().loss);
    if (i == 0) {
      o.grads_step1 = model.gradients();
      o.params_step1 = model.parameters();
    }
  }
  o.allocs_after = be->allocation_count();
  o.params = model.parameters();
  o.arena_bytes = plan.arena_bytes;
  if (auto* c = dynamic_cast<CudaBackendBase*>(be.get())) o.mem = c->memory_report();
  return o;
}

}  // namespace

int main() {
  gputest::require_device_or_skip("test_cuda_engine");
  const char* policies[] = {"none", "gelu", "norm", "block", "budget:1"};

  std::printf("CPU reference, then GPU fp32 and bf16 per recompute policy (2 steps, grad_accum 2)\n");
  const StepOutcome cpu = run(Device::CPU, Precision::FP32, "none", 1);
  StepOutcome fp32_first;
  bool have_fp32 = false;
  for (const char* pol : policies) {
    for (Precision p : {Precision::FP32, Precision::BF16}) {
      const StepOutcome g = run(Device::CUDA, p, pol, 2);
      const bool f32 = p == Precision::FP32;
      const double loss_err = std::fabs(g.losses[0] - cpu.losses[0]) / std::fabs(cpu.losses[0]);
      const double grad_err = rel_err(g.grads_step1, cpu.grads_step1);
      const auto [param_outliers, param_max_abs] = outliers(g.params_step1, cpu.params, 1e-4);
      const double param_err = rel_err(g.params_step1, cpu.params);
      std::printf("  %-9s %s: loss %.6f (cpu %.6f, rel %.1e)  grads rel %.1e  params rel %.1e\n", pol,
                  f32 ? "fp32" : "bf16", g.losses[0], cpu.losses[0], loss_err, grad_err, param_err);
      expect(loss_err <= (f32 ? 1e-5 : 1e-2), "loss vs CPU");
      expect(grad_err <= (f32 ? 1e-4 : 6e-2), "gradients vs CPU");
      if (f32) {
        std::printf("            weights after step 1: %.3f%% differ by more than 1e-4 relative, max |d| %.2e\n",
                    100 * param_outliers, param_max_abs);
        expect(param_outliers <= 1e-3 && param_max_abs <= 2.5e-3, "updated weights vs CPU");
        // Step 2's loss depends on step 1's gradients, so it sees every recompute path.
        if (have_fp32) {
          expect(g.losses == fp32_first.losses, "fp32 recompute policies give bitwise-identical losses");
          expect(std::memcmp(g.params.data(), fp32_first.params.data(), g.params.size() * sizeof(float)) == 0,
                 "fp32 recompute policies give bitwise-identical weights");
        } else {
          fp32_first = g;
          have_fp32 = true;
        }
      }
      expect(g.allocs_after == g.allocs_before, "no allocation during training");
      const int64_t diff = g.mem.arena_drop_bytes() - g.arena_bytes;
      std::printf("            arena planned %lld, measured drop %lld (diff %lld bytes)\n",
                  static_cast<long long>(g.arena_bytes), static_cast<long long>(g.mem.arena_drop_bytes()),
                  static_cast<long long>(diff));
      expect(diff >= -(1 << 20) && diff <= (1 << 20), "planned arena = measured drop within 1 MiB");
    }
  }

  std::printf("Determinism: two bf16 runs of 3 steps with one seed\n");
  const StepOutcome a = run(Device::CUDA, Precision::BF16, "none", 3);
  const StepOutcome b = run(Device::CUDA, Precision::BF16, "none", 3);
  for (int i = 0; i < 3; ++i) std::printf("  step %d: %.9f %.9f\n", i + 1, a.losses[i], b.losses[i]);
  expect(a.losses == b.losses, "bitwise identical losses across runs");
  expect(a.params.size() == b.params.size() &&
             std::memcmp(a.params.data(), b.params.data(), a.params.size() * sizeof(float)) == 0,
         "bitwise identical weights across runs");

  std::printf("Chunked head: chunk %d vs %d in fp32 gives identical losses\n", kChunkSmall, kChunkAll);
  const StepOutcome c1 = run(Device::CUDA, Precision::FP32, "none", 1, kChunkSmall);
  const StepOutcome c2 = run(Device::CUDA, Precision::FP32, "none", 1, kChunkAll);
  std::printf("  %.9f vs %.9f\n", c1.losses[0], c2.losses[0]);
  expect(std::fabs(c1.losses[0] - c2.losses[0]) <= 1e-6 * std::fabs(c2.losses[0]),
         "chunk size does not change the loss");

  std::printf(g_failures ? "test_cuda_engine: %d FAILED\n" : "test_cuda_engine: all passed\n", g_failures);
  return g_failures ? 1 : 0;
}
