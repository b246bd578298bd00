// The card table (engine/plan/gpu_catalog.cpp): device names at start-up map to the right entry,
// and the entries' figures are consistent.
#include <catch2/catch.hpp>
#include <set>
#include <string>

#include "engine/plan/gpu_catalog.h"
#include "engine/util/errors.h"

using namespace gpt2;

namespace {

std::string key_of(const std::string& device_name) {
  const GpuSpec* g = match_gpu_by_device_name(device_name);
  return g ? g->name : "(none)";
}

}  // namespace

TEST_CASE("device names at start-up map to their card, variants to none", "[catalog]") {
  // cudaDeviceProp::name as the driver reports it.
  const std::pair<const char*, const char*> known[] = {
      {"NVIDIA GeForce RTX 3060", "rtx3060-12gb"},
      {"NVIDIA GeForce RTX 3090", "rtx3090"},
      {"NVIDIA GeForce RTX 4090", "rtx4090"},
      {"NVIDIA A100-SXM4-40GB", "a100-40gb"},
      {"NVIDIA A100-SXM4-80GB", "a100-80gb"},
      {"NVIDIA A100 80GB PCIe", "a100-80gb"},
      {"NVIDIA H100 80GB HBM3", "h100-80gb"},
      {"NVIDIA H100 PCIe", "h100-pcie"},
      {"NVIDIA H200", "h200"},
      {"NVIDIA GeForce RTX 5090", "rtx5090"},
      {"NVIDIA GeForce RTX 5080", "rtx5080"},
      {"NVIDIA GeForce RTX 5070 Ti", "rtx5070-ti"},
      {"NVIDIA GeForce RTX 5070", "rtx5070"},
      {"NVIDIA GeForce RTX 4080", "rtx4080"},
      {"NVIDIA GeForce RTX 4070", "rtx4070"},
      {"NVIDIA GeForce RTX 4060 Ti", "rtx4060-ti-16gb"},  // the 8GB card: same chip and clocks
      {"NVIDIA L4", "l4"},
      {"NVIDIA L40S", "l40s"},
      {"NVIDIA RTX A6000", "rtx-a6000"},
      {"NVIDIA RTX 6000 Ada Generation", "rtx6000-ada"},
      {"NVIDIA B200", "b200"},
  };
  std::set<std::string> matched;
  for (const auto& [device, key] : known) {
    INFO(device);
    CHECK(key_of(device) == key);
    matched.insert(key);
  }
  // Every entry of the table is reached by some device name.
  for (const auto& c : gpu_catalog()) {
    INFO(c.name);
    CHECK(matched.count(c.name) == 1);
  }
  // Other cards, including variants of listed ones with another chip, SM count or clock.
  for (const char* other :
       {"NVIDIA GeForce RTX 4070 Ti", "NVIDIA GeForce RTX 4070 SUPER", "NVIDIA GeForce RTX 4070 Ti SUPER",
        "NVIDIA GeForce RTX 4080 SUPER", "NVIDIA GeForce RTX 4060", "NVIDIA GeForce RTX 3060 Ti",
        "NVIDIA GeForce RTX 4090 D", "NVIDIA GeForce RTX 4090 Laptop GPU", "NVIDIA GeForce RTX 5060 Ti",
        "NVIDIA GeForce RTX 5090 D", "NVIDIA L40", "NVIDIA GB200", "NVIDIA RTX 6000",
        "NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "NVIDIA RTX A5000", "Tesla T4", ""}) {
    INFO(other);
    CHECK(key_of(other) == "(none)");
  }
}

TEST_CASE("every card in the table has consistent figures and is found by --gpu", "[catalog]") {
  for (const auto& c : gpu_catalog()) {
    INFO(c.name);
    CHECK(&find_gpu(c.name) == &c);
    CHECK(gpu_catalog_names().find(c.name) != std::string::npos);
    CHECK(c.memory_bytes >= int64_t{12} << 30);
    CHECK(c.bf16_tflops >= c.fp32_tflops);  // tensor cores: at least the fp32 rate
    CHECK(c.fp32_tflops > 0);
    CHECK(c.mem_bandwidth_gbs > 0);
    CHECK(c.eff.interconnect_gbs > 0);
    CHECK_FALSE(c.eff.calibrated);
  }
  CHECK_THROWS_AS(find_gpu("rtx9090"), ConfigError);
}

TEST_CASE("every card has a host link from its PCIe generation and lanes", "[catalog][offload]") {
  for (const auto& c : gpu_catalog()) {
    INFO(c.name);
    // PCIe 4.0 x8, 4.0 x16 or 5.0 x16 as a link carries it in practice.
    CHECK((c.host_link_gbs == 12.5 || c.host_link_gbs == 25 || c.host_link_gbs == 50));
    CHECK(c.host_memory_gbs == 0);  // a figure of the host, filled in by the CLI
  }
  CHECK(find_gpu("rtx4060-ti-16gb").host_link_gbs == 12.5);  // PCIe 4.0 x8
  CHECK(find_gpu("rtx4090").host_link_gbs == 25);
  CHECK(find_gpu("rtx3060-12gb").host_link_gbs == 25);
  CHECK(find_gpu("rtx5090").host_link_gbs == 50);
  // SXM parts reach the CPU over PCIe: 4.0 for the A100, 5.0 for Hopper and Blackwell.
  CHECK(find_gpu("a100-80gb").host_link_gbs == 25);
  CHECK(find_gpu("h100-80gb").host_link_gbs == 50);
  CHECK(find_gpu("h200").host_link_gbs == 50);
  CHECK(find_gpu("b200").host_link_gbs == 50);
  CHECK(generic_gpu(int64_t{12} << 30).host_link_gbs == kDefaultHostLinkGbs);
  CHECK(kDefaultHostLinkGbs == 25);
  CHECK(cpu_device(int64_t{8} << 30, 100, 10).host_link_gbs == 0);
}
