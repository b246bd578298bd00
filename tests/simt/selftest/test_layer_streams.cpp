// Self-test of the SIMT layer's streams (tests/simt/src/streams.cpp): work issued to a stream is
// queued and runs at a synchronisation point, in stream order within a stream and in an order
// between streams that the schedule chooses, so a program that lacks a synchronisation gives a
// wrong result here:
//  - a correct two-stream program (kernel on A, event on A, B waits for it, kernel on B reads A's
//    output) is right under every schedule; without the cudaStreamWaitEvent it is wrong under
//    at least one of ascending and descending;
//  - the legacy default stream orders blocking streams but not non-blocking ones, both ways;
//  - the host reads an async device-to-host copy's old contents until it synchronises;
//  - pinned host sources are read when the copy runs, pageable ones when it is issued;
//  - cuBLASLt takes host alpha and beta when it is called;
//  - a kernel fault shows at the synchronisation after the launch, and stays sticky; work still
//    queued when the program exits runs then (its fault is reported);
//  - queries answer cudaErrorNotReady while work is queued (and a polling loop ends), and event
//    times are taken when the records run.
// The schedule-dependent programs run as child processes (`--program NAME`) under ascending,
// descending and three random schedules. Then the whole test runs again as a child with the
// planted fault GPT2_SIMT_PLANT=sync-streams (work runs when issued) and must report FAILED
// there: the test catches a layer whose streams are synchronous.
// Plain main(): prints one PASSED/FAILED line per check and returns 0 when all passed.
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "selftest_util.h"

