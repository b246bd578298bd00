#include "engine/plan/throughput_model.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "engine/plan/audited_ops.h"

namespace gpt2 {

namespace {

std::string milliseconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f ms", s * 1e3);
  return buf;
}

std::string gigabytes_per_second(double gbs) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g GB/s", gbs);
  return buf;
}

// The offloaded optimizer's ops: how much of the gradients' copy the backward hides (the rule in
// throughput_model.h), and a note on each.
void overlap_offload(const MemoryPlan& plan, double host_link_gbs, double host_memory_gbs, bool host_memory_measured,
                     StepTimePrediction& p) {
  const int L = plan.model.num_layers;
  double backward_s = 0;  // the layers' backward passes of all micro-batches
  for (const OpPrediction& o : p.ops)
    if (o.cost.resource == OpResource::Device) backward_s += o.seconds * o.cost.backward_share;
  // Layers L−1 .. 1 of the last micro-batch: each layer's copy runs beside the layers below it.
  const double window_s = backward_s / plan.grad_accum * (L - 1) / L;
  // The gradients outside the layers (wte, wpe, lnfw, lnfb) go down after the backward.
  const auto specs = param_tensor_specs(plan.model);
  const double outside_elems =
      static_cast<double>(specs[WTE].numel() + specs[WPE].numel() + specs[LNFW].numel() + specs[LNFB].numel());
  const double outside_share = outside_elems / static_cast<double>(plan.num_params);
  const std::string link = " at " + gigabytes_per_second(host_link_gbs) + " (host link)";
  for (OpPrediction& o : p.ops) {
    if (std::strcmp(o.cost.name, op::kOffloadGradientsToHost) == 0) {
      const double copy_s = o.seconds;
      if (plan.run.world_size == 1) {
        const double outside_s = copy_s * outside_share;
        const double one_layer_s = (copy_s - outside_s) / L;
        const double exposed_s = std::min(copy_s, std::max(outside_s + one_layer_s, copy_s - window_s));
        o.seconds = exposed_s;
        o.hidden_s = copy_s - exposed_s;
        o.note = "offloaded optimizer: " + milliseconds(o.hidden_s) + " of " + milliseconds(copy_s) + link +
                 " hidden behind the backward";
      } else {
        o.note = "offloaded optimizer: " + milliseconds(copy_s) + link + " after the gradient exchange, not hidden";
      }
    } else if (std::strcmp(o.cost.name, op::kOffloadHostAdamW) == 0) {
      o.note = "offloaded optimizer: on the CPU at " + gigabytes_per_second(host_memory_gbs) +
               (host_memory_measured ? " (host memory)" : " (host memory, assumed: not measured)");
    } else if (std::strcmp(o.cost.name, op::kOffloadParametersToDevice) == 0) {
      o.note = "offloaded optimizer: the updated shard" + link + ", not hidden";
    }
  }
}

}  // namespace

double cpu_attention_length_factor(int seq_len) {
  constexpr double kHalfRateT = 180;  // the T at which the CPU attention runs at half its long-T rate
  const double T = seq_len > 0 ? seq_len : 1;
  return T / (T + kHalfRateT);
}

double device_peak_flops(const MemoryPlan& plan, const GpuSpec& device) {
  return (plan.run.precision == Precision::BF16 ? device.bf16_tflops : device.fp32_tflops) * 1e12;
}

StepTimePrediction predict_step_time(const MemoryPlan& plan, const GpuSpec& device) {
  const DeviceEfficiency& e = device.eff;
  const double peak = device_peak_flops(plan, device);
  const double bw = device.mem_bandwidth_gbs * 1e9;
  const double attention_eff =
      device.name == "cpu" ? e.attention * cpu_attention_length_factor(plan.run.seq_len) : e.attention;
  auto class_eff = [&](OpClass c) {
    switch (c) {
      case OpClass::MatmulLarge: return e.matmul_large;
      case OpClass::MatmulSmall: return e.matmul_small;
      case OpClass::Attention: return attention_eff;
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
  const double host_link_gbs = device.host_link_gbs > 0 ? device.host_link_gbs : kDefaultHostLinkGbs;
  const double host_memory_gbs = device.host_memory_gbs > 0 ? device.host_memory_gbs : kDefaultHostMemoryGbs;
  p.ops.reserve(costs.size());
  for (const OpCost& c : costs) {
    OpPrediction o;
    o.cost = c;
    if (c.resource == OpResource::HostLink) {
      o.seconds = c.bytes / (host_link_gbs * 1e9);
    } else if (c.resource == OpResource::HostMemory) {
      o.seconds = c.bytes / (host_memory_gbs * 1e9);
    } else if (c.cls == OpClass::Comm) {
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
    p.ops.push_back(o);
  }
  if (plan.offloaded()) overlap_offload(plan, host_link_gbs, host_memory_gbs, device.host_memory_gbs > 0, p);
  for (const OpPrediction& o : p.ops) p.step_s += o.seconds;
  const double tokens = static_cast<double>(plan.grad_accum) * plan.run.micro_batch * plan.run.seq_len;
  p.flops_per_step = tokens * training_flops_per_token(plan.model, plan.run.seq_len);
  p.tokens_per_s = tokens / p.step_s;
  p.mfu = p.flops_per_step / (p.step_s * peak);
  return p;
}

}  // namespace gpt2
