#include "engine/plan/kernel_resources.h"

#include <algorithm>
#include <climits>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/stat.h>

#include "engine/util/errors.h"

#ifndef GPT2_KERNEL_RESOURCES_BUILD_PATH
#define GPT2_KERNEL_RESOURCES_BUILD_PATH ""
#endif
#ifndef GPT2_KERNEL_RESOURCES_SOURCE_PATH
#define GPT2_KERNEL_RESOURCES_SOURCE_PATH ""
#endif

namespace gpt2 {

namespace {
constexpr int64_t KiB = 1024;
}

const std::vector<SmArchitecture>& sm_architectures() {
  // The CUDA C++ Programming Guide, "Technical Specifications per Compute Capability" (the
  // compute-capability tables of the appendix), for each architecture: maximum resident threads
  // and blocks per SM, shared memory per SM; 1 KiB of it is reserved by the driver per block from
  // 8.0 on, so the per-block opt-in maximum is the capacity less 1 KiB (163 KiB on 8.0, 99 KiB on
  // 8.6/8.9/12.0, 227 KiB on 9.0/10.0). Compute capability 12.0 has 24 resident blocks per SM
  // (the guide's 12.x table; an RTX 5090 reports cudaDevAttrMaxBlocksPerMultiprocessor = 24),
  // 8.9 also 24, 8.6 16. NVIDIA's CCCL (cuda/__device/arch_traits.h) carries the same figures.
  static const std::vector<SmArchitecture> table = {
      {"sm_80", 8, 0, 2048, 32, 164 * KiB, 1 * KiB},  {"sm_86", 8, 6, 1536, 16, 100 * KiB, 1 * KiB},
      {"sm_89", 8, 9, 1536, 24, 100 * KiB, 1 * KiB},  {"sm_90", 9, 0, 2048, 32, 228 * KiB, 1 * KiB},
      {"sm_100", 10, 0, 2048, 32, 228 * KiB, 1 * KiB}, {"sm_120", 12, 0, 1536, 24, 100 * KiB, 1 * KiB},
  };
  return table;
}

const SmArchitecture* find_sm_architecture(const std::string& arch) {
  std::string a = arch.rfind("sm_", 0) == 0 ? arch.substr(3) : arch;
  if (!a.empty() && (a.back() == 'a' || a.back() == 'f')) a.pop_back();  // sm_90a: sm_90's limits
  for (const auto& s : sm_architectures())
    if (a == s.arch + 3) return &s;
  return nullptr;
}

const SmArchitecture* find_sm_architecture(int major, int minor) {
  for (const auto& s : sm_architectures())
    if (s.major == major && s.minor == minor) return &s;
  return nullptr;
}

const SmArchitecture& catalog_card_architecture(const std::string& card) {
  // The chip of each card of engine/plan/gpu_catalog.cpp: A100 GA100 (8.0); RTX 30xx and RTX A6000
  // GA10x (8.6); RTX 40xx, L4, L40S, RTX 6000 Ada AD10x (8.9); H100/H200 GH100 (9.0); B200 (10.0);
  // RTX 50xx GB20x (12.0).
  static const struct {
    const char* card;
    const char* arch;
  } cards[] = {
      {"a100-40gb", "sm_80"},    {"a100-80gb", "sm_80"},      {"rtx3060-12gb", "sm_86"},    {"rtx3090", "sm_86"},
      {"rtx-a6000", "sm_86"},    {"rtx4090", "sm_89"},        {"rtx4080", "sm_89"},         {"rtx4070", "sm_89"},
      {"rtx4060-ti-16gb", "sm_89"}, {"l4", "sm_89"},          {"l40s", "sm_89"},            {"rtx6000-ada", "sm_89"},
      {"h100-80gb", "sm_90"},    {"h100-pcie", "sm_90"},      {"h200", "sm_90"},            {"b200", "sm_100"},
      {"rtx5090", "sm_120"},     {"rtx5080", "sm_120"},       {"rtx5070-ti", "sm_120"},     {"rtx5070", "sm_120"},
  };
  for (const auto& c : cards)
    if (card == c.card) return *find_sm_architecture(c.arch);
  throw ConfigError("--gpu", "no SM architecture is recorded for the card '" + card +
                                 "' (engine/plan/kernel_resources.cpp, catalog_card_architecture)");
}

const KernelResources* KernelResourceTable::find(const std::string& name, const std::string& arch) const {
  for (const auto& k : kernels)
    if (k.arch == arch && k.name == name) return &k;
  return nullptr;
}

KernelResourceTable load_kernel_resources(const std::string& path) {
  const char* hint = "scripts/kernel_resources.sh OUT.json writes the table";
  std::ifstream in(path);
  if (!in) throw FileError(path, "cannot open the kernel resource table", hint);
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    throw FileError(path, std::string("not valid JSON: ") + e.what(), hint);
  }
  KernelResourceTable t;
  t.path = path;
  auto text = [&](const nlohmann::json& o, const char* key, const std::string& where) {
    if (!o.is_object() || !o.contains(key) || !o[key].is_string())
      throw FileError(path, where + ": \"" + key + "\" is missing or not a string", hint);
    return o[key].get<std::string>();
  };
  auto number = [&](const nlohmann::json& o, const char* key, const std::string& where) {
    if (!o.contains(key) || !o[key].is_number_integer() || o[key].get<int64_t>() < 0 ||
        o[key].get<int64_t>() > INT_MAX)
      throw FileError(path, where + ": \"" + key + "\" is missing or not a non-negative integer", hint);
    return o[key].get<int>();
  };
  t.compiler = text(j, "compiler", "the table");
  t.date = text(j, "date", "the table");
  t.flags = text(j, "flags", "the table");
  if (!j.contains("kernels") || !j["kernels"].is_array())
    throw FileError(path, "the table: \"kernels\" is missing or not a list", hint);
  size_t i = 0;
  for (const auto& e : j["kernels"]) {
    const std::string where = "kernel entry " + std::to_string(i++);
    KernelResources k;
    k.file = text(e, "file", where);
    k.mangled = text(e, "mangled", where);
    k.name = text(e, "name", where);
    k.arch = text(e, "arch", where + " (" + k.name + ")");
    const std::string w = where + " (" + k.name + ", " + k.arch + ")";
    k.registers = number(e, "registers", w);
    k.stack_bytes = number(e, "stack_bytes", w);
    k.spill_store_bytes = number(e, "spill_store_bytes", w);
    k.spill_load_bytes = number(e, "spill_load_bytes", w);
    k.static_smem = number(e, "static_smem", w);
    k.barriers = number(e, "barriers", w);
    if (k.registers > kMaxRegistersPerThread)
      throw FileError(path, w + ": " + std::to_string(k.registers) + " registers per thread, above the 255 a thread can have",
                      hint);
    t.kernels.push_back(std::move(k));
  }
  return t;
}

