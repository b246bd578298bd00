// Host side of the SIMT layer: the emulated device, errors, memory, copies and memsets (queued on
// streams by src/streams.cpp), and the sanitizers' settings.
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "engine/plan/kernel_resources.h"
#include "internal.h"
#include "simt/runtime.h"

namespace simt {
namespace {

constexpr size_t KiB = 1024, MiB = KiB * 1024, GiB = MiB * 1024;

// Limits per the CUDA C++ Programming Guide's "Technical Specifications per Compute Capability".
const DeviceSpec kDevices[] = {
    {"a100-40gb", "NVIDIA A100-SXM4-40GB", 8, 0, 108, 40 * GiB, 163 * KiB, 164 * KiB, 40 << 20},
    {"a100-80gb", "NVIDIA A100-SXM4-80GB", 8, 0, 108, 80 * GiB, 163 * KiB, 164 * KiB, 40 << 20},
    {"rtx3060-12gb", "NVIDIA GeForce RTX 3060", 8, 6, 28, 12 * GiB, 99 * KiB, 100 * KiB, 3 << 20},
    {"rtx3090", "NVIDIA GeForce RTX 3090", 8, 6, 82, 24 * GiB, 99 * KiB, 100 * KiB, 6 << 20},
    {"rtx4090", "NVIDIA GeForce RTX 4090", 8, 9, 128, 24 * GiB, 99 * KiB, 100 * KiB, 72 << 20},
    {"h100-80gb", "NVIDIA H100 80GB HBM3", 9, 0, 132, 80 * GiB, 227 * KiB, 228 * KiB, 50 << 20},
    {"h100-pcie", "NVIDIA H100 PCIe", 9, 0, 114, 80 * GiB, 227 * KiB, 228 * KiB, 50 << 20},
    {"h200", "NVIDIA H200", 9, 0, 132, 141 * GiB, 227 * KiB, 228 * KiB, 50 << 20},
    // Compute capability 12.0 (GeForce Blackwell): 99 KiB opt-in, 100 KiB per SM, as sm_86/sm_89.
    // SMs and L2 from NVIDIA's RTX Blackwell GPU Architecture whitepaper (appendix tables).
    {"rtx5090", "NVIDIA GeForce RTX 5090", 12, 0, 170, 32 * GiB, 99 * KiB, 100 * KiB, 96 << 20},
    {"rtx5080", "NVIDIA GeForce RTX 5080", 12, 0, 84, 16 * GiB, 99 * KiB, 100 * KiB, 64 << 20},
    {"rtx5070-ti", "NVIDIA GeForce RTX 5070 Ti", 12, 0, 70, 16 * GiB, 99 * KiB, 100 * KiB, 64 << 20},
    {"rtx5070", "NVIDIA GeForce RTX 5070", 12, 0, 48, 12 * GiB, 99 * KiB, 100 * KiB, 48 << 20},
    // Ada (8.9) and Ampere (8.6): SMs and L2 from NVIDIA's Ada and Ampere GA102 whitepapers and the
    // L4, L40S, RTX A6000 and RTX 6000 Ada datasheets.
    {"rtx4080", "NVIDIA GeForce RTX 4080", 8, 9, 76, 16 * GiB, 99 * KiB, 100 * KiB, 64 << 20},
    {"rtx4070", "NVIDIA GeForce RTX 4070", 8, 9, 46, 12 * GiB, 99 * KiB, 100 * KiB, 36 << 20},
    {"rtx4060-ti-16gb", "NVIDIA GeForce RTX 4060 Ti", 8, 9, 34, 16 * GiB, 99 * KiB, 100 * KiB, 32 << 20},
    {"l4", "NVIDIA L4", 8, 9, 58, 24 * GiB, 99 * KiB, 100 * KiB, 48 << 20},
    {"l40s", "NVIDIA L40S", 8, 9, 142, 48 * GiB, 99 * KiB, 100 * KiB, 96 << 20},
    {"rtx-a6000", "NVIDIA RTX A6000", 8, 6, 84, 48 * GiB, 99 * KiB, 100 * KiB, 6 << 20},
    {"rtx6000-ada", "NVIDIA RTX 6000 Ada Generation", 8, 9, 142, 48 * GiB, 99 * KiB, 100 * KiB, 96 << 20},
    // Compute capability 10.0 (B200): 227 KiB opt-in, 228 KiB per SM, as sm_90; 148 SMs (74 per
    // die, Chips and Cheese, "Nvidia's B200: Keeping the CUDA Juggernaut Rolling"); 180 GB of
    // HBM3e (HGX B200 datasheet). The L2 size, 126 MiB, is not in NVIDIA's datasheets: unverified,
    // and nothing in the layer depends on it beyond cudaDeviceProp::l2CacheSize.
    {"b200", "NVIDIA B200", 10, 0, 148, 180 * GiB, 227 * KiB, 228 * KiB, 126 << 20},
};
// The architecture names select one representative card each.
const struct {
  const char* arch;
  const char* key;
} kArchCards[] = {{"sm_80", "a100-40gb"}, {"sm_86", "rtx3060-12gb"}, {"sm_89", "rtx4090"},
                  {"sm_90", "h100-80gb"}, {"sm_100", "b200"},        {"sm_120", "rtx5090"}};

[[noreturn]] void die(const char* msg, const char* value) {
  std::fprintf(stderr, "simt: %s: '%s'\n", msg, value);
  std::exit(1);
}

const DeviceSpec* find_device(const char* key) {
  for (const auto& a : kArchCards)
    if (std::strcmp(a.arch, key) == 0) key = a.key;
  for (const auto& d : kDevices)
    if (std::strcmp(d.key, key) == 0) return &d;
  return nullptr;
}

// "256MiB", "1.5GiB", "12GB", "1048576".
size_t parse_bytes(const char* s) {
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  if (end == s || !(v > 0)) die("GPT2_SIMT_MEMORY is not a size", s);
  const std::string unit(end);
  double mult = 1;
  if (unit == "" || unit == "B")
    mult = 1;
  else if (unit == "KiB" || unit == "K")
    mult = KiB;
  else if (unit == "MiB" || unit == "M")
    mult = MiB;
  else if (unit == "GiB" || unit == "G")
    mult = GiB;
  else if (unit == "KB")
    mult = 1e3;
  else if (unit == "MB")
    mult = 1e6;
  else if (unit == "GB")
    mult = 1e9;
  else
    die("GPT2_SIMT_MEMORY has an unknown unit (use B, KiB, MiB, GiB, KB, MB or GB)", s);
  return static_cast<size_t>(v * mult);
}

struct DeviceState {
  DeviceSpec spec{};
  std::mutex mu;
  std::map<uintptr_t, size_t> allocations;  // start → requested bytes
  std::map<uintptr_t, size_t> pinned;       // cudaMallocHost / cudaHostAlloc: start → requested bytes
  size_t allocated = 0;                     // in kAllocationGranule pages
  uint64_t allocation_calls = 0;
  std::map<const void*, int> max_dynamic_smem;  // cudaFuncAttributeMaxDynamicSharedMemorySize
  DeviceState() {
    const char* key = std::getenv("GPT2_SIMT_DEVICE");
    const DeviceSpec* d = find_device(key && *key ? key : "rtx3060-12gb");
    if (!d)
      die("GPT2_SIMT_DEVICE names no known card (sm_80, sm_86, sm_89, sm_90, sm_100, sm_120, a100-40gb, "
          "a100-80gb, rtx3060-12gb, rtx3090, rtx4090, h100-80gb, h100-pcie, h200, rtx5090, rtx5080, "
          "rtx5070-ti, rtx5070, rtx4080, rtx4070, rtx4060-ti-16gb, l4, l40s, rtx-a6000, rtx6000-ada, b200)",
          key);
    spec = *d;
    if (const char* m = std::getenv("GPT2_SIMT_MEMORY"); m && *m) spec.memory_bytes = parse_bytes(m);
  }
};
DeviceState& dev() {
  static DeviceState* d = new DeviceState();  // never destroyed: kernels may run during exit
  return *d;
}

std::atomic<int> g_sticky{cudaSuccess};
thread_local cudaError_t tl_last = cudaSuccess;
thread_local int tl_device = 0;

int device_count() {
  const char* s = std::getenv("GPT2_SIMT_DEVICE_COUNT");
  const int n = s && *s ? std::atoi(s) : 8;
  return n > 0 ? n : 1;
}

size_t pages(size_t bytes) { return (bytes + kAllocationGranule - 1) / kAllocationGranule * kAllocationGranule; }

// True when [p, p + bytes) lies inside one of `allocations` (start → bytes).
bool inside_one(const std::map<uintptr_t, size_t>& allocations, const void* p, size_t bytes) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = allocations.upper_bound(a);
  if (it == allocations.begin()) return false;
  --it;
  return a - it->first <= it->second && bytes <= it->second - (a - it->first);
}

cudaError_t sticky() { return static_cast<cudaError_t>(g_sticky.load()); }

cudaError_t fail(cudaError_t e, const char* what) {
  if (what) std::fprintf(stderr, "simt: %s: %s\n", what, cudaGetErrorString(e));
  return set_error(e, false);
}

}  // namespace

