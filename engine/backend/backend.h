// The backend interface: one call per op. engine/model writes the GPT-2 forward and backward
// sequence once over this interface; the CPU backend (kernels/cpu, fp32) and the CUDA backend
// (kernels/cuda, bf16 or fp32 storage) implement it.
//
// Every pointer a backend receives points into the arena it created from the memory plan
// (create_arena), except where a parameter says "host". Tensors travel as TensorRef: a pointer
// plus the storage dtype, so the model's offset arithmetic is dtype-agnostic. LayerNorm
// statistics, attention logsumexps, losses and optimizer state are always fp32 (float*).
//
// Gradient rule (as in the kernels): parameter gradients +=, activation gradients =, except
// layernorm_backward, which ADDS into dinp (the residual stream's gradient; this fuses the skip
// connection's gradient add).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/plan/memory_plan.h"

namespace gpt2 {

struct TensorRef {
  std::byte* ptr = nullptr;
  DType dtype = DType::FP32;

  TensorRef at(int64_t elems) const { return {ptr + elems * dtype_size(dtype), dtype}; }
  template <typename T>
  T* as() const {
    return reinterpret_cast<T*>(ptr);
  }
  explicit operator bool() const { return ptr != nullptr; }
};

// One AdamW step over the flat parameter buffer. `ranges` are the 16 tensors' element ranges
// (relative to the start of the flat parameter view); padding between them is left alone.
struct AdamWStep {
  struct Range {
    int64_t offset;
    int64_t count;
    bool decay;  // weight decay applies to 2-D weights only
  };
  std::vector<Range> ranges;
  float lr = 0, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0;
  int64_t t = 1;            // 1-based step for bias correction
  float grad_scale = 1.0f;  // gradient clipping factor
  uint64_t seed = 0;        // stochastic rounding of bf16 parameters (per step)
  int64_t index_base = 0;   // flat index of element 0 of the pointers passed (ZeRO-1 shard start)
};

// Times a sequence of backend calls for the profile: start() right before a call and stop()
// right after it. collect() waits for the device once and returns the seconds of every
// start/stop pair since the last collect(), in order.
class OpTimer {
 public:
  virtual ~OpTimer() = default;
  virtual void start() = 0;
  virtual void stop() = 0;
  virtual std::vector<double> collect() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  bool is_cuda() const { return device() == Device::CUDA; }
  virtual std::string describe() const = 0;

  // ---- memory -------------------------------------------------------------------------------
  // Makes the one arena allocation of plan.arena_bytes (plus the backend's fixed handles) and
  // returns its base. Called once; every later pointer is base + Buffer::offset.
  virtual std::byte* create_arena(const MemoryPlan& plan) = 0;
  // Number of arena/device allocations made so far (stays constant after start-up).
  virtual int64_t allocation_count() const = 0;
  virtual void upload(void* arena_dst, const void* host_src, size_t bytes) = 0;
  virtual void download(void* host_dst, const void* arena_src, size_t bytes) = 0;
  virtual void zero(void* arena_dst, size_t bytes) = 0;
  virtual void synchronize() {}
  // ---- optimizer offload (the plan's host arena) -------------------------------------------------
  // Allocates plan.host_arena_bytes of host memory the device copies to and from directly (pinned,
  // on CUDA). Called once, after create_arena. A backend without a device refuses.
  virtual std::byte* create_host_arena(const MemoryPlan& plan) {
    (void)plan;
    throw std::logic_error(describe() + ": optimizer offload needs a device backend");
  }
  // Queues a copy of `bytes` from the arena into the host arena. It starts once the work issued
  // so far has finished, and runs beside the work issued after it (CUDA: on a copy stream that
  // waits for an event on the compute stream). The host must not read host_dst before
  // wait_host_copies(), and the work issued after the call must not write arena_src.
  virtual void copy_to_host_async(void* host_dst, const void* arena_src, size_t bytes) {
    (void)host_dst, (void)arena_src, (void)bytes;
    throw std::logic_error(describe() + ": optimizer offload needs a device backend");
  }
  // Returns when every queued copy_to_host_async has landed.
  virtual void wait_host_copies() {}
  // upload() of the parameters the host optimizer updated; its own call so the profile can tell
  // it from the batch uploads.
  virtual void upload_offloaded_parameters(void* arena_dst, const void* host_src, size_t bytes) {
    upload(arena_dst, host_src, bytes);
  }
  // A timer for this backend's calls. This default reads the host's steady clock around each
  // call, which is right for a backend whose calls return when their work is done (the CPU); an
  // asynchronous backend records device events instead (the CUDA backend).
  virtual std::unique_ptr<OpTimer> make_op_timer();
  // The backend that does the work: itself, or the one a wrapper (the profiler) forwards to.
  virtual Backend& underlying() { return *this; }

