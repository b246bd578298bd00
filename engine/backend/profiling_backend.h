// The profile of `train_gpt2 --profile`: a Backend that forwards every call to the real backend
// and, between begin_step() and end_step(), times it with that backend's OpTimer (host clock on
// the CPU, events on CUDA: one wait per step, not per call). Calls are grouped under the op
// names of engine/plan/op_costs.h, so each group lines up with its roofline prediction.
//
// Forwarding changes nothing the backend computes: losses are bitwise the same with or without
// the profile (tests/cli/profile.sh checks it on the CPU, tests/simt/cli/profile.sh under the
// SIMT layer).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/backend/backend.h"

namespace gpt2 {

struct OpProfile {
  std::string name;  // an op group name of engine/plan/op_costs.h
  int64_t calls = 0;
  double seconds = 0;
};

struct ProfileData {
  int64_t steps = 0;               // steps measured
  int64_t skipped_steps = 0;       // warm-up steps left out (the first one, when there are more)
  double step_seconds = 0;         // wall time of the measured steps, host clock
  double median_step_seconds = 0;  // the median of the measured steps' wall times
  std::vector<OpProfile> ops;      // in the order first seen
};

class ProfilingBackend final : public Backend {
 public:
  // `plan` names the matmuls (by the model's channels); `inner` must outlive this.
  ProfilingBackend(Backend& inner, const MemoryPlan& plan);

  // Timing is on between these calls. end_step collects the step's timings (one wait for the
  // device) and adds them to the profile unless the step is a warm-up step.
  void begin_step();
  void end_step(double step_seconds);
  // The profile so far: steps after the first when more than one was measured.
  ProfileData data() const;

  Device device() const override { return inner_.device(); }
  std::string describe() const override { return inner_.describe(); }
  Backend& underlying() override { return inner_.underlying(); }
  std::unique_ptr<OpTimer> make_op_timer() override { return inner_.make_op_timer(); }

  std::byte* create_arena(const MemoryPlan& plan) override { return inner_.create_arena(plan); }
  int64_t allocation_count() const override { return inner_.allocation_count(); }
  void upload(void* dst, const void* src, size_t bytes) override;
  void download(void* dst, const void* src, size_t bytes) override;
  void zero(void* dst, size_t bytes) override;
  void synchronize() override { inner_.synchronize(); }
  std::byte* create_host_arena(const MemoryPlan& plan) override { return inner_.create_host_arena(plan); }
  void copy_to_host_async(void* host_dst, const void* arena_src, size_t bytes) override {
    inner_.copy_to_host_async(host_dst, arena_src, bytes);
  }
  void wait_host_copies() override;
  void upload_offloaded_parameters(void* arena_dst, const void* host_src, size_t bytes) override;
  void host_adamw(TensorRef params_out, float* master, TensorRef grads, float* m, float* v,
                  const AdamWStep& step) override;

  void encoder_forward(TensorRef out, const int32_t* tokens, TensorRef wte, TensorRef wpe, int B, int T,
                       int C) override;
  void encoder_backward(TensorRef dwte, TensorRef dwpe, TensorRef dout, const int32_t* tokens,
                        const int32_t* tokens_host, int B, int T, int C, int V) override;
  void layernorm_forward(TensorRef out, float* mean, float* rstd, TensorRef inp, TensorRef weight, TensorRef bias,
                         int N, int C) override;
  void residual_layernorm_forward(TensorRef residual, TensorRef out, float* mean, float* rstd, TensorRef a, TensorRef b,
                                  TensorRef weight, TensorRef bias, int N, int C) override;
  void layernorm_recompute(TensorRef out, TensorRef inp, const float* mean, const float* rstd, TensorRef weight,
                           TensorRef bias, int N, int C) override;
  void layernorm_backward(TensorRef dinp, TensorRef dweight, TensorRef dbias, TensorRef dout, TensorRef inp,
                          TensorRef weight, const float* mean, const float* rstd, int N, int C) override;
  void matmul_forward(TensorRef out, TensorRef inp, TensorRef weight, TensorRef bias, int N, int C, int OC) override;
  void matmul_forward_gelu(TensorRef pre, TensorRef out, TensorRef inp, TensorRef weight, TensorRef bias, int N, int C,
                           int OC) override;
  void matmul_backward(TensorRef dinp, TensorRef dweight, TensorRef dbias, TensorRef dout, TensorRef inp,
                       TensorRef weight, int N, int C, int OC) override;
  void matmul_backward_gelu(TensorRef dinp, TensorRef dweight, TensorRef dbias, TensorRef dout, TensorRef inp,
                            TensorRef weight, TensorRef pre_gelu, int N, int C, int OC) override;
  void gelu_forward(TensorRef out, TensorRef inp, int64_t n) override;
  void gelu_backward(TensorRef dinp, TensorRef inp, TensorRef dout, int64_t n) override;
  void residual_forward(TensorRef out, TensorRef a, TensorRef b, int64_t n) override;
  void attention_forward(TensorRef y, float* lse, float* scratch, TensorRef qkv, int B, int T, int C, int NH) override;
  void attention_backward(TensorRef dqkv, float* scratch, TensorRef dy, TensorRef qkv, TensorRef y, const float* lse,
                          int B, int T, int C, int NH) override;
  void attention_decode(TensorRef y, float* scratch, TensorRef qkv, int pos, int C, int NH) override;
  void classifier(float* losses, TensorRef logits, const int32_t* targets, int N, int V, int Vp, float dloss_scale,
                  bool compute_grad) override;
  double global_norm_squared(TensorRef x, int64_t n, float* partials) override;
  void adamw(TensorRef params, float* master, TensorRef grads, float* m, float* v, const AdamWStep& step) override;

 private:
  // Runs fn, timed under `name` while a step is being measured.
  template <typename Fn>
  void timed(const char* name, Fn&& fn);
  int group_index(const char* name);

  struct Totals {
    std::vector<int64_t> calls;
    std::vector<double> seconds;
    int64_t steps = 0;
    double step_seconds = 0;
    std::vector<double> step_walls;
  };

  Backend& inner_;
  int channels_;
  std::unique_ptr<OpTimer> timer_;
  bool in_step_ = false;
  std::vector<const char*> groups_;  // op group names, in the order first seen
  std::vector<int> pending_;         // the group of each timed call of the current step
  Totals warmup_, measured_;         // the first step, and the ones after it
};

}  // namespace gpt2
