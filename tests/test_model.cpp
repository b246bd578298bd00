// The CPU engine's model and trainer: recompute policies and logits chunks give bitwise-identical
// results, the loss falls on a learnable stream, training never allocates, and bad input
// (out-of-vocabulary tokens, non-finite losses) stops with the step and position named.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>

#include "engine/backend/cpu_backend.h"
#include "engine/model/model.h"
#include "engine/train/trainer.h"
#include "engine/util/errors.h"
#include "tests/engine_test_util.h"

using namespace gpt2;

namespace {

ModelConfig tiny_model(int L = 3) { return testutil::tiny_config(L, 64, 250, 64, "tiny"); }

RunConfig tiny_run(const char* policy, int chunk, int B = 2, int T = 24, int accum = 2) {
  RunConfig r = testutil::cpu_run(B, T);
  r.total_batch_tokens = static_cast<int64_t>(B) * T * accum;
  r.recompute = parse_recompute(policy);
  r.logits_chunk = chunk;
  return r;
}

TrainOptions train_opts(int steps, double lr = 3e-3) {
  TrainOptions t;
  t.steps = steps;
  t.lr.kind = LrScheduleKind::Cosine;
  t.lr.lr = lr;
  t.lr.warmup = 2;
  t.lr.total_steps = steps;
  t.lr.final_lr_frac = 0.1;
  t.val_batches = 2;
  return t;
}

struct RunOutcome {
  std::vector<double> losses;
  std::vector<float> params;
  double val = 0;
};

RunOutcome train_tiny(const char* policy, int chunk, int steps = 3) {
  const MemoryPlan plan = make_memory_plan(tiny_model(), tiny_run(policy, chunk));
  testutil::CpuModel cpu_model(plan, 42);
  Model& model = cpu_model.model;
  SyntheticSource train(250, 2, 24, 7), val(250, 2, 24, 8);
  Trainer trainer(model, train_opts(steps), train, &val);
  RunOutcome out;
  for (int i = 0; i < steps; ++i) out.losses.push_back(trainer.train_step().loss);
  out.val = trainer.evaluate();
  out.params = model.parameters();
  return out;
}

}  // namespace

TEST_CASE("every recompute policy and logits chunk gives bitwise-identical training", "[model]") {
  const RunOutcome base = train_tiny("none", 0);
  for (const char* policy : {"gelu", "norm", "block", "budget:1", "budget:2"}) {
    for (int chunk : {0, 1, 7, 48}) {
      INFO(policy << " chunk " << chunk);
      const RunOutcome r = train_tiny(policy, chunk);
      CHECK(r.losses == base.losses);  // exact double equality
      CHECK(r.val == base.val);
      CHECK(testutil::same_bits(r.params, base.params));
    }
  }
}

TEST_CASE("a 200-step CPU run on a learnable stream drives the loss down", "[model][train]") {
  ModelConfig m = tiny_model(2);
  m.vocab_size = 256;
  const MemoryPlan plan = make_memory_plan(m, tiny_run("none", 0, 8, 32, 1));
  testutil::CpuModel cpu_model(plan, 1);
  Model& model = cpu_model.model;
  SyntheticSource train(256, 8, 32, 11), val(256, 8, 32, 12);
  TrainOptions t = train_opts(200, 3e-3);
  t.lr.warmup = 10;
  t.val_batches = 4;
  Trainer trainer(model, t, train, &val);
  const double val_before = trainer.evaluate();
  double first = 0, last10 = 0;
  for (int i = 0; i < 200; ++i) {
    const StepResult r = trainer.train_step();
    if (i == 0) first = r.loss;
    if (i >= 190) last10 += r.loss / 10;
  }
  const double val_after = trainer.evaluate();
  std::printf("  200 steps: first loss %.4f, mean of last 10 %.4f, val %.4f -> %.4f (ln 256 = %.4f)\n", first, last10,
              val_before, val_after, std::log(256.0));
  CHECK(first > 5.0);           // starts near ln(256) = 5.545
  CHECK(last10 < first - 2.5);  // learns most of the rule
  CHECK(val_after < val_before - 2.5);
}

TEST_CASE("training makes no allocation after start-up", "[model]") {
  const MemoryPlan plan = make_memory_plan(tiny_model(), tiny_run("block", 5));
  CpuBackend backend;
  Model model(plan, backend);
  model.init_gpt2(3);
  const int64_t after_setup = backend.allocation_count();
  CHECK(after_setup == 1);
  SyntheticSource train(250, 2, 24, 1), val(250, 2, 24, 2);
  Trainer trainer(model, train_opts(4), train, &val);
  for (int i = 0; i < 4; ++i) trainer.train_step();
  trainer.evaluate();
  CHECK(backend.allocation_count() == after_setup);
}

