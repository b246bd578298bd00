// The roofline prediction of one optimizer step for a memory plan on a device.
//
// For every op group of the step (engine/plan/op_costs.h), from the plan's shapes and dtypes:
//   t(op) = max(flops / (peak · eff[class]), bytes / (bandwidth · eff.memory)) + calls · launch_s
// with eff[class] the device's efficiency for large matmuls, small matmuls, attention or
// memory-bound ops (engine/plan/gpu_catalog.h) — for the ops the kernel audit covers, on a card
// not calibrated by measurement, the op's own audited efficiency instead (engine/plan/
// audited_ops.h): for a memory-bound op in place of eff.memory; for attention at most the class
// figure, as the audit's model (kernel_cost_model.h) counts memory, shared-memory and tensor work
// but not instruction issue, so its time for a compute-heavy kernel is a lower bound — and the
// gradient exchange at the device's
// interconnect bandwidth. The step's time is the sum (grad_accum is in the op counts). MFU is
// the model's FLOPs per step (engine/plan/model_config.h) over step time × peak.
//
// On the CPU device the attention's efficiency follows the sequence length:
// eff.attention · cpu_attention_length_factor(T), as kernels/cpu/attention.cpp's fixed work per
// tile of positions (packing, the partly masked diagonal tiles) weighs more at short sequences.
//
// The offloaded optimizer (--offload optimizer), once per step: its copies (the shard in the run
// dtype, each way) take bytes / host_link_gbs, the host AdamW bytes / host_memory_gbs
// (kDefaultHostMemoryGbs when unknown) with 28 bytes per element (master, m and v read and
// written, 3 × (4 + 4), the gradient read and, for bf16, the parameter written: 24 + 2 + 2; an
// fp32 run's parameter is its master copy: 24 + 4); no launch costs. With world_size 1 the gradients go down a layer at a time beside the backward of
// the layers below, so the step sees only what the backward does not hide:
//   exposed = max(copy of wte, wpe, lnf + one layer's share,
//                 whole copy − backward time of layers 1..L−1 of the last micro-batch)
// (the copy stream is serial: the first term when each layer's copy is shorter than a layer's
// backward, the second when the copies pile up). The backward time is the layers' backward ops and
// the forwards that block recompute reruns there (OpCost::backward_share), spread evenly over the
// layers. With more ranks the copy follows the gradient exchange and nothing is hidden; the
// parameters' upload and the host AdamW are never hidden.
// Auto-fit ranks every candidate plan with it, so it stays a few microseconds per plan.
#pragma once
#include <string>
#include <vector>

#include "engine/plan/gpu_catalog.h"
#include "engine/plan/memory_plan.h"
#include "engine/plan/op_costs.h"

namespace gpt2 {

struct OpPrediction {
  OpCost cost;
  double seconds = 0;          // per optimizer step, on the step's critical path
  double hidden_s = 0;         // per optimizer step, run beside other ops (the offloaded gradients' copy)
  bool compute_bound = false;  // the FLOP term is the larger one
  bool audited = false;        // the efficiency comes from the kernel audit (audited_ops.h)
  std::string note;            // for people: what the offload ops are and how much is hidden; else empty
};

struct StepTimePrediction {
  double step_s = 0;          // one optimizer step
  double tokens_per_s = 0;    // per rank
  double flops_per_step = 0;  // model FLOPs per rank (6·N per token + attention; not recompute)
  double mfu = 0;             // flops_per_step / (step_s · peak)
  double peak_flops = 0;      // the device's peak for the run's precision, FLOP/s
  bool estimate = true;       // the device's efficiencies are estimates, not calibrated
  std::vector<OpPrediction> ops;
};

// The peak FLOP/s a plan's precision gets on the device (bf16 tensor or fp32).
double device_peak_flops(const MemoryPlan& plan, const GpuSpec& device);

// The CPU attention's efficiency at sequence length T relative to long sequences: T / (T + 180),
// fitted to train_gpt2 --profile runs of kernels/cpu/attention.cpp at T = 128..1024 on 2 threads
// (bench/RESULTS.md, issue 30).
double cpu_attention_length_factor(int seq_len);

StepTimePrediction predict_step_time(const MemoryPlan& plan, const GpuSpec& device);

}  // namespace gpt2
