#include "engine/plan/throughput_model.h"

#include <algorithm>

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
  const std::vector<OpCost> costs = step_op_costs(plan);
  p.ops.reserve(costs.size());
  for (const OpCost& c : costs) {
    OpPrediction o;
    o.cost = c;
    if (c.cls == OpClass::Comm) {
      o.seconds = c.bytes / (e.interconnect_gbs * 1e9) + c.calls * 10 * e.launch_s;
    } else {
      const double compute = c.cls == OpClass::Memory ? c.flops / peak : c.flops / (peak * class_eff(c.cls));
      const double memory = c.bytes / (bw * e.memory);
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
