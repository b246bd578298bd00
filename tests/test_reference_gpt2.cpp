// End-to-end check of the CPU engine against an independent PyTorch GPT-2
// (tests/reference/gpt2_reference.py): logits, loss, every parameter's gradient, and the losses,
// gradient norms and weights of a 5-step AdamW run with gradient accumulation 2 and clipping
// active. Tolerance 1e-5 relative (per tensor, relative to its largest value) in fp32.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>

#include "engine/backend/cpu_backend.h"
#include "engine/model/model.h"
#include "engine/train/trainer.h"
#include "tests/reference_file.h"

using namespace gpt2;
using namespace gpt2::testref;

namespace {

constexpr double kTol = 1e-5;

// Runs the reference script once per test process and caches the parsed file.
const RefFile* reference() {
  static RefFile file;
  static bool loaded = false;
  if (!loaded) {
    const std::string dir = make_temp_dir("gpt2e2e");
    const std::string out = dir + "/ref.bin";
    const int rc = run_python_script(std::string(GPT2_SOURCE_DIR) + "/tests/reference/gpt2_reference.py",
                                     "--out \"" + out + "\"", dir + "/log.txt");
    if (rc != 0) FAIL("gpt2_reference.py failed (exit " << rc << "); see " << dir << "/log.txt");
    file = load_reference_file(out);
    loaded = true;
  }
  return &file;
}

struct RefSetup {
  ModelConfig model;
  RunConfig run;
  int grad_accum = 0, steps = 0;
};

RefSetup setup_from(const RefFile& f, int logits_chunk = 0) {
  const auto& c = get(f, "config").idata;  // maxT, V, L, NH, C, Vp, B, T, grad_accum, steps
  RefSetup s;
  s.model.max_seq_len = c[0];
  s.model.vocab_size = c[1];
  s.model.num_layers = c[2];
  s.model.num_heads = c[3];
  s.model.channels = c[4];
  s.model.padded_vocab = c[5];
  s.model.name = "reference";
  s.run.device = Device::CPU;
  s.run.precision = Precision::FP32;
  s.run.micro_batch = c[6];
  s.run.seq_len = c[7];
  s.grad_accum = c[8];
  s.steps = c[9];
  s.run.total_batch_tokens = static_cast<int64_t>(c[6]) * c[7] * c[8];
  s.run.logits_chunk = logits_chunk;
  return s;
}

std::vector<float> flat_weights(const RefFile& f, const MemoryPlan& plan, const std::string& prefix) {
  std::vector<float> flat(plan.flat_param_elems, 0.0f);
  const auto specs = param_tensor_specs(plan.model);
  for (int i = 0; i < kNumParamTensors; ++i) {
    const RefTensor& t = get(f, prefix + specs[i].name);
    REQUIRE(static_cast<int64_t>(t.numel()) == specs[i].numel());
    std::copy(t.data.begin(), t.data.end(), flat.begin() + plan.param_offsets[i]);
  }
  return flat;
}

std::vector<float> slice(const std::vector<float>& flat, const MemoryPlan& plan, int i) {
  const auto specs = param_tensor_specs(plan.model);
  return {flat.begin() + plan.param_offsets[i], flat.begin() + plan.param_offsets[i] + specs[i].numel()};
}

// Replays the reference's fixed micro-batches in order, forever.
class ReplaySource final : public BatchSource {
 public:
  ReplaySource(const RefTensor& tokens, const RefTensor& targets, int micro, int64_t n)
      : tok_(tokens.idata), tgt_(targets.idata), micro_(micro), n_(n) {}
  void next(int32_t* inputs, int32_t* targets) override {
    std::copy_n(tok_.begin() + i_ * n_, n_, inputs);
    std::copy_n(tgt_.begin() + i_ * n_, n_, targets);
    i_ = (i_ + 1) % micro_;
  }
  void reset() override { i_ = 0; }
  std::string describe() const override { return "reference batches"; }
  std::vector<uint8_t> save_position() const override { return {uint8_t(i_)}; }
  void restore_position(const std::vector<uint8_t>& b) override { i_ = b.at(0); }

 private:
  std::vector<int32_t> tok_, tgt_;
  int micro_;
  int64_t n_;
  int i_ = 0;
};

}  // namespace

