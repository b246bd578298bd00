// GPU test: cuBLASLt matmul forward/backward (kernels/cuda/matmul.cuh) against the CPU
// reference, with the fused epilogues (bias, GELU forward with aux, DGELU, BGRADB) and with the
// unfused fallback paths (allow_fused_epilogues = false): both must give the reference result.
//
// Tolerance rule: |gpu - ref| <= atol + rtol·|ref|, ref = CPU fp32 op on the stored inputs.
//   bf16: rtol = 2^-7 (one or two bf16 roundings of the output); atol = 2^-8·rms(ref): an output
//         near 0 that comes from terms of typical size (the GELU tail, dinp·gelu' products,
//         the rounded pre-GELU feeding gelu) carries the rounding error of those terms.
//   fp32: rtol = 1e-5, atol = 1e-5·rms(ref) (fp32 sums of K terms in another order). Where the
//         GELU is computed by cuBLASLt's epilogue (its own tanh/exp), rtol = atol-scale = 1e-3.
// Gradients start non-zero so dweight/dbias += is checked; dinp is poisoned (it is written).
#include <cmath>
#include <cstdio>
#include <type_traits>

#include "kernels/cpu/gelu.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cuda/matmul.cuh"
#include "tests/cuda/gpu_test_util.cuh"

using namespace gpt2;
using namespace gpt2::gputest;

namespace {
struct Tol {
  float rtol, atol_scale;
  bool check(const char* name, const std::vector<float>& got, const std::vector<float>& ref) const {
    return check_close(name, got, ref, atol_scale * rms(ref), rtol);
  }
};
}  // namespace

template <typename T>
static bool run_case(cuda::MatmulContext& ctx, int N, int C, int OC, bool use_bias, bool gelu, bool fused,
                     uint64_t seed) {
  constexpr bool kBf16 = std::is_same_v<T, cuda::bf16>;
  const Tol tol = kBf16 ? Tol{1.0f / 128, 1.0f / 256} : Tol{1e-5f, 1e-5f};
  const Tol tol_gelu = kBf16 ? tol : (fused ? Tol{1e-3f, 1e-3f} : tol);
  ctx.allow_fused_epilogues = fused;
  std::printf(" case %s N=%d C=%d OC=%d%s%s %s\n", type_name<T>(), N, C, OC, use_bias ? " bias" : "",
              gelu ? " gelu" : "", fused ? "fused epilogues" : "unfused");
  const size_t nin = static_cast<size_t>(N) * C, nout = static_cast<size_t>(N) * OC, nw = static_cast<size_t>(OC) * C;
  // GELU case: the matmul input is gelu(pre) of a stored pre-activation (the fcproj layer).
  const auto pre_in = as_stored<T>(random_vector(nin, seed, -3.f, 3.f));
  std::vector<float> inp = as_stored<T>(random_vector(nin, seed + 1));
  if (gelu) {
    cpu::gelu_forward(inp.data(), pre_in.data(), nin);
    inp = as_stored<T>(inp);
  }
  const auto w = as_stored<T>(random_vector(nw, seed + 2));
  const auto bias = as_stored<T>(random_vector(OC, seed + 3));
  const auto dout = as_stored<T>(random_vector(nout, seed + 4));
  const auto dw0 = as_stored<T>(random_vector(nw, seed + 5));
  const auto db0 = as_stored<T>(random_vector(OC, seed + 6));

  // Forward reference: pre = inp·Wᵀ + b; out = gelu(pre) in the GELU case.
  std::vector<float> ref_pre(nout), ref_out(nout);
  cpu::matmul_forward(ref_pre.data(), inp.data(), w.data(), use_bias ? bias.data() : nullptr, N, C, OC);
  if (gelu)
    cpu::gelu_forward(ref_out.data(), ref_pre.data(), nout);
  else
    ref_out = ref_pre;
  // Backward reference.
  std::vector<float> ref_dinp(nin), ref_dw = dw0, ref_db = db0;
  cpu::matmul_backward(ref_dinp.data(), ref_dw.data(), use_bias ? ref_db.data() : nullptr, dout.data(), inp.data(),
                       w.data(), N, C, OC);
  if (gelu) cpu::gelu_backward(ref_dinp.data(), pre_in.data(), ref_dinp.data(), nin);

  DeviceBuffer<T> d_inp(nin), d_pre_in(nin), d_w(nw), d_b(OC), d_out(nout), d_pre(nout), d_dout(nout), d_dinp(nin),
      d_dw(nw), d_db(OC);
  upload(d_inp, inp);
  upload(d_pre_in, pre_in);
  upload(d_w, w);
  upload(d_b, bias);
  upload(d_dout, dout);
  upload(d_dw, dw0);
  upload(d_db, db0);
  bool ok = true;

  cuda::matmul_forward(ctx, d_out.ptr, gelu ? d_pre.ptr : nullptr, d_inp.ptr, d_w.ptr, use_bias ? d_b.ptr : nullptr, N,
                       C, OC, 0);
  sync_or_die();
  if (gelu) {
    ok &= tol.check("pre_gelu", download(d_pre), ref_pre);
    ok &= tol_gelu.check("out = gelu(pre)", download(d_out), ref_out);
  } else {
    ok &= tol.check("out", download(d_out), ref_out);
  }

  cuda::matmul_backward(ctx, d_dinp.ptr, d_dw.ptr, use_bias ? d_db.ptr : nullptr, d_dout.ptr, d_inp.ptr, d_w.ptr,
                        gelu ? d_pre_in.ptr : nullptr, N, C, OC, 0);
  sync_or_die();
  ok &= (gelu ? tol_gelu : tol).check(gelu ? "dinp (through gelu)" : "dinp", download(d_dinp), ref_dinp);
  ok &= tol.check("dweight (+=)", download(d_dw), ref_dw);
  if (use_bias) ok &= tol.check("dbias (+=)", download(d_db), ref_db);
  // dinp == nullptr skips it: dweight accumulates a second time.
  d_dinp.poison();
  cuda::matmul_backward(ctx, nullptr, d_dw.ptr, nullptr, d_dout.ptr, d_inp.ptr, d_w.ptr, nullptr, N, C, OC, 0);
  sync_or_die();
  std::vector<float> ref_dw2 = ref_dw;
  cpu::matmul_backward(nullptr, ref_dw2.data(), nullptr, dout.data(), inp.data(), w.data(), N, C, OC);
  ok &= tol.check("dweight (+= twice)", download(d_dw), ref_dw2);
  return ok;
}