const DeviceSpec& device_spec() { return dev().spec; }
cudaError_t sticky_error() { return sticky(); }

bool set_device(const char* key, size_t memory_bytes) {
  const DeviceSpec* d = find_device(key);
  if (!d) return false;
  std::lock_guard<std::mutex> lock(dev().mu);
  dev().spec = *d;
  if (memory_bytes) dev().spec.memory_bytes = memory_bytes;
  return true;
}

size_t allocated_bytes() {
  std::lock_guard<std::mutex> lock(dev().mu);
  return dev().allocated;
}
uint64_t allocation_count() {
  std::lock_guard<std::mutex> lock(dev().mu);
  return dev().allocation_calls;
}

bool is_device_range(const void* p, size_t bytes) {
  std::lock_guard<std::mutex> lock(dev().mu);
  return inside_one(dev().allocations, p, bytes);
}

bool is_pinned_range(const void* p, size_t bytes) {
  std::lock_guard<std::mutex> lock(dev().mu);
  return inside_one(dev().pinned, p, bytes);
}

bool planted(const char* fault) {
  static const std::string value = [] {
    const char* e = std::getenv("GPT2_SIMT_PLANT");
    if (!e || !*e) return std::string();
    if (std::strcmp(e, "no-resource-check") != 0 && std::strcmp(e, "sync-streams") != 0) {
      std::fprintf(stderr, "simt: GPT2_SIMT_PLANT must be no-resource-check or sync-streams, not '%s'\n", e);
      std::exit(2);
    }
    return std::string(e);
  }();
  return value == fault;
}

