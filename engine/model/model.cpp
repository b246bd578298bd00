#include "engine/model/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "engine/util/bf16.h"
#include "engine/util/rng.h"

namespace gpt2 {

Model::Model(const MemoryPlan& plan, Backend& backend) : plan_(plan), backend_(backend) {
  if (plan.run.device != backend.device())
    throw std::logic_error(std::string("plan is for device ") + to_string(plan.run.device) + " but the backend is " +
                           to_string(backend.device()));
  act_dtype_ = plan.run.precision == Precision::BF16 ? DType::BF16 : DType::FP32;
  arena_ = backend_.create_arena(plan_);
  if (plan_.offloaded()) host_arena_ = backend_.create_host_arena(plan_);
  B_ = plan.run.micro_batch;
  T_ = plan.run.seq_len;
  inputs_host_.resize(static_cast<size_t>(B_) * T_);
  resolve_views();
}

void Model::resolve_views() {
  auto buf = [&](const char* name) -> TensorRef {
    const Buffer& b = plan_.find(name);
    return {arena_ + b.offset, b.dtype};
  };
  auto fbuf = [&](const char* name) { return buf(name).as<float>(); };
  // Buffers that only some plans have (training, recompute policy, device) resolve to null.
  auto buf_if = [&](const char* name) -> TensorRef {
    const Buffer* b = plan_.find_if(name);
    return b ? TensorRef{arena_ + b->offset, b->dtype} : TensorRef{};
  };
  auto fbuf_if = [&](const char* name) { return buf_if(name).as<float>(); };
  auto host_buf_if = [&](const char* name) -> TensorRef {
    const Buffer* b = plan_.find_host_if(name);
    return b ? TensorRef{host_arena_ + b->offset, b->dtype} : TensorRef{};
  };

  // Parameters and gradients, and the per-tensor element counts.
  const auto specs = param_tensor_specs(plan_.model);
  const int L = plan_.model.num_layers;
  for (int i = 0; i < kNumParamTensors; ++i) {
    params_.tensor[i] = buf((std::string("params.") + specs[i].name).c_str());
    grads_.tensor[i] = buf_if((std::string("grads.") + specs[i].name).c_str());
    tensor_elems_[i] = specs[i].numel();
    layer_elems_[i] = i >= LN1W && i <= FCPROJB ? specs[i].numel() / L : 0;
    adamw_template_.ranges.push_back({plan_.param_offsets[i], specs[i].numel(), specs[i].weight_decay});
  }

  // Optimizer state, in the host arena when offloaded.
  if (plan_.offloaded()) {
    opt_.master = host_buf_if("master_weights").as<float>();
    opt_.m = host_buf_if("adam_m").as<float>();
    opt_.v = host_buf_if("adam_v").as<float>();
    opt_.host_grads = host_buf_if("offload.grads");
    opt_.host_params = host_buf_if("offload.params");
  } else {
    opt_.master = fbuf_if("master_weights");
    opt_.m = fbuf_if("adam_m");
    opt_.v = fbuf_if("adam_v");
  }

  // The buffers that are not per layer.
  bufs_.inputs = buf("act.inputs").as<int32_t>();
  bufs_.targets = buf("act.targets").as<int32_t>();
  bufs_.residual = buf("act.residual");
  bufs_.lnf = buf("act.lnf");
  bufs_.lnf_mean = fbuf("act.lnf_mean");
  bufs_.lnf_rstd = fbuf("act.lnf_rstd");
  bufs_.dresidual = buf_if("scratch.dresidual");
  bufs_.dbtc = buf_if("scratch.dbtc");
  bufs_.dqkv = buf_if("scratch.dqkv");
  bufs_.dfch = buf_if("scratch.dfch");
  bufs_.att_scratch = fbuf("scratch.att");
  bufs_.logits_chunk = buf("logits.chunk");
  bufs_.losses = fbuf("logits.losses");
  bufs_.norm_partials = fbuf("workspace.norm_partials");

  // Each layer's activations. Per-layer strides use the plan's B·T so a smaller evaluation batch
  // reuses the same buffers.
  const int64_t BT = static_cast<int64_t>(plan_.run.micro_batch) * plan_.run.seq_len;
  const int64_t C = plan_.model.channels, NH = plan_.model.num_heads;
  const Recompute::Kind k = plan_.run.recompute.kind;
  const bool ln_stored = k != Recompute::Norm;
  const bool gelu_stored = k == Recompute::None || k == Recompute::Budget;
  layers_.resize(L);
  for (int l = 0; l < L; ++l) {
    LayerActs& a = layers_[l];
    const int s = plan_.stored_layer_index(l);
    if (s < 0) {  // block-recomputed layer: everything lives in the one-layer recompute buffers
      a.ln1 = buf("recompute.ln1");
      a.ln1_mean = fbuf("recompute.ln1_mean");
      a.ln1_rstd = fbuf("recompute.ln1_rstd");
      a.qkv = buf("recompute.qkv");
      a.atty = buf("recompute.atty");
      a.lse = fbuf("recompute.att_lse");
      a.x2 = buf("recompute.x2");
      a.ln2 = buf("recompute.ln2");
      a.ln2_mean = fbuf("recompute.ln2_mean");
      a.ln2_rstd = fbuf("recompute.ln2_rstd");
      a.fch = buf("recompute.fch");
      a.fch_gelu = buf("recompute.fch_gelu");
      continue;
    }
    a.ln1 = ln_stored ? buf("act.ln1").at(s * BT * C) : buf("recompute.ln");
    a.ln2 = ln_stored ? buf("act.ln2").at(s * BT * C) : buf("recompute.ln");
    a.fch_gelu = gelu_stored ? buf("act.fch_gelu").at(s * BT * 4 * C) : buf("recompute.fch_gelu");
    a.ln1_mean = fbuf("act.ln1_mean") + s * BT;
    a.ln1_rstd = fbuf("act.ln1_rstd") + s * BT;
    a.ln2_mean = fbuf("act.ln2_mean") + s * BT;
    a.ln2_rstd = fbuf("act.ln2_rstd") + s * BT;
    a.qkv = buf("act.qkv").at(s * BT * 3 * C);
    a.atty = buf("act.atty").at(s * BT * C);
    a.lse = fbuf("act.att_lse") + s * BT * NH;
    a.x2 = buf("act.x2").at(s * BT * C);
    a.fch = buf("act.fch").at(s * BT * 4 * C);
  }
}

void Model::require_training(const char* caller) const {
  if (!plan_.run.training)
    throw std::logic_error(std::string(caller) + ": an inference plan has no gradients or optimizer state");
}

// residual(0) is the embedding output, residual(l+1) layer l's output. Strides use the plan's
// B·T so a smaller evaluation batch reuses the same buffers.
TensorRef Model::residual(int i) const {
  const int64_t BT = static_cast<int64_t>(plan_.run.micro_batch) * plan_.run.seq_len;
  return bufs_.residual.at(i * BT * plan_.model.channels);
}

// ---- forward -----------------------------------------------------------------------------------

int64_t Model::load_batch(const int32_t* inputs, const int32_t* targets, int B, int T) {
  B = B > 0 ? B : plan_.run.micro_batch;
  T = T > 0 ? T : plan_.run.seq_len;
  if (B > plan_.run.micro_batch || T > plan_.run.seq_len)
    throw std::invalid_argument("load_batch: batch " + std::to_string(B) + "x" + std::to_string(T) +
                                " exceeds the planned " + std::to_string(plan_.run.micro_batch) + "x" +
                                std::to_string(plan_.run.seq_len));
  const int64_t n = static_cast<int64_t>(B) * T;
  const int V = plan_.model.vocab_size;
  for (int64_t i = 0; i < n; ++i)
    if (inputs[i] < 0 || inputs[i] >= V) return i;
  if (targets)
    for (int64_t i = 0; i < n; ++i)
      if (targets[i] < 0 || targets[i] >= V) return i;
  B_ = B;
  T_ = T;
  std::copy(inputs, inputs + n, inputs_host_.begin());
  backend_.upload(bufs_.inputs, inputs, n * sizeof(int32_t));
  if (targets) backend_.upload(bufs_.targets, targets, n * sizeof(int32_t));
  return -1;
}

void Model::layer_forward(int l, const LayerActs& a, bool write_output) {
  const int C = plan_.model.channels, NH = plan_.model.num_heads;
  const int N = B_ * T_;
  Backend& be = backend_;
  const TensorRef x = residual(l);
  be.layernorm_forward(a.ln1, a.ln1_mean, a.ln1_rstd, x, param(LN1W, l), param(LN1B, l), N, C);
  be.matmul_forward(a.qkv, a.ln1, param(QKVW, l), param(QKVB, l), N, C, 3 * C);
  be.attention_forward(a.atty, a.lse, bufs_.att_scratch, a.qkv, B_, T_, C, NH);
  be.matmul_forward(a.x2, a.atty, param(ATTPROJW, l), param(ATTPROJB, l), N, C, C);
  be.residual_layernorm_forward(a.x2, a.ln2, a.ln2_mean, a.ln2_rstd, x, a.x2, param(LN2W, l), param(LN2B, l), N, C);
  be.matmul_forward_gelu(a.fch, a.fch_gelu, a.ln2, param(FCW, l), param(FCB, l), N, C, 4 * C);
  if (!write_output) return;
  const TensorRef out = residual(l + 1);
  be.matmul_forward(out, a.fch_gelu, param(FCPROJW, l), param(FCPROJB, l), N, 4 * C, C);
  be.residual_forward(out, a.x2, out, static_cast<int64_t>(N) * C);
}

void Model::forward() {
  const int C = plan_.model.channels, L = plan_.model.num_layers;
  backend_.encoder_forward(residual(0), bufs_.inputs, param(WTE), param(WPE), B_, T_, C);
  for (int l = 0; l < L; ++l) layer_forward(l, layer_acts(l), true);
  backend_.layernorm_forward(bufs_.lnf, bufs_.lnf_mean, bufs_.lnf_rstd, residual(L), param(LNFW), param(LNFB), B_ * T_,
                             C);
}

double Model::head(bool compute_grad, float dloss_scale) {
  const int C = plan_.model.channels, V = plan_.model.vocab_size, Vp = plan_.model.padded_vocab;
  const int N = B_ * T_;
  const int chunk = plan_.run.logits_chunk;
  if (compute_grad && !plan_.run.training) throw std::logic_error("head: an inference plan has no gradient buffers");
  const TensorRef lnf = bufs_.lnf, logits = bufs_.logits_chunk;
  const TensorRef dlnf = compute_grad ? bufs_.dbtc : TensorRef{};
  float* losses = bufs_.losses;
  const int32_t* targets = bufs_.targets;
  for (int start = 0; start < N; start += chunk) {
    const int n = std::min(chunk, N - start);
    backend_.matmul_forward(logits, lnf.at(static_cast<int64_t>(start) * C), param(WTE), TensorRef{}, n, C, Vp);
    backend_.classifier(losses + start, logits, targets + start, n, V, Vp, dloss_scale, compute_grad);
    if (compute_grad)
      backend_.matmul_backward(dlnf.at(static_cast<int64_t>(start) * C), grad(WTE), TensorRef{}, logits,
                               lnf.at(static_cast<int64_t>(start) * C), param(WTE), n, C, Vp);
  }
  std::vector<float> host(N);
  backend_.download(host.data(), losses, N * sizeof(float));
  double sum = 0;
  for (float x : host) sum += x;
  return sum;
}

std::vector<float> Model::logits() {
  const int C = plan_.model.channels, V = plan_.model.vocab_size, Vp = plan_.model.padded_vocab;
  const int N = B_ * T_;
  const int chunk = plan_.run.logits_chunk;
  const TensorRef lnf = bufs_.lnf, logits = bufs_.logits_chunk;
  std::vector<float> out(static_cast<size_t>(N) * V);
  for (int start = 0; start < N; start += chunk) {
    const int n = std::min(chunk, N - start);
    backend_.matmul_forward(logits, lnf.at(static_cast<int64_t>(start) * C), param(WTE), TensorRef{}, n, C, Vp);
    const std::vector<float> rows = download_floats(logits, static_cast<int64_t>(n) * Vp);
    for (int r = 0; r < n; ++r)
      std::copy(rows.begin() + static_cast<int64_t>(r) * Vp, rows.begin() + static_cast<int64_t>(r) * Vp + V,
                out.begin() + static_cast<int64_t>(start + r) * V);
  }
  return out;
}

std::vector<float> Model::token_losses() const {
  std::vector<float> out(static_cast<size_t>(B_) * T_);
  backend_.download(out.data(), bufs_.losses, out.size() * sizeof(float));
  return out;
}

std::vector<float> Model::row_logits(int row) {
  const int C = plan_.model.channels, V = plan_.model.vocab_size, Vp = plan_.model.padded_vocab;
  const TensorRef logits = bufs_.logits_chunk;
  backend_.matmul_forward(logits, bufs_.lnf.at(static_cast<int64_t>(row) * C), param(WTE), TensorRef{}, 1, C, Vp);
  std::vector<float> out = download_floats(logits, Vp);
  out.resize(V);
  return out;
}

std::vector<float> Model::decode_step(int32_t token, int pos) {
  if (!can_decode())
    throw std::logic_error("decode_step: the plan recomputes whole blocks, so their qkv (the KV cache) is not kept");
  if (pos < 0 || pos >= plan_.run.seq_len)
    throw std::out_of_range("decode_step: position " + std::to_string(pos) + " outside the planned context of " +
                            std::to_string(plan_.run.seq_len));
  if (token < 0 || token >= plan_.model.vocab_size)
    throw std::out_of_range("decode_step: token " + std::to_string(token) + " outside the vocabulary");
  const int C = plan_.model.channels, NH = plan_.model.num_heads, L = plan_.model.num_layers;
  const int64_t p = pos, pC = p * C;
  Backend& be = backend_;
  B_ = 1;
  T_ = pos + 1;
  int32_t* tokens = bufs_.inputs;
  be.upload(tokens + pos, &token, sizeof token);
  // The position embedding of `pos` is row pos of wpe: pass it as the table of a 1-token batch.
  be.encoder_forward(residual(0).at(pC), tokens + pos, param(WTE), param(WPE).at(pC), 1, 1, C);
  for (int l = 0; l < L; ++l) {
    const LayerActs& a = layer_acts(l);
    const TensorRef x = residual(l).at(pC), ln1 = a.ln1.at(pC), atty = a.atty.at(pC), x2 = a.x2.at(pC),
                    ln2 = a.ln2.at(pC), fch = a.fch.at(p * 4 * C), fcg = a.fch_gelu.at(p * 4 * C),
                    out = residual(l + 1).at(pC);
    be.layernorm_forward(ln1, a.ln1_mean + p, a.ln1_rstd + p, x, param(LN1W, l), param(LN1B, l), 1, C);
    be.matmul_forward(a.qkv.at(p * 3 * C), ln1, param(QKVW, l), param(QKVB, l), 1, C, 3 * C);
    be.attention_decode(atty, bufs_.att_scratch, a.qkv, pos, C, NH);
    be.matmul_forward(x2, atty, param(ATTPROJW, l), param(ATTPROJB, l), 1, C, C);
    be.residual_layernorm_forward(x2, ln2, a.ln2_mean + p, a.ln2_rstd + p, x, x2, param(LN2W, l), param(LN2B, l), 1, C);
    be.matmul_forward_gelu(fch, fcg, ln2, param(FCW, l), param(FCB, l), 1, C, 4 * C);
    be.matmul_forward(out, fcg, param(FCPROJW, l), param(FCPROJB, l), 1, 4 * C, C);
    be.residual_forward(out, x2, out, C);
  }
  be.layernorm_forward(bufs_.lnf.at(pC), bufs_.lnf_mean + p, bufs_.lnf_rstd + p, residual(L).at(pC), param(LNFW),
                       param(LNFB), 1, C);
  return row_logits(pos);
}

// ---- backward ------------------------------------------------------------------------------------

void Model::layer_backward(int l) {
  const int C = plan_.model.channels, NH = plan_.model.num_heads;
  const int N = B_ * T_;
  Backend& be = backend_;
  const LayerActs& a = layer_acts(l);
  const Recompute::Kind k = plan_.run.recompute.kind;
  const bool block = plan_.stored_layer_index(l) < 0;
  if (block) layer_forward(l, a, false);  // rebuild this layer's activations from its input
  const bool ln_stored = block || k != Recompute::Norm;
  const bool gelu_stored = block || k == Recompute::None || k == Recompute::Budget;

  const TensorRef dres = bufs_.dresidual, dbtc = bufs_.dbtc, dqkv = bufs_.dqkv, dfch = bufs_.dfch;
  const TensorRef x = residual(l);
  if (!gelu_stored) be.gelu_forward(a.fch_gelu, a.fch, static_cast<int64_t>(N) * 4 * C);
  be.matmul_backward_gelu(dfch, grad(FCPROJW, l), grad(FCPROJB, l), dres, a.fch_gelu, param(FCPROJW, l), a.fch, N,
                          4 * C, C);
  if (!ln_stored) be.layernorm_recompute(a.ln2, a.x2, a.ln2_mean, a.ln2_rstd, param(LN2W, l), param(LN2B, l), N, C);
  be.matmul_backward(dbtc, grad(FCW, l), grad(FCB, l), dfch, a.ln2, param(FCW, l), N, C, 4 * C);
  // dres holds d(layer output); adding the LN2 branch makes it d(x2).
  be.layernorm_backward(dres, grad(LN2W, l), grad(LN2B, l), dbtc, a.x2, param(LN2W, l), a.ln2_mean, a.ln2_rstd, N, C);
  be.matmul_backward(dbtc, grad(ATTPROJW, l), grad(ATTPROJB, l), dres, a.atty, param(ATTPROJW, l), N, C, C);
  be.attention_backward(dqkv, bufs_.att_scratch, dbtc, a.qkv, a.atty, a.lse, B_, T_, C, NH);
  if (!ln_stored) be.layernorm_recompute(a.ln1, x, a.ln1_mean, a.ln1_rstd, param(LN1W, l), param(LN1B, l), N, C);
  be.matmul_backward(dbtc, grad(QKVW, l), grad(QKVB, l), dqkv, a.ln1, param(QKVW, l), N, C, 3 * C);
  // Adding the LN1 branch makes dres d(layer input).
  be.layernorm_backward(dres, grad(LN1W, l), grad(LN1B, l), dbtc, x, param(LN1W, l), a.ln1_mean, a.ln1_rstd, N, C);
}

void Model::backward() {
  const int C = plan_.model.channels, L = plan_.model.num_layers;
  const int N = B_ * T_;
  require_training("backward");
  const TensorRef dres = bufs_.dresidual;
  backend_.zero(dres.ptr, static_cast<size_t>(N) * C * dtype_size(dres.dtype));
  backend_.layernorm_backward(dres, grad(LNFW), grad(LNFB), bufs_.dbtc, residual(L), param(LNFW), bufs_.lnf_mean,
                              bufs_.lnf_rstd, N, C);
  const bool send = stream_gradients_;
  for (int l = L - 1; l >= 0; --l) {
    layer_backward(l);
    if (send) send_layer_gradients(l);
  }
  backend_.encoder_backward(grad(WTE), grad(WPE), dres, bufs_.inputs, inputs_host_.data(), B_, T_, C,
                            plan_.model.vocab_size);
  if (send)
    for (int i : {WTE, WPE, LNFW, LNFB}) send_gradients(plan_.param_offsets[i], tensor_elems_[i]);
  gradients_sent_ = send;
}

// ---- optimizer -----------------------------------------------------------------------------------

void Model::zero_grads() {
  require_training("zero_grads");
  if (plan_.offloaded()) backend_.wait_host_copies();  // a skipped step's copies may still be reading them
  const TensorRef g = flat_grads();
  backend_.zero(g.ptr, plan_.flat_param_elems * dtype_size(g.dtype));
}

double Model::grad_norm_squared(bool shard_only) {
  require_training("grad_norm_squared");
  if (shard_only && plan_.run.zero_stage == 1) {
    const int64_t begin = static_cast<int64_t>(plan_.run.rank) * plan_.shard_elems;
    return backend_.global_norm_squared(flat_grads().at(begin), plan_.shard_elems, bufs_.norm_partials);
  }
  return backend_.global_norm_squared(flat_grads(), plan_.flat_param_elems, bufs_.norm_partials);
}

AdamWStep Model::adamw_template() const { return adamw_template_; }

void Model::stream_gradients_to_host(bool on) {
  stream_gradients_ = on && plan_.offloaded() && plan_.run.world_size == 1;
}

void Model::send_gradients(int64_t offset, int64_t count) {
  const TensorRef dst = opt_.host_grads.at(offset);
  backend_.copy_to_host_async(dst.ptr, flat_grads().at(offset).ptr, static_cast<size_t>(count) * dtype_size(dst.dtype));
}

// Layer l's slice of each of the 12 per-layer tensors (ln1w .. fcprojb).
void Model::send_layer_gradients(int layer) {
  for (int i = LN1W; i <= FCPROJB; ++i)
    send_gradients(plan_.param_offsets[i] + layer * layer_elems_[i], layer_elems_[i]);
}

void Model::adamw(AdamWStep step) {
  require_training("adamw");
  if (step.ranges.empty()) step.ranges = adamw_template_.ranges;
  TensorRef params = flat_params(), grads = flat_grads();
  if (plan_.run.zero_stage == 1 && plan_.run.world_size > 1) {
    // This rank owns elements [begin, end) of the flat view: clip every tensor's range to it and
    // rebase the ranges and pointers on the shard; master, m and v are shard-sized already.
    const int64_t begin = static_cast<int64_t>(plan_.run.rank) * plan_.shard_elems;
    const int64_t end = begin + plan_.shard_elems;
    std::vector<AdamWStep::Range> shard;
    for (const auto& r : step.ranges) {
      const int64_t lo = std::max(r.offset, begin), hi = std::min(r.offset + r.count, end);
      if (hi > lo) shard.push_back({lo - begin, hi - lo, r.decay});
    }
    step.ranges = std::move(shard);
    step.index_base = begin;
    params = params.at(begin);
    grads = grads.at(begin);
  }
  if (!plan_.offloaded()) {
    backend_.adamw(params, opt_.master, grads, opt_.m, opt_.v, step);
    return;
  }
  // Offloaded: the shard's gradients to the host (unless the backward sent them), AdamW there,
  // and the updated shard back. The host gradient buffer is indexed like the shard.
  const size_t shard_bytes = static_cast<size_t>(plan_.shard_elems) * dtype_size(act_dtype_);
  const TensorRef host_grads = opt_.host_grads;
  if (!gradients_sent_) backend_.copy_to_host_async(host_grads.ptr, grads.ptr, shard_bytes);
  gradients_sent_ = false;
  backend_.wait_host_copies();
  float* master = opt_.master;
  const TensorRef out =
      act_dtype_ == DType::FP32 ? TensorRef{reinterpret_cast<std::byte*>(master), DType::FP32} : opt_.host_params;
  backend_.host_adamw(out, master, host_grads, opt_.m, opt_.v, step);
  backend_.upload_offloaded_parameters(params.ptr, out.ptr, shard_bytes);
}

}  // namespace gpt2
