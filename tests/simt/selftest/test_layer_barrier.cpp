// Self-test of the SIMT layer's block barrier (tests/simt/src/scheduler.cpp):
//  - a kernel that lacks a __syncthreads between a shared-memory write and another thread's read
//    gives a wrong result under one of the two schedules (ascending, descending), while the same
//    kernel with the barrier is right under every schedule. The schedule is read once per
//    process, so the test runs itself as a child process once per schedule;
//  - a thread that exits while the others wait at a __syncthreads is reported as a kernel fault,
//    the launch fails, and the error is sticky until cleared.
// Plain main(): prints one PASSED/FAILED line per check and returns 0 when all passed.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "selftest_util.h"

namespace {

using namespace simt_selftest;

constexpr int kThreads = 64;
constexpr int kBlocks = 3;

// Each thread stores its input in shared memory, then reads its left neighbour's value.
__global__ void neighbour_with_barrier(const int* in, int* out) {
  __shared__ int s[kThreads];
  const int t = static_cast<int>(threadIdx.x), base = static_cast<int>(blockIdx.x) * kThreads;
  s[t] = in[base + t];
  __syncthreads();
  out[base + t] = s[t == 0 ? 0 : t - 1];
}
// The same without the barrier: thread t reads s[t-1] before thread t-1 has written it unless
// thread t-1 happened to run first (right under ascending, wrong under descending).
__global__ void left_neighbour_no_barrier(const int* in, int* out) {
  __shared__ int s[kThreads];
  const int t = static_cast<int>(threadIdx.x), base = static_cast<int>(blockIdx.x) * kThreads;
  s[t] = in[base + t];
  out[base + t] = s[t == 0 ? 0 : t - 1];
}
// Reads the right neighbour without the barrier: wrong under ascending, right under descending.
__global__ void right_neighbour_no_barrier(const int* in, int* out) {
  __shared__ int s[kThreads];
  const int t = static_cast<int>(threadIdx.x), base = static_cast<int>(blockIdx.x) * kThreads;
  s[t] = in[base + t];
  out[base + t] = s[t == kThreads - 1 ? t : t + 1];
}

// Runs one kernel over distinct inputs; returns how many outputs differ from the expected
// neighbour value (-1 when the launch failed).
int mismatches(void (*kernel)(const int*, int*), bool right) {
  const int n = kThreads * kBlocks;
  std::vector<int> h_in(n), h_out(n);
  for (int i = 0; i < n; ++i) h_in[i] = 7 * i + 1;  // nonzero and distinct across blocks
  int *in = nullptr, *out = nullptr;
  cudaMalloc(&in, n * sizeof(int));
  cudaMalloc(&out, n * sizeof(int));
  cudaMemcpy(in, h_in.data(), n * sizeof(int), cudaMemcpyHostToDevice);
  const cudaError_t e = run_kernel(kernel, dim3(kBlocks), dim3(kThreads), 0, in, out);
  cudaMemcpy(h_out.data(), out, n * sizeof(int), cudaMemcpyDeviceToHost);
  cudaFree(in);
  cudaFree(out);
  if (e != cudaSuccess) return -1;
  int bad = 0;
  for (int b = 0; b < kBlocks; ++b)
    for (int t = 0; t < kThreads; ++t) {
      const int src = right ? (t == kThreads - 1 ? t : t + 1) : (t == 0 ? 0 : t - 1);
      if (h_out[b * kThreads + t] != h_in[b * kThreads + src]) ++bad;
    }
  return bad;
}

int child() {
  std::printf("correct=%d left=%d right=%d\n", mismatches(neighbour_with_barrier, false),
              mismatches(left_neighbour_no_barrier, false), mismatches(right_neighbour_no_barrier, true));
  return 0;
}

struct ChildResult {
  bool ran = false;
  int correct = -2, left = -2, right = -2;
};

ChildResult run_child(const char* schedule) {
  const ChildRun c = run_self("--child", std::string("GPT2_SIMT_SCHEDULE=") + schedule);
  std::fputs(c.err.c_str(), stderr);  // the child's diagnostics, if any, stay visible
  ChildResult r;
  r.ran = c.status == 0 &&
          std::sscanf(first_line(c.out).c_str(), "correct=%d left=%d right=%d", &r.correct, &r.left, &r.right) == 3;
  return r;
}

void check_missing_barrier() {
  const char* schedules[] = {"ascending", "descending", "random:12345"};
  ChildResult res[3];
  for (int i = 0; i < 3; ++i) {
    res[i] = run_child(schedules[i]);
    check(res[i].ran, fmt("child process under schedule %s", schedules[i]),
          fmt("mismatches of %d outputs: with barrier %d, left neighbour without %d, right neighbour without %d",
              kThreads * kBlocks, res[i].correct, res[i].left, res[i].right));
  }
  const ChildResult &asc = res[0], &desc = res[1], &rnd = res[2];
  check(asc.correct == 0 && desc.correct == 0 && rnd.correct == 0,
        "the kernel with __syncthreads is right under every schedule");
  // Each barrier-less kernel is wrong under one of the two schedules ctest runs...
  check(asc.left > 0 || desc.left > 0, "missing __syncthreads (reads left neighbour) is wrong under one schedule",
        fmt("ascending %d, descending %d wrong outputs", asc.left, desc.left));
  check(asc.right > 0 || desc.right > 0, "missing __syncthreads (reads right neighbour) is wrong under one schedule",
        fmt("ascending %d, descending %d wrong outputs", asc.right, desc.right));
  // ...and the two schedules are both needed: each hides one of the two bugs.
  check(asc.left == 0 && desc.left > 0 && asc.right > 0 && desc.right == 0,
        "each of the two schedules exposes a bug the other hides");
}

// Thread `quitter` returns before the barrier the others wait at (-1: nobody does).
__global__ void exit_before_barrier(int* out, int quitter) {
  if (static_cast<int>(threadIdx.x) == quitter) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}
// Every thread passes the barrier; thread 5 returns after it (legal).
__global__ void exit_after_barrier(int* out) {
  __syncthreads();
  if (threadIdx.x == 5) return;
  out[threadIdx.x] = 1;
}

__global__ void warp_exits_before_barrier(int* out) {
  if (threadIdx.x >= 32) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

void check_exit_before_barrier() {
  int* out = nullptr;
  cudaMalloc(&out, kThreads * sizeof(int));
  cudaError_t e = run_kernel(exit_before_barrier, dim3(1), dim3(kThreads), 0, out, -1);
  check(e == cudaSuccess, "all threads reach the barrier: launch succeeds", cudaGetErrorName(e));
  e = run_kernel(exit_after_barrier, dim3(1), dim3(kThreads), 0, out);
  check(e == cudaSuccess, "a thread exits after the last barrier: launch succeeds", cudaGetErrorName(e));

  const std::string err =
      capture_stderr([&] { e = run_kernel(exit_before_barrier, dim3(2), dim3(kThreads), 0, out, 5); });
  check(e == cudaErrorLaunchFailure, "thread 5 exits before __syncthreads: launch fails", cudaGetErrorName(e));
  check(err.find("simt: kernel fault:") != std::string::npos &&
            err.find("thread (5,0,0) exited") != std::string::npos &&
            err.find("63 threads of the block wait") != std::string::npos,
        "the fault names the exited thread and the waiting ones", first_line(err));
  // The fault is sticky, like a GPU fault: the next, correct launch fails too until cleared.
  e = run_kernel(exit_before_barrier, dim3(1), dim3(kThreads), 0, out, -1);
  const cudaError_t sync = cudaDeviceSynchronize();
  check(e == cudaErrorLaunchFailure && sync == cudaErrorLaunchFailure, "the fault is sticky",
        fmt("next launch %s, cudaDeviceSynchronize %s", cudaGetErrorName(e), cudaGetErrorName(sync)));
  simt::clear_sticky_error();
  e = run_kernel(exit_before_barrier, dim3(1), dim3(kThreads), 0, out, -1);
  check(e == cudaSuccess, "after clear_sticky_error a correct launch succeeds", cudaGetErrorName(e));

  // A whole warp that returns early (threads 32..63) while warp 0 waits is reported too.
  const std::string err2 =
      capture_stderr([&] { e = run_kernel(warp_exits_before_barrier, dim3(1), dim3(kThreads), 0, out); });
  check(e == cudaErrorLaunchFailure && err2.find("thread (32,0,0) exited") != std::string::npos &&
            err2.find("32 threads of the block wait") != std::string::npos,
        "warp 1 exits before __syncthreads: launch fails", first_line(err2));
  simt::clear_sticky_error();
  cudaFree(out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--child") == 0) return child();
  check_missing_barrier();
  check_exit_before_barrier();
  return finish();
}