void clear_sticky_error() {
  g_sticky = cudaSuccess;
  tl_last = cudaSuccess;
}

cudaError_t set_error(cudaError_t e, bool is_sticky) {
  if (e == cudaSuccess) return e;
  if (is_sticky) {
    int expected = cudaSuccess;
    g_sticky.compare_exchange_strong(expected, e);
  }
  tl_last = e;
  return e;
}

cudaError_t func_set_attribute(const void* func, cudaFuncAttribute attr, int value) {
  if (sticky()) return sticky();
  if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) return cudaSuccess;
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute");
  if (value < 0 || static_cast<size_t>(value) > dev().spec.smem_optin) {
    std::fprintf(stderr, "simt: cudaFuncSetAttribute: %d bytes of dynamic shared memory exceed the %zu the %s allows\n",
                 value, dev().spec.smem_optin, dev().spec.name);
    return set_error(cudaErrorInvalidValue, false);
  }
  std::lock_guard<std::mutex> lock(dev().mu);
  dev().max_dynamic_smem[func] = value;
  return cudaSuccess;
}

int max_dynamic_smem(const void* func) {
  std::lock_guard<std::mutex> lock(dev().mu);
  auto it = dev().max_dynamic_smem.find(func);
  return it == dev().max_dynamic_smem.end() ? 48 * 1024 : it->second;
}

}  // namespace simt

using simt::set_error;

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorAssert: return "cudaErrorAssert";
    case cudaErrorMisalignedAddress: return "cudaErrorMisalignedAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    default: return "cudaErrorUnknown";
  }
}

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorAssert: return "device-side assert triggered";
    case cudaErrorMisalignedAddress: return "misaligned address";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    default: return "unknown error";
  }
}