  // ---- ops (shapes as in kernels/cpu/<op>.h) -----------------------------------------------------
  virtual void encoder_forward(TensorRef out, const int32_t* tokens, TensorRef wte, TensorRef wpe, int B, int T,
                               int C) = 0;
  // tokens_host: the same B·T tokens in host memory (the CUDA kernel groups positions by token
  // on the host to accumulate dwte deterministically without atomics).
  virtual void encoder_backward(TensorRef dwte, TensorRef dwpe, TensorRef dout, const int32_t* tokens,
                                const int32_t* tokens_host, int B, int T, int C, int V) = 0;
  virtual void layernorm_forward(TensorRef out, float* mean, float* rstd, TensorRef inp, TensorRef weight,
                                 TensorRef bias, int N, int C) = 0;
  // residual = a + b (rounded to the storage type), then out = layernorm(residual): bitwise the same
  // as residual_forward followed by layernorm_forward, which is what this default does; a backend
  // overrides it to save the second read of the residual. residual may alias a or b.
  virtual void residual_layernorm_forward(TensorRef residual, TensorRef out, float* mean, float* rstd, TensorRef a,
                                          TensorRef b, TensorRef weight, TensorRef bias, int N, int C) {
    residual_forward(residual, a, b, static_cast<int64_t>(N) * C);
    layernorm_forward(out, mean, rstd, residual, weight, bias, N, C);
  }
  // Recomputes the forward's output from the saved statistics, bitwise identical to it.
  virtual void layernorm_recompute(TensorRef out, TensorRef inp, const float* mean, const float* rstd, TensorRef weight,
                                   TensorRef bias, int N, int C) = 0;
  virtual void layernorm_backward(TensorRef dinp, TensorRef dweight, TensorRef dbias, TensorRef dout, TensorRef inp,
                                  TensorRef weight, const float* mean, const float* rstd, int N, int C) = 0;
  // out = inp · weightᵀ + bias; weight (OC, C); bias may be null.
  virtual void matmul_forward(TensorRef out, TensorRef inp, TensorRef weight, TensorRef bias, int N, int C, int OC) = 0;
  // pre = inp · weightᵀ + bias and out = gelu(pre), fused where the backend can.
  virtual void matmul_forward_gelu(TensorRef pre, TensorRef out, TensorRef inp, TensorRef weight, TensorRef bias, int N,
                                   int C, int OC) = 0;
  // dinp = dout · weight (written; may be null), dweight += doutᵀ · inp, dbias += Σ dout (may be null).
  virtual void matmul_backward(TensorRef dinp, TensorRef dweight, TensorRef dbias, TensorRef dout, TensorRef inp,
                               TensorRef weight, int N, int C, int OC) = 0;
  // matmul_backward through a GELU: dinp = (dout · weight) ∘ gelu'(pre_gelu). This default runs
  // the two ops; a backend overrides it to fuse the GELU gradient into the matmul's epilogue (the
  // rounding of dinp then happens once).
  virtual void matmul_backward_gelu(TensorRef dinp, TensorRef dweight, TensorRef dbias, TensorRef dout, TensorRef inp,
                                    TensorRef weight, TensorRef pre_gelu, int N, int C, int OC) {
    matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
    gelu_backward(dinp, pre_gelu, dinp, static_cast<int64_t>(N) * C);
  }
  virtual void gelu_forward(TensorRef out, TensorRef inp, int64_t n) = 0;
  // dinp = gelu'(inp) · dout; dinp may alias dout.
  virtual void gelu_backward(TensorRef dinp, TensorRef inp, TensorRef dout, int64_t n) = 0;
  // out = a + b; out may alias a or b.
  virtual void residual_forward(TensorRef out, TensorRef a, TensorRef b, int64_t n) = 0;
  virtual void attention_forward(TensorRef y, float* lse, float* scratch, TensorRef qkv, int B, int T, int C,
                                 int NH) = 0;
  virtual void attention_backward(TensorRef dqkv, float* scratch, TensorRef dy, TensorRef qkv, TensorRef y,
                                  const float* lse, int B, int T, int C, int NH) = 0;
  // Incremental decoding (B = 1): y (C) = causal attention of the query in row `pos` of qkv
  // (T, 3C) over the keys and values of rows 0..pos (the KV cache). `scratch` holds at least
  // NH·(pos+1) floats (the plan's scratch.att). Backends without it throw std::logic_error.
  virtual void attention_decode(TensorRef y, float* scratch, TensorRef qkv, int pos, int C, int NH) {
    (void)y, (void)scratch, (void)qkv, (void)pos, (void)C, (void)NH;
    throw std::logic_error("attention_decode: not supported by this backend");
  }
  // Fused softmax-cross-entropy over N rows: losses (N) written; when compute_grad, logits are
  // overwritten with dlogits · dloss_scale (padded columns 0). Targets are already validated.
  virtual void classifier(float* losses, TensorRef logits, const int32_t* targets, int N, int V, int Vp,
                          float dloss_scale, bool compute_grad) = 0;
  // Σ x² over n elements, deterministic; `partials` is the plan's workspace.norm_partials.
  virtual double global_norm_squared(TensorRef x, int64_t n, float* partials) = 0;
  // AdamW over the flat parameters. master may be null (params are fp32 and updated in place);
  // otherwise master is updated and params get its rounded copy.
  virtual void adamw(TensorRef params, float* master, TensorRef grads, float* m, float* v, const AdamWStep& step) = 0;
  // AdamW on the host, over the host arena (optimizer offload): master, m and v fp32; grads in the
  // run dtype as copied from the device; params_out receives the updated parameters in that dtype
  // (bf16 by the same stochastic rounding as the device kernel; for fp32 it may be master). The
  // same bits as adamw() on the device. Implemented once for every backend with the CPU kernel
  // (engine/backend/host_adamw.cpp); virtual so the profiler can time it.
  virtual void host_adamw(TensorRef params_out, float* master, TensorRef grads, float* m, float* v,
                          const AdamWStep& step);
};

}  // namespace gpt2
