#include "engine/plan/memory_plan.h"

#include <algorithm>
#include <stdexcept>

#include "engine/util/errors.h"
#include "kernels/cuda/scratch_sizes.h"

namespace gpt2 {

const char* to_string(Precision p) { return p == Precision::BF16 ? "bf16" : "fp32"; }
const char* to_string(DType d) {
  switch (d) {
    case DType::BF16: return "bf16";
    case DType::FP32: return "fp32";
    case DType::INT32: return "int32";
  }
  return "?";
}
const char* to_string(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }
const char* to_string(Category c) {
  switch (c) {
    case Category::Parameters: return "parameters";
    case Category::Gradients: return "gradients";
    case Category::MasterWeights: return "master_weights";
    case Category::AdamM: return "adam_m";
    case Category::AdamV: return "adam_v";
    case Category::Activations: return "activations";
    case Category::Scratch: return "scratch";
    case Category::Logits: return "logits";
    case Category::Workspace: return "workspace";
    case Category::Reserve: return "reserve";
  }
  return "?";
}
const char* to_string(Offload o) { return o == Offload::Optimizer ? "optimizer" : "none"; }
int dtype_size(DType d) { return d == DType::BF16 ? 2 : 4; }

Precision parse_precision(const std::string& s) {
  if (s == "bf16" || s == "bfloat16") return Precision::BF16;
  if (s == "fp32" || s == "float32") return Precision::FP32;
  throw ConfigError("--precision", "unknown precision '" + s + "' (use bf16 or fp32; fp16 is not supported)");
}

Offload parse_offload(const std::string& s) {
  if (s == "none") return Offload::None;
  if (s == "optimizer") return Offload::Optimizer;
  throw ConfigError("--offload", "unknown value '" + s + "' (use none or optimizer)");
}

Device parse_device(const std::string& s) {
  if (s == "cpu") return Device::CPU;
  if (s == "cuda" || s == "gpu") return Device::CUDA;
  throw ConfigError("--device", "unknown device '" + s + "' (use cpu or cuda)");
}

int Recompute::block_layers(int num_layers) const {
  if (kind == Block) return num_layers;
  if (kind == Budget) return budget_layers < 0 ? 0 : budget_layers;
  return 0;
}

std::string to_string(const Recompute& r) {
  switch (r.kind) {
    case Recompute::None: return "none";
    case Recompute::Gelu: return "gelu";
    case Recompute::Norm: return "norm";
    case Recompute::Block: return "block";
    case Recompute::Budget: return r.budget_layers < 0 ? "budget" : "budget:" + std::to_string(r.budget_layers);
  }
  return "?";
}

Recompute parse_recompute(const std::string& s) {
  Recompute r;
  if (s == "none")
    r.kind = Recompute::None;
  else if (s == "gelu")
    r.kind = Recompute::Gelu;
  else if (s == "norm")
    r.kind = Recompute::Norm;
  else if (s == "block")
    r.kind = Recompute::Block;
  else if (s.rfind("budget", 0) == 0) {
    r.kind = Recompute::Budget;
    std::string rest = s.substr(6);
    if (!rest.empty()) {
      if (rest.front() == ':')
        rest = rest.substr(1);
      else if (rest.front() == '(' && rest.back() == ')')
        rest = rest.substr(1, rest.size() - 2);
      else
        throw ConfigError("--recompute", "malformed '" + s + "' (use budget:K)");
      if (rest.empty() || rest.find_first_not_of("0123456789") != std::string::npos || rest.size() > 6)
        throw ConfigError("--recompute", "malformed '" + s + "' (K must be a layer count, e.g. budget:4)");
      r.budget_layers = std::stoi(rest);
    }
  } else {
    throw ConfigError("--recompute", "unknown policy '" + s + "' (none, gelu, norm, block, budget, budget:K)");
  }
  return r;
}

void validate_run_config(const ModelConfig& m, const RunConfig& r) {
  validate(m);
  if (r.device == Device::CUDA && m.head_size() > cuda::kMaxAttentionHeadSize)
    throw ConfigError("--heads", "head size " + std::to_string(m.head_size()) + " (width " +
                                     std::to_string(m.channels) + " / " + std::to_string(m.num_heads) +
                                     " heads) is larger than the CUDA attention kernels take (at most " +
                                     std::to_string(cuda::kMaxAttentionHeadSize) + "); use more heads");
  if (r.micro_batch <= 0) throw ConfigError("--micro-batch", "must be positive, got " + std::to_string(r.micro_batch));
  if (r.seq_len <= 0) throw ConfigError("--seq-len", "must be positive, got " + std::to_string(r.seq_len));
  if (r.seq_len > m.max_seq_len)
    throw ConfigError("--seq-len", std::to_string(r.seq_len) + " is larger than the model's context " +
                                       std::to_string(m.max_seq_len) + " (--max-seq-len)");
  if (r.world_size <= 0) throw ConfigError("--world-size", "must be positive, got " + std::to_string(r.world_size));
  if (r.rank < 0 || r.rank >= r.world_size)
    throw ConfigError("--rank",
                      "rank " + std::to_string(r.rank) + " is outside [0, " + std::to_string(r.world_size) + ")");
  if (r.zero_stage != 0 && r.zero_stage != 1)
    throw ConfigError("--zero", "ZeRO stage must be 0 or 1, got " + std::to_string(r.zero_stage));
  const int64_t tokens_per_micro = static_cast<int64_t>(r.micro_batch) * r.seq_len;
  if (tokens_per_micro > (int64_t{1} << 31) / 4)
    throw ConfigError("--micro-batch", "B×T = " + std::to_string(tokens_per_micro) + " tokens is too large");
  if (r.total_batch_tokens < 0) throw ConfigError("--total-batch-tokens", "must be positive");
  const int64_t per_step = tokens_per_micro * r.world_size;
  if (r.total_batch_tokens > 0 && r.total_batch_tokens % per_step != 0)
    throw ConfigError("--total-batch-tokens", std::to_string(r.total_batch_tokens) +
                                                  " is not divisible by B×T×world = " + std::to_string(r.micro_batch) +
                                                  "×" + std::to_string(r.seq_len) + "×" + std::to_string(r.world_size) +
                                                  " = " + std::to_string(per_step));
  if (r.logits_chunk < 0)
    throw ConfigError("--logits-chunk", "must be positive, got " + std::to_string(r.logits_chunk));
  if (r.recompute.kind == Recompute::Budget && r.recompute.budget_layers > m.num_layers)
    throw ConfigError("--recompute", "budget:" + std::to_string(r.recompute.budget_layers) + " exceeds the model's " +
                                         std::to_string(m.num_layers) + " layers");
  if (r.precision == Precision::FP32 && r.master_weights == 1)
    throw ConfigError("--master-weights", "fp32 precision already keeps fp32 weights; master weights apply to bf16");
  if (r.reserve_bytes < -1) throw ConfigError("--reserve", "must not be negative");
  if (!r.training && r.recompute.kind != Recompute::None)
    throw ConfigError("--recompute", "an inference plan has no backward pass to recompute for; use none");
  if (r.device == Device::CPU && r.precision == Precision::BF16)
    throw ConfigError("--precision", "the CPU backend computes and stores fp32; use --precision fp32");
  if (r.offload == Offload::Optimizer) {
    if (r.device != Device::CUDA)
      throw ConfigError("--offload", "moves the optimizer from the GPU to host memory; with --device cpu it is there "
                                     "already (use --offload none)");
    if (!r.training) throw ConfigError("--offload", "an inference plan has no optimizer to offload");
    if (r.precision == Precision::BF16 && r.master_weights == 0)
      throw ConfigError("--master-weights", "--offload optimizer keeps fp32 master weights in host memory; it cannot "
                                            "run with --master-weights off");
  }
}

namespace {

int64_t align_up(int64_t x, int64_t a) { return (x + a - 1) / a * a; }

struct PlanBuilder {
  std::vector<Buffer>& buffers;
  int64_t cursor = 0;
  void add(const std::string& name, Category cat, DType dt, std::vector<int64_t> shape, int64_t numel_override = -1) {
    int64_t numel = 1;
    for (auto d : shape) numel *= d;
    if (numel_override >= 0) numel = numel_override;
    if (numel <= 0) return;  // e.g. no stored layers under block recompute
    Buffer b;
    b.name = name;
    b.category = cat;
    b.dtype = dt;
    b.shape = std::move(shape);
    b.numel = numel;
    b.bytes = align_up(numel * dtype_size(dt), kArenaAlignment);
    b.offset = cursor;
    cursor += b.bytes;
    buffers.push_back(std::move(b));
  }
};

// FNV-1a over a stream of integers.
struct Hasher {
  uint64_t h = 1469598103934665603ull;
  void mix(int64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= static_cast<uint64_t>(v >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  }
  void mix(const std::string& s) {
    for (char c : s) mix(static_cast<int64_t>(static_cast<unsigned char>(c)));
    mix(-1);
  }
};

}  // namespace

int64_t MemoryPlan::category_bytes(Category c) const {
  if (c == Category::Reserve) return reserve_bytes;
  int64_t sum = 0;
  for (const auto& b : buffers)
    if (b.category == c) sum += b.bytes;
  return sum;
}

const Buffer* MemoryPlan::find_if(const std::string& name) const {
  for (const auto& b : buffers)
    if (b.name == name) return &b;
  return nullptr;
}

const Buffer& MemoryPlan::find(const std::string& name) const {
  if (const Buffer* b = find_if(name)) return *b;
  throw std::out_of_range("memory plan has no buffer '" + name + "'");
}

const Buffer* MemoryPlan::find_host_if(const std::string& name) const {
  for (const auto& b : host_buffers)
    if (b.name == name) return &b;
  return nullptr;
}

const Buffer& MemoryPlan::find_host(const std::string& name) const {
  if (const Buffer* b = find_host_if(name)) return *b;
  throw std::out_of_range("memory plan has no host buffer '" + name + "'");
}

uint64_t MemoryPlan::hash() const {
  Hasher h;
  h.mix(model.num_layers);
  h.mix(model.channels);
  h.mix(model.num_heads);
  h.mix(model.max_seq_len);
  h.mix(model.vocab_size);
  h.mix(model.padded_vocab);
  h.mix(static_cast<int64_t>(run.device));
  h.mix(run.micro_batch);
  h.mix(run.seq_len);
  h.mix(grad_accum);
  h.mix(static_cast<int64_t>(run.precision));
  h.mix(run.master_weights);
  h.mix(to_string(run.recompute));
  h.mix(run.logits_chunk);
  h.mix(run.zero_stage);
  h.mix(run.world_size);
  h.mix(run.training ? 1 : 0);
  h.mix(static_cast<int64_t>(run.offload));
  for (const auto& list : {&buffers, &host_buffers})
    for (const auto& b : *list) {
      h.mix(b.name);
      h.mix(b.offset);
      h.mix(b.bytes);
    }
  h.mix(arena_bytes);
  h.mix(host_arena_bytes);
  return h.h;
}

MemoryPlan make_memory_plan(const ModelConfig& model, const RunConfig& run_in) {
  validate_run_config(model, run_in);
  MemoryPlan plan;
  plan.model = model;
  RunConfig run = run_in;

  const int64_t L = model.num_layers, C = model.channels, NH = model.num_heads, Vp = model.padded_vocab;
  const int64_t B = run.micro_batch, T = run.seq_len, BT = B * T;
  const int64_t W = run.world_size;
  const bool bf16 = run.precision == Precision::BF16;
  const DType act = bf16 ? DType::BF16 : DType::FP32;
  const DType f32 = DType::FP32, i32 = DType::INT32;

  // ---- resolve defaults --------------------------------------------------------------------
  if (run.total_batch_tokens == 0) run.total_batch_tokens = BT * W;
  plan.grad_accum = static_cast<int>(run.total_batch_tokens / (BT * W));
  if (run.master_weights < 0) run.master_weights = bf16 ? 1 : 0;
  if (run.logits_chunk == 0) run.logits_chunk = static_cast<int>(std::min<int64_t>(BT, kDefaultLogitsChunk));
  if (run.logits_chunk > BT) run.logits_chunk = static_cast<int>(BT);
  if (run.recompute.kind == Recompute::Budget && run.recompute.budget_layers < 0)
    run.recompute.budget_layers = 0;  // auto-fit chooses k; a plain plan stores everything
  if (run.reserve_bytes < 0) {
    run.reserve_bytes = 0;
    if (run.device == Device::CUDA) {
      run.reserve_bytes = kDefaultCudaReserveBytes + (W > 1 ? kDefaultNcclReserveBytes : 0);
    }
  }
  plan.run = run;
  plan.reserve_bytes = run.reserve_bytes;
  plan.recompute_layers = run.recompute.block_layers(model.num_layers);
  plan.num_params = num_parameters(model);

  PlanBuilder pb{plan.buffers};
  PlanBuilder host{plan.host_buffers};

  // ---- parameters and gradients: 16 tensors, each padded to 128 elements ----------------------
  const auto specs = param_tensor_specs(model);
  int64_t elems = 0;
  int64_t padded_numel[kNumParamTensors];
  for (int i = 0; i < kNumParamTensors; ++i) {
    plan.param_offsets[i] = elems;
    padded_numel[i] = align_up(specs[i].numel(), kParamAlignElems);
    elems += padded_numel[i];
  }
  // Tail padding so the flat view splits into world_size aligned shards.
  const int64_t flat = align_up(elems, kParamAlignElems * W);
  padded_numel[kNumParamTensors - 1] += flat - elems;
  plan.flat_param_elems = flat;
  plan.shard_elems = run.zero_stage == 1 ? flat / W : flat;

  for (int i = 0; i < kNumParamTensors; ++i)
    pb.add(std::string("params.") + specs[i].name, Category::Parameters, act, specs[i].shape, padded_numel[i]);
  if (run.training) {
    for (int i = 0; i < kNumParamTensors; ++i)
      pb.add(std::string("grads.") + specs[i].name, Category::Gradients, act, specs[i].shape, padded_numel[i]);

    // ---- optimizer state (fp32, flat, sharded under ZeRO-1) -----------------------------------
    if (run.offload == Offload::None) {
      if (run.master_weights == 1) pb.add("master_weights", Category::MasterWeights, f32, {plan.shard_elems});
      pb.add("adam_m", Category::AdamM, f32, {plan.shard_elems});
      pb.add("adam_v", Category::AdamV, f32, {plan.shard_elems});
    } else {
      // Offloaded: the host optimizer always works on an fp32 copy of the parameters (for fp32
      // runs it equals them), reads the gradients copied from the device and, for bf16, stages
      // the rounded parameters for the upload (fp32 runs upload the master copy itself).
      host.add("master_weights", Category::MasterWeights, f32, {plan.shard_elems});
      host.add("adam_m", Category::AdamM, f32, {plan.shard_elems});
      host.add("adam_v", Category::AdamV, f32, {plan.shard_elems});
      host.add("offload.grads", Category::Gradients, act, {plan.shard_elems});
      if (bf16) host.add("offload.params", Category::Parameters, act, {plan.shard_elems});
    }
  }

  // ---- saved activations ------------------------------------------------------------------------
  const Recompute::Kind rk = run.recompute.kind;
  const int64_t Ls = L - plan.recompute_layers;  // layers whose activations are stored
  const bool keep_gelu = (rk == Recompute::None || rk == Recompute::Budget);
  const bool keep_ln = (rk != Recompute::Norm);
  const Category A = Category::Activations;
  pb.add("act.inputs", A, i32, {B, T});
  pb.add("act.targets", A, i32, {B, T});
  pb.add("act.residual", A, act, {L + 1, B, T, C});  // [0] = embeddings, [l+1] = layer l output
  if (keep_ln) pb.add("act.ln1", A, act, {Ls, B, T, C});
  pb.add("act.ln1_mean", A, f32, {Ls, B, T});
  pb.add("act.ln1_rstd", A, f32, {Ls, B, T});
  pb.add("act.qkv", A, act, {Ls, B, T, 3 * C});
  pb.add("act.atty", A, act, {Ls, B, T, C});
  pb.add("act.att_lse", A, f32, {Ls, B, NH, T});
  pb.add("act.x2", A, act, {Ls, B, T, C});
  if (keep_ln) pb.add("act.ln2", A, act, {Ls, B, T, C});
  pb.add("act.ln2_mean", A, f32, {Ls, B, T});
  pb.add("act.ln2_rstd", A, f32, {Ls, B, T});
  pb.add("act.fch", A, act, {Ls, B, T, 4 * C});
  if (keep_gelu) pb.add("act.fch_gelu", A, act, {Ls, B, T, 4 * C});
  pb.add("act.lnf", A, act, {B, T, C});
  pb.add("act.lnf_mean", A, f32, {B, T});
  pb.add("act.lnf_rstd", A, f32, {B, T});

  // ---- scratch: one layer of backward buffers, plus one layer of recompute buffers ------------
  const Category S = Category::Scratch;
  if (run.training) {
    pb.add("scratch.dresidual", S, act, {B, T, C});  // gradient flowing down the residual stream
    pb.add("scratch.dbtc", S, act, {B, T, C});       // d(ln out), d(atty), d(lnf)
    pb.add("scratch.dqkv", S, act, {B, T, 3 * C});
    pb.add("scratch.dfch", S, act, {B, T, 4 * C});
  }
  // Attention row statistics (and decoding scores); the CPU ops use the same B·NH·T floats.
  pb.add("scratch.att", S, f32, {static_cast<int64_t>(cuda::attention_scratch_floats(B, T, NH))});
  if (plan.recompute_layers > 0) {
    // The whole layer, recomputed from its input during the backward pass.
    pb.add("recompute.ln1", S, act, {B, T, C});
    pb.add("recompute.ln1_mean", S, f32, {B, T});
    pb.add("recompute.ln1_rstd", S, f32, {B, T});
    pb.add("recompute.qkv", S, act, {B, T, 3 * C});
    pb.add("recompute.atty", S, act, {B, T, C});
    pb.add("recompute.att_lse", S, f32, {B, NH, T});
    pb.add("recompute.x2", S, act, {B, T, C});
    pb.add("recompute.ln2", S, act, {B, T, C});
    pb.add("recompute.ln2_mean", S, f32, {B, T});
    pb.add("recompute.ln2_rstd", S, f32, {B, T});
    pb.add("recompute.fch", S, act, {B, T, 4 * C});
    pb.add("recompute.fch_gelu", S, act, {B, T, 4 * C});
  } else {
    if (!keep_ln) pb.add("recompute.ln", S, act, {B, T, C});  // ln1 or ln2, one at a time
    if (!keep_gelu) pb.add("recompute.fch_gelu", S, act, {B, T, 4 * C});
  }

  if (run.device == Device::CUDA && run.training) {
    // Deterministic (atomic-free) backward passes of the CUDA kernels keep partial results here,
    // sized by the kernels' own functions (kernels/cuda/scratch_sizes.h); the CUDA backend checks
    // every one at start-up.
    pb.add("scratch.encoder_bwd", S, i32,  // token buckets
           {static_cast<int64_t>(cuda::encoder_backward_scratch_ints(static_cast<int>(B), static_cast<int>(T)))});
    pb.add("scratch.layernorm_bwd", S, f32,  // dweight/dbias partials
           {static_cast<int64_t>(cuda::layernorm_backward_scratch_floats(static_cast<int>(BT), static_cast<int>(C)))});
  }

  // ---- logits: one chunk of tokens at a time, never B·T·Vp --------------------------------------
  pb.add("logits.chunk", Category::Logits, act, {run.logits_chunk, Vp});
  pb.add("logits.losses", Category::Logits, f32, {B, T});

  // ---- workspaces ---------------------------------------------------------------------------------
  if (run.device == Device::CUDA)
    pb.add("workspace.cublaslt", Category::Workspace, DType::INT32,
           {static_cast<int64_t>(cuda::kMatmulWorkspaceBytes / 4)});
  pb.add("workspace.norm_partials", Category::Workspace, f32, {static_cast<int64_t>(cuda::kGlobalNormPartialsFloats)});
  if (run.device == Device::CUDA) {
    pb.add("workspace.norm_result", Category::Workspace, f32, {1});  // Σ g², read back by the host for the clip scale
    pb.add("workspace.matmul_bias", Category::Workspace, f32,        // bias-gradient staging (max OC = 4C)
           {static_cast<int64_t>(cuda::matmul_bias_scratch_bytes(static_cast<int>(4 * C)) / 4)});
  }

  if (run.device == Device::CUDA) {
    // cudaMalloc commits whole pages of kCudaAllocGranularity: count the tail, so the planned
    // arena equals the measured drop in free memory.
    const int64_t tail = align_up(pb.cursor, kCudaAllocGranularity) - pb.cursor;
    if (tail > 0) pb.add("workspace.page_tail", Category::Workspace, DType::INT32, {tail / 4});
  }

  plan.arena_bytes = pb.cursor;
  plan.host_arena_bytes = host.cursor;
  return plan;
}

}  // namespace gpt2