cudaError_t cudaGetLastError() {
  const cudaError_t s = simt::sticky();
  if (s) return s;
  const cudaError_t e = simt::tl_last;
  simt::tl_last = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() {
  const cudaError_t s = simt::sticky();
  return s ? s : simt::tl_last;
}

cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return set_error(cudaErrorInvalidValue, false);
  *count = simt::device_count();
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  if (!device) return set_error(cudaErrorInvalidValue, false);
  *device = simt::tl_device;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  if (device < 0 || device >= simt::device_count()) return set_error(cudaErrorInvalidDevice, false);
  simt::tl_device = device;
  return simt::sticky();
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (!prop) return set_error(cudaErrorInvalidValue, false);
  if (device < 0 || device >= simt::device_count()) return set_error(cudaErrorInvalidDevice, false);
  const simt::DeviceSpec& s = simt::device_spec();
  std::memset(prop, 0, sizeof *prop);
  std::snprintf(prop->name, sizeof prop->name, "%s", s.name);
  prop->totalGlobalMem = s.memory_bytes;
  prop->sharedMemPerBlock = 48 * 1024;
  prop->sharedMemPerBlockOptin = s.smem_optin;
  prop->sharedMemPerMultiprocessor = s.smem_per_sm;
  prop->regsPerBlock = 65536;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = 1024;
  prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 2147483647;
  prop->maxGridSize[1] = 65535;
  prop->maxGridSize[2] = 65535;
  prop->major = s.major;
  prop->minor = s.minor;
  prop->multiProcessorCount = s.sms;
  const gpt2::SmArchitecture* sm = gpt2::find_sm_architecture(s.major, s.minor);
  prop->maxThreadsPerMultiProcessor = sm ? sm->max_threads_per_sm : 2048;
  prop->l2CacheSize = s.l2_bytes;
  prop->memoryBusWidth = 384;
  prop->clockRate = 1500000;
  prop->memoryClockRate = 1500000;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  cudaDeviceProp p;
  if (!value) return set_error(cudaErrorInvalidValue, false);
  if (cudaError_t e = cudaGetDeviceProperties(&p, device)) return e;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = p.maxThreadsPerBlock; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = static_cast<int>(p.sharedMemPerBlock); break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrMultiProcessorCount: *value = p.multiProcessorCount; break;
    case cudaDevAttrComputeCapabilityMajor: *value = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = p.minor; break;
    case cudaDevAttrL2CacheSize: *value = p.l2CacheSize; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = static_cast<int>(p.sharedMemPerBlockOptin); break;
    default: return set_error(cudaErrorInvalidValue, false);
  }
  return cudaSuccess;
}

// ---- Memory -------------------------------------------------------------------------------------
cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  if (!ptr) return set_error(cudaErrorInvalidValue, false);
  *ptr = nullptr;
  if (cudaError_t s = simt::sticky()) return s;
  if (bytes == 0) return cudaSuccess;
  auto& d = simt::dev();
  {
    std::lock_guard<std::mutex> lock(d.mu);
    const size_t in_use = simt::kContextReserveBytes + d.allocated;
    if (simt::pages(bytes) > d.spec.memory_bytes || in_use + simt::pages(bytes) > d.spec.memory_bytes)
      return set_error(cudaErrorMemoryAllocation, false);
  }
  // A separate host allocation of exactly `bytes`: AddressSanitizer reports an access past its end.
  void* p = nullptr;
  if (posix_memalign(&p, 256, bytes) != 0) return set_error(cudaErrorMemoryAllocation, false);
  // Fresh device memory holds garbage: NaN bytes make an unwritten read visible (small buffers).
  if (bytes <= (size_t{64} << 20)) std::memset(p, 0xFF, bytes);
  std::lock_guard<std::mutex> lock(d.mu);
  d.allocations[reinterpret_cast<uintptr_t>(p)] = bytes;
  d.allocated += simt::pages(bytes);
  ++d.allocation_calls;
  *ptr = p;
  return cudaSuccess;
}
// Waits for all queued work of every stream first, as cudaFree does on a GPU (so no queued
// operation can touch the memory after it is gone).
cudaError_t cudaFree(void* ptr) {
  if (!ptr) return simt::sticky();
  simt::complete_all_work();
  auto& d = simt::dev();
  {
    std::lock_guard<std::mutex> lock(d.mu);
    auto it = d.allocations.find(reinterpret_cast<uintptr_t>(ptr));
    if (it == d.allocations.end())
      return simt::fail(cudaErrorInvalidValue, "cudaFree of a pointer cudaMalloc did not return");
    d.allocated -= simt::pages(it->second);
    d.allocations.erase(it);
  }
  std::free(ptr);
  return simt::sticky();
}
// Pinned host memory: host memory the layer remembers, so that copies to and from it run as
// copies from pinned memory do (README.md, "Streams").
cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned flags) {
  if (!ptr) return set_error(cudaErrorInvalidValue, false);
  *ptr = nullptr;
  if (flags & ~(cudaHostAllocPortable | cudaHostAllocMapped | cudaHostAllocWriteCombined))
    return set_error(cudaErrorInvalidValue, false);
  void* p = std::malloc(bytes ? bytes : 1);
  if (!p) return set_error(cudaErrorMemoryAllocation, false);
  auto& d = simt::dev();
  std::lock_guard<std::mutex> lock(d.mu);
  d.pinned[reinterpret_cast<uintptr_t>(p)] = bytes;
  *ptr = p;
  return cudaSuccess;
}
cudaError_t cudaMallocHost(void** ptr, size_t bytes) { return cudaHostAlloc(ptr, bytes, cudaHostAllocDefault); }
// Waits for all queued work first, as cudaFree does.
cudaError_t cudaFreeHost(void* ptr) {
  if (!ptr) return simt::sticky();
  simt::complete_all_work();
  auto& d = simt::dev();
  {
    std::lock_guard<std::mutex> lock(d.mu);
    if (d.pinned.erase(reinterpret_cast<uintptr_t>(ptr)) == 0)
      return simt::fail(cudaErrorInvalidValue, "cudaFreeHost of a pointer cudaMallocHost/cudaHostAlloc did not return");
  }
  std::free(ptr);
  return simt::sticky();
}
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  if (!free_bytes || !total_bytes) return set_error(cudaErrorInvalidValue, false);
  if (cudaError_t s = simt::sticky()) return s;
  auto& d = simt::dev();
  std::lock_guard<std::mutex> lock(d.mu);
  const size_t used = simt::kContextReserveBytes + d.allocated;
  *total_bytes = d.spec.memory_bytes;
  *free_bytes = used >= d.spec.memory_bytes ? 0 : d.spec.memory_bytes - used;
  return cudaSuccess;
}

