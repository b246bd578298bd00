// The memory plan: the one place in the project where a buffer size is computed.
//
// make_memory_plan() takes the model shape and the run configuration and lists every buffer the
// engine will use on the device (or in host memory, for the CPU backend): name, shape, dtype,
// bytes, category and a 256-byte-aligned offset into one arena. The arena is allocated once from
// arena_bytes; backends carve pointers with Buffer::offset and never compute sizes themselves.
// Pure host code: it needs no GPU, which is what makes `train_gpt2 --dry-run` possible.
//
// Layout, in arena order (see docs in README "Memory plan"):
//   parameters   16 tensors (llm.c order), run dtype, each padded to 128 elements so every tensor
//                starts 256-byte aligned; the flat view (all 16) is padded to a multiple of
//                128·world_size elements so ZeRO-1 shards are aligned too.
//   gradients    same layout as the parameters.
//   master/m/v   fp32, flat, same element layout; sharded 1/world under ZeRO-1.
//   activations  what the backward pass reads, per layer, depending on the recompute policy.
//   scratch      one layer of backward scratch, plus one layer of recompute scratch.
//   logits       one chunk of logits (chunk × Vp, run dtype) and per-token losses (fp32).
//   workspace    matmul library workspace and the reduction scratch for the global norm; on
//                CUDA the arena is rounded up to cudaMalloc's 2 MiB page (workspace.page_tail).
//   reserve      not in the arena: the CUDA context, library handles (and NCCL), stated as a
//                number measured at start-up (or an estimate in a dry run).
//
// With --offload optimizer (CUDA training only) a second, host arena in pinned memory holds the
// optimizer: master weights, m and v (this rank's shard), the gradients copied from the device
// and, for bf16, the updated parameters on their way back. They leave the device arena.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/plan/model_config.h"

namespace gpt2 {

enum class Precision { BF16, FP32 };
enum class DType { BF16, FP32, INT32 };
enum class Device { CPU, CUDA };
// Where the optimizer runs: on the device with its state in the arena, or on the host with its
// state in the host arena (optimizer offload).
enum class Offload { None, Optimizer };

enum class Category {
  Parameters,
  Gradients,
  MasterWeights,
  AdamM,
  AdamV,
  Activations,
  Scratch,
  Logits,
  Workspace,
  Reserve,
};
constexpr int kNumCategories = 10;

const char* to_string(Precision p);
const char* to_string(DType d);
const char* to_string(Device d);
const char* to_string(Category c);
const char* to_string(Offload o);
int dtype_size(DType d);
Precision parse_precision(const std::string& s);  // "bf16" | "fp32"; ConfigError("--precision")
Device parse_device(const std::string& s);        // "cpu" | "cuda"; ConfigError("--device")
Offload parse_offload(const std::string& s);      // "none" | "optimizer"; ConfigError("--offload")

// What to recompute in the backward pass instead of storing it.
//   none      store everything
//   gelu      drop the GELU output g, recompute it from h
//   norm      also drop the layernorm outputs ln1, ln2 (recomputed from their inputs and the
//             stored mean/rstd)
//   block     keep only each layer's input and recompute the whole layer in the backward pass
//   budget:k  block recompute for the first k layers, store everything for the rest;
//             "budget" alone lets the planner (auto-fit) choose k
struct Recompute {
  enum Kind { None, Gelu, Norm, Block, Budget };
  Kind kind = None;
  int budget_layers = -1;  // k for Budget; -1 = not chosen yet