std::string default_kernel_resources_path() {
  struct stat st{};
  const std::string build = GPT2_KERNEL_RESOURCES_BUILD_PATH;
  if (!build.empty() && ::stat(build.c_str(), &st) == 0) return build;
  return GPT2_KERNEL_RESOURCES_SOURCE_PATH;
}

const char* occupancy_limit_name(OccupancyLimit limit) {
  switch (limit) {
    case OccupancyLimit::registers: return "registers";
    case OccupancyLimit::shared_memory: return "shared memory";
    case OccupancyLimit::threads: return "threads per SM";
    case OccupancyLimit::blocks: return "blocks per SM";
  }
  return "?";
}

namespace {
int64_t round_up(int64_t v, int64_t unit) { return (v + unit - 1) / unit * unit; }
}  // namespace

Occupancy compute_occupancy(const SmArchitecture& sm, int registers, int64_t static_smem, const LaunchResources& launch) {
  Occupancy o;
  const int threads = launch.threads_per_block;
  const int warps = (threads + kWarpSize - 1) / kWarpSize;
  // Registers: each warp gets registers × 32 rounded up to the allocation unit; the hardware's
  // per-block check counts the block's warps rounded up to the 4 sub-partitions.
  const int64_t per_warp = round_up(int64_t{registers} * kWarpSize, kRegisterAllocationUnit);
  o.registers_per_block = per_warp * round_up(warps, kSmSubPartitions);
  // Shared memory: static + dynamic + the driver's reserve, in allocation units.
  o.smem_per_block = round_up(static_smem + launch.dynamic_smem + sm.smem_reserved_per_block, kSharedMemoryAllocationUnit);

  char why[256];
  if (threads <= 0 || threads > kMaxThreadsPerBlock) {
    std::snprintf(why, sizeof why, "%d threads per block (1 to %d allowed)", threads, kMaxThreadsPerBlock);
    o.refused = true;
  } else if (registers > kMaxRegistersPerThread) {
    std::snprintf(why, sizeof why, "%d registers per thread exceed %d", registers, kMaxRegistersPerThread);
    o.refused = true;
  } else if (o.registers_per_block > kRegistersPerBlock) {
    std::snprintf(why, sizeof why,
                  "%d registers x %d threads need %lld registers per block as allocated (%lld per warp, %d warps "
                  "rounded to %d), over the %d of the %s register file",
                  registers, threads, static_cast<long long>(o.registers_per_block), static_cast<long long>(per_warp),
                  warps, static_cast<int>(round_up(warps, kSmSubPartitions)), kRegistersPerBlock, sm.arch);
    o.refused = true;
  } else if (static_smem + launch.dynamic_smem > sm.smem_optin_per_block()) {
    std::snprintf(why, sizeof why,
                  "%lld bytes of static + %lld of dynamic shared memory exceed the %lld a block may use on %s",
                  static_cast<long long>(static_smem), static_cast<long long>(launch.dynamic_smem),
                  static_cast<long long>(sm.smem_optin_per_block()), sm.arch);
    o.refused = true;
  }
  if (o.refused) {
    o.refusal = why;
    return o;
  }

  o.blocks_by_registers =
      per_warp == 0 ? INT32_MAX
                    : static_cast<int>((kRegistersPerSm / kSmSubPartitions / per_warp) * kSmSubPartitions / warps);
  o.blocks_by_shared_memory = static_cast<int>(sm.smem_per_sm / o.smem_per_block);
  o.blocks_by_threads = sm.max_warps_per_sm() / warps;
  o.blocks_by_block_limit = sm.max_blocks_per_sm;
  // The first of the least: registers, shared memory, threads, then the block limit.
  const std::pair<int, OccupancyLimit> bounds[] = {{o.blocks_by_registers, OccupancyLimit::registers},
                                                   {o.blocks_by_shared_memory, OccupancyLimit::shared_memory},
                                                   {o.blocks_by_threads, OccupancyLimit::threads},
                                                   {o.blocks_by_block_limit, OccupancyLimit::blocks}};
  o.blocks_per_sm = INT32_MAX;
  for (const auto& [blocks, limit] : bounds)
    if (blocks < o.blocks_per_sm) {
      o.blocks_per_sm = blocks;
      o.limit = limit;
    }
  o.warps_per_sm = o.blocks_per_sm * warps;
  o.occupancy = static_cast<double>(o.warps_per_sm) / sm.max_warps_per_sm();
  return o;
}

Occupancy compute_occupancy(const KernelResources& kernel, const LaunchResources& launch) {
  const SmArchitecture* sm = find_sm_architecture(kernel.arch);
  if (!sm) throw ConfigError("", "the kernel resource table names " + kernel.arch + ", which has no SM limits recorded");
  return compute_occupancy(*sm, kernel.registers, kernel.static_smem, launch);
}

}  // namespace gpt2
