#include "engine/plan/op_costs.h"

#include <algorithm>

namespace gpt2 {

const char* to_string(OpClass c) {
  switch (c) {
    case OpClass::MatmulLarge: return "matmul (large)";
    case OpClass::MatmulSmall: return "matmul (small)";
    case OpClass::Attention: return "attention";
    case OpClass::Memory: return "memory-bound";
    case OpClass::Comm: return "communication";
  }
  return "?";
}

const char* matmul_op_name(int C, int K, int OC, bool has_bias, bool gelu, bool backward) {
  if (!has_bias) return backward ? op::kMatmulLmHeadBackward : op::kMatmulLmHeadForward;
  if (gelu) return backward ? op::kMatmulFcprojBackward : op::kMatmulFcGeluForward;
  if (K == C && OC == 3 * C) return backward ? op::kMatmulQkvBackward : op::kMatmulQkvForward;
  if (K == C && OC == C) return backward ? op::kMatmulAttprojBackward : op::kMatmulAttprojForward;
  if (K == C && OC == 4 * C) return backward ? op::kMatmulFcBackward : op::kMatmulFcGeluForward;
  if (K == 4 * C && OC == C) return backward ? op::kMatmulFcprojBackward : op::kMatmulFcprojForward;
  return op::kOther;
}

namespace {

// Approximate arithmetic per element of the non-matmul work (vectorised exp/tanh polynomials
// included); these ops are bound by memory on GPUs, and on CPUs only by a small margin.
constexpr double kGeluFlops = 20;        // tanh-approximation GELU or its derivative
constexpr double kClassifierFlops = 15;  // max, exp, sum, and the gradient
constexpr double kLayernormFlops = 8;

OpClass matmul_class(double M, double K, double OC) {
  return std::min({M, K, OC}) >= kLargeMatmulDim ? OpClass::MatmulLarge : OpClass::MatmulSmall;
}

}  // namespace

std::vector<OpCost> step_op_costs(const MemoryPlan& plan) {
  const ModelConfig& m = plan.model;
  const RunConfig& r = plan.run;
  const double d = r.precision == Precision::BF16 ? 2.0 : 4.0;
  const double C = m.channels, NH = m.num_heads, Vp = m.padded_vocab;
  const double B = r.micro_batch, T = r.seq_len, N = B * T;
  const int64_t A = plan.grad_accum;
  const int64_t L = m.num_layers, Lb = plan.recompute_layers, Ls = L - Lb;
  const Recompute::Kind kind = r.recompute.kind;
  const bool gelu_recompute = kind == Recompute::Gelu || kind == Recompute::Norm;
  const bool norm_recompute = kind == Recompute::Norm;
  const int64_t chunk = std::max(1, r.logits_chunk);
  const int64_t chunks = (static_cast<int64_t>(N) + chunk - 1) / chunk;
  const double chunk_rows = N / static_cast<double>(chunks);  // the mean rows per chunk

  std::vector<OpCost> ops;
  ops.reserve(32);
  // `calls` per micro-step; everything is scaled by grad_accum below. `backward_share`: see OpCost.
  auto add = [&](const char* name, OpClass cls, int64_t calls, double flops_per_call, double bytes_per_call,
                 double backward_share = 0) {
    if (calls <= 0) return;
    OpCost o;
    o.name = name;
    o.cls = cls;
    o.calls = calls;
    o.flops = calls * flops_per_call;
    o.bytes = calls * bytes_per_call;
    o.backward_share = backward_share;
    ops.push_back(o);
  };
  // out (M, OC) = inp (M, K) · wᵀ + bias
  auto mm_fwd = [&](const char* name, int64_t calls, double M, double K, double OC, bool gelu,
                    double backward_share = 0) {
    const double flops = 2 * M * K * OC + (gelu ? kGeluFlops * M * OC : 0);
    const double bytes = d * (M * K + OC * K + OC + M * OC * (gelu ? 2 : 1));
    add(name, matmul_class(M, K, OC), calls, flops, bytes, backward_share);
  };
  // dinp = dout · w; dweight += doutᵀ · inp; dbias += Σ dout (gelu: dinp ∘= gelu'(pre))
  auto mm_bwd = [&](const char* name, int64_t calls, double M, double K, double OC, bool bias, bool gelu,
                    double backward_share = 0) {
    const double flops = 4 * M * K * OC + (bias ? M * OC : 0) + (gelu ? kGeluFlops * M * K : 0);
    const double bytes = d * (M * OC + M * K + OC * K + M * K + 2 * OC * K + (bias ? 2 * OC : 0) + (gelu ? M * K : 0));
    add(name, matmul_class(M, K, OC), calls, flops, bytes, backward_share);
  };
  const double NC = N * C, stats = 8 * N;
  // Causal attention FLOPs as FlashAttention counts them: forward 4·B·T²·C / 2, backward 2.5×.
  const double att_fwd_flops = 2 * B * T * T * C, att_bwd_flops = 2.5 * att_fwd_flops;
  const int64_t Lf = L + Lb;  // layer forwards per micro-step: all layers, then the recomputed ones again
  // The share of the layer forwards that block recompute reruns inside the backward pass.
  const double rerun = static_cast<double>(Lb) / static_cast<double>(Lf);

  add(op::kTransfer, OpClass::Memory, 3, 0, 4 * N);  // inputs and targets up, losses down
  add(op::kEncoderForward, OpClass::Memory, 1, NC, d * (2 * NC + T * C) + 4 * N);
  add(op::kLayernormForward, OpClass::Memory, Lf + 1, kLayernormFlops * NC, d * (2 * NC + 2 * C) + stats,
      static_cast<double>(Lb) / static_cast<double>(Lf + 1));
  mm_fwd(op::kMatmulQkvForward, Lf, N, C, 3 * C, false, rerun);
  add(op::kAttentionForward, OpClass::Attention, Lf, att_fwd_flops, d * 4 * NC + 4 * N * NH, rerun);
  mm_fwd(op::kMatmulAttprojForward, Lf, N, C, C, false, rerun);
  add(op::kResidualLayernormForward, OpClass::Memory, Lf, (kLayernormFlops + 1) * NC, d * (4 * NC + 2 * C) + stats,
      rerun);
  mm_fwd(op::kMatmulFcGeluForward, Lf, N, C, 4 * C, true, rerun);
  mm_fwd(op::kMatmulFcprojForward, L, N, 4 * C, C, false);
  add(op::kResidualForward, OpClass::Memory, L, NC, d * 3 * NC);
  // The head: chunks of the lm_head, the fused softmax-cross-entropy and the lm_head's backward.
  mm_fwd(op::kMatmulLmHeadForward, chunks, chunk_rows, C, Vp, false);
  add(op::kClassifier, OpClass::Memory, chunks, kClassifierFlops * chunk_rows * Vp,
      d * 2 * chunk_rows * Vp + 8 * chunk_rows);
  mm_bwd(op::kMatmulLmHeadBackward, chunks, chunk_rows, C, Vp, false, false);
  // The backward, layer by layer from the top.
  add(op::kZero, OpClass::Memory, 1, 0, d * NC);  // d(residual) starts at zero
  if (gelu_recompute) add(op::kGeluForward, OpClass::Memory, Ls, kGeluFlops * 4 * NC, d * 8 * NC, 1);
  mm_bwd(op::kMatmulFcprojBackward, L, N, 4 * C, C, true, true, 1);
  if (norm_recompute)
    add(op::kLayernormRecompute, OpClass::Memory, 2 * Ls, kLayernormFlops * NC, d * (2 * NC + 2 * C) + stats, 1);
  mm_bwd(op::kMatmulFcBackward, L, N, C, 4 * C, true, false, 1);
  // Two per layer, and the final layernorm's before the layers.
  add(op::kLayernormBackward, OpClass::Memory, 2 * L + 1, 2 * kLayernormFlops * NC, d * (4 * NC + 4 * C) + stats,
      static_cast<double>(2 * L) / static_cast<double>(2 * L + 1));
  mm_bwd(op::kMatmulAttprojBackward, L, N, C, C, true, false, 1);
  add(op::kAttentionBackward, OpClass::Attention, L, att_bwd_flops, d * 8 * NC + 4 * N * NH, 1);
  mm_bwd(op::kMatmulQkvBackward, L, N, C, 3 * C, true, false, 1);
  add(op::kEncoderBackward, OpClass::Memory, 1, NC, d * (3 * NC + 2 * T * C) + 4 * N);
  for (auto& o : ops) {
    o.calls *= A;
    o.flops *= A;
    o.bytes *= A;
  }

  // Once per optimizer step.
  const double flat = static_cast<double>(plan.flat_param_elems), shard = static_cast<double>(plan.shard_elems);
  const bool zero1 = r.zero_stage == 1 && r.world_size > 1;
  const double W = r.world_size;
  add(op::kZero, OpClass::Memory, 1, 0, d * flat);  // the gradients
  if (r.world_size > 1)  // ring all-reduce, or reduce-scatter + all-gather: 2·(W−1)/W of the buffer each way
    add(op::kGradientExchange, OpClass::Comm, zero1 ? 2 : 1, 0, (zero1 ? 1.0 : 2.0) * (W - 1) / W * d * flat);
  add(op::kGlobalNorm, OpClass::Memory, 1, 2 * (zero1 ? shard : flat), d * (zero1 ? shard : flat));
  if (plan.offloaded()) {
    // The optimizer on the host (the plan's host arena). The gradients go down once per step: with
    // one rank a layer at a time during the last micro-batch's backward (12 slices per layer, then
    // wte, wpe, lnfw, lnfb; throughput_model.h says how much of it the backward hides), with more
    // ranks the whole shard after the gradient exchange.
    auto add_offload = [&](const char* name, OpResource resource, int64_t calls, double flops, double bytes) {
      add(name, OpClass::Memory, calls, flops / calls, bytes / calls);
      ops.back().resource = resource;
    };
    add_offload(op::kOffloadGradientsToHost, OpResource::HostLink, r.world_size == 1 ? 12 * L + 4 : 1, 0, d * shard);
    // AdamW on the CPU, per element: master, m and v read and written (3 × (4 + 4) bytes), the
    // gradient read (run dtype) and, for bf16, the rounded parameter written to the upload buffer
    // (an fp32 run uploads the master copy itself, already counted).
    const double params_out = r.precision == Precision::BF16 ? d : 0.0;
    add_offload(op::kOffloadHostAdamW, OpResource::HostMemory, 1, 12 * shard, shard * (3 * (4 + 4) + d + params_out));
    add_offload(op::kOffloadParametersToDevice, OpResource::HostLink, 1, 0, d * shard);
  } else {
    // AdamW: read the gradients and parameters, write the parameters (run dtype); m and v read and
    // written (fp32), and the fp32 master copy when there is one.
    const double master = r.master_weights == 1 ? 8.0 : 0.0;
    add(op::kAdamW, OpClass::Memory, 1, 12 * shard, shard * (3 * d + 16 + master));
  }

  // Merge the two zero entries (per micro-step and per step) into one group.
  std::vector<OpCost> merged;
  merged.reserve(ops.size());
  for (const auto& o : ops) {
    auto it = std::find_if(merged.begin(), merged.end(), [&](const OpCost& x) { return x.name == o.name; });
    if (it == merged.end()) {
      merged.push_back(o);
    } else {
      it->backward_share = (it->backward_share * it->calls + o.backward_share * o.calls) / (it->calls + o.calls);
      it->calls += o.calls;
      it->flops += o.flops;
      it->bytes += o.bytes;
    }
  }
  return merged;
}

}  // namespace gpt2
