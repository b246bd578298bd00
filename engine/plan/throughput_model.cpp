#include "engine/plan/throughput_model.h"

#include <algorithm>

#include "engine/plan/audited_ops.h"

namespace gpt2 {

double device_peak_flops(const MemoryPlan& plan, const GpuSpec& device) {
  return (plan.run.precision == Precision::BF16 ? device.bf16_tflops : device.fp32_tflops) * 1e12;
}

StepTimePrediction predict_step_time(const MemoryPlan& plan, const GpuSpec& device) {
  const DeviceEfficiency& e = device.eff;
  const double peak = device_peak_flops(plan, device);
  const double bw = device.mem_bandwidth_gbs * 1e9;
  auto class_eff = [&](OpClass c) {
    switch (c) {
      case OpClass::MatmulLarge: return e.matmul_large;
      case OpClass::MatmulSmall: return e.matmul_small;
      case OpClass::Attention: return e.attention;
      default: return 1.0;
    }
  };
  StepTimePrediction p;
  p.peak_flops = peak;
  p.estimate = !e.calibrated;
  // The kernel audit's per-op efficiencies (audited_ops.h), unless the card was calibrated by
  // measurement, which wins over any prediction.
  const AuditedOps* audited = e.calibrated ? nullptr : &default_audited_ops();
  const std::string dtype = plan.run.precision == Precision::BF16 ? "bf16" : "fp32";
  const std::vector<OpCost> costs = step_op_costs(plan);
  p.ops.reserve(costs.size());
  for (const OpCost& c : costs) {
    OpPrediction o;
    o.cost = c;
    if (c.cls == OpClass::Comm) {
      o.seconds = c.bytes / (e.interconnect_gbs * 1e9) + c.calls * 10 * e.launch_s;
    } else {
      double compute = c.cls == OpClass::Memory ? c.flops / peak : c.flops / (peak * class_eff(c.cls));
      double memory = c.bytes / (bw * e.memory);
      const AuditedOp* a = audited && (c.cls == OpClass::Memory || c.cls == OpClass::Attention)
                               ? audited->find(c.name, dtype, plan.model.channels)
                               : nullptr;
      if (a) {
        const double eff = audited_efficiency(*a, device.name, bw, peak, e.launch_s);
        if (eff > 0) {
          o.audited = true;
          if (c.cls == OpClass::Memory)
            memory = c.bytes / (bw * eff);
          else  // the audit's model has no instruction-issue term: it may only lower attention's efficiency
            compute = c.flops / (peak * std::min(eff, class_eff(c.cls)));
        }
      }
      o.compute_bound = compute > memory;
      o.seconds = std::max(compute, memory) + c.calls * e.launch_s;
    }
    p.step_s += o.seconds;
    p.ops.push_back(o);
  }
  const double tokens = static_cast<double>(plan.grad_accum) * plan.run.micro_batch * plan.run.seq_len;
  p.flops_per_step = tokens * training_flops_per_token(plan.model, plan.run.seq_len);
  p.tokens_per_s = tokens / p.step_s;
  p.mfu = p.flops_per_step / (p.step_s * peak);
  return p;
}

}  // namespace gpt2
