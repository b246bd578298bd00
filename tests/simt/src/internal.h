// Declarations shared by the SIMT layer's own sources (not part of the emulated API).
#pragma once
#include <cstdint>
#include <functional>

#include "simt/runtime.h"

namespace simt {
// The dynamic shared memory a launch of `func` may use: 48 KiB, or what cudaFuncSetAttribute set.
int max_dynamic_smem(const void* func);
}  // namespace simt

namespace simt {
// The sticky error of a faulted kernel, or cudaSuccess.
cudaError_t sticky_error();
// fault() with a specific error code (e.g. cudaErrorMisalignedAddress).
[[noreturn]] void fault_code(cudaError_t code, const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));

// True when GPT2_SIMT_PLANT names `fault` (src/runtime.cpp). The planted faults are
// `no-resource-check` and `sync-streams`; any other value ends the process with a message.
bool planted(const char* fault);

// True when [p, p + bytes) lies inside one live cudaMallocHost / cudaHostAlloc allocation
// (pinned host memory; src/runtime.cpp).
bool is_pinned_range(const void* p, size_t bytes);

// ---- Schedules (src/scheduler.cpp) ---------------------------------------------------------------
// GPT2_SIMT_SCHEDULE: the order in which runnable threads of a block run between barriers, and
// which stream's queued work runs next when several can (src/streams.cpp).
enum class Order { Ascending, Descending, Random };
struct Schedule {
  Order order = Order::Ascending;
  uint64_t seed = 0;  // random:SEED
};
// The schedule GPT2_SIMT_SCHEDULE names, read once; a malformed value ends the process.
const Schedule& schedule();

// ---- Streams (src/streams.cpp) -------------------------------------------------------------------
// Queues `work` as the next operation of `stream` (nullptr: the legacy default stream). It runs
// at a later synchronisation point, after everything issued to the stream before it and after
// what the legacy default stream's rules add. `work` runs once, with the streams' lock held; it
// must not call the runtime's stream functions. cudaErrorInvalidResourceHandle for a stream that
// does not exist; the sticky error, if there is one.
cudaError_t enqueue(cudaStream_t stream, std::function<void()> work);
// enqueue, then runs queued work until `work` has run (a call synchronous with the host).
cudaError_t enqueue_and_wait(cudaStream_t stream, std::function<void()> work);
// Runs queued work until everything an operation issued to `stream` now would follow has run:
// the stream's queue and, by the legacy default stream's rules, the legacy stream's queue (for a
// blocking stream) or every blocking stream's queue (for the legacy stream). For work the layer
// does on the calling thread in stream order (NCCL collectives, the synchronous copies).
cudaError_t complete_earlier_work(cudaStream_t stream);
// Runs every queued operation of every stream (cudaDeviceSynchronize without its result).
void complete_all_work();
}  // namespace simt
