// Self-test of the SIMT layer's resource check (tests/simt/src/scheduler.cpp launch_kernel,
// src/symbols.cpp): a launch a real GPU refuses for its registers or its static + dynamic shared
// memory fails with cudaErrorLaunchOutOfResources and one stderr line naming the kernel, and the
// same kernel with a launch that fits runs. Kernels here were never compiled by nvcc, so their
// resources are declared with simt::set_kernel_resources. Also: kernel_name names a static
// function from the symbol table, and the layer's per-card shared-memory limits agree with the
// SM table of engine/plan/kernel_resources.h.
// Then the whole test runs again as a child with the check planted off
// (GPT2_SIMT_PLANT=no-resource-check) and must report FAILED there: the test catches the fault.
// Plain main(): prints one PASSED/FAILED line per check and returns 0 when all passed.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "engine/plan/kernel_resources.h"
#include "selftest_util.h"
#include "simt/device.h"
#include "simt/launch.h"

namespace {

using namespace simt_selftest;

constexpr size_t KiB = 1024;

// Counts the threads that ran.
static __global__ void heavy_registers_kernel(int* out) { atomicAdd(out, 1); }
// Counts the threads that ran; declared with 8 KiB of static shared memory.
static __global__ void static_smem_kernel(int* out, unsigned) { atomicAdd(out, 1); }
// The same, declared with none.
static __global__ void dynamic_only_kernel(int* out, unsigned) { atomicAdd(out, 1); }

const char* name(cudaError_t e) { return cudaGetErrorName(e); }

struct Launch {
  cudaError_t error = cudaSuccess;
  int threads_ran = 0;
  std::string err;  // what the layer printed on stderr
};

template <typename... P, typename... A>
Launch run(void (*kernel)(P...), unsigned threads, size_t smem, int* out, A... args) {
  Launch l;
  cudaMemset(out, 0, sizeof(int));
  l.err = capture_stderr([&] { l.error = simt::launch(kernel, dim3(1), dim3(threads), smem, nullptr, out, args...); });
  cudaGetLastError();
  cudaMemcpy(&l.threads_ran, out, sizeof(int), cudaMemcpyDeviceToHost);
  return l;
}

void check_names() {
  const char* n = simt::kernel_name(reinterpret_cast<const void*>(&heavy_registers_kernel));
  check(n && std::string(n) == "(anonymous namespace)::heavy_registers_kernel(int*)",
        "kernel_name names a static kernel by its demangled signature", n ? n : "nullptr");
  int not_a_function = 0;
  check(simt::kernel_name(&not_a_function) == nullptr, "kernel_name of a non-function is nullptr");
}

void check_registers() {
  int* out = nullptr;
  cudaMalloc(&out, sizeof(int));
  check(simt::set_device("sm_90"), "set_device(sm_90)");
  // 128 registers per thread: 4096 per warp, 16 warps (512 threads) fill the 64 K register file.
  simt::set_kernel_resources(reinterpret_cast<const void*>(&heavy_registers_kernel), 128, 0);
  Launch l = run(heavy_registers_kernel, 512, 0, out);
  check(l.error == cudaSuccess && l.threads_ran == 512, "128 registers x 512 threads (65536) runs",
        fmt("%s, %d threads ran", name(l.error), l.threads_ran));
  l = run(heavy_registers_kernel, 1024, 0, out);
  check(l.error == cudaErrorLaunchOutOfResources && l.threads_ran == 0,
        "128 registers x 1024 threads (131072 > 65536) fails with cudaErrorLaunchOutOfResources",
        fmt("%s, %d threads ran", name(l.error), l.threads_ran));
  check(has(l.err, "heavy_registers_kernel") && has(l.err, "register") && has(l.err, "too many resources"),
        "the refusal names the kernel and its registers", first_line(l.err));
  const cudaError_t after = simt::launch(heavy_registers_kernel, dim3(1), dim3(32), 0, nullptr, out);
  check(after == cudaSuccess, "a launch refused for its registers leaves no sticky error", name(after));
  cudaFree(out);
}

void check_static_shared_memory() {
  int* out = nullptr;
  cudaMalloc(&out, sizeof(int));
  check(simt::set_device("sm_86"), "set_device(sm_86)");
  simt::set_kernel_resources(reinterpret_cast<const void*>(&static_smem_kernel), 32, 8 * KiB);
  simt::set_kernel_resources(reinterpret_cast<const void*>(&dynamic_only_kernel), 32, 0);
  cudaFuncSetAttribute(static_smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 99 * KiB);
  cudaFuncSetAttribute(dynamic_only_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 99 * KiB);
  cudaGetLastError();
  Launch l = run(dynamic_only_kernel, 32, 99 * KiB, out, 0u);
  check(l.error == cudaSuccess && l.threads_ran == 32, "sm_86: 99 KiB dynamic, no static shared memory runs",
        fmt("%s, %d threads ran", name(l.error), l.threads_ran));
  l = run(static_smem_kernel, 32, 99 * KiB, out, 0u);
  check(l.error == cudaErrorLaunchOutOfResources && l.threads_ran == 0,
        "sm_86: 99 KiB dynamic + 8 KiB static (> 99 KiB opt-in) fails with cudaErrorLaunchOutOfResources",
        fmt("%s, %d threads ran", name(l.error), l.threads_ran));
  check(has(l.err, "static_smem_kernel") && has(l.err, "shared memory"),
        "the refusal names the kernel and its shared memory", first_line(l.err));
  l = run(static_smem_kernel, 32, 91 * KiB, out, 0u);
  check(l.error == cudaSuccess && l.threads_ran == 32, "sm_86: 91 KiB dynamic + 8 KiB static (= 99 KiB) runs",
        fmt("%s, %d threads ran", name(l.error), l.threads_ran));
  cudaFree(out);
}

void check_card_limits_agree() {
  // The layer's cards carry their shared-memory limits (cudaDeviceProp); the SM table is what the
  // resource check uses. Each architecture's card must agree with it.
  for (const auto& sm : gpt2::sm_architectures()) {
    const bool ok = simt::set_device(sm.arch);
    const simt::DeviceSpec& d = simt::device_spec();
    cudaDeviceProp p;
    cudaGetDeviceProperties(&p, 0);
    check(ok && d.major == sm.major && d.minor == sm.minor &&
              static_cast<int64_t>(d.smem_optin) == sm.smem_optin_per_block() &&
              static_cast<int64_t>(d.smem_per_sm) == sm.smem_per_sm && p.maxThreadsPerMultiProcessor == sm.max_threads_per_sm,
          fmt("%s: the layer's card (%s) has the SM table's limits", sm.arch, d.name),
          fmt("opt-in %zu, per SM %zu, %d threads per SM", d.smem_optin, d.smem_per_sm, p.maxThreadsPerMultiProcessor));
  }
}

}  // namespace

int main(int argc, char** argv) {
  check_names();
  check_registers();
  check_static_shared_memory();
  check_card_limits_agree();
  if (argc > 1 && std::strcmp(argv[1], "--child") == 0) return finish();
  // With the check planted off, the over-budget launches run: the child must report FAILED.
  const ChildRun child = run_self("--child", "GPT2_SIMT_PLANT=no-resource-check");
  check(child.status == 1 && has(child.out, "FAILED 128 registers x 1024 threads") &&
            has(child.out, "FAILED sm_86: 99 KiB dynamic + 8 KiB static"),
        "with the check planted off (GPT2_SIMT_PLANT=no-resource-check) this test reports FAILED",
        fmt("exit %d; %s", child.status, first_line(child.out.substr(child.out.find("FAILED") == std::string::npos ? 0 : child.out.find("FAILED"))).c_str()));
  return finish();
}
