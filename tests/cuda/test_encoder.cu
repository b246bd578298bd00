// GPU test: token + position embedding forward and deterministic backward
// (kernels/cuda/encoder.cuh) against the CPU reference, plus a bitwise determinism check.
//
// Tolerance rule: |gpu - ref| <= atol + rtol·|ref|, ref = CPU op on the stored inputs.
//   bf16: rtol = 2^-7 (the output or the updated gradient is rounded to bf16 once: <= 2^-8
//         relative); atol = 1e-5 (the fp32 sums themselves differ only in summation order,
//         ~k·2^-24 of the term size for k <= a few hundred terms).
//   fp32: rtol = 1e-5, atol = 1e-5 (summation order only).
// The gradients start non-zero, so the += contract is checked too.
#include <cstdio>
#include <type_traits>

#include "kernels/cpu/encoder.h"
#include "kernels/cuda/encoder.cuh"
#include "tests/cuda/gpu_test_util.cuh"

using namespace gpt2;
using namespace gpt2::gputest;

template <typename T>
static bool run_case(int B, int T_, int C, int V, bool skewed, uint64_t seed) {
  constexpr bool kBf16 = std::is_same_v<T, cuda::bf16>;
  const float rtol = kBf16 ? 1.0f / 128 : 1e-5f, atol = 1e-5f;
  const int Vp = (V + 127) / 128 * 128, maxT = T_ + 3, BT = B * T_;
  std::printf(" case %s B=%d T=%d C=%d V=%d%s\n", type_name<T>(), B, T_, C, V, skewed ? " (skewed tokens)" : "");
  std::mt19937_64 rng(seed);
  std::vector<int32_t> tokens(BT);
  for (int i = 0; i < BT; ++i) {
    // Skewed: half the positions share token 1 (a frequent token makes one long segment).
    tokens[i] = (skewed && rng() % 2 == 0) ? 1 : static_cast<int32_t>(rng() % V);
  }
  const auto wte = as_stored<T>(random_vector(static_cast<size_t>(Vp) * C, seed + 1));
  const auto wpe = as_stored<T>(random_vector(static_cast<size_t>(maxT) * C, seed + 2));
  const auto dout = as_stored<T>(random_vector(static_cast<size_t>(BT) * C, seed + 3));
  const auto dwte0 = as_stored<T>(random_vector(wte.size(), seed + 4, -0.5f, 0.5f));
  const auto dwpe0 = as_stored<T>(random_vector(wpe.size(), seed + 5, -0.5f, 0.5f));

  std::vector<float> ref_out(static_cast<size_t>(BT) * C), ref_dwte = dwte0, ref_dwpe = dwpe0;
  cpu::encoder_forward(ref_out.data(), tokens.data(), wte.data(), wpe.data(), B, T_, C);
  cpu::encoder_backward(ref_dwte.data(), ref_dwpe.data(), dout.data(), tokens.data(), B, T_, C);

  DeviceBuffer<int32_t> d_tok(BT), d_scratch(cuda::encoder_backward_scratch_ints(B, T_));
  DeviceBuffer<T> d_wte(wte.size()), d_wpe(wpe.size()), d_out(ref_out.size()), d_dout(dout.size());
  DeviceBuffer<T> d_dwte(wte.size()), d_dwpe(wpe.size());
  upload_raw(d_tok, tokens);
  upload(d_wte, wte);
  upload(d_wpe, wpe);
  upload(d_dout, dout);
  cuda::encoder_forward(d_out.ptr, d_tok.ptr, d_wte.ptr, d_wpe.ptr, B, T_, C, 0);
  upload(d_dwte, dwte0);
  upload(d_dwpe, dwpe0);
  cuda::encoder_backward(d_dwte.ptr, d_dwpe.ptr, d_scratch.ptr, d_dout.ptr, tokens.data(), B, T_, C, V, 0);
  sync_or_die();
  bool ok = check_close("out", download(d_out), ref_out, atol, rtol);
  const auto g1 = download_raw(d_dwte), p1 = download_raw(d_dwpe);
  ok &= check_close("dwte", download(d_dwte), ref_dwte, atol, rtol);
  ok &= check_close("dwpe", download(d_dwpe), ref_dwpe, atol, rtol);

  // Determinism: the same backward again from the same starting gradients, bitwise equal.
  upload(d_dwte, dwte0);
  upload(d_dwpe, dwpe0);
  d_scratch.poison();
  // This time through the two-call form (prepare early, kernels later), as the engine uses it.
  const int S = cuda::encoder_backward_prepare(d_scratch.ptr, tokens.data(), B, T_, V, 0);
  cuda::encoder_backward(d_dwte.ptr, d_dwpe.ptr, d_scratch.ptr, S, d_dout.ptr, B, T_, C, 0);
  sync_or_die();
  ok &= check_bitwise("dwte rerun", g1, download_raw(d_dwte));
  ok &= check_bitwise("dwpe rerun", p1, download_raw(d_dwpe));
  return ok;
}

int main() {
  require_device_or_skip("test_encoder");
  bool ok = true;
  // d12 width, T not a multiple of any block size, real vocabulary size. Under the SIMT layer
  // the wte tables (Vp·C elements, filled and checked on the host) dominate the run time, so a
  // 1000-token vocabulary there: still mostly one-position segments among many distinct tokens,
  // the same grids (they depend on B, T, C and the segment count, not on V).
  const int kVocab = kEmulated ? 1000 : 50257;
  ok &= run_case<cuda::bf16>(2, 37, 768, kVocab, false, 1);
  ok &= run_case<float>(2, 37, 768, kVocab, false, 2);
  // d48 width, tiny vocabulary (many repeats) and a very frequent token.
  ok &= run_case<cuda::bf16>(3, 50, 1600, 20, true, 3);
  ok &= run_case<float>(3, 50, 1600, 20, true, 4);
  // C not a multiple of the 16-byte vector: the scalar path.
  ok &= run_case<cuda::bf16>(2, 5, 36, 7, false, 5);
  ok &= run_case<float>(2, 5, 6, 7, true, 6);
  return finish("test_encoder", ok);
}