namespace {

using namespace simt_selftest;

constexpr int kN = 256;
constexpr int kThreads = 64;
constexpr dim3 kGrid(kN / kThreads);

// out[i] = value.
__global__ void fill(int* out, int value) { out[blockIdx.x * blockDim.x + threadIdx.x] = value; }
// out[i] = in[i] + 1.
__global__ void add_one(int* out, const int* in) {
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  out[i] = in[i] + 1;
}
// Thread 5 leaves before the barrier the others wait at: a kernel fault.
__global__ void faulty_barrier(int* out) {
  if (threadIdx.x == 5) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

bool all_equal(const int* v, int n, int value) {
  for (int i = 0; i < n; ++i)
    if (v[i] != value) return false;
  return true;
}

// Device buffers for the programs, zeroed and synchronised before any stream uses them.
struct Buffers {
  int* x = nullptr;
  int* y = nullptr;
  int* host = nullptr;  // pinned
  Buffers() {
    cudaMalloc(&x, kN * sizeof(int));
    cudaMalloc(&y, kN * sizeof(int));
    cudaMallocHost(&host, kN * sizeof(int));
    cudaMemset(x, 0, kN * sizeof(int));
    cudaMemset(y, 0, kN * sizeof(int));
    cudaDeviceSynchronize();
  }
  ~Buffers() {
    cudaFree(x);
    cudaFree(y);
    cudaFreeHost(host);
  }
};

// ---- Programs whose result depends on the order between streams -------------------------------

// Kernel on A fills x with 41; an event recorded on A; B waits for it (when `wait_for_event`);
// kernel on B writes y = x + 1, copied to the host on B; the host waits for B. Right: all 42.
bool two_streams(bool wait_for_event) {
  Buffers b;
  cudaStream_t a = nullptr, s = nullptr;
  cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking);  // as the engine creates its stream
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  cudaEvent_t written = nullptr;
  cudaEventCreateWithFlags(&written, cudaEventDisableTiming);
  simt::launch(fill, kGrid, dim3(kThreads), 0, a, b.x, 41);
  cudaEventRecord(written, a);
  if (wait_for_event) cudaStreamWaitEvent(s, written, 0);
  simt::launch(add_one, kGrid, dim3(kThreads), 0, s, b.y, b.x);
  cudaMemcpyAsync(b.host, b.y, kN * sizeof(int), cudaMemcpyDeviceToHost, s);
  cudaStreamSynchronize(s);
  const bool right = all_equal(b.host, kN, 42);
  cudaEventDestroy(written);
  cudaStreamDestroy(a);
  cudaStreamDestroy(s);
  return right;
}

// A kernel on one stream fills x, a kernel on the other reads it into y, and the host reads y
// back through the second stream. With `legacy_first`, the legacy default stream fills and a
// stream created with `flags` reads (cudaMemcpyAsync on it, then cudaStreamSynchronize): a
// blocking stream waits for the legacy stream's earlier work, a non-blocking one does not.
// Otherwise the other way, with cudaMemcpy (legacy stream): the legacy stream waits for blocking
// streams only.
bool legacy_and_stream(unsigned flags, bool legacy_first) {
  Buffers b;
  cudaStream_t s = nullptr;
  cudaStreamCreateWithFlags(&s, flags);
  cudaStream_t first = legacy_first ? nullptr : s, second = legacy_first ? s : nullptr;
  simt::launch(fill, kGrid, dim3(kThreads), 0, first, b.x, 41);
  simt::launch(add_one, kGrid, dim3(kThreads), 0, second, b.y, b.x);
  if (legacy_first) {
    cudaMemcpyAsync(b.host, b.y, kN * sizeof(int), cudaMemcpyDeviceToHost, s);
    cudaStreamSynchronize(s);
  } else {
    cudaMemcpy(b.host, b.y, kN * sizeof(int), cudaMemcpyDeviceToHost);
  }
  const bool right = all_equal(b.host, kN, 42);
  cudaStreamDestroy(s);
  return right;
}

struct Program {
  const char* name;
  bool (*run)();
  bool correct;  // the program synchronises as CUDA requires
};
const Program kPrograms[] = {
    {"two-streams-with-wait", [] { return two_streams(true); }, true},
    {"two-streams-without-wait", [] { return two_streams(false); }, false},
    {"legacy-then-blocking", [] { return legacy_and_stream(cudaStreamDefault, true); }, true},
    {"legacy-then-non-blocking", [] { return legacy_and_stream(cudaStreamNonBlocking, true); }, false},
    {"blocking-then-legacy", [] { return legacy_and_stream(cudaStreamDefault, false); }, true},
    {"non-blocking-then-legacy", [] { return legacy_and_stream(cudaStreamNonBlocking, false); }, false},
};
const char* const kSchedules[] = {"ascending", "descending", "random:1", "random:2", "random:3"};

// The child's side: runs one program and prints "result right" or "result wrong".
int run_program(const char* name) {
  for (const Program& p : kPrograms)
    if (std::strcmp(p.name, name) == 0) {
      std::printf("result %s\n", p.run() ? "right" : "wrong");
      return 0;
    }
  std::fprintf(stderr, "unknown program %s\n", name);
  return 2;
}

// A correct program is right under every schedule; a faulty one is wrong under ascending or
// descending (the two schedules every test of the label runs under).
void check_program(const Program& p) {
  std::string wrong_under, errors;
  bool faulty_caught = false;
  for (const char* schedule : kSchedules) {
    const ChildRun r = run_self(std::string("--program ") + p.name, std::string("GPT2_SIMT_SCHEDULE=") + schedule);
    if (r.status != 0 || !has(r.out, "result "))
      errors += fmt(" %s: exit %d %s", schedule, r.status, first_line(r.err).c_str());
    if (has(r.out, "result wrong")) {
      wrong_under += std::string(" ") + schedule;
      if (std::strcmp(schedule, "ascending") == 0 || std::strcmp(schedule, "descending") == 0) faulty_caught = true;
    }
  }
  const std::string detail = "wrong under:" + (wrong_under.empty() ? std::string(" none") : wrong_under) + errors;
  if (p.correct)
    check(wrong_under.empty() && errors.empty(), fmt("%s: right under every schedule", p.name), detail);
  else
    check(faulty_caught && errors.empty(), fmt("%s: wrong under ascending or descending", p.name), detail);
}

// ---- Checks in this process (under the schedule ctest gives it) ----------------------------------

// The host reads an async copy's destination: the old contents until it synchronises.
void check_missing_synchronisation() {
  Buffers b;
  cudaStream_t s = nullptr;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  for (int i = 0; i < kN; ++i) b.host[i] = -1;
  std::vector<int> pageable(kN, -1);
  simt::launch(fill, kGrid, dim3(kThreads), 0, s, b.x, 7);
  cudaMemcpyAsync(b.host, b.x, kN * sizeof(int), cudaMemcpyDeviceToHost, s);
  cudaMemcpyAsync(pageable.data(), b.x, kN * sizeof(int), cudaMemcpyDeviceToHost, s);
  check(all_equal(b.host, kN, -1) && all_equal(pageable.data(), kN, -1),
        "without cudaStreamSynchronize the host sees the old contents of an async copy's destination",
        fmt("pinned [0] %d, pageable [0] %d", b.host[0], pageable[0]));
  const cudaError_t e = cudaStreamSynchronize(s);
  check(e == cudaSuccess && all_equal(b.host, kN, 7) && all_equal(pageable.data(), kN, 7),
        "after cudaStreamSynchronize it sees the copied contents",
        fmt("%s, pinned [0] %d, pageable [0] %d", cudaGetErrorName(e), b.host[0], pageable[0]));
  cudaStreamDestroy(s);
}

// Host sources of host-to-device copies: pinned memory is read when the copy runs, pageable
// memory is staged when the copy is issued (the host may reuse it at once).
void check_host_sources() {
  Buffers b;
  cudaStream_t s = nullptr;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  std::vector<int> pageable(kN, 1);
  for (int i = 0; i < kN; ++i) b.host[i] = 1;
  cudaMemcpyAsync(b.x, b.host, kN * sizeof(int), cudaMemcpyHostToDevice, s);
  cudaMemcpyAsync(b.y, pageable.data(), kN * sizeof(int), cudaMemcpyHostToDevice, s);
  for (int i = 0; i < kN; ++i) b.host[i] = pageable[i] = 2;  // changed before the copies run
  cudaStreamSynchronize(s);
  std::vector<int> from_pinned(kN), from_pageable(kN);
  cudaMemcpy(from_pinned.data(), b.x, kN * sizeof(int), cudaMemcpyDeviceToHost);
  cudaMemcpy(from_pageable.data(), b.y, kN * sizeof(int), cudaMemcpyDeviceToHost);
  check(all_equal(from_pinned.data(), kN, 2), "a pinned host source is read when the async copy runs",
        fmt("device got %d", from_pinned[0]));
  check(all_equal(from_pageable.data(), kN, 1), "a pageable host source is staged when the async copy is issued",
        fmt("device got %d", from_pageable[0]));
  cudaStreamDestroy(s);
}

// D (1x1) = alpha * A * B + beta * C with host scalars changed right after the call: the matmul
// uses the values at the call.
void check_cublaslt_scalars() {
  float* m[4] = {};  // A, B, C, D: one float each
  const float init[4] = {3.0f, 5.0f, 100.0f, 0.0f};
  for (int i = 0; i < 4; ++i) {
    cudaMalloc(&m[i], sizeof(float));
    cudaMemcpy(m[i], &init[i], sizeof(float), cudaMemcpyHostToDevice);
  }
  cudaDeviceSynchronize();  // the uploads are on the legacy stream, which `s` below does not wait for
  cublasLtHandle_t handle = nullptr;
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t one = nullptr;
  cublasLtCreate(&handle);
  cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  cublasLtMatrixLayoutCreate(&one, CUDA_R_32F, 1, 1, 1);
  cudaStream_t s = nullptr;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  float alpha = 2.0f, beta = 1.0f;
  const cublasStatus_t st =
      cublasLtMatmul(handle, op, &alpha, m[0], one, m[1], one, &beta, m[2], one, m[3], one, nullptr, nullptr, 0, s);
  alpha = 0.0f;
  beta = 0.0f;
  cudaStreamSynchronize(s);
  float out = 0;
  cudaMemcpy(&out, m[3], sizeof out, cudaMemcpyDeviceToHost);
  check(st == CUBLAS_STATUS_SUCCESS && out == 130.0f, "cublasLtMatmul takes host alpha and beta when it is called",
        fmt("status %d, D = %g (130 = 2*3*5 + 1*100)", static_cast<int>(st), out));
  cudaStreamDestroy(s);
  cublasLtMatrixLayoutDestroy(one);
  cublasLtMatmulDescDestroy(op);
  cublasLtDestroy(handle);
  for (float* p : m) cudaFree(p);
}

// A kernel fault is reported at the synchronisation after the launch, not by the launch.
void check_deferred_fault() {
  Buffers b;
  cudaStream_t s = nullptr;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  cudaError_t launched = cudaSuccess, synced = cudaSuccess;
  const std::string at_launch =
      capture_stderr([&] { launched = simt::launch(faulty_barrier, dim3(1), dim3(kThreads), 0, s, b.x); });
  const std::string at_sync = capture_stderr([&] { synced = cudaStreamSynchronize(s); });
  check(launched == cudaSuccess && at_launch.empty(), "a faulting kernel's launch succeeds (the kernel is queued)",
        fmt("%s %s", cudaGetErrorName(launched), first_line(at_launch).c_str()));
  check(synced == cudaErrorLaunchFailure && has(at_sync, "simt: kernel fault:"),
        "its fault is reported by the next synchronisation",
        fmt("%s %s", cudaGetErrorName(synced), first_line(at_sync).c_str()));
  const cudaError_t later = simt::launch(fill, kGrid, dim3(kThreads), 0, s, b.x, 1);
  check(later == cudaErrorLaunchFailure, "the fault is sticky: the next launch fails", cudaGetErrorName(later));
  simt::clear_sticky_error();
  cudaStreamDestroy(s);
}

// The child's side of check_exit_runs_queued_work: queues a faulting kernel and exits.
int exit_with_queued_fault() {
  int* out = nullptr;
  cudaMalloc(&out, kThreads * sizeof(int));
  cudaStream_t s = nullptr;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  simt::launch(faulty_barrier, dim3(1), dim3(kThreads), 0, s, out);
  std::printf("queued\n");
  return 0;
}

// Program exit is a synchronisation point: the queued kernel runs and its fault is reported.
void check_exit_runs_queued_work() {
  const ChildRun r = run_self("--exit-with-queued-fault");
  check(r.status == 0 && has(r.out, "queued") && has(r.err, "simt: kernel fault:"),
        "work still queued at exit runs then (its fault is reported on stderr)",
        fmt("exit %d, %s", r.status, first_line(r.err).c_str()));
}

// Queries answer cudaErrorNotReady while work is queued and cudaSuccess once it has run; a
// polling loop ends. Event times are taken when the records run.
void check_queries_and_timing() {
  Buffers b;
  cudaStream_t s = nullptr;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  cudaEvent_t start = nullptr, stop = nullptr;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaEventRecord(start, s);
  for (int i = 0; i < 4; ++i) simt::launch(fill, kGrid, dim3(kThreads), 0, s, b.x, i);
  cudaEventRecord(stop, s);
  const cudaError_t event_query = cudaEventQuery(stop);
  float ms = -1;
  const cudaError_t early_time = cudaEventElapsedTime(&ms, start, stop);
  check(event_query == cudaErrorNotReady && early_time == cudaErrorNotReady,
        "before the work runs: cudaEventQuery and cudaEventElapsedTime answer cudaErrorNotReady",
        fmt("%s, %s", cudaGetErrorName(event_query), cudaGetErrorName(early_time)));
  int polls = 0;
  cudaError_t q = cudaErrorNotReady;
  while (q == cudaErrorNotReady && polls < 1000) {
    q = cudaStreamQuery(s);
    ++polls;
  }
  check(q == cudaSuccess && polls > 1, "polling cudaStreamQuery ends with cudaSuccess",
        fmt("%s after %d polls", cudaGetErrorName(q), polls));
  const cudaError_t t = cudaEventElapsedTime(&ms, start, stop);
  check(cudaEventQuery(stop) == cudaSuccess && t == cudaSuccess && ms >= 0.0f,
        "after the work ran: the event is complete and the elapsed time is known",
        fmt("%s, %g ms", cudaGetErrorName(t), ms));
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaStreamDestroy(s);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 2 && std::strcmp(argv[1], "--program") == 0) return run_program(argv[2]);
  if (argc > 1 && std::strcmp(argv[1], "--exit-with-queued-fault") == 0) return exit_with_queued_fault();
  for (const Program& p : kPrograms) check_program(p);
  check_missing_synchronisation();
  check_host_sources();
  check_cublaslt_scalars();
  check_deferred_fault();
  check_queries_and_timing();
  check_exit_runs_queued_work();
  if (argc > 1 && std::strcmp(argv[1], "--child") == 0) return finish();
  // With streams planted synchronous, missing synchronisations go unseen: the child must fail.
  const ChildRun child = run_self("--child", "GPT2_SIMT_PLANT=sync-streams");
  check(child.status == 1 && has(child.out, "FAILED two-streams-without-wait") &&
            has(child.out, "FAILED without cudaStreamSynchronize"),
        "with streams planted synchronous (GPT2_SIMT_PLANT=sync-streams) this test reports FAILED",
        fmt("exit %d; %s", child.status,
            first_line(child.out.substr(child.out.find("FAILED") == std::string::npos ? 0 : child.out.find("FAILED")))
                .c_str()));
  return finish();
}
