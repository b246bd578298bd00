// Model's parameters and optimizer state: GPT-2's initialisation, setting and reading the flat
// parameters (in the run's storage dtype), the gradients, and the AdamW state a checkpoint saves.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "engine/model/model.h"
#include "engine/util/bf16.h"
#include "engine/util/rng.h"

namespace gpt2 {

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
  std::byte* const params = flat_params().ptr;
  if (act_dtype_ == DType::FP32) {
    backend_.upload(params, flat.data(), flat.size() * sizeof(float));
  } else {
    std::vector<uint16_t> bits(flat.size());
    for (size_t i = 0; i < flat.size(); ++i) bits[i] = float_to_bf16_bits(flat[i]);
    backend_.upload(params, bits.data(), bits.size() * sizeof(uint16_t));
  }
  if (!plan_.run.training) return;  // an inference plan has no gradients or optimizer state
  // Optimizer state restarts: master holds this rank's shard of the same values (offloaded, the
  // host copy exists for fp32 runs too).
  const int64_t shard_begin = plan_.run.zero_stage == 1 ? plan_.run.rank * plan_.shard_elems : 0;
  const size_t shard_bytes = plan_.shard_elems * sizeof(float);
  if (plan_.offloaded()) {
    std::memcpy(opt_.master, flat.data() + shard_begin, shard_bytes);
    std::memset(opt_.m, 0, shard_bytes);
    std::memset(opt_.v, 0, shard_bytes);
  } else {
    if (opt_.master) backend_.upload(opt_.master, flat.data() + shard_begin, shard_bytes);
    backend_.zero(opt_.m, shard_bytes);
    backend_.zero(opt_.v, shard_bytes);
  }
  zero_grads();
}

std::vector<float> Model::download_floats(TensorRef t, int64_t n) const {
  std::vector<float> out(n);
  if (t.dtype == DType::FP32) {
    backend_.download(out.data(), t.ptr, n * sizeof(float));
  } else {
    std::vector<uint16_t> bits(n);
    backend_.download(bits.data(), t.ptr, n * sizeof(uint16_t));
    for (int64_t i = 0; i < n; ++i) out[i] = bf16_bits_to_float(bits[i]);
  }
  return out;
}

std::vector<float> Model::read_optimizer_state(const float* src, int64_t n) const {
  if (plan_.offloaded()) return std::vector<float>(src, src + n);
  return download_floats(TensorRef{reinterpret_cast<std::byte*>(const_cast<float*>(src)), DType::FP32}, n);
}

std::vector<float> Model::parameters() const {
  if (has_master_copy() && plan_.run.training && plan_.run.zero_stage == 0)
    return read_optimizer_state(opt_.master, plan_.flat_param_elems);
  return download_floats(flat_params(), plan_.flat_param_elems);
}

std::vector<float> Model::stored_parameters() const {
  return download_floats(flat_params(), plan_.flat_param_elems);
}

std::vector<float> Model::gradients() const {
  require_training("gradients");
  return download_floats(flat_grads(), plan_.flat_param_elems);
}

// The saved state is the same with and without offload: the master copy only where the run has
// master weights (bf16), m and v always.
Model::OptimizerState Model::optimizer_state() const {
  OptimizerState s;
  if (has_master_copy()) s.master = read_optimizer_state(opt_.master, plan_.shard_elems);
  s.m = read_optimizer_state(opt_.m, plan_.shard_elems);
  s.v = read_optimizer_state(opt_.v, plan_.shard_elems);
  return s;
}

// An offloaded fp32 run's host copy of the parameters came from set_parameters() already.
void Model::set_optimizer_state(const OptimizerState& s) {
  const size_t n = static_cast<size_t>(plan_.shard_elems);
  if (s.m.size() != n || s.v.size() != n || (has_master_copy() ? s.master.size() != n : !s.master.empty()))
    throw std::invalid_argument("set_optimizer_state: state does not match the plan's shard of " + std::to_string(n) +
                                " elements");
  const size_t bytes = n * sizeof(float);
  auto put = [&](float* dst, const std::vector<float>& src) {
    if (plan_.offloaded())
      std::memcpy(dst, src.data(), bytes);
    else
      backend_.upload(dst, src.data(), bytes);
  };
  if (has_master_copy()) put(opt_.master, s.master);
  put(opt_.m, s.m);
  put(opt_.v, s.v);
}

}  // namespace gpt2
