// GPT-2, written once over the Backend interface: the forward pass, the chunked output head with
// the fused softmax-cross-entropy, the backward pass with every recompute policy of the plan, and
// the optimizer step. Every buffer is carved from the plan's arena; nothing here allocates
// backend memory after construction.
//
// One micro-step:   load_batch → forward → head(grad) → backward      (gradients +=)
// One eval batch:   load_batch → forward → head(no grad)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/plan/memory_plan.h"

namespace gpt2 {

class Model {
 public:
  // Creates the backend's arena from the plan and carves every pointer.
  Model(const MemoryPlan& plan, Backend& backend);

  const MemoryPlan& plan() const { return plan_; }
  const ModelConfig& config() const { return plan_.model; }
  Backend& backend() { return backend_; }

  // ---- parameters (host side: fp32, flat, padded layout of plan.param_offsets) ---------------
  // GPT-2 initialisation: N(0, 0.02) weights, residual projections (attprojw, fcprojw) scaled
  // by 1/√(2L), zero biases, unit layernorm gains, zero padding rows of wte. Seeded per tensor.
  static std::vector<float> gpt2_init(const MemoryPlan& plan, uint64_t seed);
  void init_gpt2(uint64_t seed);
  // Sets parameters (and the fp32 master copy when there is one); zeroes m, v and gradients.
  void set_parameters(const std::vector<float>& flat);
  std::vector<float> parameters() const;  // the master copy when present, else the parameters
  // The parameters as stored in the run dtype (bf16 values widened exactly), even when a master
  // copy exists: what the next forward pass uses, and what a checkpoint's model file holds.
  std::vector<float> stored_parameters() const;
  std::vector<float> gradients() const;

  // This rank's optimizer state (fp32 shard): master weights (empty when there are none), m, v.
  struct OptimizerState {
    std::vector<float> master, m, v;
  };
  OptimizerState optimizer_state() const;
  // Restores the state saved by optimizer_state(); the bf16 parameters are re-derived from the
  // master copy by the caller's set_parameters() beforehand (or are fp32 already).
  void set_optimizer_state(const OptimizerState& state);

  // ---- one micro-batch ------------------------------------------------------------------------
  // Copies B·T inputs and targets (host memory) into the arena. B and T default to the plan's;
  // smaller values serve evaluation and sampling. Returns the index of the first token outside
  // [0, V), or -1 when all are valid (then nothing bad reaches a kernel).
  int64_t load_batch(const int32_t* inputs, const int32_t* targets, int B = 0, int T = 0);
  void forward();
  // The output head in chunks of plan.run.logits_chunk tokens. Returns the sum of the per-token
  // losses. With compute_grad, dlogits · dloss_scale flows into dwte and d(lnf).
  double head(bool compute_grad, float dloss_scale);
  void backward();

  // Logits for the loaded batch (after forward), rows [0, B·T), V columns each (host).
  std::vector<float> logits();
  // Per-token losses (B·T, host) written by the last head() call.
  std::vector<float> token_losses() const;

  // ---- incremental decoding (sampling; B = 1) ------------------------------------------------------
  // The per-layer qkv activations are the KV cache: position t's keys and values stay in row t
  // of each layer's qkv buffer. Prefill with load_batch(prompt, nullptr, 1, P) + forward() (or
  // with decode_step per token), then decode_step(token, P), (…, P+1), … Each decode_step runs
  // every op on one row only and attends over rows 0..pos with Backend::attention_decode, so
  // one new token costs O(pos·C) attention, not a forward pass over the prefix.
  // Needs pos < plan T and a plan without block-recomputed layers (their qkv is not kept).
  // Returns the V logits of position pos.
  std::vector<float> decode_step(int32_t token, int pos);
  // The V logits of row `row` of the last forward() (or decode_step) (host).
  std::vector<float> row_logits(int row);
  bool can_decode() const { return plan_.recompute_layers == 0; }

  // ---- optimizer ---------------------------------------------------------------------------------
  void zero_grads();
  // Σ g² over all gradients, or (ZeRO-1, shard_only) over this rank's shard only.
  double grad_norm_squared(bool shard_only = false);
  // The flat parameter and gradient views (plan.flat_param_elems elements), for collectives.
  // An inference plan has no gradients: flat_grads() is then a null TensorRef.
  TensorRef flat_params() const { return params_.tensor[WTE]; }
  TensorRef flat_grads() const { return grads_.tensor[WTE]; }
  // AdamW over all parameters (ZeRO-1: over this rank's shard, whose gradients must already be
  // reduced; the caller all-gathers the parameters afterwards); fills `ranges` from the plan.
  // Offloaded (plan.offloaded()): the gradients go to the host arena (those the backward already
  // sent, see stream_gradients_to_host), AdamW runs on the host, and the updated parameters are
  // uploaded before it returns.
  void adamw(AdamWStep step);
  // Offloaded runs: makes the next backward() send each layer's gradients to the host as soon as
  // that layer's backward has finished them, overlapped with the layers below (the trainer asks
  // for it on a step's last micro-batch). Ignored when not offloaded, and with several ranks,
  // whose gradients are reduced across ranks after the backward first.
  void stream_gradients_to_host(bool on);
  AdamWStep adamw_template() const;

