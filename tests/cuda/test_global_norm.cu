// GPU test: deterministic squared global norm (kernels/cuda/global_norm.cuh) against the CPU
// reference, and bitwise reproducibility.
//
// Tolerance rule: |gpu - ref| <= atol + rtol·|ref| with rtol = 1e-5, atol = 0: the GPU sums
// 16 squares in fp32 (relative error <= 16·2^-24 ~ 1e-6) and everything else in fp64, then rounds
// to float (2^-24); ref is fp64 on the same stored values.
#include <cstdio>
#include <type_traits>
#include <vector>

#include "kernels/cpu/global_norm.h"
#include "kernels/cuda/global_norm.cuh"
#include "tests/cuda/gpu_test_util.cuh"

using namespace gpt2;
using namespace gpt2::gputest;

template <typename T>
static bool run_case(size_t n, uint64_t seed) {
  std::printf(" case %s n=%zu\n", type_name<T>(), n);
  const auto x = as_stored<T>(random_vector(n, seed, -2.f, 2.f));
  const float ref = static_cast<float>(cpu::global_norm_squared(x.data(), n));
  DeviceBuffer<T> d_x(n);
  DeviceBuffer<float> d_part(cuda::kGlobalNormPartialsFloats), d_out(1);
  upload(d_x, x);
  cuda::global_norm_squared(d_out.ptr, d_part.ptr, d_x.ptr, n, 0);
  sync_or_die();
  const auto got = download_raw(d_out);
  bool ok = check_close("norm^2", got, {ref}, 0.0f, 1e-5f);
  d_out.poison();
  d_part.poison();
  cuda::global_norm_squared(d_out.ptr, d_part.ptr, d_x.ptr, n, 0);
  sync_or_die();
  ok &= check_bitwise("norm^2 rerun", got, download_raw(d_out));
  return ok;
}

int main() {
  require_device_or_skip("test_global_norm");
  bool ok = true;
  // 1 element; a scalar tail; more than 512 blocks' worth (grid-stride loop); a d12-sized slice.
  const std::vector<size_t> full = {1, 1000 + 3, size_t{4096} * 512 * 3 + 7, size_t{25} * 1000 * 1000};
  // Under the SIMT layer: 1 element; a scalar tail; just over 512 blocks' worth, so the grid-stride
  // loop takes a second step in which block 0 has full 16-element chunks and block 1 a 7-element
  // scalar tail (the d12-sized slice adds only host work there).
  const std::vector<size_t> emulated = {1, 1000 + 3, size_t{4096} * 512 + 4096 + 7};
  for (size_t n : kEmulated ? emulated : full) {
    ok &= run_case<cuda::bf16>(n, 7 + n);
    ok &= run_case<float>(n, 9 + n);
  }
  return finish("test_global_norm", ok);
}
