#include "engine/plan/throughput_model.h"

#include <cmath>

namespace gpt2 {

StepTimePrediction predict_step_time(const MemoryPlan& plan, const GpuSpec& gpu) {
  const auto& m = plan.model;
  const auto& r = plan.run;
  const double L = m.num_layers, C = m.channels, Vp = m.padded_vocab;
  const double T = r.seq_len, BT = static_cast<double>(r.micro_batch) * r.seq_len;
  const double chunk = r.logits_chunk;
  const bool bf16 = r.precision == Precision::BF16;
  const double peak = (bf16 ? gpu.bf16_tflops : gpu.fp32_tflops) * 1e12;
  const double bw = gpu.mem_bandwidth_gbs * 1e9;
  const double dsize = bf16 ? 2.0 : 4.0;
  auto eff = [](double rows) { return rows / (rows + kHalfEfficiencyTokens); };

  const double head_flops = 6.0 * BT * Vp * C;
  const double body_flops = BT * training_flops_per_token(m, r.seq_len) - head_flops;
  // Block recompute reruns the forward of those layers: 24·C² matmul FLOPs per token plus the
  // causal attention forward (2·T·C per token).
  const double recompute_flops = plan.recompute_layers * BT * (24.0 * C * C + 2.0 * T * C);
  double recompute_bytes = 0;
  switch (r.recompute.kind) {
    case Recompute::Gelu: recompute_bytes = L * BT * 4 * C * dsize * 2; break;
    case Recompute::Norm: recompute_bytes = L * BT * (4 * C * 2 + C * 2 * 2) * dsize; break;
    default: break;
  }
  const double n_chunks = std::ceil(BT / chunk);
  const double launches = L * 16 + 12 + n_chunks * 4;

  StepTimePrediction p;
  p.micro_step_s = body_flops / (peak * eff(BT)) + head_flops / (peak * eff(chunk)) +
                   recompute_flops / (peak * eff(BT)) + recompute_bytes / bw + launches * kLaunchSeconds;
  // AdamW: read grads, params, m, v (and master), write params, m, v (and master).
  const double n = static_cast<double>(plan.shard_elems);
  const double opt_bytes = n * (dsize * 3 + 4.0 * 4 + (r.master_weights == 1 ? 8.0 : 0.0));
  p.optimizer_s = opt_bytes / bw;
  p.step_s = plan.grad_accum * p.micro_step_s + p.optimizer_s;
  p.flops_per_step = plan.grad_accum * (body_flops + head_flops + recompute_flops);
  p.tokens_per_s = plan.grad_accum * BT / p.step_s;
  return p;
}

}  // namespace gpt2
