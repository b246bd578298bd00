// Occupancy and refused launches from ptxas's resource table (engine/plan/kernel_resources.h):
// hand-computed cases for each limiting resource, refusals by registers and by shared memory,
// and the checked-in table (kernels/cuda/kernel_resources.json) read in full.
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>

#include "engine/plan/gpu_catalog.h"
#include "engine/plan/kernel_resources.h"
#include "engine/util/errors.h"

using namespace gpt2;

namespace {

const SmArchitecture& arch(const char* name) {
  const SmArchitecture* s = find_sm_architecture(name);
  REQUIRE(s != nullptr);
  return *s;
}

Occupancy occ(const char* sm, int registers, int64_t static_smem, int threads, int64_t dynamic_smem = 0) {
  return compute_occupancy(arch(sm), registers, static_smem, LaunchResources{threads, dynamic_smem});
}

}  // namespace

TEST_CASE("SM limits per architecture", "[kernel_resources]") {
  CHECK(arch("sm_80").smem_optin_per_block() == 163 * 1024);
  CHECK(arch("sm_86").smem_optin_per_block() == 99 * 1024);
  CHECK(arch("sm_89").smem_optin_per_block() == 99 * 1024);
  CHECK(arch("sm_90").smem_optin_per_block() == 227 * 1024);
  CHECK(arch("sm_100").smem_optin_per_block() == 227 * 1024);
  CHECK(arch("sm_120").smem_optin_per_block() == 99 * 1024);
  CHECK(arch("sm_86").max_warps_per_sm() == 48);
  CHECK(arch("sm_90").max_warps_per_sm() == 64);
  CHECK(find_sm_architecture("90") == find_sm_architecture("sm_90"));
  CHECK(find_sm_architecture("sm_90a") == find_sm_architecture("sm_90"));
  CHECK(find_sm_architecture(12, 0) == find_sm_architecture("sm_120"));
  CHECK(find_sm_architecture("sm_75") == nullptr);
}

TEST_CASE("every card of the catalog has an SM architecture", "[kernel_resources]") {
  for (const auto& card : gpu_catalog()) {
    INFO(card.name);
    CHECK_NOTHROW(catalog_card_architecture(card.name));
  }
  CHECK(std::string(catalog_card_architecture("h100-80gb").arch) == "sm_90");
  CHECK(std::string(catalog_card_architecture("rtx3060-12gb").arch) == "sm_86");
  CHECK_THROWS_AS(catalog_card_architecture("no-such-card"), ConfigError);
}

TEST_CASE("occupancy limited by registers", "[kernel_resources]") {
  // 64 registers x 32 = 2048 per warp; 16384 per sub-partition hold 8 warps, 32 per SM; a block of
  // 256 threads is 8 warps: 4 blocks, 32 of sm_90's 64 warps.
  const Occupancy o = occ("sm_90", 64, 0, 256);
  CHECK_FALSE(o.refused);
  CHECK(o.blocks_by_registers == 4);
  CHECK(o.blocks_by_threads == 8);
  CHECK(o.blocks_by_block_limit == 32);
  CHECK(o.blocks_per_sm == 4);
  CHECK(o.limit == OccupancyLimit::registers);
  CHECK(o.warps_per_sm == 32);
  CHECK(o.occupancy == Approx(0.5));
  // 40 registers: 1280 per warp, 12 warps per sub-partition, 48 per SM; 128-thread blocks (4
  // warps): 12 blocks by registers; sm_86's 48 warps allow 12 by threads too, and its block
  // limit is 16: the first of the equal bounds, registers, is named.
  const Occupancy a = occ("sm_86", 40, 0, 128);
  CHECK(a.blocks_by_registers == 12);
  CHECK(a.blocks_by_threads == 12);
  CHECK(a.blocks_per_sm == 12);
  CHECK(a.occupancy == Approx(1.0));
  // 80 registers: 2560 per warp; 6 warps per sub-partition, 24 per SM (not 65536 / 2560 = 25).
  CHECK(occ("sm_90", 80, 0, 32).blocks_by_registers == 24);
}

TEST_CASE("occupancy limited by shared memory", "[kernel_resources]") {
  // sm_90: 48 KiB dynamic + 4 KiB static + 1 KiB reserved = 53 KiB per block; 228 / 53 = 4.
  const Occupancy o = occ("sm_90", 32, 4096, 128, 48 * 1024);
  CHECK(o.smem_per_block == 53 * 1024);
  CHECK(o.blocks_by_shared_memory == 4);
  CHECK(o.blocks_per_sm == 4);
  CHECK(o.limit == OccupancyLimit::shared_memory);
  CHECK(o.occupancy == Approx(16.0 / 64));
  // The same launch on sm_86 (100 KiB per SM): 1 block.
  CHECK(occ("sm_86", 32, 4096, 128, 48 * 1024).blocks_per_sm == 1);
  // Rounded to 128 bytes: 1 byte of static memory takes 128 + 1024 reserved = 1152 per block.
  CHECK(occ("sm_80", 16, 1, 32).smem_per_block == 1152);
}

