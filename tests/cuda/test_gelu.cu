// GPU test: GELU forward/backward (kernels/cuda/gelu.cuh) against the CPU reference.
//
// Tolerance rule: |gpu - ref| <= atol + rtol·|ref|, with ref = the CPU op on the values the GPU
// holds (inputs rounded to the storage type first).
//   bf16: rtol = 2^-7 (one bf16 rounding of the output is <= 2^-8 relative, doubled for margin);
//         atol = 1e-5 (gelu' crosses 0 near x = -0.75, where only cancellation error is left).
//   fp32: rtol = 1e-5 (fast-math exp/reciprocal are a few ulp); atol = 1e-6 forward, 1e-5
//         backward: in the far negative tail (x ~ -5) the CPU's float tanh saturates to -1 and
//         returns gelu'(x) = 0 where the true value is ~ -1.6e-6; the GPU's sigmoid form keeps it.
#include <cstdio>
#include <type_traits>

#include "kernels/cpu/gelu.h"
#include "kernels/cuda/gelu.cuh"
#include "tests/cuda/gpu_test_util.cuh"

using namespace gpt2;
using namespace gpt2::gputest;

template <typename T>
static bool run_case(size_t N, uint64_t seed) {
  constexpr bool kBf16 = std::is_same_v<T, cuda::bf16>;
  const float rtol = kBf16 ? 1.0f / 128 : 1e-5f;
  const float atol_f = kBf16 ? 1e-5f : 1e-6f, atol_b = 1e-5f;
  std::printf(" case %s N=%zu\n", type_name<T>(), N);
  const auto x = as_stored<T>(random_vector(N, seed, -5.f, 5.f));
  const auto dout = as_stored<T>(random_vector(N, seed + 1, -1.f, 1.f));
  std::vector<float> ref_out(N), ref_dinp(N);
  cpu::gelu_forward(ref_out.data(), x.data(), N);
  cpu::gelu_backward(ref_dinp.data(), x.data(), dout.data(), N);

  DeviceBuffer<T> d_x(N), d_out(N), d_dout(N), d_dinp(N);
  upload(d_x, x);
  upload(d_dout, dout);
  cuda::gelu_forward(d_out.ptr, d_x.ptr, N, 0);
  cuda::gelu_backward(d_dinp.ptr, d_x.ptr, d_dout.ptr, N, 0);
  sync_or_die();
  bool ok = check_close("out", download(d_out), ref_out, atol_f, rtol);
  ok &= check_close("dinp", download(d_dinp), ref_dinp, atol_b, rtol);
  // In place: dinp aliases dout.
  cuda::gelu_backward(d_dout.ptr, d_x.ptr, d_dout.ptr, N, 0);
  sync_or_die();
  ok &= check_close("dinp (in place)", download(d_dout), ref_dinp, atol_b, rtol);
  return ok;
}

int main() {
  require_device_or_skip("test_gelu");
  bool ok = true;
  // d12 width 4C = 3072 rows of 5 tokens; an odd size exercising the scalar tail; a tiny one.
  for (size_t N : {size_t{5} * 3072, size_t{256} * 8 * 3 + 5, size_t{7}}) {
    ok &= run_case<cuda::bf16>(N, 100 + N);
    ok &= run_case<float>(N, 200 + N);
  }
  return finish("test_gelu", ok);
}
