// The CPU backend: kernels/cpu (fp32, OpenMP) over one host arena allocated from the plan.
#pragma once
#include <memory>

#include "engine/backend/backend.h"

namespace gpt2 {

class CpuBackend final : public Backend {
 public:
  CpuBackend();
  ~CpuBackend() override;
  Device device() const override { return Device::CPU; }
  std::string describe() const override;

  std::byte* create_arena(const MemoryPlan& plan) override;
  int64_t allocation_count() const override { return allocations_; }

 private:
  void do_upload(void* dst, const void* src, size_t bytes) override;
  void do_download(void* dst, const void* src, size_t bytes) override;
  void do_zero(void* dst, size_t bytes) override;

  void do_encoder_forward(TensorRef out, const int32_t* tokens, TensorRef wte, TensorRef wpe, int B, int T,
                             int C) override;
  void do_encoder_backward(TensorRef dwte, TensorRef dwpe, TensorRef dout, const int32_t* tokens,
                              const int32_t* tokens_host, int B, int T, int C, int V) override;
  void do_layernorm_forward(TensorRef out, float* mean, float* rstd, TensorRef inp, TensorRef weight, TensorRef bias,
                               int N, int C) override;
  void do_layernorm_recompute(TensorRef out, TensorRef inp, const float* mean, const float* rstd, TensorRef weight,
                                 TensorRef bias, int N, int C) override;
  void do_layernorm_backward(TensorRef dinp, TensorRef dweight, TensorRef dbias, TensorRef dout, TensorRef inp,
                                TensorRef weight, const float* mean, const float* rstd, int N, int C) override;
  void do_matmul_forward(TensorRef out, TensorRef inp, TensorRef weight, TensorRef bias, int N, int C, int OC) override;
  void do_matmul_forward_gelu(TensorRef pre, TensorRef out, TensorRef inp, TensorRef weight, TensorRef bias, int N,
                                 int C, int OC) override;
  void do_matmul_backward(TensorRef dinp, TensorRef dweight, TensorRef dbias, TensorRef dout, TensorRef inp,
                             TensorRef weight, int N, int C, int OC) override;
  void do_gelu_forward(TensorRef out, TensorRef inp, int64_t n) override;
  void do_gelu_backward(TensorRef dinp, TensorRef inp, TensorRef dout, int64_t n) override;
  void do_residual_forward(TensorRef out, TensorRef a, TensorRef b, int64_t n) override;
  void do_attention_forward(TensorRef y, float* lse, float* scratch, TensorRef qkv, int B, int T, int C,
                               int NH) override;
  void do_attention_backward(TensorRef dqkv, float* scratch, TensorRef dy, TensorRef qkv, TensorRef y, const float* lse,
                                int B, int T, int C, int NH) override;
  void do_attention_decode(TensorRef y, float* scratch, TensorRef qkv, int pos, int C, int NH) override;
  void do_classifier(float* losses, TensorRef logits, const int32_t* targets, int N, int V, int Vp, float dloss_scale,
                        bool compute_grad) override;
  double do_global_norm_squared(TensorRef x, int64_t n, float* partials) override;
  void do_adamw(TensorRef params, float* master, TensorRef grads, float* m, float* v, const AdamWStep& step) override;

  std::byte* arena_ = nullptr;
  int64_t arena_bytes_ = 0;
  int64_t allocations_ = 0;
};

}  // namespace gpt2
