// GPU test: layernorm forward, fused residual + layernorm forward, recompute and backward
// (kernels/cuda/layernorm.cuh) against the CPU reference.
//
// Tolerance rule: |gpu - ref| <= atol + rtol·|ref|, ref = CPU op on the stored inputs.
//   bf16 outputs (out, residual, dinp, dweight, dbias): rtol = 2^-7 — one rounding of the output
//     to bf16 (<= 2^-8 relative) with a factor 2 of margin; atol covers the fp32 cancellation
//     inside the formula, where the result is near 0 but the terms are ~1: out 1e-5, dinp 1e-4
//     (terms scaled by rstd ~ 1.7), dweight/dbias 1e-3 (sums of N terms in another order).
//   fp32 storage: rtol = 1e-4, atol = 1e-5 (out, dinp) and 1e-4 (dweight, dbias).
//   mean, rstd (always fp32): rtol = 1e-5, atol = 1e-6.
// Also checked: recompute == forward output bitwise; backward bitwise reproducible; the
// gradients start non-zero so the += contract (dinp included) is tested.
#include <cstdio>
#include <type_traits>

#include "kernels/cpu/layernorm.h"
#include "kernels/cpu/residual.h"
#include "kernels/cuda/layernorm.cuh"
#include "tests/cuda/gpu_test_util.cuh"

using namespace gpt2;
using namespace gpt2::gputest;

template <typename T>
static bool run_case(int B, int T_, int C, uint64_t seed) {
  constexpr bool kBf16 = std::is_same_v<T, cuda::bf16>;
  const float rtol = kBf16 ? 1.0f / 128 : 1e-4f;
  const float atol_out = 1e-5f, atol_dinp = kBf16 ? 1e-4f : 1e-5f, atol_dw = kBf16 ? 1e-3f : 1e-4f;
  const int N = B * T_;
  const size_t NC = static_cast<size_t>(N) * C;
  std::printf(" case %s N=%d (B=%d T=%d) C=%d\n", type_name<T>(), N, B, T_, C);
  // An offset in the input (mean != 0) makes the two-pass variance matter.
  const auto a = as_stored<T>(random_vector(NC, seed, -0.5f, 1.5f));
  const auto b = as_stored<T>(random_vector(NC, seed + 1));
  const auto w = as_stored<T>(random_vector(C, seed + 2, 0.5f, 1.5f));
  const auto bias = as_stored<T>(random_vector(C, seed + 3, -0.2f, 0.2f));
  const auto dout = as_stored<T>(random_vector(NC, seed + 4));
  const auto dinp0 = as_stored<T>(random_vector(NC, seed + 5, -0.1f, 0.1f));
  const auto dw0 = as_stored<T>(random_vector(C, seed + 6));
  const auto db0 = as_stored<T>(random_vector(C, seed + 7));

  // References: plain LN of a; residual r = stored(a + b); LN of r; backward of LN(a).
  std::vector<float> ref_out(NC), ref_mean(N), ref_rstd(N);
  cpu::layernorm_forward(ref_out.data(), ref_mean.data(), ref_rstd.data(), a.data(), w.data(), bias.data(), B, T_, C);
  std::vector<float> ref_res(NC);
  cpu::residual_forward(ref_res.data(), a.data(), b.data(), NC);
  ref_res = as_stored<T>(ref_res);
  std::vector<float> ref_out2(NC), ref_mean2(N), ref_rstd2(N);
  cpu::layernorm_forward(ref_out2.data(), ref_mean2.data(), ref_rstd2.data(), ref_res.data(), w.data(), bias.data(), B,
                         T_, C);
  std::vector<float> ref_dinp = dinp0, ref_dw = dw0, ref_db = db0;
  cpu::layernorm_backward(ref_dinp.data(), ref_dw.data(), ref_db.data(), dout.data(), a.data(), w.data(),
                          ref_mean.data(), ref_rstd.data(), B, T_, C);

  DeviceBuffer<T> d_a(NC), d_b(NC), d_w(C), d_bias(C), d_out(NC), d_res(NC), d_rec(NC);
  DeviceBuffer<T> d_dout(NC), d_dinp(NC), d_dw(C), d_db(C);
  DeviceBuffer<float> d_mean(N), d_rstd(N), d_scratch(cuda::layernorm_backward_scratch_floats(N, C));
  upload(d_a, a);
  upload(d_b, b);
  upload(d_w, w);
  upload(d_bias, bias);
  upload(d_dout, dout);
  bool ok = true;

  cuda::layernorm_forward(d_out.ptr, d_mean.ptr, d_rstd.ptr, d_a.ptr, d_w.ptr, d_bias.ptr, N, C, 0);
  sync_or_die();
  ok &= check_close("out", download(d_out), ref_out, atol_out, rtol);
  ok &= check_close("mean", download(d_mean), ref_mean, 1e-6f, 1e-5f);
  ok &= check_close("rstd", download(d_rstd), ref_rstd, 1e-6f, 1e-5f);

  // Recompute from the GPU's own mean/rstd: the same bits as the forward.
  cuda::layernorm_recompute(d_rec.ptr, d_a.ptr, d_mean.ptr, d_rstd.ptr, d_w.ptr, d_bias.ptr, N, C, 0);
  sync_or_die();
  ok &= check_bitwise("recompute == forward", download_raw(d_rec), download_raw(d_out));

  // Backward (uses the GPU mean/rstd, which match the CPU's to ~1e-7).
  upload(d_dinp, dinp0);
  upload(d_dw, dw0);
  upload(d_db, db0);
  cuda::layernorm_backward(d_dinp.ptr, d_dw.ptr, d_db.ptr, d_scratch.ptr, d_dout.ptr, d_a.ptr, d_w.ptr, d_mean.ptr,
                           d_rstd.ptr, N, C, 0);
  sync_or_die();
  ok &= check_close("dinp (+=)", download(d_dinp), ref_dinp, atol_dinp, rtol);
  ok &= check_close("dweight (+=)", download(d_dw), ref_dw, atol_dw, rtol);
  ok &= check_close("dbias (+=)", download(d_db), ref_db, atol_dw, rtol);
  const auto dw_bits = download_raw(d_dw), dinp_bits = download_raw(d_dinp);
  upload(d_dinp, dinp0);
  upload(d_dw, dw0);
  upload(d_db, db0);
  d_scratch.poison();
  cuda::layernorm_backward(d_dinp.ptr, d_dw.ptr, d_db.ptr, d_scratch.ptr, d_dout.ptr, d_a.ptr, d_w.ptr, d_mean.ptr,
                           d_rstd.ptr, N, C, 0);
  sync_or_die();
  ok &= check_bitwise("dweight rerun", dw_bits, download_raw(d_dw));
  ok &= check_bitwise("dinp rerun", dinp_bits, download_raw(d_dinp));

  // Fused residual + layernorm, poisoned outputs.
  d_out.poison();
  d_mean.poison();
  d_rstd.poison();
  cuda::residual_layernorm_forward(d_res.ptr, d_out.ptr, d_mean.ptr, d_rstd.ptr, d_a.ptr, d_b.ptr, d_w.ptr, d_bias.ptr,
                                   N, C, 0);
  sync_or_die();
  ok &= check_close("fused residual", download(d_res), ref_res, 1e-6f, kBf16 ? rtol : 1e-6f);
  ok &= check_close("fused out", download(d_out), ref_out2, atol_out, rtol);
  ok &= check_close("fused mean", download(d_mean), ref_mean2, 1e-6f, 1e-5f);
  ok &= check_close("fused rstd", download(d_rstd), ref_rstd2, 1e-6f, 1e-5f);
  // In place: residual aliases a (x += y, then LN).
  cuda::residual_layernorm_forward(d_a.ptr, d_out.ptr, d_mean.ptr, d_rstd.ptr, d_a.ptr, d_b.ptr, d_w.ptr, d_bias.ptr, N,
                                   C, 0);
  sync_or_die();
  ok &= check_close("fused residual in place", download(d_a), ref_res, 1e-6f, kBf16 ? rtol : 1e-6f);
  return ok;
}

