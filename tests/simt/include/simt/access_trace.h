// The warps' memory accesses, counted under the SIMT layer (the kernel audit, tools/kernel_audit).
//
// In the `audit` build the kernel sources are compiled by clang with
// -fsanitize-coverage=trace-loads,trace-stores: every load and store the kernel code performs calls
// back into the layer (src/access_trace.cpp) with its address and size, and the call's return
// address identifies the instruction. The layer adds the accesses it performs itself for the PTX it
// emulates (cp.async: a global load and a shared store; ldmatrix: eight 16-byte shared rows per
// phase) and counts mma.sync per warp.
//
// Accesses are classified by address: inside a cudaMalloc allocation = global; inside the block's
// dynamic shared memory or a static __shared__ variable (the executable's static TLS block,
// `__shared__` being thread_local here) = shared; anything else (a thread's registers spilled to
// its fiber stack, kernel parameters, host constants) is not counted.
//
// Warp requests: the k-th execution of one instruction by the lanes of one warp is one request
// (lanes that run an instruction fewer times simply take part in fewer requests, as diverged lanes
// do on a GPU). Lanes are realigned at every __syncthreads and at the end of the block.
//  - Global: 32-byte sectors per request (the distinct sectors its lanes' bytes fall in); bytes
//    requested = the lanes' access bytes, at most the sectors' bytes (a broadcast counts once per
//    sector), so efficiency = requested / (sectors·32) is in (0, 1]. Unique sectors over the
//    launch, loads and stores apart, are the DRAM traffic with an ideal cache.
//  - Shared: 32 banks of 4 bytes. An access of 4 bytes or fewer is served for the whole warp in
//    one phase, 8 bytes in two phases of 16 lanes, 16 bytes (and ldmatrix rows, cp.async writes)
//    in four phases of 8 lanes. A phase takes as many wavefronts as the most distinct 4-byte words
//    any one bank holds (the same word is a broadcast). Ideal wavefronts for the request are its
//    distinct bytes / 128, rounded up.
//
// Recording is off unless a program calls enable(true), and needs the instrumented build
// (available()); launches then run their blocks one after another on the calling OS thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "simt/runtime.h"

namespace simt::trace {

struct GlobalCounts {
  uint64_t load_requests = 0, load_sectors = 0, load_bytes = 0;     // bytes requested, capped per request
  uint64_t store_requests = 0, store_sectors = 0, store_bytes = 0;  // as for loads
  uint64_t unique_load_sectors = 0, unique_store_sectors = 0;
};
struct SharedCounts {
  uint64_t load_requests = 0, store_requests = 0;
  uint64_t wavefronts = 0, ideal_wavefronts = 0;
};

// One instruction's share of a launch's counts, for finding where a kernel loses.
struct SiteCounts {
  uintptr_t pc = 0;          // a return address inside the instruction's code, or 0 for layer PTX
  const char* file = nullptr;  // the call site of an emulated PTX instruction (ldmatrix, cp.async)
  int line = 0;
  bool shared = false, store = false;
  uint64_t requests = 0, sectors = 0, bytes = 0;      // global
  uint64_t wavefronts = 0, ideal_wavefronts = 0;      // shared
};

struct LaunchCounts {
  const void* func = nullptr;  // the kernel
  std::string kernel;  // the launch's signature (simt::kernel_name(func) names the kernel itself)
  dim3 grid, block;
  size_t dynamic_smem = 0;
  GlobalCounts global;
  SharedCounts shared;
  uint64_t mma = 0;  // mma.sync.m16n8k16 per warp
  std::vector<SiteCounts> sites;
};

// True when this build's kernels call the layer on every load and store (the `audit` preset).
bool available();
// Starts (true) or stops recording.
void enable(bool on);
bool enabled();
// The launches recorded since the last call, in launch order.
std::vector<LaunchCounts> take();

// ---- Called by the layer itself ------------------------------------------------------------------
void begin_launch(const void* func, const char* signature, dim3 grid, dim3 block, size_t dynamic_smem);
void end_launch();
void end_phase();  // every thread of the block arrived at __syncthreads, or the block ended
// A shared or global access the layer performs for an emulated PTX instruction.
void layer_access(const void* addr, unsigned size, bool store, const char* file, int line);
void count_mma();
// A load or store of instrumented kernel code; pc identifies the instruction.
void instrumented_access(const void* addr, unsigned size, bool store, uintptr_t pc);

}  // namespace simt::trace
