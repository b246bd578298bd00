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
#include <exception>
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

// The op calls an observer is told about (OpObserver), one per public op of Backend.
enum class OpKind {
  Upload,
  Download,
  Zero,
  WaitHostCopies,
  UploadOffloadedParameters,
  HostAdamW,
  EncoderForward,
  EncoderBackward,
  LayernormForward,
  ResidualLayernormForward,
  LayernormRecompute,
  LayernormBackward,
  MatmulForward,
  MatmulForwardGelu,
  MatmulBackward,
  MatmulBackwardGelu,
  GeluForward,
  GeluBackward,
  ResidualForward,
  AttentionForward,
  AttentionBackward,
  AttentionDecode,
  Classifier,
  GlobalNorm,
  AdamW,
};
// One call: its op, and for the matmuls the shape that tells the model's matmuls apart.
struct OpCall {
  OpKind kind;
  int in_channels = 0;   // matmuls: C (the reduction dimension)
  int out_channels = 0;  // matmuls: OC
  bool has_bias = false;
};
// Sees every op call of the backend it is attached to (Backend::set_op_observer): op_begin right
// before the backend's implementation runs, op_end right after it returns. A call that throws
// gets no op_end (the step it belongs to is over).
class OpObserver {
 public:
  virtual ~OpObserver() = default;
  virtual void op_begin(const OpCall& call) = 0;
  virtual void op_end() = 0;
};

