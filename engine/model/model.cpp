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
}

TensorRef Model::buf(const std::string& name) const {
  const Buffer& b = plan_.find(name);
  return {arena_ + b.offset, b.dtype};
}
float* Model::fbuf(const std::string& name) const { return buf(name).as<float>(); }
TensorRef Model::host_buf(const std::string& name) const {
  const Buffer& b = plan_.find_host(name);
  return {host_arena_ + b.offset, b.dtype};
}
float* Model::optimizer_buf(const std::string& name) const {
  if (plan_.offloaded()) return host_buf(name).as<float>();
  const Buffer* b = plan_.find_if(name);
  return b ? reinterpret_cast<float*>(arena_ + b->offset) : nullptr;
}

TensorRef Model::param(int i, int layer) const {
  const auto specs = param_tensor_specs(plan_.model);
  TensorRef t = buf(std::string("params.") + specs[i].name);
  if (layer >= 0) t = t.at(layer * (specs[i].numel() / plan_.model.num_layers));
  return t;
}
TensorRef Model::grad(int i, int layer) const {
  const auto specs = param_tensor_specs(plan_.model);
  TensorRef t = buf(std::string("grads.") + specs[i].name);
  if (layer >= 0) t = t.at(layer * (specs[i].numel() / plan_.model.num_layers));
  return t;
}

// residual(0) is the embedding output, residual(l+1) layer l's output. Strides use the plan's
// B·T so a smaller evaluation batch reuses the same buffers.
TensorRef Model::residual(int i) const {
  const int64_t BT = static_cast<int64_t>(plan_.run.micro_batch) * plan_.run.seq_len;
  return buf("act.residual").at(i * BT * plan_.model.channels);
}

Model::LayerActs Model::layer_acts(int layer) const {
  const int64_t BT = static_cast<int64_t>(plan_.run.micro_batch) * plan_.run.seq_len;
  const int64_t C = plan_.model.channels, NH = plan_.model.num_heads;
  const int s = plan_.stored_layer_index(layer);
  LayerActs a{};
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
    return a;
  }
  const Recompute::Kind k = plan_.run.recompute.kind;
  const bool ln_stored = k != Recompute::Norm;
  const bool gelu_stored = k == Recompute::None || k == Recompute::Budget;
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
  return a;
}

// ---- parameters ------------------------------------------------------------------------------

std::vector<float> Model::gpt2_init(const MemoryPlan& plan, uint64_t seed) {
  const ModelConfig& m = plan.model;
  std::vector<float> flat(plan.flat_param_elems, 0.0f);
  const auto specs = param_tensor_specs(m);
  const double residual_std = 0.02 / std::sqrt(2.0 * m.num_layers);
  for (int i = 0; i < kNumParamTensors; ++i) {
    float* p = flat.data() + plan.param_offsets[i];
    const int64_t n = specs[i].numel();
    Rng rng(derive_seed(seed, static_cast<uint64_t>(i)));
    switch (i) {
      case LN1W:
      case LN2W:
      case LNFW: std::fill(p, p + n, 1.0f); break;
      case LN1B:
      case LN2B:
      case LNFB:
      case QKVB:
      case ATTPROJB:
      case FCB:
      case FCPROJB: break;  // zeros
      case WTE: {
        const int64_t real = static_cast<int64_t>(m.vocab_size) * m.channels;  // padding rows stay 0
        for (int64_t j = 0; j < real; ++j) p[j] = static_cast<float>(0.02 * rng.normal());
        break;
      }
      case ATTPROJW:
      case FCPROJW:
        for (int64_t j = 0; j < n; ++j) p[j] = static_cast<float>(residual_std * rng.normal());
        break;
      default:  // wpe, qkvw, fcw
        for (int64_t j = 0; j < n; ++j) p[j] = static_cast<float>(0.02 * rng.normal());
        break;
    }
  }
  return flat;
}

void Model::init_gpt2(uint64_t seed) { set_parameters(gpt2_init(plan_, seed)); }