namespace {
class FixedSource final : public BatchSource {
 public:
  FixedSource(std::vector<int32_t> in, std::vector<int32_t> tg) : in_(std::move(in)), tg_(std::move(tg)) {}
  void next(int32_t* inputs, int32_t* targets) override {
    std::copy(in_.begin(), in_.end(), inputs);
    std::copy(tg_.begin(), tg_.end(), targets);
  }
  void reset() override {}
  std::string describe() const override { return "fixed"; }
  std::vector<uint8_t> save_position() const override { return {}; }
  void restore_position(const std::vector<uint8_t>&) override {}
  std::vector<int32_t> in_, tg_;
};
}  // namespace

TEST_CASE("an out-of-vocabulary token stops training with the step and position named", "[model][errors]") {
  const MemoryPlan plan = make_memory_plan(tiny_model(), tiny_run("none", 0, 2, 24, 1));
  testutil::CpuModel cpu_model(plan, 3);
  Model& model = cpu_model.model;
  std::vector<int32_t> in(48, 5), tg(48, 6);
  in[30] = 250;  // row 1, position 6; V = 250
  FixedSource src(in, tg);
  Trainer trainer(model, train_opts(2), src, nullptr);
  try {
    trainer.train_step();
    FAIL("no error");
  } catch (const TrainingError& e) {
    const std::string msg = e.what();
    CHECK(e.step() == 1);
    CHECK(msg.find("token id 250") != std::string::npos);
    CHECK(msg.find("row 1, position 6") != std::string::npos);
  }
}

TEST_CASE("a non-finite loss stops the run, or skips the update with --skip-nonfinite", "[model][errors]") {
  const MemoryPlan plan = make_memory_plan(tiny_model(), tiny_run("none", 0, 2, 24, 1));
  CpuBackend backend;
  Model model(plan, backend);
  std::vector<float> w = Model::gpt2_init(plan, 5);
  w[plan.param_offsets[14]] = NAN;  // lnfw[0]
  model.set_parameters(w);
  SyntheticSource src(250, 2, 24, 1);
  {
    Trainer trainer(model, train_opts(2), src, nullptr);
    try {
      trainer.train_step();
      FAIL("no error");
    } catch (const TrainingError& e) {
      CHECK(e.step() == 1);
      CHECK(std::string(e.what()).find("not finite") != std::string::npos);
    }
  }
  TrainOptions t = train_opts(2);
  t.skip_nonfinite = true;
  Trainer trainer(model, t, src, nullptr);
  const StepResult r = trainer.train_step();
  CHECK(r.skipped);
  CHECK(trainer.updates() == 0);
  const std::vector<float> after = model.parameters();
  CHECK(std::isnan(after[plan.param_offsets[14]]));
  CHECK(after[plan.param_offsets[0]] == w[plan.param_offsets[0]]);  // no update applied
}

TEST_CASE("learning-rate schedules", "[trainer]") {
  LrSchedule s;
  s.lr = 1.0;
  s.warmup = 10;
  s.total_steps = 110;
  s.final_lr_frac = 0.1;
  CHECK(learning_rate(s, 0) == Approx(0.1));
  CHECK(learning_rate(s, 9) == Approx(1.0));
  CHECK(learning_rate(s, 10) == Approx(1.0));
  CHECK(learning_rate(s, 109) == Approx(0.1));
  CHECK(learning_rate(s, 60) < 1.0);
  s.kind = LrScheduleKind::Linear;
  CHECK(learning_rate(s, 109) == Approx(0.1));
  s.kind = LrScheduleKind::Constant;
  CHECK(learning_rate(s, 100) == Approx(1.0));
  s.kind = LrScheduleKind::Wsd;
  CHECK(learning_rate(s, 80) == Approx(1.0));   // stable phase
  CHECK(learning_rate(s, 109) == Approx(0.1));  // end of the decay
  CHECK(learning_rate(s, 100) < 1.0);
  CHECK_THROWS_AS(parse_lr_schedule("step"), ConfigError);
  CHECK(clip_scale(2.0, 1.0f) == Approx(1.0 / (2.0 + 1e-6)));
  CHECK(clip_scale(0.5, 1.0f) == 1.0f);
  CHECK(clip_scale(5.0, 0.0f) == 1.0f);
}