int main() {
  require_device_or_skip("test_layernorm");
  bool ok = true;
  if constexpr (kEmulated) {
    // Under the SIMT layer (the param-grad kernel alone is 2C/32 blocks of 1024 threads): the
    // same variants at smaller widths. bf16 and fp32 vector paths with one sweep and a partial
    // last warp (C = 320: 40 bf16 vectors on 64 threads, 80 fp32 vectors on 96), N = 74 rows
    // (> 32 partial rows per param-grad column, a 2C that is not a multiple of 32 for C = 36);
    // the scalar path; the fp32 vector path with 2 sweeps (1026 vectors on 1024 threads); and
    // N > 1024 rows (2 rows per backward block).
    ok &= run_case<cuda::bf16>(2, 37, 320, 1);
    ok &= run_case<float>(2, 37, 320, 2);
    ok &= run_case<cuda::bf16>(3, 5, 36, 5);    // scalar path (36 % 8 != 0)
    ok &= run_case<float>(1, 3, 4104, 6);       // fp32 vector path with 2 sweeps
    ok &= run_case<cuda::bf16>(700, 2, 64, 7);  // N = 1400 rows > 1024 backward blocks: 2 rows per block
  } else {
    ok &= run_case<cuda::bf16>(4, 37, 768, 1);  // d12 width, T not a multiple of anything
    ok &= run_case<float>(4, 37, 768, 2);
    ok &= run_case<cuda::bf16>(2, 65, 1600, 3);  // d48 width (1600/8 = 200 vectors: 224 threads)
    ok &= run_case<float>(2, 65, 1600, 4);       // fp32: 400 vectors
    ok &= run_case<cuda::bf16>(3, 5, 36, 5);     // scalar path (36 % 8 != 0)
    ok &= run_case<float>(1, 3, 4104, 6);        // fp32 vector path with 2 sweeps
    ok &= run_case<cuda::bf16>(700, 2, 64, 7);   // N = 1400 rows > 1024 backward blocks: 2 rows per block
  }
  return finish("test_layernorm", ok);
}