void Model::set_parameters(const std::vector<float>& flat) {
  if (static_cast<int64_t>(flat.size()) != plan_.flat_param_elems)
    throw std::invalid_argument("set_parameters: expected " + std::to_string(plan_.flat_param_elems) + " values, got " +
                                std::to_string(flat.size()));
  const Buffer& pb = plan_.find("params.wte");
  if (act_dtype_ == DType::FP32) {
    backend_.upload(arena_ + pb.offset, flat.data(), flat.size() * sizeof(float));
  } else {
    std::vector<uint16_t> bits(flat.size());
    for (size_t i = 0; i < flat.size(); ++i) bits[i] = float_to_bf16_bits(flat[i]);
    backend_.upload(arena_ + pb.offset, bits.data(), bits.size() * sizeof(uint16_t));
  }
  if (!plan_.run.training) return;  // an inference plan has no gradients or optimizer state
  // Optimizer state restarts: master holds this rank's shard of the same values (offloaded, the
  // host copy exists for fp32 runs too).
  const int64_t shard_begin = plan_.run.zero_stage == 1 ? plan_.run.rank * plan_.shard_elems : 0;
  const size_t shard_bytes = plan_.shard_elems * sizeof(float);
  if (plan_.offloaded()) {
    std::memcpy(optimizer_buf("master_weights"), flat.data() + shard_begin, shard_bytes);
    std::memset(optimizer_buf("adam_m"), 0, shard_bytes);
    std::memset(optimizer_buf("adam_v"), 0, shard_bytes);
  } else {
    if (float* master = optimizer_buf("master_weights")) backend_.upload(master, flat.data() + shard_begin, shard_bytes);
    backend_.zero(optimizer_buf("adam_m"), shard_bytes);
    backend_.zero(optimizer_buf("adam_v"), shard_bytes);
  }
  zero_grads();
}

namespace {
std::vector<float> download_flat(Backend& be, const std::byte* src, DType dt, int64_t n) {
  std::vector<float> out(n);
  if (dt == DType::FP32) {
    be.download(out.data(), src, n * sizeof(float));
  } else {
    std::vector<uint16_t> bits(n);
    be.download(bits.data(), src, n * sizeof(uint16_t));
    for (int64_t i = 0; i < n; ++i) out[i] = bf16_bits_to_float(bits[i]);
  }
  return out;
}

// The optimizer's fp32 state (shard_elems floats) wherever it lives.
std::vector<float> read_state(Backend& be, bool on_host, const float* src, int64_t n) {
  if (on_host) return std::vector<float>(src, src + n);
  return download_flat(be, reinterpret_cast<const std::byte*>(src), DType::FP32, n);
}
}  // namespace

std::vector<float> Model::parameters() const {
  if (has_master_copy() && plan_.run.training && plan_.run.zero_stage == 0)
    return read_state(backend_, plan_.offloaded(), optimizer_buf("master_weights"), plan_.flat_param_elems);
  return download_flat(backend_, arena_ + plan_.find("params.wte").offset, act_dtype_, plan_.flat_param_elems);
}

std::vector<float> Model::stored_parameters() const {
  return download_flat(backend_, arena_ + plan_.find("params.wte").offset, act_dtype_, plan_.flat_param_elems);
}

std::vector<float> Model::gradients() const {
  return download_flat(backend_, arena_ + plan_.find("grads.wte").offset, act_dtype_, plan_.flat_param_elems);
}

// The saved state is the same with and without offload: the master copy only where the run has
// master weights (bf16), m and v always.
Model::OptimizerState Model::optimizer_state() const {
  OptimizerState s;
  const bool host = plan_.offloaded();
  if (has_master_copy()) s.master = read_state(backend_, host, optimizer_buf("master_weights"), plan_.shard_elems);
  s.m = read_state(backend_, host, optimizer_buf("adam_m"), plan_.shard_elems);
  s.v = read_state(backend_, host, optimizer_buf("adam_v"), plan_.shard_elems);
  return s;
}

// An offloaded fp32 run's host copy of the parameters came from set_parameters() already.
void Model::set_optimizer_state(const OptimizerState& s) {
  const size_t n = static_cast<size_t>(plan_.shard_elems);
  if (s.m.size() != n || s.v.size() != n || (has_master_copy() ? s.master.size() != n : !s.master.empty()))
    throw std::invalid_argument("set_optimizer_state: state does not match the plan's shard of " + std::to_string(n) +
                                " elements");
  const size_t bytes = n * sizeof(float);
  auto put = [&](const char* name, const std::vector<float>& src) {
    if (plan_.offloaded())
      std::memcpy(optimizer_buf(name), src.data(), bytes);
    else
      backend_.upload(optimizer_buf(name), src.data(), bytes);
  };
  if (has_master_copy()) put("master_weights", s.master);
  put("adam_m", s.m);
  put("adam_v", s.v);
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
  backend_.upload(buf("act.inputs").ptr, inputs, n * sizeof(int32_t));
  if (targets) backend_.upload(buf("act.targets").ptr, targets, n * sizeof(int32_t));
  return -1;
}

