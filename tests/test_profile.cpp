// The profiler (engine/backend/op_profiler.h) against the op list of the roofline
// (engine/plan/op_costs.h): for every recompute policy, gradient accumulation and logits chunk,
// the backend calls a real training step makes, grouped by the profiler, are exactly the calls
// per step the op list predicts. So every predicted row has a measured row, and vice versa.
#include <catch2/catch.hpp>
#include <cstring>
#include <map>

#include "engine/backend/cpu_backend.h"
#include "engine/backend/op_profiler.h"
#include "engine/data/batch_source.h"
#include "engine/plan/op_costs.h"
#include "engine/train/profile_report.h"
#include "engine/train/trainer.h"
#include "engine/util/units.h"
#include "engine_test_util.h"

using namespace gpt2;

namespace {

struct Case {
  const char* recompute;
  int grad_accum;
  int chunk;
};

}  // namespace

TEST_CASE("profile: a step's calls per op group are the op list's calls", "[profile]") {
  const ModelConfig m = testutil::tiny_config(3, 64, 300, 32);
  for (const Case c :
       {Case{"none", 1, 0}, Case{"gelu", 2, 0}, Case{"norm", 1, 16}, Case{"block", 2, 24}, Case{"budget:2", 3, 0}}) {
    INFO("recompute " << c.recompute << ", grad_accum " << c.grad_accum << ", chunk " << c.chunk);
    RunConfig r = testutil::cpu_run(2, 32);
    r.total_batch_tokens = 2 * 32 * c.grad_accum;
    r.recompute = parse_recompute(c.recompute);
    r.logits_chunk = c.chunk;
    const MemoryPlan plan = make_memory_plan(m, r);
    CpuBackend cpu;
    OpProfiler prof(cpu, plan);
    Model model(plan, cpu);
    model.init_gpt2(7);
    SyntheticSource src(m.vocab_size, r.micro_batch, r.seq_len, 3);
    TrainOptions t;
    t.steps = 3;
    t.profiler = &prof;
    Trainer trainer(model, t, src, nullptr);
    for (int i = 0; i < 3; ++i) trainer.train_step();

    const ProfileData d = prof.data();
    CHECK(d.steps == 2);
    CHECK(d.skipped_steps == 1);
    CHECK(d.median_step_seconds > 0);
    std::map<std::string, int64_t> measured;
    double sum = 0;
    for (const auto& o : d.ops) {
      CHECK(o.calls % 2 == 0);
      measured[o.name] = o.calls / 2;
      sum += o.seconds;
    }
    CHECK(sum <= d.step_seconds);
    std::map<std::string, int64_t> predicted;
    for (const auto& o : step_op_costs(plan)) predicted[o.name] = o.calls;
    CHECK(measured == predicted);

    // The report lines the two up row by row.
    const ProfileReport rep =
        make_profile_report(d, predict_step_time(plan, cpu_device(kGiB, 100, 10)), cpu_device(kGiB, 100, 10));
    for (const auto& row : rep.rows) {
      INFO(row.name);
      CHECK(row.measured_s >= 0);
      CHECK(row.predicted_s > 0);
    }
  }
}

TEST_CASE("profile: only training steps are timed; validation is not", "[profile]") {
  const ModelConfig m = testutil::tiny_config(2, 64, 300, 32);
  RunConfig r = testutil::cpu_run(2, 32);
  const MemoryPlan plan = make_memory_plan(m, r);
  CpuBackend cpu;
  OpProfiler prof(cpu, plan);
  Model model(plan, cpu);
  model.init_gpt2(7);
  SyntheticSource train(m.vocab_size, 2, 32, 3), val(m.vocab_size, 2, 32, 4);
  TrainOptions t;
  t.steps = 1;
  t.val_batches = 3;
  t.profiler = &prof;
  Trainer trainer(model, t, train, &val);
  trainer.train_step();
  trainer.evaluate();
  const ProfileData d = prof.data();
  CHECK(d.steps == 1);
  CHECK(d.skipped_steps == 0);  // one step: nothing is left out as a warm-up
  for (const auto& o : d.ops)
    if (std::strcmp(o.name.c_str(), op::kMatmulQkvForward) == 0) CHECK(o.calls == 2);  // 2 layers, 1 micro-batch
  CHECK_THROWS_AS(prof.end_step(0.0), std::logic_error);
}
