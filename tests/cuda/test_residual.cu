// GPU test: residual add and add_inplace (kernels/cuda/residual.cuh) against the CPU reference.
//
// Tolerance rule: |gpu - ref| <= atol + rtol·|ref|, ref = CPU op on the stored (rounded) inputs.
//   bf16: rtol = 2^-7 (one output rounding, <= 2^-8 relative), atol = 1e-6 (exact cancellations).
//   fp32: rtol = 1e-6, atol = 0 — one fp32 add is correctly rounded on both sides: expect exact.
#include <cstdio>
#include <type_traits>

#include "kernels/cpu/residual.h"
#include "kernels/cuda/residual.cuh"
#include "tests/cuda/gpu_test_util.cuh"

using namespace gpt2;
using namespace gpt2::gputest;

template <typename T>
static bool run_case(size_t N, uint64_t seed) {
  constexpr bool kBf16 = std::is_same_v<T, cuda::bf16>;
  const float rtol = kBf16 ? 1.0f / 128 : 1e-6f, atol = kBf16 ? 1e-6f : 0.0f;
  std::printf(" case %s N=%zu\n", type_name<T>(), N);
  const auto a = as_stored<T>(random_vector(N, seed));
  const auto b = as_stored<T>(random_vector(N, seed + 1));
  std::vector<float> ref(N);
  cpu::residual_forward(ref.data(), a.data(), b.data(), N);
  DeviceBuffer<T> da(N), db(N), dout(N);
  upload(da, a);
  upload(db, b);
  cuda::residual_forward(dout.ptr, da.ptr, db.ptr, N, 0);
  sync_or_die();
  bool ok = check_close("out", download(dout), ref, atol, rtol);
  cuda::add_inplace(da.ptr, db.ptr, N, 0);  // a += b
  sync_or_die();
  ok &= check_close("add_inplace", download(da), ref, atol, rtol);
  return ok;
}

int main() {
  require_device_or_skip("test_residual");
  bool ok = true;
  for (size_t N : {size_t{4} * 64 * 768, size_t{3} * 1600 + 3, size_t{1}}) {
    ok &= run_case<cuda::bf16>(N, 10 + N);
    ok &= run_case<float>(N, 20 + N);
  }
  return finish("test_residual", ok);
}