void Model::layer_forward(int l, const LayerActs& a, bool write_output) {
  const int C = plan_.model.channels, NH = plan_.model.num_heads;
  const int N = B_ * T_;
  Backend& be = backend_;
  const TensorRef x = residual(l);
  be.layernorm_forward(a.ln1, a.ln1_mean, a.ln1_rstd, x, param(LN1W, l), param(LN1B, l), N, C);
  be.matmul_forward(a.qkv, a.ln1, param(QKVW, l), param(QKVB, l), N, C, 3 * C);
  be.attention_forward(a.atty, a.lse, fbuf("scratch.att"), a.qkv, B_, T_, C, NH);
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
  const int32_t* inputs = buf("act.inputs").as<int32_t>();
  backend_.encoder_forward(residual(0), inputs, param(WTE), param(WPE), B_, T_, C);
  for (int l = 0; l < L; ++l) layer_forward(l, layer_acts(l), true);
  backend_.layernorm_forward(buf("act.lnf"), fbuf("act.lnf_mean"), fbuf("act.lnf_rstd"), residual(L), param(LNFW),
                             param(LNFB), B_ * T_, C);
}

double Model::head(bool compute_grad, float dloss_scale) {
  const int C = plan_.model.channels, V = plan_.model.vocab_size, Vp = plan_.model.padded_vocab;
  const int N = B_ * T_;
  const int chunk = plan_.run.logits_chunk;
  if (compute_grad && !plan_.run.training) throw std::logic_error("head: an inference plan has no gradient buffers");
  const TensorRef lnf = buf("act.lnf"), logits = buf("logits.chunk");
  const TensorRef dlnf = compute_grad ? buf("scratch.dbtc") : TensorRef{};
  float* losses = fbuf("logits.losses");
  const int32_t* targets = buf("act.targets").as<int32_t>();
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
  const TensorRef lnf = buf("act.lnf"), logits = buf("logits.chunk");
  std::vector<float> out(static_cast<size_t>(N) * V);
  for (int start = 0; start < N; start += chunk) {
    const int n = std::min(chunk, N - start);
    backend_.matmul_forward(logits, lnf.at(static_cast<int64_t>(start) * C), param(WTE), TensorRef{}, n, C, Vp);
    const std::vector<float> rows = download_flat(backend_, logits.ptr, logits.dtype, static_cast<int64_t>(n) * Vp);
    for (int r = 0; r < n; ++r)
      std::copy(rows.begin() + static_cast<int64_t>(r) * Vp, rows.begin() + static_cast<int64_t>(r) * Vp + V,
                out.begin() + static_cast<int64_t>(start + r) * V);
  }
  return out;
}

std::vector<float> Model::token_losses() const {
  std::vector<float> out(static_cast<size_t>(B_) * T_);
  backend_.download(out.data(), fbuf("logits.losses"), out.size() * sizeof(float));
  return out;
}

