// Self-test of the SIMT layer's warp collectives (tests/simt/src/scheduler.cpp): shuffles whose
// masks are right give the values the CUDA C++ Programming Guide defines, and each misuse a GPU
// leaves undefined is reported as a kernel fault that fails the launch:
//  - a lane reads (shuffles from) a lane that is not in the mask;
//  - a lane named in the mask never arrives (it exited, or it waits at a __syncthreads);
//  - the calling lane is not in its own mask;
//  - lanes of one warp meet in collectives with different, overlapping masks.
// Plain main(): prints one PASSED/FAILED line per check and returns 0 when all passed.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "selftest_util.h"

namespace {

using namespace simt_selftest;

constexpr int kN = 32;

// Lanes 0..15 shuffle among themselves (mask 0x0000ffff); lane 3 reads lane `src3`.
__global__ void half_warp_shuffle(int* out, int src3) {
  const int lane = static_cast<int>(threadIdx.x);
  int v = 100 + lane;
  if (lane < 16) v = __shfl_sync(0x0000ffffu, v, lane == 3 ? src3 : (lane + 1) % 16);
  out[lane] = v;
}

// Every lane but `quitter` does a full-warp xor shuffle (-1: every lane does).
__global__ void xor_shuffle_with_quitter(int* out, int quitter) {
  const int lane = static_cast<int>(threadIdx.x);
  if (lane == quitter) return;
  out[lane] = __shfl_xor_sync(0xffffffffu, 100 + lane, 1);
}

// Lane `diverter` goes to a __syncthreads instead of the full-warp shuffle the others wait in.
__global__ void shuffle_with_diverted_lane(int* out, int diverter) {
  const int lane = static_cast<int>(threadIdx.x);
  int v = 100 + lane;
  if (lane != diverter) v = __shfl_down_sync(0xffffffffu, v, 1);
  __syncthreads();
  out[lane] = v;
}

// Lanes 16..31 shuffle with `upper_mask`; lanes 0..15 with 0x0000ffff.
__global__ void split_masks(int* out, unsigned upper_mask) {
  const int lane = static_cast<int>(threadIdx.x);
  int v = 100 + lane;
  if (lane < 16)
    v = __shfl_xor_sync(0x0000ffffu, v, 2);
  else
    v = __shfl_xor_sync(upper_mask, v, 2);
  out[lane] = v;
}

// Lanes 0..15 do a __shfl_sync and 16..31 a __ballot_sync, both over the full warp, or each over
// its own half (`halves`).
__global__ void different_collectives(int* out, bool halves) {
  const int lane = static_cast<int>(threadIdx.x);
  if (lane < 16)
    out[lane] = __shfl_sync(halves ? 0x0000ffffu : 0xffffffffu, 100 + lane, 0, 16);
  else
    out[lane] = static_cast<int>(__ballot_sync(halves ? 0xffff0000u : 0xffffffffu, lane % 2));
}

// Lane 20 calls a shuffle whose mask does not name it.
__global__ void caller_not_in_mask(int* out, unsigned mask) {
  const int lane = static_cast<int>(threadIdx.x);
  if (lane >= 16) out[lane] = __shfl_sync(lane == 20 ? mask : 0xffff0000u, 100 + lane, 16);
}

struct Run {
  cudaError_t err;
  std::string text;  // stderr
  std::vector<int> out;
};

template <typename... A>
Run run(void (*kernel)(int*, A...), int threads, A... args) {
  Run r;
  int* out = nullptr;
  cudaMalloc(&out, kN * sizeof(int));
  cudaMemset(out, 0, kN * sizeof(int));
  r.text = capture_stderr([&] { r.err = run_kernel(kernel, dim3(1), dim3(threads), 0, out, args...); });
  r.out.resize(kN);
  simt::clear_sticky_error();
  cudaGetLastError();
  cudaMemcpy(r.out.data(), out, kN * sizeof(int), cudaMemcpyDeviceToHost);
  cudaFree(out);
  return r;
}

void check_missing_source_lane() {
  Run ok = run(half_warp_shuffle, kN, 10);
  bool values = true;
  for (int l = 0; l < kN; ++l) {
    const int want = l >= 16 ? 100 + l : (l == 3 ? 110 : 100 + (l + 1) % 16);
    values = values && ok.out[l] == want;
  }
  check(ok.err == cudaSuccess && values && ok.text.empty(),
        "mask 0x0000ffff, lane 3 reads lane 10: values right, no fault",
        fmt("%s, lane 3 got %d", cudaGetErrorName(ok.err), ok.out[3]));
  Run bad = run(half_warp_shuffle, kN, 20);
  check(bad.err == cudaErrorLaunchFailure && has(bad.text, "lane 3 reads lane 20, which is not in the mask 0x0000ffff"),
        "mask 0x0000ffff, lane 3 reads lane 20: reported", first_line(bad.text));
}

void check_lane_never_arrives() {
  Run ok = run(xor_shuffle_with_quitter, kN, -1);
  bool values = true;
  for (int l = 0; l < kN; ++l) values = values && ok.out[l] == 100 + (l ^ 1);
  check(ok.err == cudaSuccess && values, "full-warp xor shuffle, all lanes present: values right",
        cudaGetErrorName(ok.err));
  Run bad = run(xor_shuffle_with_quitter, kN, 7);
  check(bad.err == cudaErrorLaunchFailure && has(bad.text, "lane 7") && has(bad.text, "never arrives: it has exited"),
        "full-warp shuffle, lane 7 has exited: reported", first_line(bad.text));
  // The warp is partial (20 threads): a full mask names lanes that do not exist.
  Run partial = run(xor_shuffle_with_quitter, 20, -1);
  check(partial.err == cudaErrorLaunchFailure && has(partial.text, "names lanes that do not exist"),
        "full mask in a 20-thread block: reported", first_line(partial.text));

  Run ok2 = run(shuffle_with_diverted_lane, kN, -1);
  bool values2 = true;
  for (int l = 0; l < kN; ++l) values2 = values2 && ok2.out[l] == 100 + (l == 31 ? 31 : l + 1);
  check(ok2.err == cudaSuccess && values2, "shfl_down then __syncthreads, no divergence: values right",
        cudaGetErrorName(ok2.err));
  Run bad2 = run(shuffle_with_diverted_lane, kN, 12);
  check(bad2.err == cudaErrorLaunchFailure && has(bad2.text, "lane 12") &&
            has(bad2.text, "never arrives: it waits at __syncthreads"),
        "lane 12 waits at __syncthreads while the warp shuffles: reported", first_line(bad2.text));
}

void check_disagreement() {
  Run ok = run(split_masks, kN, 0xffff0000u);
  bool values = true;
  for (int l = 0; l < kN; ++l) values = values && ok.out[l] == 100 + (l ^ 2);
  check(ok.err == cudaSuccess && values, "halves shuffle with disjoint masks 0x0000ffff / 0xffff0000: values right",
        cudaGetErrorName(ok.err));
  Run bad = run(split_masks, kN, 0xffffffffu);
  // Which message depends on the schedule: when lanes 0..15 complete their half-warp shuffle before
  // lanes 16..31 arrive (ascending), the full-mask shuffle then waits for lanes that have exited.
  check(bad.err == cudaErrorLaunchFailure &&
            (has(bad.text, "meets __shfl_xor_sync with mask") ||
             has(bad.text, "__shfl_xor_sync with mask 0xffffffff in warp 0: lane 0 (thread (0,0,0)) never arrives")),
        "masks 0x0000ffff and 0xffffffff meet in one warp: reported", first_line(bad.text));

  Run ok2 = run(different_collectives, kN, true);
  bool values2 = true;
  for (int l = 0; l < kN; ++l) values2 = values2 && ok2.out[l] == (l < 16 ? 100 : static_cast<int>(0xAAAA0000u));
  check(ok2.err == cudaSuccess && values2, "shuffle on one half, ballot on the other (disjoint masks): values right",
        fmt("%s, lane 20 ballot 0x%08x", cudaGetErrorName(ok2.err), static_cast<unsigned>(ok2.out[20])));
  Run bad2 = run(different_collectives, kN, false);
  check(
      bad2.err == cudaErrorLaunchFailure && has(bad2.text, "meets") &&
          (has(bad2.text, "__ballot_sync with mask 0xffffffff") || has(bad2.text, "__shfl_sync with mask 0xffffffff")),
      "__shfl_sync and __ballot_sync over the same full mask: reported", first_line(bad2.text));

  Run ok3 = run(caller_not_in_mask, kN, 0xffff0000u);
  check(ok3.err == cudaSuccess && ok3.out[20] == 116, "caller in its mask: values right", cudaGetErrorName(ok3.err));
  Run bad3 = run(caller_not_in_mask, kN, 0x000f0000u);
  check(bad3.err == cudaErrorLaunchFailure && has(bad3.text, "the calling lane 20 is not in its mask 0x000f0000"),
        "lane 20 calls a shuffle with a mask without it: reported", first_line(bad3.text));
}

}  // namespace

int main() {
  check_missing_source_lane();
  check_lane_never_arrives();
  check_disagreement();
  return finish();
}
