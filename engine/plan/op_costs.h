// The ops of one optimizer step as the memory plan shapes them. Each entry is one group of
// backend calls, under the name the profile (train_gpt2 --profile) uses for the same calls:
// how many calls a step makes, their FLOPs and the bytes they move (each input read once, each
// output written once, in the run's storage dtype), and the class that picks the device's
// efficiency in the roofline (engine/plan/throughput_model.h).
//
// One step = grad_accum micro-steps (forward, chunked head, backward; block recompute reruns a
// layer's forward in its backward) + zeroing the gradients + the global norm + AdamW, and with
// world_size > 1 the gradient all-reduce (or ZeRO-1's reduce-scatter + all-gather).
//
// With the optimizer offloaded (--offload optimizer) the device's AdamW is replaced by three ops,
// once per step whatever grad_accum is: the shard's gradients copied to the host, AdamW on the
// host, and the updated shard of parameters copied back (engine/model/model.cpp, Model::adamw).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/plan/memory_plan.h"

namespace gpt2 {

enum class OpClass {
  MatmulLarge,  // every GEMM dimension >= kLargeMatmulDim: the tiles fill the device
  MatmulSmall,  // any smaller GEMM
  Attention,    // fused causal attention, forward or backward
  Memory,       // elementwise, normalisation, classifier, optimizer, zeroing, transfers
  Comm,         // collectives between ranks (not a backend call)
};
constexpr int kNumOpClasses = 5;
constexpr int64_t kLargeMatmulDim = 512;
const char* to_string(OpClass c);

// What sets an op's time: the device's roofline, or, for the offloaded optimizer, the
// host<->device link (GpuSpec::host_link_gbs) or the host's memory bandwidth (host_memory_gbs).
enum class OpResource { Device, HostLink, HostMemory };

struct OpCost {
  const char* name = "";  // "matmul qkv forward"; see the names below
  OpClass cls = OpClass::Memory;
  int64_t calls = 0;  // per optimizer step
  double flops = 0;   // per optimizer step
  double bytes = 0;   // per optimizer step
  OpResource resource = OpResource::Device;
  // The fraction of the op's work done inside the layers' backward pass (where the offloaded
  // gradients' copy runs beside the compute): 1 for the layers' backward ops, the recomputed share
  // of the layer forwards under block recompute, 0 for the rest.
  double backward_share = 0;
};

// The group names, in step order. The profiler maps each backend call to one of them.
namespace op {
inline constexpr const char* kEncoderForward = "encoder forward";
inline constexpr const char* kLayernormForward = "layernorm forward";
inline constexpr const char* kMatmulQkvForward = "matmul qkv forward";
inline constexpr const char* kAttentionForward = "attention forward";
inline constexpr const char* kMatmulAttprojForward = "matmul attproj forward";
inline constexpr const char* kResidualLayernormForward = "residual+layernorm forward";
inline constexpr const char* kMatmulFcGeluForward = "matmul fc+gelu forward";
inline constexpr const char* kMatmulFcprojForward = "matmul fcproj forward";
inline constexpr const char* kResidualForward = "residual forward";
inline constexpr const char* kMatmulLmHeadForward = "matmul lm_head forward";
inline constexpr const char* kClassifier = "classifier";
inline constexpr const char* kMatmulLmHeadBackward = "matmul lm_head backward";
inline constexpr const char* kGeluForward = "gelu forward";
inline constexpr const char* kGeluBackward = "gelu backward";
inline constexpr const char* kMatmulFcprojBackward = "matmul fcproj+gelu backward";
inline constexpr const char* kLayernormRecompute = "layernorm recompute";
inline constexpr const char* kMatmulFcBackward = "matmul fc backward";
inline constexpr const char* kLayernormBackward = "layernorm backward";
inline constexpr const char* kMatmulAttprojBackward = "matmul attproj backward";
inline constexpr const char* kAttentionBackward = "attention backward";
inline constexpr const char* kMatmulQkvBackward = "matmul qkv backward";
inline constexpr const char* kEncoderBackward = "encoder backward";
inline constexpr const char* kZero = "zero";
inline constexpr const char* kTransfer = "host transfer";
inline constexpr const char* kGlobalNorm = "global norm";
inline constexpr const char* kAdamW = "adamw";
inline constexpr const char* kGradientExchange = "gradient exchange";
inline constexpr const char* kOffloadGradientsToHost = "offload: gradients to host";
inline constexpr const char* kOffloadHostAdamW = "offload: host AdamW";
inline constexpr const char* kOffloadParametersToDevice = "offload: parameters to device";
inline constexpr const char* kOther = "other";
}  // namespace op

// Which matmul group a call of matmul_forward / matmul_forward_gelu / matmul_backward(_gelu)
// with inner dimension K and output channels OC belongs to, for the model's channels C. The
// lm_head is the only matmul without a bias.
const char* matmul_op_name(int C, int K, int OC, bool has_bias, bool gelu, bool backward);

// The step's ops with nonzero calls, in step order. Cheap (a few dozen entries, no allocation
// beyond the vector), so auto-fit can call it for every candidate.
std::vector<OpCost> step_op_costs(const MemoryPlan& plan);

}  // namespace gpt2