// The op list lives here, once. Each op is a public, non-virtual member that tells the attached
// observer (the profiler) about the call and runs the backend's implementation, the protected
// virtual do_<op>. So a backend implements each op once (CpuBackend, the CUDA backend) and
// nothing restates the list to time it: the profiler is an OpObserver, not a wrapping Backend.
// The defaults of fused ops (do_residual_layernorm_forward, do_matmul_backward_gelu) call the
// other implementations directly, so one public call is one observed call.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  bool is_cuda() const { return device() == Device::CUDA; }
  virtual std::string describe() const = 0;

  // The observer told about every op call from now on; nullptr detaches. Not owned.
  void set_op_observer(OpObserver* observer) { observer_ = observer; }
  OpObserver* op_observer() const { return observer_; }
  // A timer for this backend's calls. This default reads the host's steady clock around each
  // call, which is right for a backend whose calls return when their work is done (the CPU); an
  // asynchronous backend records device events instead (the CUDA backend).
  virtual std::unique_ptr<OpTimer> make_op_timer();

  // ---- memory -------------------------------------------------------------------------------
  // Makes the one arena allocation of plan.arena_bytes (plus the backend's fixed handles) and
  // returns its base. Called once; every later pointer is base + Buffer::offset.
  virtual std::byte* create_arena(const MemoryPlan& plan) = 0;
  // Number of arena/device allocations made so far (stays constant after start-up).
  virtual int64_t allocation_count() const = 0;
  void upload(void* arena_dst, const void* host_src, size_t bytes) {
    Observed o(observer_, {OpKind::Upload});
    do_upload(arena_dst, host_src, bytes);
  }
  void download(void* host_dst, const void* arena_src, size_t bytes) {
    Observed o(observer_, {OpKind::Download});
    do_download(host_dst, arena_src, bytes);
  }
  void zero(void* arena_dst, size_t bytes) {
    Observed o(observer_, {OpKind::Zero});
    do_zero(arena_dst, bytes);
  }
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
  void wait_host_copies() {
    Observed o(observer_, {OpKind::WaitHostCopies});
    do_wait_host_copies();
  }
  // upload() of the parameters the host optimizer updated; its own op so the profile can tell it
  // from the batch uploads.
  void upload_offloaded_parameters(void* arena_dst, const void* host_src, size_t bytes) {
    Observed o(observer_, {OpKind::UploadOffloadedParameters});
    do_upload(arena_dst, host_src, bytes);
  }
  // AdamW on the host, over the host arena (optimizer offload): master, m and v fp32; grads in the
  // run dtype as copied from the device; params_out receives the updated parameters in that dtype
  // (bf16 by the same stochastic rounding as the device kernel; for fp32 it may be master). The
  // same bits as adamw() on the device. Implemented once for every backend with the CPU kernel
  // (engine/backend/host_adamw.cpp).
  void host_adamw(TensorRef params_out, float* master, TensorRef grads, float* m, float* v, const AdamWStep& step) {
    Observed o(observer_, {OpKind::HostAdamW});
    run_host_adamw(params_out, master, grads, m, v, step);
  }

  // ---- ops (shapes as in kernels/cpu/<op>.h) -----------------------------------------------------
  void encoder_forward(TensorRef out, const int32_t* tokens, TensorRef wte, TensorRef wpe, int B, int T, int C) {
    Observed o(observer_, {OpKind::EncoderForward});
    do_encoder_forward(out, tokens, wte, wpe, B, T, C);
  }
  // tokens_host: the same B·T tokens in host memory (the CUDA kernel groups positions by token
  // on the host to accumulate dwte deterministically without atomics).
  void encoder_backward(TensorRef dwte, TensorRef dwpe, TensorRef dout, const int32_t* tokens,
                        const int32_t* tokens_host, int B, int T, int C, int V) {
    Observed o(observer_, {OpKind::EncoderBackward});
    do_encoder_backward(dwte, dwpe, dout, tokens, tokens_host, B, T, C, V);
  }
  void layernorm_forward(TensorRef out, float* mean, float* rstd, TensorRef inp, TensorRef weight, TensorRef bias,
                         int N, int C) {
    Observed o(observer_, {OpKind::LayernormForward});
    do_layernorm_forward(out, mean, rstd, inp, weight, bias, N, C);
  }
  // residual = a + b (rounded to the storage type), then out = layernorm(residual): bitwise the same
  // as residual_forward followed by layernorm_forward. residual may alias a or b.
  void residual_layernorm_forward(TensorRef residual, TensorRef out, float* mean, float* rstd, TensorRef a, TensorRef b,
                                  TensorRef weight, TensorRef bias, int N, int C) {
    Observed o(observer_, {OpKind::ResidualLayernormForward});
    do_residual_layernorm_forward(residual, out, mean, rstd, a, b, weight, bias, N, C);
  }
  // Recomputes the forward's output from the saved statistics, bitwise identical to it.
  void layernorm_recompute(TensorRef out, TensorRef inp, const float* mean, const float* rstd, TensorRef weight,
                           TensorRef bias, int N, int C) {
    Observed o(observer_, {OpKind::LayernormRecompute});
    do_layernorm_recompute(out, inp, mean, rstd, weight, bias, N, C);
  }
  void layernorm_backward(TensorRef dinp, TensorRef dweight, TensorRef dbias, TensorRef dout, TensorRef inp,
                          TensorRef weight, const float* mean, const float* rstd, int N, int C) {
    Observed o(observer_, {OpKind::LayernormBackward});
    do_layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
  }
  // out = inp · weightᵀ + bias; weight (OC, C); bias may be null.
  void matmul_forward(TensorRef out, TensorRef inp, TensorRef weight, TensorRef bias, int N, int C, int OC) {
    Observed o(observer_, {OpKind::MatmulForward, C, OC, static_cast<bool>(bias)});
    do_matmul_forward(out, inp, weight, bias, N, C, OC);
  }
  // pre = inp · weightᵀ + bias and out = gelu(pre), fused where the backend can.
  void matmul_forward_gelu(TensorRef pre, TensorRef out, TensorRef inp, TensorRef weight, TensorRef bias, int N, int C,
                           int OC) {
    Observed o(observer_, {OpKind::MatmulForwardGelu, C, OC, static_cast<bool>(bias)});
    do_matmul_forward_gelu(pre, out, inp, weight, bias, N, C, OC);
  }
  // dinp = dout · weight (written; may be null), dweight += doutᵀ · inp, dbias += Σ dout (may be null).
  void matmul_backward(TensorRef dinp, TensorRef dweight, TensorRef dbias, TensorRef dout, TensorRef inp,
                       TensorRef weight, int N, int C, int OC) {
    Observed o(observer_, {OpKind::MatmulBackward, C, OC, static_cast<bool>(dbias)});
    do_matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
  }
  // matmul_backward through a GELU: dinp = (dout · weight) ∘ gelu'(pre_gelu).
  void matmul_backward_gelu(TensorRef dinp, TensorRef dweight, TensorRef dbias, TensorRef dout, TensorRef inp,
                            TensorRef weight, TensorRef pre_gelu, int N, int C, int OC) {
    Observed o(observer_, {OpKind::MatmulBackwardGelu, C, OC, static_cast<bool>(dbias)});
    do_matmul_backward_gelu(dinp, dweight, dbias, dout, inp, weight, pre_gelu, N, C, OC);
  }
  void gelu_forward(TensorRef out, TensorRef inp, int64_t n) {
    Observed o(observer_, {OpKind::GeluForward});
    do_gelu_forward(out, inp, n);
  }
  // dinp = gelu'(inp) · dout; dinp may alias dout.
  void gelu_backward(TensorRef dinp, TensorRef inp, TensorRef dout, int64_t n) {
    Observed o(observer_, {OpKind::GeluBackward});
    do_gelu_backward(dinp, inp, dout, n);
  }
  // out = a + b; out may alias a or b.
  void residual_forward(TensorRef out, TensorRef a, TensorRef b, int64_t n) {
    Observed o(observer_, {OpKind::ResidualForward});
    do_residual_forward(out, a, b, n);
  }
  void attention_forward(TensorRef y, float* lse, float* scratch, TensorRef qkv, int B, int T, int C, int NH) {
    Observed o(observer_, {OpKind::AttentionForward});
    do_attention_forward(y, lse, scratch, qkv, B, T, C, NH);
  }
  void attention_backward(TensorRef dqkv, float* scratch, TensorRef dy, TensorRef qkv, TensorRef y, const float* lse,
                          int B, int T, int C, int NH) {
    Observed o(observer_, {OpKind::AttentionBackward});
    do_attention_backward(dqkv, scratch, dy, qkv, y, lse, B, T, C, NH);
  }
  // Incremental decoding (B = 1): y (C) = causal attention of the query in row `pos` of qkv
  // (T, 3C) over the keys and values of rows 0..pos (the KV cache). `scratch` holds at least
  // NH·(pos+1) floats (the plan's scratch.att). Backends without it throw std::logic_error.
  void attention_decode(TensorRef y, float* scratch, TensorRef qkv, int pos, int C, int NH) {
    Observed o(observer_, {OpKind::AttentionDecode});
    do_attention_decode(y, scratch, qkv, pos, C, NH);
  }
  // Fused softmax-cross-entropy over N rows: losses (N) written; when compute_grad, logits are
  // overwritten with dlogits · dloss_scale (padded columns 0). Targets are already validated.
  void classifier(float* losses, TensorRef logits, const int32_t* targets, int N, int V, int Vp, float dloss_scale,
                  bool compute_grad) {
    Observed o(observer_, {OpKind::Classifier});
    do_classifier(losses, logits, targets, N, V, Vp, dloss_scale, compute_grad);
  }
  // Σ x² over n elements, deterministic; `partials` is the plan's workspace.norm_partials.
  double global_norm_squared(TensorRef x, int64_t n, float* partials) {
    Observed o(observer_, {OpKind::GlobalNorm});
    return do_global_norm_squared(x, n, partials);
  }
  // AdamW over the flat parameters. master may be null (params are fp32 and updated in place);
  // otherwise master is updated and params get its rounded copy.
  void adamw(TensorRef params, float* master, TensorRef grads, float* m, float* v, const AdamWStep& step) {
    Observed o(observer_, {OpKind::AdamW});
    do_adamw(params, master, grads, m, v, step);
  }

 protected:
  // The implementations, one per op above (same parameters and rules).
  virtual void do_upload(void* arena_dst, const void* host_src, size_t bytes) = 0;
  virtual void do_download(void* host_dst, const void* arena_src, size_t bytes) = 0;
  virtual void do_zero(void* arena_dst, size_t bytes) = 0;
  virtual void do_wait_host_copies() {}
  virtual void do_encoder_forward(TensorRef out, const int32_t* tokens, TensorRef wte, TensorRef wpe, int B, int T,
                                  int C) = 0;
  virtual void do_encoder_backward(TensorRef dwte, TensorRef dwpe, TensorRef dout, const int32_t* tokens,
                                   const int32_t* tokens_host, int B, int T, int C, int V) = 0;
  virtual void do_layernorm_forward(TensorRef out, float* mean, float* rstd, TensorRef inp, TensorRef weight,
                                    TensorRef bias, int N, int C) = 0;
  // This default runs the two ops; a backend overrides it to save the second read of the residual.
  virtual void do_residual_layernorm_forward(TensorRef residual, TensorRef out, float* mean, float* rstd, TensorRef a,
                                             TensorRef b, TensorRef weight, TensorRef bias, int N, int C) {
    do_residual_forward(residual, a, b, static_cast<int64_t>(N) * C);
    do_layernorm_forward(out, mean, rstd, residual, weight, bias, N, C);
  }
  virtual void do_layernorm_recompute(TensorRef out, TensorRef inp, const float* mean, const float* rstd,
                                      TensorRef weight, TensorRef bias, int N, int C) = 0;
  virtual void do_layernorm_backward(TensorRef dinp, TensorRef dweight, TensorRef dbias, TensorRef dout, TensorRef inp,
                                     TensorRef weight, const float* mean, const float* rstd, int N, int C) = 0;
  virtual void do_matmul_forward(TensorRef out, TensorRef inp, TensorRef weight, TensorRef bias, int N, int C,
                                 int OC) = 0;
  virtual void do_matmul_forward_gelu(TensorRef pre, TensorRef out, TensorRef inp, TensorRef weight, TensorRef bias,
                                      int N, int C, int OC) = 0;
  virtual void do_matmul_backward(TensorRef dinp, TensorRef dweight, TensorRef dbias, TensorRef dout, TensorRef inp,
                                  TensorRef weight, int N, int C, int OC) = 0;
  // This default runs the matmul backward, then the GELU gradient in place; a backend overrides it
  // to fuse the GELU gradient into the matmul's epilogue (the rounding of dinp then happens once).
  virtual void do_matmul_backward_gelu(TensorRef dinp, TensorRef dweight, TensorRef dbias, TensorRef dout,
                                       TensorRef inp, TensorRef weight, TensorRef pre_gelu, int N, int C, int OC) {
    do_matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
    do_gelu_backward(dinp, pre_gelu, dinp, static_cast<int64_t>(N) * C);
  }
  virtual void do_gelu_forward(TensorRef out, TensorRef inp, int64_t n) = 0;
  virtual void do_gelu_backward(TensorRef dinp, TensorRef inp, TensorRef dout, int64_t n) = 0;
  virtual void do_residual_forward(TensorRef out, TensorRef a, TensorRef b, int64_t n) = 0;
  virtual void do_attention_forward(TensorRef y, float* lse, float* scratch, TensorRef qkv, int B, int T, int C,
                                    int NH) = 0;
  virtual void do_attention_backward(TensorRef dqkv, float* scratch, TensorRef dy, TensorRef qkv, TensorRef y,
                                     const float* lse, int B, int T, int C, int NH) = 0;
  virtual void do_attention_decode(TensorRef y, float* scratch, TensorRef qkv, int pos, int C, int NH) {
    (void)y, (void)scratch, (void)qkv, (void)pos, (void)C, (void)NH;
    throw std::logic_error("attention_decode: not supported by this backend");
  }
  virtual void do_classifier(float* losses, TensorRef logits, const int32_t* targets, int N, int V, int Vp,
                             float dloss_scale, bool compute_grad) = 0;
  virtual double do_global_norm_squared(TensorRef x, int64_t n, float* partials) = 0;
  virtual void do_adamw(TensorRef params, float* master, TensorRef grads, float* m, float* v,
                        const AdamWStep& step) = 0;

 private:
  // Tells the observer (if any) about one call for the length of a scope: op_end when the
  // scope is left normally, not while an exception from the implementation unwinds it.
  class Observed {
   public:
    Observed(OpObserver* observer, const OpCall& call) : observer_(observer), exceptions_(std::uncaught_exceptions()) {
      if (observer_) observer_->op_begin(call);
    }
    ~Observed() noexcept(false) {
      if (observer_ && std::uncaught_exceptions() == exceptions_) observer_->op_end();
    }
    Observed(const Observed&) = delete;
    Observed& operator=(const Observed&) = delete;

   private:
    OpObserver* observer_;
    int exceptions_;
  };
  void run_host_adamw(TensorRef params_out, float* master, TensorRef grads, float* m, float* v, const AdamWStep& step);

  OpObserver* observer_ = nullptr;
};

}  // namespace gpt2
