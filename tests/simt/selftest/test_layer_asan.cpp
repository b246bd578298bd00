// Self-test of the SIMT layer under AddressSanitizer (the whole simt build has
// -fsanitize=address,undefined): a kernel's write one element past the end of its buffer is
// reported as a heap-buffer-overflow, for a cudaMalloc'd buffer (its allocation has exactly the
// requested size), a host heap buffer and dynamic shared memory (allocated per block with exactly
// the launch's size). AddressSanitizer ends the process, so each case runs in a child process (this
// executable with --child CASE): the faulty cases must exit non-zero with "heap-buffer-overflow"
// on stderr, the in-bounds ones must exit 0. A static __shared__ array has no redzone (it is
// thread_local); an index past it is caught by UBSan's bounds check, which is checked too.
// Plain main(): prints one PASSED/FAILED line per check and returns 0 when all passed.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "selftest_util.h"

namespace {

using namespace simt_selftest;

// Thread i writes p[i] for i < n (n may be one past the buffer).
__global__ void fill(float* p, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) p[i] = static_cast<float>(i);
}

// Thread i writes byte i of the dynamic shared memory for i < n.
__global__ void fill_smem(int n, int* out) {
  unsigned char* s = static_cast<unsigned char*>(simt::dynamic_shared());
  const int i = static_cast<int>(threadIdx.x);
  if (i < n) s[i] = static_cast<unsigned char>(i);
  __syncthreads();
  if (i == 0) out[0] = s[0];
}

// Thread i writes s[i] of a static __shared__ int[10] for i < n. Static shared memory is a
// thread_local array, which AddressSanitizer gives no redzone: an index past it is caught by
// UBSan's bounds check (-fsanitize=undefined, no recovery) instead.
__global__ void fill_static_smem(int n, int* out) {
  __shared__ int s[10];
  const int i = static_cast<int>(threadIdx.x);
  if (i < n) s[i] = i;
  __syncthreads();
  if (i == 0) out[0] = s[0];
}

// The child: one case, named by argv[2]. Returns 0 when the kernel ran without an error (a case
// that overflows is ended by AddressSanitizer before it returns).
int child(const char* what) {
  const int n = 37;  // 148 bytes: the last 8-byte granule is partly addressable
  const int m = 64;  // 256 bytes: a whole number of cudaMalloc's 256-byte alignment
  cudaError_t e = cudaSuccess;
  if (std::strcmp(what, "device-in-bounds") == 0 || std::strcmp(what, "device-one-past") == 0) {
    float* p = nullptr;
    cudaMalloc(&p, n * sizeof(float));
    e = run_kernel(fill, dim3(2), dim3(32), 0, p, what[7] == 'i' ? n : n + 1);
    cudaFree(p);
  } else if (std::strcmp(what, "device-aligned-in-bounds") == 0 || std::strcmp(what, "device-aligned-one-past") == 0) {
    float* p = nullptr;
    cudaMalloc(&p, m * sizeof(float));
    e = run_kernel(fill, dim3(3), dim3(32), 0, p, what[15] == 'i' ? m : m + 1);
    cudaFree(p);
  } else if (std::strcmp(what, "host-in-bounds") == 0 || std::strcmp(what, "host-one-past") == 0) {
    float* p = new float[n];
    e = run_kernel(fill, dim3(2), dim3(32), 0, p, what[5] == 'i' ? n : n + 1);
    delete[] p;
  } else if (std::strcmp(what, "smem-in-bounds") == 0 || std::strcmp(what, "smem-one-past") == 0) {
    int* out = nullptr;
    cudaMalloc(&out, sizeof(int));
    e = run_kernel(fill_smem, dim3(1), dim3(64), 40, what[5] == 'i' ? 40 : 41, out);
    cudaFree(out);
  } else if (std::strcmp(what, "static-smem-in-bounds") == 0 || std::strcmp(what, "static-smem-one-past") == 0) {
    int* out = nullptr;
    cudaMalloc(&out, sizeof(int));
    e = run_kernel(fill_static_smem, dim3(1), dim3(32), 0, what[12] == 'i' ? 10 : 11, out);
    cudaFree(out);
  } else {
    std::fprintf(stderr, "unknown case %s\n", what);
    return 2;
  }
  std::fprintf(stderr, "launch: %s\n", cudaGetErrorName(e));
  return e == cudaSuccess ? 0 : 3;
}

// Runs this executable with --child `what`.
ChildRun run_child(const char* what) { return run_self(std::string("--child ") + what); }

std::string summary(const ChildRun& r) {
  // AddressSanitizer's headline, or the child's last line.
  const size_t at = r.err.find("ERROR: AddressSanitizer");
  std::string line = at != std::string::npos ? r.err.substr(at, r.err.find('\n', at) - at) : r.err;
  if (at == std::string::npos) {
    while (!line.empty() && line.back() == '\n') line.pop_back();
    line = line.substr(line.rfind('\n') == std::string::npos ? 0 : line.rfind('\n') + 1);
  }
  if (line.size() > 120) line.resize(120);
  return "exit " + std::to_string(r.status) + ", " + line;
}

void check_case(const char* in_bounds, const char* one_past, const char* what) {
  const ChildRun ok = run_child(in_bounds);
  check(ok.status == 0 && ok.err.find("AddressSanitizer") == std::string::npos,
        std::string(what) + ": in-bounds writes exit 0", summary(ok));
  const ChildRun bad = run_child(one_past);
  check(bad.status != 0 && bad.status != -1 && bad.err.find("heap-buffer-overflow") != std::string::npos &&
            bad.err.find("WRITE of size") != std::string::npos,
        std::string(what) + ": a write one element past the end is a heap-buffer-overflow", summary(bad));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 2 && std::strcmp(argv[1], "--child") == 0) return child(argv[2]);
  check_case("device-in-bounds", "device-one-past", "cudaMalloc'd 37 floats");
  check_case("device-aligned-in-bounds", "device-aligned-one-past", "cudaMalloc'd 64 floats");
  check_case("host-in-bounds", "host-one-past", "new float[37]");
  check_case("smem-in-bounds", "smem-one-past", "40 bytes of dynamic shared memory");
  const ChildRun ok = run_child("static-smem-in-bounds");
  check(ok.status == 0 && ok.err.find("runtime error") == std::string::npos,
        "static __shared__ int[10]: in-bounds writes exit 0", summary(ok));
  const ChildRun bad = run_child("static-smem-one-past");
  const size_t at = bad.err.find("runtime error: index 10 out of bounds");
  check(bad.status != 0 && at != std::string::npos,
        "static __shared__ int[10]: s[10] = ... is reported (UBSan bounds check)",
        "exit " + std::to_string(bad.status) +
            (at != std::string::npos ? ", " + bad.err.substr(at, bad.err.find('\n', at) - at) : ""));
  return finish();
}
