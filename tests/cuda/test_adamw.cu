// GPU test: AdamW over several ranges in one launch (kernels/cuda/adamw.cuh) against the CPU
// reference, in the three modes (bf16 params + fp32 master, fp32 params, bf16 params without
// master), with device-side clipping, stochastic rounding and determinism checks.
//
// The CPU and CUDA kernels share the element update (kernels/shared/adamw_math.h, explicit
// multiply-adds, IEEE division and square root), so the fp32 results are compared bit for bit
// against cpu::adamw_update_ranges on the same fp32 state and the stored (rounded) gradients:
//   master / fp32 params, m, v: bitwise.
//   bf16 params with master: bitwise equal to the stochastic rounding of the GPU's own master
//     weight, recomputed on the host from the exported hash (adamw_stochastic_round_bits).
//   The host optimizer of an offloaded run (cpu::adamw_update_master): master, m, v and the bf16
//     parameter bits equal the GPU's.
//   bf16 params without master: |gpu - ref| <= 2^-7 |ref| — stochastic rounding moves the fp32
//     result to one of its two bf16 neighbours, so the error is below one bf16 ulp.
// Elements between the ranges (padding) must stay bitwise unchanged.
#include <cmath>
#include <cstdio>
#include <cstring>

#include "kernels/cpu/adamw.h"
#include "kernels/cuda/adamw.cuh"
#include "tests/cuda/gpu_test_util.cuh"

using namespace gpt2;
using namespace gpt2::gputest;

namespace {
// Like the plan: tensors start at multiples of 128 elements, odd counts, padding in between.
const std::vector<cpu::AdamWRange> kRanges = {
    {0, 1000, true}, {1024, 37, false}, {1152, 5000, true}, {6272, 3, false}, {6400, 2048 * 3 + 1, true}};
constexpr size_t kFlat = 6400 + 2048 * 3 + 128;

bool in_range(size_t i) {
  for (const auto& r : kRanges)
    if (i >= r.offset && i < r.offset + r.count) return true;
  return false;
}

bool check_padding(const char* name, const std::vector<float>& got, const std::vector<float>& before) {
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!in_range(i) && std::memcmp(&got[i], &before[i], sizeof(float)) != 0) ++bad;
  std::printf("  %s %-24s %zu padding elements changed\n", bad ? "FAIL" : "ok  ", name, bad);
  return bad == 0;
}

float bf16_bits_to_float(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
}  // namespace

