// What the real compiler gives each kernel, and what follows from it on a given GPU.
//
// scripts/kernel_resources.sh compiles kernels/cuda/*.cu with nvcc and records ptxas's report for
// every kernel instantiation and architecture (registers per thread, stack, spills, static shared
// memory, barriers) in a JSON table: the build writes BUILD/kernel_resources.json, and
// kernels/cuda/kernel_resources.json is the checked-in copy for machines without nvcc. From one
// entry and a launch configuration (threads per block, dynamic shared memory) this computes the
// resident blocks per SM and occupancy, what limits them, and whether the launch is refused
// ("too many resources requested for launch", or shared memory over the card's opt-in maximum).
//
// The per-architecture SM limits live here (SmArchitecture); the SIMT layer (tests/simt) uses the
// same table to refuse, on the CPU, a launch a real GPU would refuse.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace gpt2 {

// Limits every architecture here shares (compute capability 8.0 to 12.0), per the CUDA C++
// Programming Guide's "Technical Specifications per Compute Capability": a 64 K-register file per
// SM and per block, at most 255 registers per thread, registers allocated per warp in units of
// 256 to each of the SM's 4 sub-partitions, shared memory allocated in units of 128 bytes.
constexpr int kWarpSize = 32;
constexpr int kRegistersPerSm = 65536;
constexpr int kRegistersPerBlock = 65536;
constexpr int kMaxRegistersPerThread = 255;
constexpr int kRegisterAllocationUnit = 256;  // registers, per warp
constexpr int kSmSubPartitions = 4;
constexpr int kSharedMemoryAllocationUnit = 128;  // bytes
constexpr int kMaxThreadsPerBlock = 1024;

// One SM architecture's limits.
struct SmArchitecture {
  const char* arch;  // "sm_90"
  int major, minor;  // compute capability
  int max_threads_per_sm;
  int max_blocks_per_sm;
  int64_t smem_per_sm;              // shared memory capacity of one SM, bytes
  int64_t smem_reserved_per_block;  // shared memory the driver reserves per resident block
  // The most shared memory (static + dynamic) one block may use, after cudaFuncSetAttribute
  // (cudaDeviceProp::sharedMemPerBlockOptin): the SM's capacity less the reserved part.
  int64_t smem_optin_per_block() const { return smem_per_sm - smem_reserved_per_block; }
  int max_warps_per_sm() const { return max_threads_per_sm / kWarpSize; }
};

// sm_80, sm_86, sm_89, sm_90, sm_100, sm_120.
const std::vector<SmArchitecture>& sm_architectures();
// "sm_90", "90" and "sm_90a" name sm_90; nullptr for an architecture not in the table.
const SmArchitecture* find_sm_architecture(const std::string& arch);
// The architecture of compute capability major.minor; nullptr when not in the table.
const SmArchitecture* find_sm_architecture(int major, int minor);
// The SM architecture of a card of engine/plan/gpu_catalog.h ("h100-80gb" -> "sm_90"); throws
// ConfigError when the card has none recorded here.
const SmArchitecture& catalog_card_architecture(const std::string& card);

// One kernel instantiation on one architecture, as ptxas reported it.
struct KernelResources {
  std::string file;     // "layernorm" (kernels/cuda/layernorm.cu)
  std::string mangled;  // the symbol (names in anonymous namespaces carry a hash of the source path)
  std::string name;     // demangled: "void gpt2::cuda::layernorm_backward_kernel<float, 1, 4>(float*, ...)"
  std::string arch;     // "sm_90"
  int registers = 0;    // per thread
  int stack_bytes = 0;  // per thread
  int spill_store_bytes = 0;
  int spill_load_bytes = 0;
  int static_smem = 0;  // bytes of __shared__ variables, per block
  int barriers = 0;     // named barriers used
};

struct KernelResourceTable {
  std::string path;      // where it was read from
  std::string compiler;  // the last line of `nvcc --version`
  std::string date;      // YYYY-MM-DD
  std::string flags;     // the nvcc flags it was compiled with
  std::vector<KernelResources> kernels;
  // The entry of kernel `name` (demangled, as KernelResources::name) on `arch` ("sm_90"); nullptr
  // when there is none.
  const KernelResources* find(const std::string& name, const std::string& arch) const;
};

// Reads a table written by scripts/kernel_resources.sh. Throws FileError naming the path and the
// first bad entry when the file is missing or malformed.
KernelResourceTable load_kernel_resources(const std::string& path);
// The build's table (BUILD/kernel_resources.json, written where nvcc is found) when it exists,
// else the checked-in kernels/cuda/kernel_resources.json. Both paths are compiled in.
std::string default_kernel_resources_path();

// What bounds the resident blocks of a launch on one SM.
enum class OccupancyLimit { registers, shared_memory, threads, blocks };
const char* occupancy_limit_name(OccupancyLimit limit);  // "registers", "shared memory", ...

struct LaunchResources {
  int threads_per_block = 0;
  int64_t dynamic_smem = 0;  // bytes
};

struct Occupancy {
  // Resident blocks per SM allowed by each resource (INT32_MAX where it sets no bound), and the
  // least of them; all 0 when the launch is refused.
  int blocks_by_registers = 0;
  int blocks_by_shared_memory = 0;
  int blocks_by_threads = 0;
  int blocks_by_block_limit = 0;
  int blocks_per_sm = 0;
  int warps_per_sm = 0;     // resident warps: blocks_per_sm × warps per block
  double occupancy = 0;     // warps_per_sm / the architecture's maximum
  OccupancyLimit limit = OccupancyLimit::blocks;  // the resource giving blocks_per_sm
  int64_t registers_per_block = 0;  // as allocated: per-warp units, warps rounded to sub-partitions
  int64_t smem_per_block = 0;       // as allocated: static + dynamic + reserved, in 128-byte units
  bool refused = false;             // a real GPU refuses this launch
  std::string refusal;              // why, when refused
};

// Occupancy of a kernel using `registers` per thread and `static_smem` bytes of __shared__
// variables, launched with `launch` on `sm`.
Occupancy compute_occupancy(const SmArchitecture& sm, int registers, int64_t static_smem, const LaunchResources& launch);
// The same for a table entry, on the entry's own architecture (throws ConfigError when the table
// names an architecture not in sm_architectures()).
Occupancy compute_occupancy(const KernelResources& kernel, const LaunchResources& launch);

}  // namespace gpt2
