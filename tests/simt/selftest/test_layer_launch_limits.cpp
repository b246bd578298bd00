// Self-test of the SIMT layer's launch checks (tests/simt/src/scheduler.cpp launch_kernel,
// runtime.cpp func_set_attribute): launches beyond the emulated card's limits fail with the code
// the CUDA runtime returns, and the largest legal launch of each kind runs.
//  - dynamic shared memory: 48 KiB without cudaFuncSetAttribute; up to the opt-in maximum with it
//    (sm_86: 99 KiB, sm_80: 163 KiB, sm_90: 227 KiB); the attribute above the opt-in is refused;
//  - block: at most 1024 threads, (1024, 1024, 64); grid: (2^31-1, 65535, 65535).
// Plain main(): prints one PASSED/FAILED line per check and returns 0 when all passed.
#include <cuda_runtime.h>

#include <cstdio>
#include <string>

#include "selftest_util.h"
#include "simt/device.h"

namespace {

using namespace simt_selftest;

constexpr size_t KiB = 1024;

// Writes the first and last byte of its dynamic shared memory and reports their sum.
__global__ void touch_smem(int* out, unsigned bytes) {
  unsigned char* s = static_cast<unsigned char*>(simt::dynamic_shared());
  s[0] = 1;
  s[bytes - 1] = 2;
  out[0] = s[0] + s[bytes - 1];
}
// One kernel per emulated card, so that each starts without a cudaFuncSetAttribute.
__global__ void touch_smem_sm80(int* out, unsigned bytes) { touch_smem(out, bytes); }
__global__ void touch_smem_sm90(int* out, unsigned bytes) { touch_smem(out, bytes); }

__global__ void count_threads(int* out) { atomicAdd(out, 1); }

const char* name(cudaError_t e) { return cudaGetErrorName(e); }

// Launches `kernel` with `bytes` of dynamic shared memory; returns the launch's error and whether
// the kernel ran (out == 3). Leaves no error behind.
cudaError_t smem_launch(void (*kernel)(int*, unsigned), size_t bytes, int* out, bool* ran) {
  cudaMemset(out, 0, sizeof(int));
  cudaError_t e = cudaSuccess;
  capture_stderr(
      [&] { e = run_kernel(kernel, dim3(1), dim3(32), bytes, out, static_cast<unsigned>(bytes)); });
  int h = 0;
  cudaGetLastError();
  cudaMemcpy(&h, out, sizeof h, cudaMemcpyDeviceToHost);
  *ran = h == 3;
  return e;
}

cudaError_t set_smem_attr(void (*kernel)(int*, unsigned), size_t bytes) {
  cudaError_t e = cudaSuccess;
  capture_stderr(
      [&] { e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)); });
  cudaGetLastError();
  return e;
}

void check_shared_memory() {
  int* out = nullptr;
  cudaMalloc(&out, sizeof(int));
  bool ran = false, ok = false;

  ok = simt::set_device("sm_86");
  check(ok, "set_device(sm_86)", simt::device_spec().name);
  cudaError_t e = smem_launch(touch_smem, 48 * KiB, out, &ran);
  check(e == cudaSuccess && ran, "sm_86: 48 KiB without the attribute runs", name(e));
  e = smem_launch(touch_smem, 48 * KiB + 1, out, &ran);
  check(e == cudaErrorInvalidValue && !ran, "sm_86: 48 KiB + 1 without the attribute fails", name(e));
  e = set_smem_attr(touch_smem, 100 * KiB);
  check(e == cudaErrorInvalidValue, "sm_86: cudaFuncSetAttribute to 100 KiB (> 99 KiB opt-in) fails", name(e));
  e = smem_launch(touch_smem, 100 * KiB, out, &ran);
  check(e == cudaErrorInvalidValue && !ran, "sm_86: 100 KiB launch after the refused attribute fails", name(e));
  e = set_smem_attr(touch_smem, 99 * KiB);
  check(e == cudaSuccess, "sm_86: cudaFuncSetAttribute to 99 KiB succeeds", name(e));
  e = smem_launch(touch_smem, 99 * KiB, out, &ran);
  check(e == cudaSuccess && ran, "sm_86: 99 KiB with the attribute runs", name(e));
  e = smem_launch(touch_smem, 99 * KiB + 1, out, &ran);
  check(e == cudaErrorInvalidValue && !ran, "sm_86: 99 KiB + 1 with the 99 KiB attribute fails", name(e));

  ok = simt::set_device("sm_80");
  check(ok, "set_device(sm_80)", simt::device_spec().name);
  e = smem_launch(touch_smem_sm80, 100 * KiB, out, &ran);
  check(e == cudaErrorInvalidValue && !ran, "sm_80: 100 KiB without the attribute fails", name(e));
  e = set_smem_attr(touch_smem_sm80, 100 * KiB);
  check(e == cudaSuccess, "sm_80: cudaFuncSetAttribute to 100 KiB succeeds", name(e));
  e = smem_launch(touch_smem_sm80, 100 * KiB, out, &ran);
  check(e == cudaSuccess && ran, "sm_80: 100 KiB with the attribute runs", name(e));
  e = set_smem_attr(touch_smem_sm80, 163 * KiB + 1);
  check(e == cudaErrorInvalidValue, "sm_80: cudaFuncSetAttribute to 163 KiB + 1 fails", name(e));
  e = set_smem_attr(touch_smem_sm80, 163 * KiB);
  const cudaError_t e2 = smem_launch(touch_smem_sm80, 163 * KiB, out, &ran);
  check(e == cudaSuccess && e2 == cudaSuccess && ran, "sm_80: 163 KiB with the attribute runs",
        std::string(name(e)) + ", " + name(e2));

  ok = simt::set_device("sm_90");
  check(ok, "set_device(sm_90)", simt::device_spec().name);
  e = set_smem_attr(touch_smem_sm90, 100 * KiB);
  const cudaError_t e3 = smem_launch(touch_smem_sm90, 100 * KiB, out, &ran);
  check(e == cudaSuccess && e3 == cudaSuccess && ran, "sm_90: 100 KiB with the attribute runs",
        std::string(name(e)) + ", " + name(e3));
  e = set_smem_attr(touch_smem_sm90, 227 * KiB);
  const cudaError_t e4 = smem_launch(touch_smem_sm90, 227 * KiB, out, &ran);
  check(e == cudaSuccess && e4 == cudaSuccess && ran, "sm_90: 227 KiB with the attribute runs",
        std::string(name(e)) + ", " + name(e4));
  e = set_smem_attr(touch_smem_sm90, 227 * KiB + 1);
  check(e == cudaErrorInvalidValue, "sm_90: cudaFuncSetAttribute to 227 KiB + 1 fails", name(e));

  // An attribute set on a card with a larger opt-in does not carry over to sm_86 (its opt-in is
  // 99 KiB whatever the attribute says).
  check(simt::set_device("sm_86"), "set_device(sm_86) again");
  e = smem_launch(touch_smem_sm80, 163 * KiB, out, &ran);
  check(e == cudaErrorInvalidValue && !ran, "sm_86: 163 KiB launch with an attribute set on sm_80 fails", name(e));
  cudaFree(out);
}