  // Number of layers whose whole block is recomputed (Block: L, Budget: k, else 0).
  int block_layers(int num_layers) const;
  bool operator==(const Recompute& o) const { return kind == o.kind && budget_layers == o.budget_layers; }
};
std::string to_string(const Recompute& r);  // "none", "gelu", "norm", "block", "budget:3"
// Parses "none|gelu|norm|block|budget|budget:K|budget(K)". ConfigError("--recompute").
Recompute parse_recompute(const std::string& s);

struct RunConfig {
  Device device = Device::CUDA;
  int micro_batch = 4;             // B
  int seq_len = 1024;              // T
  int64_t total_batch_tokens = 0;  // tokens per optimizer step over all ranks; 0 = B·T·world
  Precision precision = Precision::BF16;
  int master_weights = -1;  // fp32 master copy: 1 on, 0 off, -1 auto (on for bf16)
  Recompute recompute;
  int logits_chunk = 0;  // tokens per lm_head chunk; 0 = min(B·T, kDefaultLogitsChunk)
  int zero_stage = 0;    // 0 or 1
  Offload offload = Offload::None;
  int world_size = 1;
  int rank = 0;
  // false: an inference plan (sampling, evaluation): parameters, forward activations (the KV
  // cache for decoding), logits and workspaces only; no gradients, optimizer state or backward
  // scratch. Recompute must be none.
  bool training = true;
  // Bytes outside the arena (CUDA context, cuBLAS/cuBLASLt handles, NCCL). -1 = the default
  // estimate for the device; a real run replaces it with the measured value.
  int64_t reserve_bytes = -1;
};

constexpr int kDefaultLogitsChunk = 2048;
constexpr int64_t kArenaAlignment = 256;
constexpr int64_t kParamAlignElems = 128;                  // 256 B in bf16, 512 B in fp32
constexpr int64_t kDefaultCudaReserveBytes = 512ll << 20;  // context + handles, dry-run estimate
constexpr int64_t kDefaultNcclReserveBytes = 256ll << 20;  // NCCL channels/buffers, world > 1
constexpr int64_t kCudaAllocGranularity = 2ll << 20;       // cudaMalloc commits 2 MiB pages

struct Buffer {
  std::string name;  // e.g. "params.wte", "act.qkv", "scratch.dqkv"
  Category category;
  DType dtype;
  std::vector<int64_t> shape;  // logical shape, e.g. {L, B, T, 3C}
  int64_t numel;               // elements the shape holds (plus tail padding for param tensors)
  int64_t bytes;               // allocated bytes: numel·dtype_size rounded up to 256
  int64_t offset;              // byte offset in the arena, a multiple of 256
};

struct MemoryPlan {
  ModelConfig model;
  RunConfig run;                                 // as resolved: chunk, master weights, reserve, budget k filled in
  int grad_accum = 1;                            // micro-steps per optimizer step
  int recompute_layers = 0;                      // layers with whole-block recompute (the first ones)
  int64_t num_params = 0;                        // unpadded parameter count
  int64_t flat_param_elems = 0;                  // padded flat parameter view (all 16 tensors + tail padding)
  int64_t shard_elems = 0;                       // master/m/v elements held by this rank
  int64_t param_offsets[kNumParamTensors] = {};  // element offset of each tensor in the flat view
  std::vector<Buffer> buffers;                   // arena order; offsets increase and never overlap
  int64_t arena_bytes = 0;                       // one allocation of this size holds every buffer
  int64_t reserve_bytes = 0;                     // outside the arena
  // The host arena (optimizer offload; empty otherwise): offsets into one pinned host allocation.
  std::vector<Buffer> host_buffers;
  int64_t host_arena_bytes = 0;

  bool offloaded() const { return run.offload == Offload::Optimizer; }
  int64_t total_bytes() const { return arena_bytes + reserve_bytes; }
  int64_t category_bytes(Category c) const;           // device arena; Reserve gives reserve_bytes
  const Buffer& find(const std::string& name) const;  // device arena; throws std::out_of_range
  const Buffer* find_if(const std::string& name) const;
  const Buffer& find_host(const std::string& name) const;  // host arena; throws std::out_of_range
  const Buffer* find_host_if(const std::string& name) const;
  // Stored per-layer activation index of layer l, or -1 when layer l is block-recomputed.
  int stored_layer_index(int l) const { return l < recompute_layers ? -1 : l - recompute_layers; }
  // A stable 64-bit hash of everything that determines the layout (for checkpoints and for
  // checking that all ranks agree).
  uint64_t hash() const;
};

// Validates the configs (ConfigError naming the flag on nonsense) and computes the plan.
MemoryPlan make_memory_plan(const ModelConfig& model, const RunConfig& run);

// Just the validation, shared with auto-fit (which must reject the same inputs).
void validate_run_config(const ModelConfig& model, const RunConfig& run);

}  // namespace gpt2
