// Helpers shared by the GPU tests (tests/cuda/test_<op>.cu). Each test is its own executable:
// main() calls require_device_or_skip() first, which exits 77 (ctest: skipped) with the reason
// when no CUDA device is present. Tests allocate with cudaMalloc directly: the arena rule is for
// the engine, tests own their buffers.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace gpt2::gputest {

constexpr int kSkipExitCode = 77;

// True under the SIMT layer (the CUDA sources compiled as host C++ and run on the CPU, one fiber
// per CUDA thread): roughly a microsecond per thread per barrier, so a test there picks a smaller
// shape list that still reaches every code path of the full one. On a GPU: the full lists.
#if defined(GPT2_SIMT)
constexpr bool kEmulated = true;
#else
constexpr bool kEmulated = false;
#endif

inline void require_device_or_skip(const char* test_name) {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess || n == 0) {
    std::printf("SKIPPED %s: no CUDA device (%s)\n", test_name,
                err != cudaSuccess ? cudaGetErrorString(err) : "device count is 0");
    std::exit(kSkipExitCode);
  }
  cudaDeviceProp p{};
  cudaGetDeviceProperties(&p, 0);
  std::printf("%s on %s (sm_%d%d)\n", test_name, p.name, p.major, p.minor);
}

inline std::vector<float> random_vector(size_t n, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Rounds through bf16 so CPU references see exactly the values the GPU sees.
inline float round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }
inline std::vector<float> round_bf16(std::vector<float> v) {
  for (auto& x : v) x = round_bf16(x);
  return v;
}

// Device buffer of T owning its memory; poisoned with NaN bytes (0xFF) so an unwritten output
// element fails the comparison.
template <typename T>
struct DeviceBuffer {
  T* ptr = nullptr;
  size_t n = 0;
  explicit DeviceBuffer(size_t count) : n(count) {
    if (cudaMalloc(&ptr, count * sizeof(T) + 16) != cudaSuccess) {
      std::fprintf(stderr, "cudaMalloc of %zu bytes failed\n", count * sizeof(T));
      std::exit(1);
    }
    poison();
  }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void poison() { cudaMemset(ptr, 0xFF, n * sizeof(T)); }
  void zero() { cudaMemset(ptr, 0, n * sizeof(T)); }
};

// Uploads float data as T (float or bf16).
template <typename T>
inline void upload(DeviceBuffer<T>& d, const std::vector<float>& h) {
  std::vector<T> tmp(h.size());
  for (size_t i = 0; i < h.size(); ++i) tmp[i] = static_cast<T>(h[i]);
  cudaMemcpy(d.ptr, tmp.data(), tmp.size() * sizeof(T), cudaMemcpyHostToDevice);
}
template <typename T>
inline std::vector<float> download(const DeviceBuffer<T>& d, size_t count = 0) {
  if (count == 0) count = d.n;
  std::vector<T> tmp(count);
  cudaMemcpy(tmp.data(), d.ptr, count * sizeof(T), cudaMemcpyDeviceToHost);
  std::vector<float> out(count);
  for (size_t i = 0; i < count; ++i) out[i] = static_cast<float>(tmp[i]);
  return out;
}

// |got - ref| <= atol + rtol·|ref| elementwise; prints the worst element and the max errors.
// Returns true when every element passes (NaN fails).
inline bool check_close(const char* name, const std::vector<float>& got, const std::vector<float>& ref, float atol,
                        float rtol) {
  if (got.size() != ref.size()) {
    std::printf("  FAIL %-24s size %zu vs %zu\n", name, got.size(), ref.size());
    return false;
  }
  double max_abs = 0, max_rel = 0;
  size_t worst = 0, bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::fabs(static_cast<double>(got[i]) - ref[i]);
    const bool ok = std::isfinite(got[i]) && d <= atol + rtol * std::fabs(ref[i]);
    if (!ok) ++bad;
    if (!std::isfinite(got[i]) || d > max_abs) {
      max_abs = std::isfinite(got[i]) ? d : INFINITY;
      worst = i;
    }
    if (std::fabs(ref[i]) > 1e-6) max_rel = std::fmax(max_rel, d / std::fabs(ref[i]));
  }
  std::printf("  %s %-24s max|d| %.3e  max rel %.3e  (atol %.1e rtol %.1e)%s", bad ? "FAIL" : "ok  ", name, max_abs,
              max_rel, atol, rtol, bad ? "" : "\n");
  if (bad) std::printf("  %zu bad; worst [%zu] got %g ref %g\n", bad, worst, got[worst], ref[worst]);
  return bad == 0;
}

// ---- Raw transfers, stored-type views and bitwise checks for the kernel tests ----------------

// Raw copies (ints, or bits that must not be converted).
template <typename T>
inline void upload_raw(DeviceBuffer<T>& d, const std::vector<T>& h) {
  cudaMemcpy(d.ptr, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice);
}
template <typename T>
inline std::vector<T> download_raw(const DeviceBuffer<T>& d, size_t count = 0) {
  if (count == 0) count = d.n;
  std::vector<T> h(count);
  cudaMemcpy(h.data(), d.ptr, count * sizeof(T), cudaMemcpyDeviceToHost);
  return h;
}

// The values the device will hold for storage type T: rounded through bf16 for bf16 storage.
template <typename T>
inline std::vector<float> as_stored(std::vector<float> v) {
  if constexpr (sizeof(T) == 2) v = round_bf16(std::move(v));
  return v;
}
template <typename T>
constexpr const char* type_name() {
  return sizeof(T) == 2 ? "bf16" : "fp32";
}

// Root mean square of a tensor: the scale of the terms that cancel in values near zero, so
// the natural unit of an absolute tolerance.
inline float rms(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return v.empty() ? 0.f : static_cast<float>(std::sqrt(s / v.size()));
}

// Bitwise equality of two downloads (determinism checks).
template <typename T>
inline bool check_bitwise(const char* name, const std::vector<T>& a, const std::vector<T>& b) {
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0 && bad++ == 0) first = i;
  const bool ok = a.size() == b.size() && bad == 0;
  std::printf("  %s %-24s bitwise %s", ok ? "ok  " : "FAIL", name, ok ? "identical\n" : "");
  if (!ok) std::printf("differs in %zu elements (first [%zu])\n", bad, first);
  return ok;
}

// Ends a test: prints the verdict and returns the exit code.
inline int finish(const char* test_name, bool ok) {
  std::printf("%s %s\n", test_name, ok ? "PASSED" : "FAILED");
  return ok ? 0 : 1;
}

inline void sync_or_die() {
  const cudaError_t e = cudaDeviceSynchronize();
  if (e != cudaSuccess) {
    std::fprintf(stderr, "CUDA error: %s\n", cudaGetErrorString(e));
    std::exit(1);
  }
}

}  // namespace gpt2::gputest