 private:
  // Every view below is resolved from the plan once, in the constructor, so a step does no
  // lookup by name. A view whose buffer the plan does not have is null (TensorRef{} / nullptr).

  // The 16 parameter tensors, or their gradients: tensor[i] is the start of tensor i (ParamIndex
  // order) in the arena; tensor[WTE] is also the start of the flat view of all 16.
  struct ParamTensors {
    TensorRef tensor[kNumParamTensors];
  };
  // One layer's activations, as its forward pass writes them and its backward pass reads them:
  // views into that layer's slice of the stored act.* buffers, or into the one-layer recompute.*
  // buffers where the recompute policy does not store them.
  struct LayerActs {
    TensorRef ln1, qkv, atty, x2, ln2, fch, fch_gelu;
    float *ln1_mean = nullptr, *ln1_rstd = nullptr, *ln2_mean = nullptr, *ln2_rstd = nullptr, *lse = nullptr;
  };
  // The buffers that are not per layer (act.*, scratch.*, logits.*, workspace.*).
  struct StepBuffers {
    int32_t *inputs = nullptr, *targets = nullptr;  // act.inputs, act.targets (B·T tokens)
    TensorRef residual;                              // act.residual: L+1 slices of B·T·C, see residual()
    TensorRef lnf;                                   // act.lnf
    float *lnf_mean = nullptr, *lnf_rstd = nullptr;  // act.lnf_mean, act.lnf_rstd
    TensorRef dresidual, dbtc, dqkv, dfch;           // scratch.* of the backward pass (training only)
    float* att_scratch = nullptr;                    // scratch.att
    TensorRef logits_chunk;                          // logits.chunk
    float* losses = nullptr;                         // logits.losses
    float* norm_partials = nullptr;                  // workspace.norm_partials
  };
  // The optimizer's fp32 state (this rank's shard): in the host arena when offloaded, else in the
  // device arena; master is null without a master copy, all three are null in an inference plan.
  // host_grads and host_params are the offload staging buffers of the host arena: null when not
  // offloaded, and host_params null for fp32 runs too (they upload the master copy itself).
  struct OptimizerBuffers {
    float *master = nullptr, *m = nullptr, *v = nullptr;
    TensorRef host_grads, host_params;
  };

  void resolve_views();  // fills the views below from the plan (constructor only)
  bool has_master_copy() const { return plan_.run.master_weights == 1; }
  // n elements of t, downloaded and widened to fp32.
  std::vector<float> download_floats(TensorRef t, int64_t n) const;
  // n floats of the optimizer's fp32 state at src, in the host arena (offload) or on the device.
  std::vector<float> read_optimizer_state(const float* src, int64_t n) const;
  // Throws std::logic_error naming `caller` in an inference plan, which has no gradients or
  // optimizer state (backward, zero_grads, grad_norm_squared, adamw, gradients).
  void require_training(const char* caller) const;
  // Queues the copy of flat gradient elements [offset, offset + count) to the host arena.
  void send_gradients(int64_t offset, int64_t count);
  void send_layer_gradients(int layer);
  // Parameter (gradient) tensor i; with layer ≥ 0, that layer's slice of a per-layer tensor.
  TensorRef param(int i, int layer = -1) const {
    return layer < 0 ? params_.tensor[i] : params_.tensor[i].at(layer * layer_elems_[i]);
  }
  TensorRef grad(int i, int layer = -1) const {
    return layer < 0 ? grads_.tensor[i] : grads_.tensor[i].at(layer * layer_elems_[i]);
  }
  TensorRef residual(int i) const;
  const LayerActs& layer_acts(int layer) const { return layers_[layer]; }
  void layer_forward(int layer, const LayerActs& a, bool write_output);
  void layer_backward(int layer);

  MemoryPlan plan_;
  Backend& backend_;
  std::byte* arena_ = nullptr;
  std::byte* host_arena_ = nullptr;  // offload only
  bool stream_gradients_ = false;    // send each layer's gradients during the next backward()
  bool gradients_sent_ = false;      // the last backward() sent every gradient already
  DType act_dtype_;
  int B_ = 0, T_ = 0;                 // current batch shape (≤ the plan's)
  std::vector<int32_t> inputs_host_;  // host copy of the loaded inputs (B·T, sized at start-up)

  ParamTensors params_, grads_;  // grads_ is all null in an inference plan
  // Per parameter tensor: its elements (unpadded), and the elements of one layer's slice (the
  // stride between layers; 0 for the four tensors that are not per layer: wte, wpe, lnfw, lnfb).
  int64_t tensor_elems_[kNumParamTensors] = {};
  int64_t layer_elems_[kNumParamTensors] = {};
  std::vector<LayerActs> layers_;  // layers_[l]: layer l's activations
  StepBuffers bufs_;
  OptimizerBuffers opt_;
  AdamWStep adamw_template_;  // the 16 tensors' ranges and weight decay flags
};

}  // namespace gpt2
