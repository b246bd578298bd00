// Self-test of the SIMT layer's cp.async (tests/simt/src/scheduler.cpp, simt/ptx.h): a copy lands
// in shared memory only when a cp.async.wait_group retires its group, so a read of the
// destination without the wait sees the old (stale) contents and with the wait the new ones;
// wait_group N leaves the newest N groups in flight; src-size < cp-size zero-fills; a misaligned
// destination is a fault (cudaErrorMisalignedAddress).
// Plain main(): prints one PASSED/FAILED line per check and returns 0 when all passed.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "selftest_util.h"
#include "simt/ptx.h"

namespace {

using namespace simt_selftest;

namespace ptx = gpt2::cuda::ptx;

constexpr int kThreads = 32;
constexpr int kOld = -7;  // what shared memory holds before the copies
// (__align__ comes before __shared__: the layer defines them as alignas and static thread_local.)

// Each thread copies its 16 bytes (4 ints) from global to shared with cp.async, then reads them
// back, with or without cp.async.wait_group 0 in between.
__global__ void own_chunk(const int* g, int* out, bool wait) {
  __shared__ __align__(16) int s[4 * kThreads];
  const int t = static_cast<int>(threadIdx.x);
  for (int i = 0; i < 4; ++i) s[4 * t + i] = kOld;
  ptx::cp_async_cg_16(&s[4 * t], &g[4 * t], 16);
  ptx::cp_async_commit_group();
  if (wait) ptx::cp_async_wait_group<0>();
  for (int i = 0; i < 4; ++i) out[4 * t + i] = s[4 * t + i];
}

// Each thread copies its chunk, waits (or not), then __syncthreads and reads its right
// neighbour's chunk: the barrier alone does not make another thread's copy land (it lands when
// its thread waits or exits).
__global__ void neighbour_chunk(const int* g, int* out, bool wait) {
  __shared__ __align__(16) int s[4 * kThreads];
  const int t = static_cast<int>(threadIdx.x);
  for (int i = 0; i < 4; ++i) s[4 * t + i] = kOld;
  __syncthreads();
  ptx::cp_async_cg_16(&s[4 * t], &g[4 * t], 16);
  ptx::cp_async_commit_group();
  if (wait) ptx::cp_async_wait_group<0>();
  __syncthreads();
  const int n = (t + 1) % kThreads;
  for (int i = 0; i < 4; ++i) out[4 * t + i] = s[4 * n + i];
}

// Three groups of one 4-byte copy each (cp.async.ca, 4 bytes); wait_group<N> for N = `keep`
// (0, 1, 2; 3 = no wait); out[0..2] = the three destinations afterwards.
__global__ void three_groups(const int* g, int* out, int keep) {
  __shared__ __align__(16) int s[4];
  for (int i = 0; i < 3; ++i) s[i] = kOld;
  for (int i = 0; i < 3; ++i) {
    ptx::cp_async_ca_4(&s[i], &g[i], 4);
    ptx::cp_async_commit_group();
  }
  if (keep == 0) ptx::cp_async_wait_group<0>();
  if (keep == 1) ptx::cp_async_wait_group<1>();
  if (keep == 2) ptx::cp_async_wait_group<2>();
  for (int i = 0; i < 3; ++i) out[i] = s[i];
}

// A 16-byte copy with src-size `src_bytes`: the bytes past it are zero-filled.
__global__ void partial_copy(const int* g, int* out, int src_bytes) {
  __shared__ __align__(16) int s[4];
  for (int i = 0; i < 4; ++i) s[i] = kOld;
  ptx::cp_async_cg_16(s, g, src_bytes);
  ptx::cp_async_commit_group();
  ptx::cp_async_wait_group<0>();
  for (int i = 0; i < 4; ++i) out[i] = s[i];
}

// A 16-byte copy to shared memory `offset` bytes past a 16-byte boundary.
__global__ void offset_copy(const int* g, int* out, int offset) {
  __shared__ __align__(16) int s[8];
  for (int i = 0; i < 8; ++i) s[i] = kOld;
  ptx::cp_async_cg_16(reinterpret_cast<char*>(s) + offset, g, 16);
  ptx::cp_async_commit_group();
  ptx::cp_async_wait_group<0>();
  out[0] = s[offset / 4];
}

struct Buffers {
  int *g = nullptr, *out = nullptr;
  std::vector<int> host;
  Buffers() {
    const size_t n = 4 * kThreads;
    host.resize(n);
    for (size_t i = 0; i < n; ++i) host[i] = 1000 + static_cast<int>(i);
    cudaMalloc(&g, n * sizeof(int));
    cudaMalloc(&out, n * sizeof(int));
    cudaMemcpy(g, host.data(), n * sizeof(int), cudaMemcpyHostToDevice);
  }
  ~Buffers() {
    cudaFree(g);
    cudaFree(out);
  }
  std::vector<int> result(size_t n) const {
    std::vector<int> r(n);
    cudaMemcpy(r.data(), out, n * sizeof(int), cudaMemcpyDeviceToHost);
    return r;
  }
};

void check_wait() {
  Buffers b;
  const int n = 4 * kThreads;
  for (bool wait : {false, true}) {
    const cudaError_t e = run_kernel(own_chunk, dim3(1), dim3(kThreads), 0, b.g, b.out, wait);
    const std::vector<int> r = b.result(n);
    int stale = 0, fresh = 0;
    for (int i = 0; i < n; ++i) {
      stale += r[i] == kOld;
      fresh += r[i] == b.host[i];
    }
    if (!wait)
      check(e == cudaSuccess && stale == n, "own chunk read without wait_group sees the old contents",
            fmt("%d of %d words stale, %d new", stale, n, fresh));
    else
      check(e == cudaSuccess && fresh == n, "own chunk read after wait_group 0 sees the new contents",
            fmt("%d of %d words new, %d stale", fresh, n, stale));
  }
  for (bool wait : {false, true}) {
    const cudaError_t e = run_kernel(neighbour_chunk, dim3(1), dim3(kThreads), 0, b.g, b.out, wait);
    const std::vector<int> r = b.result(n);
    int stale = 0, fresh = 0;
    for (int t = 0; t < kThreads; ++t)
      for (int i = 0; i < 4; ++i) {
        stale += r[4 * t + i] == kOld;
        fresh += r[4 * t + i] == b.host[4 * ((t + 1) % kThreads) + i];
      }
    if (!wait)
      // A thread's copies still in flight land when it exits, so how many reads are stale depends
      // on the schedule (ascending: all but the last thread's; descending: the last thread's).
      check(e == cudaSuccess && stale > 0 && stale + fresh == n,
            "neighbour's chunk after __syncthreads but no wait_group is stale",
            fmt("%d of %d words stale, %d new", stale, n, fresh));
    else
      check(e == cudaSuccess && fresh == n, "neighbour's chunk after wait_group 0 + __syncthreads is new",
            fmt("%d of %d words new", fresh, n));
  }
}

void check_groups() {
  Buffers b;
  // keep = number of newest groups still in flight after the wait; 3 = no wait at all.
  for (int keep = 0; keep <= 3; ++keep) {
    const cudaError_t e = run_kernel(three_groups, dim3(1), dim3(1), 0, b.g, b.out, keep);
    const std::vector<int> r = b.result(3);
    bool ok = e == cudaSuccess;
    for (int i = 0; i < 3; ++i) ok = ok && r[i] == (i < 3 - keep ? b.host[i] : kOld);
    check(ok,
          keep == 3 ? "three groups, no wait: none landed"
                    : fmt("three groups, wait_group %d: oldest %d landed", keep, 3 - keep),
          fmt("s = {%d, %d, %d}", r[0], r[1], r[2]));
  }
}

void check_zero_fill() {
  Buffers b;
  for (int src : {16, 8, 0}) {
    const cudaError_t e = run_kernel(partial_copy, dim3(1), dim3(1), 0, b.g, b.out, src);
    const std::vector<int> r = b.result(4);
    bool ok = e == cudaSuccess;
    for (int i = 0; i < 4; ++i) ok = ok && r[i] == (4 * i < src ? b.host[i] : 0);
    check(ok, fmt("cp.async 16 bytes with src-size %d: bytes past it are zero", src),
          fmt("s = {%d, %d, %d, %d}", r[0], r[1], r[2], r[3]));
  }
}

void check_alignment() {
  Buffers b;
  cudaError_t e = run_kernel(offset_copy, dim3(1), dim3(1), 0, b.g, b.out, 16);
  check(e == cudaSuccess && b.result(1)[0] == b.host[0], "16-byte copy to a 16-byte aligned address works",
        cudaGetErrorName(e));
  const std::string err =
      capture_stderr([&] { e = run_kernel(offset_copy, dim3(1), dim3(1), 0, b.g, b.out, 4); });
  check(e == cudaErrorMisalignedAddress && err.find("not aligned to the cp-size of 16 bytes") != std::string::npos,
        "16-byte copy to an address 4 bytes past a boundary is a fault",
        fmt("%s; %s", cudaGetErrorName(e), first_line(err).c_str()));
  simt::clear_sticky_error();
  cudaGetLastError();
}

}  // namespace

int main() {
  check_wait();
  check_groups();
  check_zero_fill();
  check_alignment();
  return finish();
}