TEST_CASE("occupancy limited by threads and by the block limit", "[kernel_resources]") {
  // 1024 threads, few registers: 2 blocks on sm_90 (2048 threads), 1 on sm_89 (1536).
  CHECK(occ("sm_90", 16, 0, 1024).blocks_per_sm == 2);
  CHECK(occ("sm_90", 16, 0, 1024).limit == OccupancyLimit::threads);
  CHECK(occ("sm_89", 16, 0, 1024).blocks_per_sm == 1);
  // 32-thread blocks: the block limit, 16 on sm_86, 24 on sm_89 and sm_120, 32 on sm_90.
  for (const auto& [sm, blocks] : {std::pair{"sm_86", 16}, {"sm_89", 24}, {"sm_120", 24}, {"sm_90", 32}}) {
    INFO(sm);
    const Occupancy o = occ(sm, 16, 0, 32);
    CHECK(o.blocks_per_sm == blocks);
    CHECK(o.limit == OccupancyLimit::blocks);
  }
}

TEST_CASE("launches a real GPU refuses", "[kernel_resources]") {
  // 128 registers x 1024 threads = 131072 > 65536.
  const Occupancy r = occ("sm_90", 128, 0, 1024);
  CHECK(r.refused);
  CHECK(r.blocks_per_sm == 0);
  CHECK(r.refusal.find("register") != std::string::npos);
  // 64 x 1024 = 65536 fits exactly; 72 x 1024 does not.
  CHECK_FALSE(occ("sm_90", 64, 0, 1024).refused);
  CHECK(occ("sm_90", 72, 0, 1024).refused);
  // The hardware counts a block's warps rounded up to the 4 sub-partitions: 80 registers take
  // 2560 per warp; 800 threads are 25 warps = 64000 registers, but counted as 28 warps: 71680,
  // refused. 768 threads (24 warps, 61440) launch.
  CHECK(occ("sm_90", 80, 0, 800).refused);
  CHECK_FALSE(occ("sm_90", 80, 0, 768).refused);
  // Shared memory: static + dynamic over the opt-in, while the dynamic part alone fits.
  CHECK_FALSE(occ("sm_86", 32, 0, 128, 99 * 1024).refused);
  const Occupancy s = occ("sm_86", 32, 1024, 128, 99 * 1024);
  CHECK(s.refused);
  CHECK(s.refusal.find("shared memory") != std::string::npos);
  CHECK_FALSE(occ("sm_90", 32, 1024, 128, 99 * 1024).refused);
  // Threads per block.
  CHECK(occ("sm_90", 16, 0, 1025).refused);
  CHECK(occ("sm_90", 16, 0, 0).refused);
}

TEST_CASE("the checked-in kernel resource table parses in full", "[kernel_resources]") {
  const std::string path = std::string(GPT2_SOURCE_DIR) + "/kernels/cuda/kernel_resources.json";
  const KernelResourceTable t = load_kernel_resources(path);
  CHECK_FALSE(t.compiler.empty());
  CHECK(t.date.size() == 10);
  REQUIRE_FALSE(t.kernels.empty());
  std::set<std::string> archs;
  for (const auto& k : t.kernels) {
    INFO(k.name << " " << k.arch);
    CHECK(k.name.find("gpt2::cuda::") != std::string::npos);
    CHECK(find_sm_architecture(k.arch) != nullptr);
    CHECK(k.registers > 0);
    CHECK(t.find(k.name, k.arch) == &k);  // (name, arch) names one entry
    archs.insert(k.arch);
  }
  CHECK(archs == std::set<std::string>{"sm_80", "sm_86", "sm_89", "sm_90", "sm_100", "sm_120"});
  // A kernel the layer launches, looked up by its demangled name.
  const KernelResources* ln =
      t.find("void gpt2::cuda::layernorm_param_grad_kernel<float>(float*, float*, float const*, int, int)", "sm_90");
  REQUIRE(ln != nullptr);
  CHECK(ln->static_smem > 0);
  CHECK_FALSE(compute_occupancy(*ln, LaunchResources{256, 0}).refused);
}

TEST_CASE("the default table path exists", "[kernel_resources]") {
  const std::string path = default_kernel_resources_path();
  INFO(path);
  CHECK(std::ifstream(path).good());
}

TEST_CASE("a malformed table is refused with the entry named", "[kernel_resources]") {
  const std::string path = std::string(GPT2_BINARY_DIR) + "/test_kernel_resources_bad.json";
  {
    std::ofstream f(path);
    f << R"j({"compiler": "x", "date": "2025-01-01", "flags": "", "kernels": [)j"
      << R"j({"file": "a", "mangled": "_Z1fv", "name": "f()", "arch": "sm_90", "registers": 32, "stack_bytes": 0,)j"
      << R"j( "spill_store_bytes": 0, "spill_load_bytes": 0, "static_smem": 0}]})j";  // no "barriers"
  }
  try {
    load_kernel_resources(path);
    FAIL("a table without \"barriers\" was accepted");
  } catch (const FileError& e) {
    CHECK(std::string(e.what()).find("kernel entry 0 (f(), sm_90): \"barriers\"") != std::string::npos);
  }
  std::remove(path.c_str());
  CHECK_THROWS_AS(load_kernel_resources(path), FileError);
}