// ---- Copies and memsets --------------------------------------------------------------------------
// The rules are the CUDA Runtime API reference's "API synchronization behavior"; README.md
// ("Streams") lists them. Device memory and pinned host memory are read and written when the
// copy runs; a pageable host source is staged (copied aside) when the copy is issued.
namespace {

enum class Memory { Device, Pinned, Pageable };
struct CopyEnds {
  Memory dst, src;
};

Memory host_memory(const void* p, size_t bytes) {
  return simt::is_pinned_range(p, bytes) ? Memory::Pinned : Memory::Pageable;
}

// Checks a copy's arguments and tells where its ends lie (cudaMemcpyDefault: from the pointers).
cudaError_t check_copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, const char* what,
                       CopyEnds* ends) {
  if (cudaError_t s = simt::sticky()) return s;
  if (bytes == 0) return cudaSuccess;
  if (!dst || !src) return simt::fail(cudaErrorInvalidValue, what);
  if (kind > cudaMemcpyDefault) return simt::fail(cudaErrorInvalidMemcpyDirection, what);
  const bool dst_dev = kind == cudaMemcpyDefault ? simt::is_device_range(dst, bytes)
                                                 : kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDefault ? simt::is_device_range(src, bytes)
                                                 : kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (dst_dev && !simt::is_device_range(dst, bytes)) {
    std::fprintf(stderr, "simt: %s: destination [%p, +%zu) is not inside one device allocation\n", what, dst, bytes);
    return set_error(cudaErrorInvalidValue, false);
  }
  if (src_dev && !simt::is_device_range(src, bytes)) {
    std::fprintf(stderr, "simt: %s: source [%p, +%zu) is not inside one device allocation\n", what, src, bytes);
    return set_error(cudaErrorInvalidValue, false);
  }
  ends->dst = dst_dev ? Memory::Device : host_memory(dst, bytes);
  ends->src = src_dev ? Memory::Device : host_memory(src, bytes);
  return cudaSuccess;
}

// Issues a checked copy to `stream`. `synchronous`: cudaMemcpy (the legacy default stream).
cudaError_t issue_copy(void* dst, const void* src, size_t bytes, CopyEnds ends, cudaStream_t stream, bool synchronous) {
  const bool host_to_host = ends.dst != Memory::Device && ends.src != Memory::Device;
  if (host_to_host)  // fully synchronous, the async form too
    return simt::enqueue_and_wait(stream, [=] { std::memmove(dst, src, bytes); });
  if (ends.src == Memory::Pageable) {
    // Pageable host memory to the device: cudaMemcpy first synchronises its stream; both forms
    // stage the bytes before they return, and the device is written when the copy runs.
    if (synchronous)
      if (cudaError_t e = simt::complete_earlier_work(stream)) return e;
    const unsigned char* from = static_cast<const unsigned char*>(src);
    std::vector<unsigned char> staged(from, from + bytes);
    return simt::enqueue(stream, [dst, staged = std::move(staged)] { std::memcpy(dst, staged.data(), staged.size()); });
  }
  // cudaMemcpy to host memory returns once the copy has completed, and from pinned host memory it
  // is synchronous too; device to device it does not wait. The async forms never wait.
  const bool waits = synchronous && (ends.dst != Memory::Device || ends.src == Memory::Pinned);
  auto copy = [=] { std::memmove(dst, src, bytes); };
  return waits ? simt::enqueue_and_wait(stream, copy) : simt::enqueue(stream, copy);
}