int main() {
  require_device_or_skip("test_matmul");
  DeviceBuffer<uint8_t> workspace(32u << 20), bias_scratch(cuda::matmul_bias_scratch_bytes(4 * 1600));
  cuda::MatmulContext ctx;
  cuda::matmul_context_init(ctx, workspace.ptr, workspace.n, bias_scratch.ptr, bias_scratch.n);
  bool ok = true;
  if constexpr (kEmulated) {
    // The same paths at emulation size (the GEMMs run on the CPU): per dtype, with and without
    // fused epilogues, the bias epilogue / add_bias + column_sum fallback (N > 32: several row
    // strides; OC not a multiple of 32: a partial column block; several blocks), GELU_AUX_BIAS
    // forward and DGELU backward (OC, C multiples of 8) and their unfused gelu kernels, the
    // case with no multiple of 8 anywhere (GELU epilogue refused: BIAS + gelu_forward, then
    // DGELU on C = 40), and a bias-less forward (lm_head).
    for (bool fused : {true, false}) {
      ok &= run_case<cuda::bf16>(ctx, 96, 64, 200, true, false, fused, 1);  // qkv-like, N > 32
      ok &= run_case<cuda::bf16>(ctx, 37, 64, 256, true, false, fused, 2);  // fc, awkward N
      ok &= run_case<cuda::bf16>(ctx, 37, 256, 64, true, true, fused, 3);   // fcproj with GELU backward
      ok &= run_case<cuda::bf16>(ctx, 19, 96, 392, true, true, fused, 5);   // fc forward with GELU
      ok &= run_case<cuda::bf16>(ctx, 9, 40, 52, true, true, fused, 6);     // no multiple of 8 anywhere
      ok &= run_case<float>(ctx, 37, 64, 48, true, false, fused, 7);
      ok &= run_case<float>(ctx, 20, 96, 384, true, true, fused, 8);
    }
    ok &= run_case<cuda::bf16>(ctx, 8, 64, 1152, false, false, true, 9);  // lm_head-like chunk, no bias
  } else {
    for (bool fused : {true, false}) {
      ok &= run_case<cuda::bf16>(ctx, 96, 768, 2304, true, false, fused, 1);   // qkv at d12 width
      ok &= run_case<cuda::bf16>(ctx, 37, 768, 3072, true, false, fused, 2);   // fc, awkward N
      ok &= run_case<cuda::bf16>(ctx, 37, 3072, 768, true, true, fused, 3);    // fcproj with GELU backward
      ok &= run_case<cuda::bf16>(ctx, 50, 1600, 6400, true, false, fused, 4);  // d48 fc
      ok &= run_case<cuda::bf16>(ctx, 19, 1600, 6400, true, true, fused, 5);   // d48 fc forward with GELU
      ok &= run_case<cuda::bf16>(ctx, 9, 40, 52, true, true, fused, 6);        // no multiple of 8 anywhere
      ok &= run_case<float>(ctx, 37, 64, 48, true, false, fused, 7);
      ok &= run_case<float>(ctx, 20, 96, 384, true, true, fused, 8);
    }
    ok &= run_case<cuda::bf16>(ctx, 8, 768, 50304, false, false, true, 9);  // lm_head chunk, no bias
  }
  cuda::matmul_context_destroy(ctx);
  return finish("test_matmul", ok);
}