int main() {
  require_device_or_skip("test_adamw");
  bool ok = true;
  const size_t n = kFlat;
  const auto master0 = random_vector(n, 1);
  const auto grads_bf = round_bf16(random_vector(n, 2, -0.1f, 0.1f));
  const auto grads_f = random_vector(n, 3, -0.1f, 0.1f);
  const auto m0 = random_vector(n, 4, -0.01f, 0.01f);
  const auto v0 = random_vector(n, 5, 0.0f, 1e-4f);
  cpu::AdamWParams hp;
  hp.lr = 1e-3f;
  hp.beta1 = 0.9f;
  hp.beta2 = 0.95f;
  hp.eps = 1e-8f;
  hp.weight_decay = 0.1f;
  hp.t = 3;
  hp.grad_scale = 1.0f;
  const uint32_t seed = 1234;
  const int R = static_cast<int>(kRanges.size());

  DeviceBuffer<float> d_master(n), d_m(n), d_v(n), d_pf(n), d_gf(n), d_norm(1);
  DeviceBuffer<cuda::bf16> d_pb(n), d_gb(n);

  // ---- 1. bf16 params + fp32 master, ZeRO-style index_base, device-side clipping off ----------
  {
    std::printf(" mode bf16 params + fp32 master\n");
    std::vector<float> ref_p = master0, ref_m = m0, ref_v = v0;
    cpu::adamw_update_ranges(ref_p.data(), grads_bf.data(), ref_m.data(), ref_v.data(), kRanges.data(), R, hp);
    const size_t index_base = 4096;
    upload(d_master, master0);
    upload(d_m, m0);
    upload(d_v, v0);
    upload(d_gb, grads_bf);
    upload(d_pb, round_bf16(master0));
    const auto params_before = download(d_pb);
    cuda::adamw_update(d_pb.ptr, d_master.ptr, d_gb.ptr, d_m.ptr, d_v.ptr, kRanges.data(), R, hp, seed, index_base,
                       nullptr, 0.0f, 0);
    sync_or_die();
    const auto master = download(d_master);
    const auto gpu_m = download(d_m), gpu_v = download(d_v);
    ok &= check_bitwise("master", master, ref_p);
    ok &= check_bitwise("m", gpu_m, ref_m);
    ok &= check_bitwise("v", gpu_v, ref_v);
    ok &= check_padding("master padding", master, master0);
    // Params: the stochastic rounding of the GPU's master, bit for bit (and within one ulp).
    const auto pbits = download_raw(d_pb);
    std::vector<uint16_t> want(n);
    size_t bad = 0, up = 0, inrange = 0;
    for (size_t i = 0; i < n; ++i) {
      if (!in_range(i)) continue;
      ++inrange;
      uint16_t b;
      std::memcpy(&b, &pbits[i], 2);
      const uint16_t w = cuda::adamw_stochastic_round_bits(master[i], seed, hp.t, index_base + i);
      if (b != w) ++bad;
      if (std::fabs(bf16_bits_to_float(b)) > std::fabs(master[i])) ++up;
    }
    std::printf("  %s %-24s %zu of %zu differ from the host recomputation; %.1f%% rounded up\n", bad ? "FAIL" : "ok  ",
                "params (stochastic)", bad, inrange, 100.0 * up / inrange);
    ok &= bad == 0;
    // Unbiased rounding rounds up about half the time on random data; far from that is a bug.
    ok &= up > inrange / 4 && up < 3 * inrange / 4;
    ok &= check_padding("params padding", download(d_pb), params_before);

    // The offloaded step: the host kernel on the same state gives the GPU's bits.
    std::vector<float> host_master = master0, host_m = m0, host_v = v0;
    std::vector<uint16_t> grad_bits(n), host_params(n, 0);
    for (size_t i = 0; i < n; ++i) {
      uint32_t u;
      std::memcpy(&u, &grads_bf[i], 4);
      grad_bits[i] = static_cast<uint16_t>(u >> 16);
    }
    cpu::adamw_update_master(host_master.data(), grad_bits.data(), host_m.data(), host_v.data(), host_params.data(),
                             kRanges.data(), R, hp, seed, index_base);
    ok &= check_bitwise("host master", host_master, master);
    ok &= check_bitwise("host m", host_m, gpu_m);
    ok &= check_bitwise("host v", host_v, gpu_v);
    size_t host_bad = 0;
    for (size_t i = 0; i < n; ++i) {
      uint16_t b;
      std::memcpy(&b, &pbits[i], 2);
      if (in_range(i) && host_params[i] != b) ++host_bad;
    }
    std::printf("  %s %-24s %zu differ from the GPU's bf16 parameters\n", host_bad ? "FAIL" : "ok  ", "host params",
                host_bad);
    ok &= host_bad == 0;

    // Determinism: the same step from the same state, bitwise.
    const auto m1 = download_raw(d_m);
    upload(d_master, master0);
    upload(d_m, m0);
    upload(d_v, v0);
    upload(d_pb, round_bf16(master0));
    cuda::adamw_update(d_pb.ptr, d_master.ptr, d_gb.ptr, d_m.ptr, d_v.ptr, kRanges.data(), R, hp, seed, index_base,
                       nullptr, 0.0f, 0);
    sync_or_die();
    ok &= check_bitwise("params rerun", pbits, download_raw(d_pb));
    ok &= check_bitwise("master rerun", download_raw(d_master), std::vector<float>(master));
    ok &= check_bitwise("m rerun", download_raw(d_m), m1);
  }

  // ---- 2. fp32 params, no master; device-side clipping active -------------------------------
  {
    std::printf(" mode fp32 params, clipping from a device norm\n");
    double sq = 0;
    for (size_t i = 0; i < n; ++i) sq += static_cast<double>(grads_f[i]) * grads_f[i];
    const float norm_sq = static_cast<float>(sq);
    const float max_norm = 0.5f * std::sqrt(norm_sq);
    cpu::AdamWParams hpc = hp;
    hpc.grad_scale = 0.8f;  // a loss-scale style factor on top of the clip
    cpu::AdamWParams hp_ref = hpc;
    hp_ref.grad_scale = hpc.grad_scale * (max_norm / std::sqrt(norm_sq));
    std::vector<float> ref_p = master0, ref_m = m0, ref_v = v0;
    cpu::adamw_update_ranges(ref_p.data(), grads_f.data(), ref_m.data(), ref_v.data(), kRanges.data(), R, hp_ref);
    upload(d_pf, master0);
    upload(d_m, m0);
    upload(d_v, v0);
    upload(d_gf, grads_f);
    upload(d_norm, std::vector<float>{norm_sq});
    cuda::adamw_update(d_pf.ptr, nullptr, d_gf.ptr, d_m.ptr, d_v.ptr, kRanges.data(), R, hpc, seed, 0, d_norm.ptr,
                       max_norm, 0);
    sync_or_die();
    const auto p = download(d_pf);
    ok &= check_bitwise("params", p, ref_p);
    ok &= check_bitwise("m", download(d_m), ref_m);
    ok &= check_bitwise("v", download(d_v), ref_v);
    ok &= check_padding("params padding", p, master0);
  }

  // ---- 3. bf16 params without master weights ---------------------------------------------------
  {
    std::printf(" mode bf16 params, no master\n");
    const auto p0 = round_bf16(master0);
    std::vector<float> ref_p = p0, ref_m = m0, ref_v = v0;
    cpu::adamw_update_ranges(ref_p.data(), grads_bf.data(), ref_m.data(), ref_v.data(), kRanges.data(), R, hp);
    upload(d_pb, p0);
    upload(d_m, m0);
    upload(d_v, v0);
    cuda::adamw_update(d_pb.ptr, nullptr, d_gb.ptr, d_m.ptr, d_v.ptr, kRanges.data(), R, hp, seed, 0, nullptr, 0.0f, 0);
    sync_or_die();
    const auto p = download(d_pb);
    ok &= check_close("params (within 1 ulp)", p, ref_p, 0.0f, 1.0f / 128);
    ok &= check_close("m", download(d_m), ref_m, 1e-8f, 1e-6f);
    ok &= check_padding("params padding", p, p0);
  }
  return finish("test_adamw", ok);
}