TEST_CASE("CPU engine matches PyTorch: logits, loss and every gradient", "[reference][e2e]") {
  GPT2_REQUIRE_TORCH_OR_SKIP();
  const RefFile& f = *reference();
  for (int chunk : {0, 37}) {  // one chunk, and chunks that don't divide B·T
    INFO("logits chunk " << chunk);
    const RefSetup s = setup_from(f, chunk);
    const MemoryPlan plan = make_memory_plan(s.model, s.run);
    CpuBackend backend;
    Model model(plan, backend);
    model.set_parameters(flat_weights(f, plan, ""));
    const int64_t n = static_cast<int64_t>(s.run.micro_batch) * s.run.seq_len;
    REQUIRE(model.load_batch(get(f, "tokens").idata.data(), get(f, "targets").idata.data()) == -1);
    model.forward();
    const double logits_err = max_rel_error(model.logits(), get(f, "logits"));
    std::printf("  [chunk %d] logits max rel error %.2e\n", chunk, logits_err);
    CHECK(logits_err <= kTol);
    const double loss = model.head(true, 1.0f / static_cast<float>(n)) / static_cast<double>(n);
    const double ref_loss = get(f, "loss").data[0];
    std::printf("  [chunk %d] loss %.7f vs %.7f\n", chunk, loss, ref_loss);
    CHECK(std::fabs(loss - ref_loss) <= kTol * std::fabs(ref_loss));
    model.backward();
    const std::vector<float> grads = model.gradients();
    const auto specs = param_tensor_specs(plan.model);
    for (int i = 0; i < kNumParamTensors; ++i) {
      const double err = max_rel_error(slice(grads, plan, i), get(f, std::string("grad_") + specs[i].name));
      std::printf("  [chunk %d] grad %-9s max rel error %.2e\n", chunk, specs[i].name, err);
      INFO(specs[i].name);
      CHECK(err <= kTol);
    }
  }
}

TEST_CASE("CPU engine matches PyTorch over 5 AdamW steps with accumulation and clipping", "[reference][e2e]") {
  GPT2_REQUIRE_TORCH_OR_SKIP();
  const RefFile& f = *reference();
  const RefSetup s = setup_from(f);
  const MemoryPlan plan = make_memory_plan(s.model, s.run);
  REQUIRE(plan.grad_accum == s.grad_accum);
  CpuBackend backend;
  Model model(plan, backend);
  model.set_parameters(flat_weights(f, plan, ""));
  const auto& hyper = get(f, "hyper").data;  // lr, beta1, beta2, eps, weight_decay, grad_clip
  TrainOptions t;
  t.steps = s.steps;
  t.lr.kind = LrScheduleKind::Constant;
  t.lr.lr = hyper[0];
  t.lr.total_steps = s.steps;
  t.beta1 = hyper[1];
  t.beta2 = hyper[2];
  t.eps = hyper[3];
  t.weight_decay = hyper[4];
  t.grad_clip = hyper[5];
  t.val_batches = s.grad_accum;
  const int64_t n = static_cast<int64_t>(s.run.micro_batch) * s.run.seq_len;
  ReplaySource train(get(f, "tokens"), get(f, "targets"), s.grad_accum, n);
  ReplaySource val(get(f, "tokens"), get(f, "targets"), s.grad_accum, n);
  Trainer trainer(model, t, train, &val);

  const auto& ref_losses = get(f, "train_losses").data;
  const auto& ref_norms = get(f, "grad_norms").data;
  const auto& ref_after = get(f, "losses_after").data;
  const auto& ref_coefs = get(f, "clip_coefs").data;
  for (int k = 0; k < s.steps; ++k) {
    const StepResult r = trainer.train_step();
    if (k == 0) {  // the accumulated gradient of step 1, before clipping
      const std::vector<float> grads = model.gradients();
      const auto specs = param_tensor_specs(plan.model);
      for (int i = 0; i < kNumParamTensors; ++i) {
        INFO(specs[i].name);
        CHECK(max_rel_error(slice(grads, plan, i), get(f, std::string("step1_grad_") + specs[i].name)) <= kTol);
      }
    }
    const double after = trainer.evaluate();
    std::printf("  step %d: loss %.7f (ref %.7f)  norm %.6f (ref %.6f)  clip %.4f  after %.7f (ref %.7f)\n", k + 1,
                r.loss, ref_losses[k], r.grad_norm, ref_norms[k], clip_scale(r.grad_norm, t.grad_clip), after,
                ref_after[k]);
    CHECK(std::fabs(r.loss - ref_losses[k]) <= kTol * std::fabs(ref_losses[k]));
    CHECK(std::fabs(r.grad_norm - ref_norms[k]) <= kTol * std::fabs(ref_norms[k]));
    CHECK(std::fabs(clip_scale(r.grad_norm, t.grad_clip) - ref_coefs[k]) <= kTol);
    CHECK(ref_coefs[k] < 1.0f);  // clipping really was active
    CHECK(std::fabs(after - ref_after[k]) <= kTol * std::fabs(ref_after[k]));
  }
  // Final weights: AdamW amplifies rounding noise in near-zero gradients into ±lr updates, so
  // compare with an absolute tolerance of a tenth of the total step budget (lr·steps·0.1).
  const std::vector<float> final_w = model.parameters();
  const auto specs = param_tensor_specs(plan.model);
  const double atol = hyper[0] * s.steps * 0.1;
  for (int i = 0; i < kNumParamTensors; ++i) {
    const std::vector<float> got = slice(final_w, plan, i);
    const RefTensor& ref = get(f, std::string("final_") + specs[i].name);
    double max_abs = 0;
    for (size_t j = 0; j < got.size(); ++j) max_abs = std::max(max_abs, std::fabs(double(got[j]) - ref.data[j]));
    INFO(specs[i].name << " max abs diff " << max_abs);
    CHECK(max_abs <= atol);
  }
}