cudaError_t check_memset(void* dst, size_t bytes, const char* what) {
  if (cudaError_t s = simt::sticky()) return s;
  if (bytes && !simt::is_device_range(dst, bytes)) {
    std::fprintf(stderr, "simt: %s: [%p, +%zu) is not inside one device allocation\n", what, dst, bytes);
    return set_error(cudaErrorInvalidValue, false);
  }
  return cudaSuccess;
}

}  // namespace

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  CopyEnds ends{};
  if (cudaError_t e = check_copy(dst, src, bytes, kind, "cudaMemcpy", &ends)) return e;
  return bytes ? issue_copy(dst, src, bytes, ends, nullptr, true) : cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  CopyEnds ends{};
  if (cudaError_t e = check_copy(dst, src, bytes, kind, "cudaMemcpyAsync", &ends)) return e;
  return bytes ? issue_copy(dst, src, bytes, ends, stream, false) : cudaSuccess;
}
// A memset of device memory is asynchronous with respect to the host, the synchronous form too
// (it is issued to the legacy default stream).
cudaError_t cudaMemset(void* dst, int value, size_t bytes) { return cudaMemsetAsync(dst, value, bytes, nullptr); }
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream) {
  if (cudaError_t e = check_memset(dst, bytes, "cudaMemset")) return e;
  return bytes ? simt::enqueue(stream, [=] { std::memset(dst, value, bytes); }) : cudaSuccess;
}

// LeakSanitizer's suppressions for every program built against the layer (they are all built
// with AddressSanitizer): OpenMPI and the libraries under it keep allocations alive past
// MPI_Finalize on purpose, which LeakSanitizer would report at exit and turn into exit code 1
// (`mpirun -np 2 build-simt/train_gpt2 ...`). Leaks with any frame in these libraries are not
// reported; a leak of the project's own code still is. LSAN_OPTIONS=suppressions=FILE adds more.
// Under an MPI launcher the allocation stacks are taken with the slow unwinder: OpenMPI's
// libraries have no frame pointers, so the fast one stops before the frame that names them.
// This runs while the sanitizer starts: before getenv works, before the interceptors are ready and
// before the shadow memory exists. So the environment is read from /proc with raw system calls, in
// a function that AddressSanitizer does not instrument and that calls no libc string function.
namespace {
__attribute__((no_sanitize("address", "undefined"))) bool launched_by_mpi_early() {
  static char env[1 << 16];
  const long fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/environ", O_RDONLY);
  if (fd < 0) return false;
  long n = 0, got = 0;
  while (n < static_cast<long>(sizeof env) - 1 &&
         (got = syscall(SYS_read, fd, env + n, sizeof env - 1 - static_cast<size_t>(n))) > 0)
    n += got;
  syscall(SYS_close, fd);
  env[n] = '\0';
  static const char* const kNames[] = {"OMPI_COMM_WORLD_SIZE=", "PMI_SIZE="};
  for (long i = 0; i < n;) {  // entries are NAME=VALUE, each ended by a NUL
    for (const char* name : kNames) {
      long k = 0;
      while (name[k] != '\0' && i + k < n && env[i + k] == name[k]) ++k;
      if (name[k] == '\0') return true;
    }
    while (i < n && env[i] != '\0') ++i;
    ++i;
  }
  return false;
}
}  // namespace

extern "C" __attribute__((no_sanitize("address", "undefined"))) const char* __asan_default_options() {
  return launched_by_mpi_early() ? "fast_unwind_on_malloc=0" : "";
}

extern "C" const char* __lsan_default_suppressions() {
  return "leak:libmpi.so\n"
         "leak:libopen-pal.so\n"
         "leak:libopen-rte.so\n"
         "leak:libmca_common\n"
         "leak:mca_\n"
         "leak:libpmix.so\n"
         "leak:libhwloc.so\n"
         "leak:libevent\n"
         "leak:libucp.so\n"
         "leak:libucs.so\n"
         "leak:libucm.so\n"
         "leak:libuct.so\n";
}