void check_dimensions() {
  int* out = nullptr;
  cudaMalloc(&out, sizeof(int));
  struct Case {
    const char* what;
    dim3 grid, block;
    cudaError_t want;
    int threads;
  };
  const Case cases[] = {
      {"block of 1024 threads runs", dim3(1), dim3(1024), cudaSuccess, 1024},
      {"block of 1025 threads fails", dim3(1), dim3(1025), cudaErrorInvalidConfiguration, 0},
      {"block (32,32,1) = 1024 threads runs", dim3(1), dim3(32, 32, 1), cudaSuccess, 1024},
      {"block (32,16,2) = 1024 threads runs", dim3(1), dim3(32, 16, 2), cudaSuccess, 1024},
      {"block (32,33,1) = 1056 threads fails", dim3(1), dim3(32, 33, 1), cudaErrorInvalidConfiguration, 0},
      {"block (1,1,65) fails (z at most 64)", dim3(1), dim3(1, 1, 65), cudaErrorInvalidConfiguration, 0},
      {"block (1,1,64) runs", dim3(1), dim3(1, 1, 64), cudaSuccess, 64},
      {"block with a 0 dimension fails", dim3(1), dim3(0, 1, 1), cudaErrorInvalidConfiguration, 0},
      {"grid.y 65535 runs", dim3(1, 65535), dim3(1), cudaSuccess, 65535},
      {"grid.y 65536 fails", dim3(1, 65536), dim3(1), cudaErrorInvalidConfiguration, 0},
      {"grid.z 65536 fails", dim3(1, 1, 65536), dim3(1), cudaErrorInvalidConfiguration, 0},
      {"grid.x 65536 runs (limit 2^31-1)", dim3(65536), dim3(1), cudaSuccess, 65536},
  };
  for (const Case& c : cases) {
    cudaMemset(out, 0, sizeof(int));
    cudaError_t e = cudaSuccess;
    capture_stderr([&] { e = run_kernel(count_threads, c.grid, c.block, 0, out); });
    const cudaError_t last = cudaGetLastError();
    int h = -1;
    cudaMemcpy(&h, out, sizeof h, cudaMemcpyDeviceToHost);
    check(e == c.want && h == c.threads && last == c.want, c.what,
          std::string(name(e)) + ", " + std::to_string(h) + " threads ran, cudaGetLastError " + name(last));
  }
  // A refused launch is not sticky: the next legal launch runs.
  cudaError_t e = cudaSuccess;
  capture_stderr([&] { e = run_kernel(count_threads, dim3(1), dim3(2048), 0, out); });
  cudaGetLastError();
  const cudaError_t e2 = run_kernel(count_threads, dim3(1), dim3(32), 0, out);
  check(e == cudaErrorInvalidConfiguration && e2 == cudaSuccess, "a refused launch leaves no sticky error",
        std::string(name(e)) + " then " + name(e2));
  cudaFree(out);
}

}  // namespace

int main() {
  check_shared_memory();
  check_dimensions();
  return finish();
}
