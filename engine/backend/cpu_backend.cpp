#include "engine/backend/cpu_backend.h"

#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

#include "engine/backend/adamw_step.h"
#include "kernels/cpu/adamw.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_decode.h"
#include "kernels/cpu/classifier.h"
#include "kernels/cpu/encoder.h"
#include "kernels/cpu/gelu.h"
#include "kernels/cpu/global_norm.h"
#include "kernels/cpu/layernorm.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/residual.h"

namespace gpt2 {

namespace {
// The CPU backend stores everything in fp32; a bf16 tensor here is a bug in the caller.
float* f32(TensorRef t) {
  if (t.ptr && t.dtype != DType::FP32) throw std::logic_error("CPU backend: tensor is not fp32");
  return t.as<float>();
}
}  // namespace

CpuBackend::CpuBackend() = default;
CpuBackend::~CpuBackend() { std::free(arena_); }

std::string CpuBackend::describe() const {
  return "cpu (fp32, " + std::to_string(omp_get_max_threads()) + " threads, matmul " + cpu::matmul_isa() + ")";
}

std::byte* CpuBackend::create_arena(const MemoryPlan& plan) {
  if (arena_) throw std::logic_error("CPU backend: the arena already exists");
  // Page-aligned, a whole number of pages (aligned_alloc's rule).
  const size_t bytes = (static_cast<size_t>(plan.arena_bytes) + 4095) / 4096 * 4096;
  arena_ = static_cast<std::byte*>(std::aligned_alloc(4096, bytes));
  if (!arena_) throw std::bad_alloc();
  ++allocations_;
  arena_bytes_ = plan.arena_bytes;
  std::memset(arena_, 0, bytes);
  return arena_;
}

void CpuBackend::do_upload(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
void CpuBackend::do_download(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
void CpuBackend::do_zero(void* dst, size_t bytes) { std::memset(dst, 0, bytes); }

void CpuBackend::do_encoder_forward(TensorRef out, const int32_t* tokens, TensorRef wte, TensorRef wpe, int B, int T,
                                       int C) {
  cpu::encoder_forward(f32(out), tokens, f32(wte), f32(wpe), B, T, C);
}
void CpuBackend::do_encoder_backward(TensorRef dwte, TensorRef dwpe, TensorRef dout, const int32_t* tokens,
                                        const int32_t* /*tokens_host: same memory on the CPU*/, int B, int T, int C,
                                        int /*V*/) {
  cpu::encoder_backward(f32(dwte), f32(dwpe), f32(dout), tokens, B, T, C);
}
void CpuBackend::do_layernorm_forward(TensorRef out, float* mean, float* rstd, TensorRef inp, TensorRef weight,
                                         TensorRef bias, int N, int C) {
  cpu::layernorm_forward(f32(out), mean, rstd, f32(inp), f32(weight), f32(bias), 1, N, C);
}
void CpuBackend::do_layernorm_recompute(TensorRef out, TensorRef inp, const float* mean, const float* rstd,
                                           TensorRef weight, TensorRef bias, int N, int C) {
  cpu::layernorm_recompute(f32(out), f32(inp), mean, rstd, f32(weight), f32(bias), 1, N, C);
}
void CpuBackend::do_layernorm_backward(TensorRef dinp, TensorRef dweight, TensorRef dbias, TensorRef dout,
                                          TensorRef inp, TensorRef weight, const float* mean, const float* rstd, int N,
                                          int C) {
  cpu::layernorm_backward(f32(dinp), f32(dweight), f32(dbias), f32(dout), f32(inp), f32(weight), mean, rstd, 1, N, C);
}
void CpuBackend::do_matmul_forward(TensorRef out, TensorRef inp, TensorRef weight, TensorRef bias, int N, int C,
                                      int OC) {
  cpu::matmul_forward(f32(out), f32(inp), f32(weight), f32(bias), N, C, OC);
}
void CpuBackend::do_matmul_forward_gelu(TensorRef pre, TensorRef out, TensorRef inp, TensorRef weight, TensorRef bias,
                                           int N, int C, int OC) {
  cpu::matmul_forward(f32(pre), f32(inp), f32(weight), f32(bias), N, C, OC);
  cpu::gelu_forward(f32(out), f32(pre), static_cast<size_t>(N) * OC);
}
void CpuBackend::do_matmul_backward(TensorRef dinp, TensorRef dweight, TensorRef dbias, TensorRef dout, TensorRef inp,
                                       TensorRef weight, int N, int C, int OC) {
  cpu::matmul_backward(f32(dinp), f32(dweight), f32(dbias), f32(dout), f32(inp), f32(weight), N, C, OC);
}
void CpuBackend::do_gelu_forward(TensorRef out, TensorRef inp, int64_t n) {
  cpu::gelu_forward(f32(out), f32(inp), static_cast<size_t>(n));
}
void CpuBackend::do_gelu_backward(TensorRef dinp, TensorRef inp, TensorRef dout, int64_t n) {
  cpu::gelu_backward(f32(dinp), f32(inp), f32(dout), static_cast<size_t>(n));
}
void CpuBackend::do_residual_forward(TensorRef out, TensorRef a, TensorRef b, int64_t n) {
  cpu::residual_forward(f32(out), f32(a), f32(b), static_cast<size_t>(n));
}
void CpuBackend::do_attention_forward(TensorRef y, float* lse, float* scratch, TensorRef qkv, int B, int T, int C,
                                         int NH) {
  cpu::attention_forward(f32(y), lse, scratch, f32(qkv), B, T, C, NH);
}
void CpuBackend::do_attention_backward(TensorRef dqkv, float* scratch, TensorRef dy, TensorRef qkv, TensorRef y,
                                          const float* lse, int B, int T, int C, int NH) {
  cpu::attention_backward(f32(dqkv), scratch, f32(dy), f32(qkv), f32(y), lse, B, T, C, NH);
}
void CpuBackend::do_attention_decode(TensorRef y, float* scratch, TensorRef qkv, int pos, int C, int NH) {
  cpu::attention_decode(f32(y), scratch, f32(qkv), pos, C, NH);
}
void CpuBackend::do_classifier(float* losses, TensorRef logits, const int32_t* targets, int N, int V, int Vp,
                                  float dloss_scale, bool compute_grad) {
  const int64_t bad =
      cpu::classifier_forward_backward(losses, f32(logits), targets, N, V, Vp, dloss_scale, compute_grad);
  if (bad >= 0) throw std::logic_error("classifier: target out of range at row " + std::to_string(bad));
}
double CpuBackend::do_global_norm_squared(TensorRef x, int64_t n, float* /*partials*/) {
  return cpu::global_norm_squared(f32(x), static_cast<size_t>(n));
}
void CpuBackend::do_adamw(TensorRef params, float* master, TensorRef grads, float* m, float* v, const AdamWStep& s) {
  if (master) throw std::logic_error("CPU backend: fp32 parameters need no master copy");
  const std::vector<cpu::AdamWRange> ranges = adamw_kernel_ranges(s);
  const cpu::AdamWParams hp = adamw_kernel_params(s);
  cpu::adamw_update_ranges(f32(params), f32(grads), m, v, ranges.data(), static_cast<int>(ranges.size()), hp);
}

}  // namespace gpt2
