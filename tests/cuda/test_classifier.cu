// GPU test: fused softmax-cross-entropy with dlogits in place (kernels/cuda/classifier.cuh)
// against the CPU reference.
//
// Tolerance rule: |gpu - ref| <= atol + rtol·|ref|, ref = CPU op on the stored logits.
//   losses (fp32): rtol = 1e-5, atol = 1e-4 (lse ~ 11 for V = 50257, fp32 with fast-math exp/log:
//                  ~1e-6 relative, so ~1e-5 absolute; 10x margin).
//   dlogits bf16:  rtol = 2^-7 (one bf16 rounding); fp32: rtol = 1e-4 (softmax relative error is
//                  the lse error ~1e-5 plus a few ulp of exp). atol = 1e-12: no cancellation
//                  (p - 1 only at the target where p << 1), and the padded columns must be exactly 0.
// Also: compute_grad = false leaves the logits bitwise untouched; a bad target gives a NaN loss
// for its row only.
#include <cmath>
#include <cstdio>
#include <type_traits>

#include "kernels/cpu/classifier.h"
#include "kernels/cuda/classifier.cuh"
#include "tests/cuda/gpu_test_util.cuh"

using namespace gpt2;
using namespace gpt2::gputest;

template <typename T>
static bool run_case(int N, int V, int Vp, uint64_t seed) {
  constexpr bool kBf16 = std::is_same_v<T, cuda::bf16>;
  const float rtol_d = kBf16 ? 1.0f / 128 : 1e-4f;
  std::printf(" case %s N=%d V=%d Vp=%d\n", type_name<T>(), N, V, Vp);
  const size_t n = static_cast<size_t>(N) * Vp;
  auto logits = as_stored<T>(random_vector(n, seed, -6.f, 6.f));
  std::mt19937_64 rng(seed + 1);
  std::vector<int32_t> targets(N);
  for (auto& t : targets) t = static_cast<int32_t>(rng() % V);
  targets[0] = V - 1;  // the last real column
  const float scale = 1.0f / (N * 3.0f);

  std::vector<float> ref_loss(N), ref_dlogits = logits;
  if (cpu::classifier_forward_backward(ref_loss.data(), ref_dlogits.data(), targets.data(), N, V, Vp, scale, true) !=
      -1) {
    std::printf("  FAIL CPU reference rejected the targets\n");
    return false;
  }
  DeviceBuffer<T> d_logits(n);
  DeviceBuffer<float> d_loss(N);
  DeviceBuffer<int32_t> d_tgt(N);
  upload(d_logits, logits);
  upload_raw(d_tgt, targets);
  bool ok = true;

  // Evaluation: losses only, logits untouched.
  const auto before = download_raw(d_logits);
  cuda::classifier_forward_backward(d_loss.ptr, d_logits.ptr, d_tgt.ptr, N, V, Vp, scale, false, 0);
  sync_or_die();
  ok &= check_close("losses (no grad)", download(d_loss), ref_loss, 1e-4f, 1e-5f);
  ok &= check_bitwise("logits untouched", before, download_raw(d_logits));

  d_loss.poison();
  cuda::classifier_forward_backward(d_loss.ptr, d_logits.ptr, d_tgt.ptr, N, V, Vp, scale, true, 0);
  sync_or_die();
  ok &= check_close("losses", download(d_loss), ref_loss, 1e-4f, 1e-5f);
  ok &= check_close("dlogits", download(d_logits), ref_dlogits, 1e-12f, rtol_d);

  // A target out of range: NaN loss for that row, the others unchanged.
  if (N >= 2) {
    upload(d_logits, logits);
    auto bad = targets;
    bad[1] = V;
    upload_raw(d_tgt, bad);
    cuda::classifier_forward_backward(d_loss.ptr, d_logits.ptr, d_tgt.ptr, N, V, Vp, scale, true, 0);
    sync_or_die();
    const auto loss = download(d_loss);
    const bool nan_ok = std::isnan(loss[1]) && std::fabs(loss[0] - ref_loss[0]) <= 1e-4f + 1e-5f * ref_loss[0];
    std::printf("  %s bad target -> NaN loss of its row only\n", nan_ok ? "ok  " : "FAIL");
    ok &= nan_ok;
  }
  return ok;
}

int main() {
  require_device_or_skip("test_classifier");
  bool ok = true;
  ok &= run_case<cuda::bf16>(6, 50257, 50304, 1);  // GPT-2's vocabulary, padded to 50304
  ok &= run_case<float>(3, 50257, 50304, 2);
  ok &= run_case<cuda::bf16>(5, 100, 128, 3);  // padding inside a 16-byte vector
  ok &= run_case<float>(4, 128, 128, 4);       // no padding
  ok &= run_case<cuda::bf16>(1, 1, 8, 5);      // one real column: loss 0, dlogits 0
  return finish("test_classifier", ok);
}