std::vector<float> Model::row_logits(int row) {
  const int C = plan_.model.channels, V = plan_.model.vocab_size, Vp = plan_.model.padded_vocab;
  const TensorRef logits = buf("logits.chunk");
  backend_.matmul_forward(logits, buf("act.lnf").at(static_cast<int64_t>(row) * C), param(WTE), TensorRef{}, 1, C, Vp);
  std::vector<float> out = download_flat(backend_, logits.ptr, logits.dtype, Vp);
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
  int32_t* tokens = buf("act.inputs").as<int32_t>();
  be.upload(tokens + pos, &token, sizeof token);
  // The position embedding of `pos` is row pos of wpe: pass it as the table of a 1-token batch.
  be.encoder_forward(residual(0).at(pC), tokens + pos, param(WTE), param(WPE).at(pC), 1, 1, C);
  for (int l = 0; l < L; ++l) {
    const LayerActs a = layer_acts(l);
    const TensorRef x = residual(l).at(pC), ln1 = a.ln1.at(pC), atty = a.atty.at(pC), x2 = a.x2.at(pC),
                    ln2 = a.ln2.at(pC), fch = a.fch.at(p * 4 * C), fcg = a.fch_gelu.at(p * 4 * C),
                    out = residual(l + 1).at(pC);
    be.layernorm_forward(ln1, a.ln1_mean + p, a.ln1_rstd + p, x, param(LN1W, l), param(LN1B, l), 1, C);
    be.matmul_forward(a.qkv.at(p * 3 * C), ln1, param(QKVW, l), param(QKVB, l), 1, C, 3 * C);
    be.attention_decode(atty, fbuf("scratch.att"), a.qkv, pos, C, NH);
    be.matmul_forward(x2, atty, param(ATTPROJW, l), param(ATTPROJB, l), 1, C, C);
    be.residual_layernorm_forward(x2, ln2, a.ln2_mean + p, a.ln2_rstd + p, x, x2, param(LN2W, l), param(LN2B, l), 1, C);
    be.matmul_forward_gelu(fch, fcg, ln2, param(FCW, l), param(FCB, l), 1, C, 4 * C);
    be.matmul_forward(out, fcg, param(FCPROJW, l), param(FCPROJB, l), 1, 4 * C, C);
    be.residual_forward(out, x2, out, C);
  }
  be.layernorm_forward(buf("act.lnf").at(pC), fbuf("act.lnf_mean") + p, fbuf("act.lnf_rstd") + p, residual(L).at(pC),
                       param(LNFW), param(LNFB), 1, C);
  return row_logits(pos);
}

// ---- backward ------------------------------------------------------------------------------------

void Model::layer_backward(int l) {
  const int C = plan_.model.channels, NH = plan_.model.num_heads;
  const int N = B_ * T_;
  Backend& be = backend_;
  const LayerActs a = layer_acts(l);
  const Recompute::Kind k = plan_.run.recompute.kind;
  const bool block = plan_.stored_layer_index(l) < 0;
  if (block) layer_forward(l, a, false);  // rebuild this layer's activations from its input
  const bool ln_stored = block || k != Recompute::Norm;
  const bool gelu_stored = block || k == Recompute::None || k == Recompute::Budget;

  const TensorRef dres = buf("scratch.dresidual"), dbtc = buf("scratch.dbtc"), dqkv = buf("scratch.dqkv"),
                  dfch = buf("scratch.dfch");
  const TensorRef x = residual(l);
  if (!gelu_stored) be.gelu_forward(a.fch_gelu, a.fch, static_cast<int64_t>(N) * 4 * C);
  be.matmul_backward_gelu(dfch, grad(FCPROJW, l), grad(FCPROJB, l), dres, a.fch_gelu, param(FCPROJW, l), a.fch, N,
                          4 * C, C);
  if (!ln_stored) be.layernorm_recompute(a.ln2, a.x2, a.ln2_mean, a.ln2_rstd, param(LN2W, l), param(LN2B, l), N, C);
  be.matmul_backward(dbtc, grad(FCW, l), grad(FCB, l), dfch, a.ln2, param(FCW, l), N, C, 4 * C);
  // dres holds d(layer output); adding the LN2 branch makes it d(x2).
  be.layernorm_backward(dres, grad(LN2W, l), grad(LN2B, l), dbtc, a.x2, param(LN2W, l), a.ln2_mean, a.ln2_rstd, N, C);
  be.matmul_backward(dbtc, grad(ATTPROJW, l), grad(ATTPROJB, l), dres, a.atty, param(ATTPROJW, l), N, C, C);
  be.attention_backward(dqkv, fbuf("scratch.att"), dbtc, a.qkv, a.atty, a.lse, B_, T_, C, NH);
  if (!ln_stored) be.layernorm_recompute(a.ln1, x, a.ln1_mean, a.ln1_rstd, param(LN1W, l), param(LN1B, l), N, C);
  be.matmul_backward(dbtc, grad(QKVW, l), grad(QKVB, l), dqkv, a.ln1, param(QKVW, l), N, C, 3 * C);
  // Adding the LN1 branch makes dres d(layer input).
  be.layernorm_backward(dres, grad(LN1W, l), grad(LN1B, l), dbtc, x, param(LN1W, l), a.ln1_mean, a.ln1_rstd, N, C);
}

