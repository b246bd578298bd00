// attention_decode (KV-cache sampling) against the CPU op, fp32 and bf16 storage, at several
// positions including 0 and the last. Tolerance: fp32 |d| <= 1e-5 + 1e-4·|ref|; bf16 storage
// (inputs rounded to bf16 for the CPU too, output rounded once) |d| <= 1e-3 + 2^-7·|ref|.
#include <cstdio>
#include <vector>

#include "kernels/cpu/attention_decode.h"
#include "kernels/cuda/attention_decode.cuh"
#include "tests/cuda/gpu_test_util.cuh"

using namespace gpt2;
using namespace gpt2::gputest;

template <typename T>
bool run(int T_, int C, int NH, bool bf16) {
  std::vector<float> qkv = random_vector(static_cast<size_t>(T_) * 3 * C, 7 + C, -1.f, 1.f);
  if (bf16) qkv = round_bf16(qkv);
  DeviceBuffer<T> d_qkv(qkv.size()), d_y(C);
  DeviceBuffer<float> d_scratch(static_cast<size_t>(NH) * T_);
  upload(d_qkv, qkv);
  bool ok = true;
  for (int pos : {0, 1, T_ / 2, T_ - 1}) {
    std::vector<float> ref(C), scratch(static_cast<size_t>(NH) * T_);
    cpu::attention_decode(ref.data(), scratch.data(), qkv.data(), pos, C, NH);
    d_y.poison();
    cuda::attention_decode(d_y.ptr, d_scratch.ptr, d_qkv.ptr, pos, C, NH, 0);
    cudaDeviceSynchronize();
    char name[64];
    std::snprintf(name, sizeof name, "%s C=%d NH=%d pos=%d", bf16 ? "bf16" : "fp32", C, NH, pos);
    ok &= check_close(name, download(d_y), ref, bf16 ? 1e-3f : 1e-5f, bf16 ? 1.0f / 128 : 1e-4f);
  }
  return ok;
}

int main() {
  require_device_or_skip("test_attention_decode");
  bool ok = true;
  ok &= run<float>(77, 256, 4, false);
  ok &= run<float>(1024, 768, 12, false);
  ok &= run<__nv_bfloat16>(77, 256, 4, true);
  ok &= run<__nv_bfloat16>(1024, 1600, 25, true);
  std::printf(ok ? "test_attention_decode: all passed\n" : "test_attention_decode: FAILED\n");
  return ok ? 0 : 1;
}
