// CPU training-step benchmark: ms per optimizer step (forward, chunked head, backward, AdamW) and
// the model FLOP/s it reaches, for a small config (default L=6, C=384, NH=6, B=4, T=256, V=50257).
// Usage: bench_cpu_train_step [steps] [--layers L --width C --heads NH --B B --T T --vocab V]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "engine/backend/cpu_backend.h"
#include "engine/model/model.h"
#include "engine/train/trainer.h"

int main(int argc, char** argv) {
  using namespace gpt2;
  int steps = 5, L = 6, C = 384, NH = 6, B = 4, T = 256, V = 50257;
  for (int i = 1; i < argc; ++i) {
    auto arg = [&](const char* name, int& v) {
      if (std::strcmp(argv[i], name) == 0 && i + 1 < argc) {
        v = std::atoi(argv[++i]);
        return true;
      }
      return false;
    };
    if (arg("--layers", L) || arg("--width", C) || arg("--heads", NH) || arg("--B", B) || arg("--T", T) ||
        arg("--vocab", V))
      continue;
    steps = std::atoi(argv[i]);
  }
  ModelConfig m;
  m.name = "bench";
  m.num_layers = L;
  m.channels = C;
  m.num_heads = NH;
  m.vocab_size = V;
  m.padded_vocab = pad_vocab(V);
  m.max_seq_len = std::max(T, 1024);
  RunConfig r;
  r.device = Device::CPU;
  r.precision = Precision::FP32;
  r.micro_batch = B;
  r.seq_len = T;
  const MemoryPlan plan = make_memory_plan(m, r);
  CpuBackend backend;
  Model model(plan, backend);
  model.init_gpt2(1);
  SyntheticSource data(V, B, T, 1);
  TrainOptions t;
  t.steps = steps + 1;
  t.lr.kind = LrScheduleKind::Constant;
  t.lr.lr = 1e-4;
  Trainer trainer(model, t, data, nullptr);
  std::printf("config L=%d C=%d NH=%d V=%d B=%d T=%d, %lld params, backend %s\n", L, C, NH, V, B, T,
              static_cast<long long>(plan.num_params), backend.describe().c_str());
  trainer.train_step();  // warm-up (first-touch of the arena and packing buffers)
  double total_ms = 0;
  for (int i = 0; i < steps; ++i) {
    const StepResult s = trainer.train_step();
    total_ms += s.ms;
    std::printf("step %d: %.1f ms, loss %.4f\n", i + 1, s.ms, s.loss);
  }
  const double ms = total_ms / steps;
  const double flops = training_flops_per_token(m, T) * B * T;
  std::printf("mean %.1f ms/step, %.0f tok/s, %.1f GFLOP/s (model FLOPs %.2f GFLOP/step)\n", ms, B * T / (ms / 1e3),
              flops / (ms / 1e3) / 1e9, flops / 1e9);
  return 0;
}
