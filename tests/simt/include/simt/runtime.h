// The SIMT layer's stand-in for the CUDA runtime: keywords, built-in types, error codes and the
// host API (memory, copies, streams, events, device properties), as the CUDA C++ Programming
// Guide and the CUDA Runtime API reference describe them. Device code executes on the CPU: see
// simt/device.h (threads, barriers, warp operations) and simt/launch.h (kernel launches).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

// ---- Keywords -----------------------------------------------------------------------------------
// Kernels and device functions are plain host functions. __shared__ variables are thread_local:
// every block runs on one OS thread from start to end, and an OS thread runs one block at a time,
// so a thread_local object is exactly one copy per resident block.
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static thread_local
#define __constant__ static
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#ifndef __restrict__
#define __restrict__ __restrict
#endif
#define GPT2_SIMT_LAYER 1

// ---- Built-in vector types ------------------------------------------------------------------------
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};
struct alignas(8) int2 {
  int x, y;
};
struct alignas(16) int4 {
  int x, y, z, w;
};
struct alignas(8) uint2 {
  unsigned x, y;
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(16) double2 {
  double x, y;
};
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

// ---- Errors (the runtime's numeric codes) ------------------------------------------------------------
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInvalidDeviceFunction = 98,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorAssert = 710,
  cudaErrorMisalignedAddress = 716,
  cudaErrorLaunchFailure = 719,
  cudaErrorNotSupported = 801,
  cudaErrorUnknown = 999,
};
using cudaError = cudaError_t;

const char* cudaGetErrorString(cudaError_t e);
const char* cudaGetErrorName(cudaError_t e);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();

// ---- Library types (library_types.h) ---------------------------------------------------------------------
enum cudaDataType_t {
  CUDA_R_32F = 0,
  CUDA_R_64F = 1,
  CUDA_R_16F = 2,
  CUDA_R_8I = 3,
  CUDA_R_32I = 10,
  CUDA_R_16BF = 14,
};
using cudaDataType = cudaDataType_t;

// ---- Devices ------------------------------------------------------------------------------------------
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  size_t sharedMemPerBlockOptin;
  size_t sharedMemPerMultiprocessor;
  int regsPerBlock;
  int warpSize;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  int major;
  int minor;
  int multiProcessorCount;
  int maxThreadsPerMultiProcessor;
  int l2CacheSize;
  int memoryBusWidth;
  int clockRate;
  int memoryClockRate;
};

enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrL2CacheSize = 38,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaDeviceReset();

// ---- Memory --------------------------------------------------------------------------------------------
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

cudaError_t cudaMalloc(void** ptr, size_t bytes);
template <typename T>
inline cudaError_t cudaMalloc(T** ptr, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
cudaError_t cudaFree(void* ptr);
// Pinned host memory (copies to and from it run when the copy runs; README.md, "Streams").
constexpr unsigned cudaHostAllocDefault = 0;
constexpr unsigned cudaHostAllocPortable = 1;
constexpr unsigned cudaHostAllocMapped = 2;
constexpr unsigned cudaHostAllocWriteCombined = 4;
cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned flags);
cudaError_t cudaMallocHost(void** ptr, size_t bytes);
template <typename T>
inline cudaError_t cudaHostAlloc(T** ptr, size_t bytes, unsigned flags) {
  return cudaHostAlloc(reinterpret_cast<void**>(ptr), bytes, flags);
}
template <typename T>
inline cudaError_t cudaMallocHost(T** ptr, size_t bytes, unsigned flags = cudaHostAllocDefault) {
  return cudaHostAlloc(reinterpret_cast<void**>(ptr), bytes, flags);
}
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);

// ---- Streams and events ------------------------------------------------------------------------------
// Work issued to a stream is queued and runs at a synchronisation point, in an order between
// streams the schedule chooses (src/streams.cpp; README.md, "Streams").
struct CUstream_st;
struct CUevent_st;
using cudaStream_t = CUstream_st*;
using cudaEvent_t = CUevent_st*;
constexpr unsigned cudaStreamDefault = 0;
constexpr unsigned cudaStreamNonBlocking = 1;
constexpr unsigned cudaEventDefault = 0;
constexpr unsigned cudaEventBlockingSync = 1;
constexpr unsigned cudaEventDisableTiming = 2;

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* dst, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream = nullptr);

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags = 0);

cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

// ---- Function attributes -------------------------------------------------------------------------------
enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};
namespace simt {
cudaError_t func_set_attribute(const void* func, cudaFuncAttribute attr, int value);
}
template <typename... P>
inline cudaError_t cudaFuncSetAttribute(void (*func)(P...), cudaFuncAttribute attr, int value) {
  return simt::func_set_attribute(reinterpret_cast<const void*>(func), attr, value);
}

// ---- The layer's own controls (not CUDA API) ----------------------------------------------------------
namespace simt {

// The bits of `from` read as a `To` of the same size (what the __float_as_uint family does).
template <typename To, typename From>
inline To bits_as(From from) {
  static_assert(sizeof(To) == sizeof(From), "bits_as needs types of one size");
  To to;
  std::memcpy(&to, &from, sizeof to);
  return to;
}

// Limits and identity of the emulated card. Chosen by GPT2_SIMT_DEVICE (sm_80, sm_86, sm_89,
// sm_90, sm_100, sm_120 or a card name of engine/plan/gpu_catalog.cpp: a100-40gb, a100-80gb,
// rtx3060-12gb, rtx3090, rtx4090, h100-80gb, h100-pcie, h200, rtx5090, rtx5080, rtx5070-ti,
// rtx5070, rtx4080, rtx4070, rtx4060-ti-16gb, l4, l40s, rtx-a6000, rtx6000-ada, b200; default
// rtx3060-12gb) and GPT2_SIMT_MEMORY (e.g. 256MiB), or by set_device.
struct DeviceSpec {
  const char* key;   // the name GPT2_SIMT_DEVICE accepts
  const char* name;  // cudaDeviceProp::name
  int major, minor;
  int sms;
  size_t memory_bytes;
  size_t smem_optin;  // sharedMemPerBlockOptin
  size_t smem_per_sm;
  int l2_bytes;
};
const DeviceSpec& device_spec();
// Selects the emulated card by key (as GPT2_SIMT_DEVICE) and memory (0 keeps the card's). Frees
// nothing; returns false for an unknown key.
bool set_device(const char* key, size_t memory_bytes = 0);

// Memory the emulated context holds before any cudaMalloc (reported by cudaMemGetInfo as used).
constexpr size_t kContextReserveBytes = size_t{64} << 20;
// Device allocations are accounted in cudaMalloc's 2 MiB pages.
constexpr size_t kAllocationGranule = size_t{2} << 20;

// Bytes currently allocated by cudaMalloc (rounded to pages) and the number of cudaMalloc calls.
size_t allocated_bytes();
uint64_t allocation_count();

// True when [p, p + bytes) lies inside one live cudaMalloc allocation.
bool is_device_range(const void* p, size_t bytes);

// Clears the sticky error left by a failed kernel (for the layer's own tests).
void clear_sticky_error();
// Records an error: `sticky` errors (kernel faults) make every later call fail, as on a GPU.
cudaError_t set_error(cudaError_t e, bool sticky);

// The demangled full signature of the function at `func` ("void gpt2::cuda::
// layernorm_param_grad_kernel<float>(float*, float*, float const*, int, int)"), from the
// executable's ELF symbol table (static functions included); nullptr when it has none. The
// string lives as long as the process.
const char* kernel_name(const void* func);

// What ptxas allocates for a kernel: registers per thread and static __shared__ bytes per block.
struct KernelResources {
  int registers = 0;
  int static_smem = 0;
};
// Declares the resources of `func` (for the layer's self-tests, whose kernels nvcc never
// compiled); it takes precedence over the table.
void set_kernel_resources(const void* func, int registers, int static_smem);
// The resources of `func` on the emulated card's architecture: declared, else from the kernel
// resource table (engine/plan/kernel_resources.h, its default path), matched on kernel_name.
// False for a kernel in neither (its launches are not checked against registers or static
// shared memory).
bool kernel_resources(const void* func, KernelResources* out);

}  // namespace simt