void Model::backward() {
  const int C = plan_.model.channels, L = plan_.model.num_layers;
  const int N = B_ * T_;
  const TensorRef dres = buf("scratch.dresidual");
  backend_.zero(dres.ptr, static_cast<size_t>(N) * C * dtype_size(dres.dtype));
  backend_.layernorm_backward(dres, grad(LNFW), grad(LNFB), buf("scratch.dbtc"), residual(L), param(LNFW),
                              fbuf("act.lnf_mean"), fbuf("act.lnf_rstd"), N, C);
  const bool send = stream_gradients_;
  for (int l = L - 1; l >= 0; --l) {
    layer_backward(l);
    if (send) send_layer_gradients(l);
  }
  backend_.encoder_backward(grad(WTE), grad(WPE), dres, buf("act.inputs").as<int32_t>(), inputs_host_.data(), B_, T_, C,
                            plan_.model.vocab_size);
  if (send)
    for (int i : {WTE, WPE, LNFW, LNFB}) send_gradients(plan_.param_offsets[i], param_tensor_specs(plan_.model)[i].numel());
  gradients_sent_ = send;
}

// ---- optimizer -----------------------------------------------------------------------------------

void Model::zero_grads() {
  if (plan_.offloaded()) backend_.wait_host_copies();  // a skipped step's copies may still be reading them
  const Buffer& g = plan_.find("grads.wte");
  backend_.zero(arena_ + g.offset, plan_.flat_param_elems * dtype_size(g.dtype));
}

double Model::grad_norm_squared(bool shard_only) {
  if (shard_only && plan_.run.zero_stage == 1) {
    const int64_t begin = static_cast<int64_t>(plan_.run.rank) * plan_.shard_elems;
    return backend_.global_norm_squared(buf("grads.wte").at(begin), plan_.shard_elems, fbuf("workspace.norm_partials"));
  }
  return backend_.global_norm_squared(buf("grads.wte"), plan_.flat_param_elems, fbuf("workspace.norm_partials"));
}

AdamWStep Model::adamw_template() const {
  AdamWStep s;
  const auto specs = param_tensor_specs(plan_.model);
  for (int i = 0; i < kNumParamTensors; ++i)
    s.ranges.push_back({plan_.param_offsets[i], specs[i].numel(), specs[i].weight_decay});
  return s;
}

void Model::stream_gradients_to_host(bool on) {
  stream_gradients_ = on && plan_.offloaded() && plan_.run.world_size == 1;
}

void Model::send_gradients(int64_t offset, int64_t count) {
  const TensorRef dst = host_buf("offload.grads").at(offset);
  backend_.copy_to_host_async(dst.ptr, buf("grads.wte").at(offset).ptr, static_cast<size_t>(count) * dtype_size(dst.dtype));
}

// Layer l's slice of each of the 12 per-layer tensors (ln1w .. fcprojb).
void Model::send_layer_gradients(int layer) {
  const auto specs = param_tensor_specs(plan_.model);
  for (int i = LN1W; i <= FCPROJB; ++i) {
    const int64_t per_layer = specs[i].numel() / plan_.model.num_layers;
    send_gradients(plan_.param_offsets[i] + layer * per_layer, per_layer);
  }
}

void Model::adamw(AdamWStep step) {
  if (step.ranges.empty()) step.ranges = adamw_template().ranges;
  TensorRef params = buf("params.wte"), grads = buf("grads.wte");
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
    backend_.adamw(params, optimizer_buf("master_weights"), grads, optimizer_buf("adam_m"), optimizer_buf("adam_v"),
                   step);
    return;
  }
  // Offloaded: the shard's gradients to the host (unless the backward sent them), AdamW there,
  // and the updated shard back. The host gradient buffer is indexed like the shard.
  const size_t shard_bytes = static_cast<size_t>(plan_.shard_elems) * dtype_size(act_dtype_);
  const TensorRef host_grads = host_buf("offload.grads");
  if (!gradients_sent_) backend_.copy_to_host_async(host_grads.ptr, grads.ptr, shard_bytes);
  gradients_sent_ = false;
  backend_.wait_host_copies();
  float* master = optimizer_buf("master_weights");
  const TensorRef out = act_dtype_ == DType::FP32 ? TensorRef{reinterpret_cast<std::byte*>(master), DType::FP32}
                                                  : host_buf("offload.params");
  backend_.host_adamw(out, master, host_grads, optimizer_buf("adam_m"), optimizer_buf("adam_v"), step);
  backend_.upload_offloaded_parameters(params.ptr, out.ptr, shard_bytes);
}

}  // namespace gpt2
