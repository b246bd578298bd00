// GPU test of kernels/cuda/attention: the flash (tensor-core) bf16 kernels, the simple kernels in
// bf16 and fp32, against the CPU fp32 reference (kernels/cpu/attention).
//
// Rule for bf16 (the FlashAttention test rule): for every output tensor, the max abs error
// against the fp32 reference is at most 2× that of a naive bf16 implementation (written below:
// it materialises S, P, dP and dS in bf16 like an unfused implementation would) plus 1e-5 for
// outputs the naive path gets exactly right by luck (e.g. T = 1, where dS is exactly 0).
// fp32 (simple kernels) must match the reference to |d| ≤ 1e-4 + 1e-3·|ref|.
// Also: outputs are poisoned (NaN bytes) before every run and a guard region past each output
// must stay poisoned; two backward runs are bitwise equal; forward+backward changes no free
// device memory (cudaMemGetInfo), i.e. the kernels allocate nothing.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cuda/attention.cuh"
#include "tests/cuda/gpu_test_util.cuh"

namespace {

using gpt2::cuda::bf16;
using namespace gpt2::gputest;

constexpr size_t kGuard = 4096;  // elements past every output that must stay poisoned
int g_failures = 0;

float bfr(float x) { return round_bf16(x); }

struct Grads {
  std::vector<float> dq, dk, dv;  // each (B, T, C)
};

Grads split_dqkv(const std::vector<float>& dqkv, int B, int T, int C) {
  Grads g;
  const size_t n = static_cast<size_t>(B) * T * C;
  g.dq.resize(n);
  g.dk.resize(n);
  g.dv.resize(n);
  for (size_t bt = 0; bt < static_cast<size_t>(B) * T; ++bt)
    for (int c = 0; c < C; ++c) {
      g.dq[bt * C + c] = dqkv[bt * 3 * C + c];
      g.dk[bt * C + c] = dqkv[bt * 3 * C + C + c];
      g.dv[bt * C + c] = dqkv[bt * 3 * C + 2 * C + c];
    }
  return g;
}

// Naive bf16 attention, CPU: every matmul reads bf16 values and accumulates in fp32, and every
// T×T intermediate (S, P, dP, dS) and every output is rounded to bf16, as an unfused
// implementation storing them in bf16 would.
void naive_bf16_attention(std::vector<float>& y, std::vector<float>& lse, std::vector<float>& dqkv,
                          const std::vector<float>& qkv, const std::vector<float>& dy, int B, int T, int NH, int HS) {
  const int C = NH * HS;
  const size_t C3 = 3 * static_cast<size_t>(C);
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  y.assign(static_cast<size_t>(B) * T * C, 0.f);
  lse.assign(static_cast<size_t>(B) * NH * T, 0.f);
  dqkv.assign(static_cast<size_t>(B) * T * C3, 0.f);
  std::vector<float> P(static_cast<size_t>(T) * T), yb(static_cast<size_t>(T) * HS);
  std::vector<float> dk(static_cast<size_t>(T) * HS), dv(static_cast<size_t>(T) * HS), acc(HS);
  auto dot = [HS](const float* a, const float* b) {
    float s = 0.f;
    for (int d = 0; d < HS; ++d) s += a[d] * b[d];
    return s;
  };
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h) {
      const float* base = qkv.data() + static_cast<size_t>(b) * T * C3 + h * HS;
      auto q = [&](int i) { return base + i * C3; };
      auto k = [&](int j) { return base + j * C3 + C; };
      auto v = [&](int j) { return base + j * C3 + 2 * C; };
      auto dyr = [&](int i) { return dy.data() + (static_cast<size_t>(b) * T + i) * C + h * HS; };
      // forward
      for (int i = 0; i < T; ++i) {
        float* p = &P[static_cast<size_t>(i) * T];
        float m = -INFINITY;
        for (int j = 0; j <= i; ++j) {
          p[j] = bfr(scale * dot(q(i), k(j)));  // S in bf16
          m = std::max(m, p[j]);
        }
        float sum = 0.f;
        for (int j = 0; j <= i; ++j) {
          p[j] = std::exp(p[j] - m);
          sum += p[j];
        }
        for (int j = 0; j <= i; ++j) p[j] = bfr(p[j] / sum);  // P in bf16
        lse[(static_cast<size_t>(b) * NH + h) * T + i] = m + std::log(sum);
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int j = 0; j <= i; ++j)
          for (int d = 0; d < HS; ++d) acc[d] += p[j] * v(j)[d];
        for (int d = 0; d < HS; ++d) {
          yb[static_cast<size_t>(i) * HS + d] = bfr(acc[d]);
          y[(static_cast<size_t>(b) * T + i) * C + h * HS + d] = yb[static_cast<size_t>(i) * HS + d];
        }
      }
      // backward
      std::fill(dk.begin(), dk.end(), 0.f);
      std::fill(dv.begin(), dv.end(), 0.f);
      std::vector<float> dS(T);
      for (int i = 0; i < T; ++i) {
        const float* p = &P[static_cast<size_t>(i) * T];
        float Dn = 0.f;
        for (int j = 0; j <= i; ++j) {
          dS[j] = bfr(dot(dyr(i), v(j)));  // dP in bf16
          Dn += p[j] * dS[j];
        }
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int j = 0; j <= i; ++j) {
          const float ds = bfr(p[j] * (dS[j] - Dn));  // dS in bf16
          for (int d = 0; d < HS; ++d) {
            acc[d] += ds * k(j)[d];
            dk[static_cast<size_t>(j) * HS + d] += ds * q(i)[d];
            dv[static_cast<size_t>(j) * HS + d] += p[j] * dyr(i)[d];
          }
        }
        float* dq = dqkv.data() + (static_cast<size_t>(b) * T + i) * C3 + h * HS;
        for (int d = 0; d < HS; ++d) dq[d] = bfr(scale * acc[d]);
      }
      for (int j = 0; j < T; ++j) {
        float* out = dqkv.data() + (static_cast<size_t>(b) * T + j) * C3 + h * HS;
        for (int d = 0; d < HS; ++d) {
          out[C + d] = bfr(scale * dk[static_cast<size_t>(j) * HS + d]);
          out[2 * C + d] = bfr(dv[static_cast<size_t>(j) * HS + d]);
        }
      }
    }
}

double max_abs_err(const std::vector<float>& got, const std::vector<float>& ref) {
  double e = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    e = std::max(e, std::fabs(static_cast<double>(got[i]) - ref[i]));
  }
  return e;
}

template <typename T>
std::vector<T> fetch_all(const DeviceBuffer<T>& d) {
  std::vector<T> h(d.n);
  CUDA_CHECK(cudaMemcpy(h.data(), d.ptr, d.n * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}

// The kGuard elements past `n` still hold the 0xFF poison.
template <typename T>
bool guard_intact(const DeviceBuffer<T>& d, size_t n, const char* what) {
  const std::vector<T> h = fetch_all(d);
  const unsigned char* p = reinterpret_cast<const unsigned char*>(h.data() + n);
  for (size_t i = 0; i < (d.n - n) * sizeof(T); ++i)
    if (p[i] != 0xFF) {
      std::printf("  FAIL %s: write past the end (byte %zu after the output)\n", what, i);
      return false;
    }
  return true;
}

struct Outputs {
  std::vector<float> y, lse, dqkv;
};

// Runs forward then backward (on the forward's own y, lse) with storage S on the given path.
template <typename S>
Outputs run_gpu(bool flash, const std::vector<float>& qkv, const std::vector<float>& dy, int B, int T, int NH, int HS,
                bool* guards_ok) {
  const int C = NH * HS;
  const size_t n_qkv = static_cast<size_t>(B) * T * 3 * C, n_y = static_cast<size_t>(B) * T * C;
  const size_t n_lse = static_cast<size_t>(B) * NH * T;
  DeviceBuffer<S> d_qkv(n_qkv), d_dy(n_y), d_y(n_y + kGuard), d_dqkv(n_qkv + kGuard);
  DeviceBuffer<float> d_lse(n_lse + kGuard), d_scratch(gpt2::cuda::attention_scratch_floats(B, T, NH) + kGuard);
  upload(d_qkv, qkv);
  upload(d_dy, dy);
  d_y.poison();
  d_lse.poison();
  if (flash)
    gpt2::cuda::attention_forward(d_y.ptr, d_lse.ptr, d_qkv.ptr, B, T, NH, HS, 0);
  else
    gpt2::cuda::attention_forward_simple(d_y.ptr, d_lse.ptr, d_qkv.ptr, B, T, NH, HS, 0);
  CUDA_CHECK(cudaDeviceSynchronize());
  d_dqkv.poison();
  d_scratch.poison();
  if (flash)
    gpt2::cuda::attention_backward(d_dqkv.ptr, d_scratch.ptr, d_dy.ptr, d_qkv.ptr, d_y.ptr, d_lse.ptr, B, T, NH, HS, 0);
  else
    gpt2::cuda::attention_backward_simple(d_dqkv.ptr, d_scratch.ptr, d_dy.ptr, d_qkv.ptr, d_y.ptr, d_lse.ptr, B, T, NH,
                                          HS, 0);
  CUDA_CHECK(cudaDeviceSynchronize());
  *guards_ok = guard_intact(d_y, n_y, "y") && guard_intact(d_lse, n_lse, "lse") &&
               guard_intact(d_dqkv, n_qkv, "dqkv") && guard_intact(d_scratch, n_lse, "scratch_att");
  Outputs o;
  o.y = download(d_y, n_y);
  o.lse = download(d_lse, n_lse);
  o.dqkv = download(d_dqkv, n_qkv);
  return o;
}

struct Errors {
  double y, lse, dq, dk, dv;
};

Errors errors_of(const Outputs& o, const Outputs& ref, int B, int T, int C) {
  const Grads g = split_dqkv(o.dqkv, B, T, C), r = split_dqkv(ref.dqkv, B, T, C);
  return {max_abs_err(o.y, ref.y), max_abs_err(o.lse, ref.lse), max_abs_err(g.dq, r.dq), max_abs_err(g.dk, r.dk),
          max_abs_err(g.dv, r.dv)};
}

bool within_rule(const char* path, const Errors& e, const Errors& naive) {
  const double got[5] = {e.y, e.lse, e.dq, e.dk, e.dv}, lim[5] = {naive.y, naive.lse, naive.dq, naive.dk, naive.dv};
  const char* names[5] = {"y", "lse", "dq", "dk", "dv"};
  bool ok = true;
  for (int i = 0; i < 5; ++i)
    if (!(got[i] <= 2.0 * lim[i] + 1e-5)) {
      std::printf("  FAIL %s %s: max err %.3e > 2 x naive %.3e + 1e-5\n", path, names[i], got[i], lim[i]);
      ok = false;
    }
  return ok;
}

void print_errors(const char* path, const Errors& e) {
  std::printf("  %-12s max|err| y %.2e  lse %.2e  dq %.2e  dk %.2e  dv %.2e\n", path, e.y, e.lse, e.dq, e.dk, e.dv);
}

void check(bool ok) {
  if (!ok) ++g_failures;
}

void test_case(int B, int NH, int T, int HS, uint64_t seed) {
  const int C = NH * HS;
  std::printf("case B=%d NH=%d T=%d HS=%d\n", B, NH, T, HS);
  // bf16-representable inputs so every path sees the same values. q, k in [-2, 2] make the
  // softmax far from uniform (score std ≈ 1.3).
  const std::vector<float> qkv = round_bf16(random_vector(static_cast<size_t>(B) * T * 3 * C, seed, -2.f, 2.f));
  const std::vector<float> dy = round_bf16(random_vector(static_cast<size_t>(B) * T * C, seed + 1, -1.f, 1.f));

  Outputs ref;
  ref.y.resize(static_cast<size_t>(B) * T * C);
  ref.lse.resize(static_cast<size_t>(B) * NH * T);
  ref.dqkv.resize(qkv.size());
  std::vector<float> scratch(gpt2::cpu::attention_scratch_floats(B, T, NH));
  gpt2::cpu::attention_forward(ref.y.data(), ref.lse.data(), scratch.data(), qkv.data(), B, T, C, NH);
  gpt2::cpu::attention_backward(ref.dqkv.data(), scratch.data(), dy.data(), qkv.data(), ref.y.data(), ref.lse.data(), B,
                                T, C, NH);

  Outputs naive;
  naive_bf16_attention(naive.y, naive.lse, naive.dqkv, qkv, dy, B, T, NH, HS);
  const Errors en = errors_of(naive, ref, B, T, C);
  print_errors("naive bf16", en);

  bool guards = true;
  const Outputs flash = run_gpu<bf16>(true, qkv, dy, B, T, NH, HS, &guards);
  check(guards);
  const Errors ef = errors_of(flash, ref, B, T, C);
  print_errors("flash bf16", ef);
  check(within_rule("flash bf16", ef, en));

  const Outputs simple = run_gpu<bf16>(false, qkv, dy, B, T, NH, HS, &guards);
  check(guards);
  const Errors es = errors_of(simple, ref, B, T, C);
  print_errors("simple bf16", es);
  check(within_rule("simple bf16", es, en));

  const Outputs f32 = run_gpu<float>(false, qkv, dy, B, T, NH, HS, &guards);
  check(guards);
  print_errors("simple fp32", errors_of(f32, ref, B, T, C));
  check(check_close("fp32 y", f32.y, ref.y, 1e-4f, 1e-3f));
  check(check_close("fp32 lse", f32.lse, ref.lse, 1e-4f, 1e-3f));
  check(check_close("fp32 dqkv", f32.dqkv, ref.dqkv, 1e-4f, 1e-3f));
}

// Two backward runs (outputs poisoned in between) give bitwise-equal dqkv.
void test_determinism(int B, int NH, int T, int HS) {
  const int C = NH * HS;
  const size_t n_qkv = static_cast<size_t>(B) * T * 3 * C, n_y = static_cast<size_t>(B) * T * C;
  DeviceBuffer<bf16> d_qkv(n_qkv), d_dy(n_y), d_y(n_y), d_dqkv(n_qkv);
  DeviceBuffer<float> d_lse(static_cast<size_t>(B) * NH * T), d_scratch(gpt2::cuda::attention_scratch_floats(B, T, NH));
  upload(d_qkv, random_vector(n_qkv, 7, -2.f, 2.f));
  upload(d_dy, random_vector(n_y, 8));
  gpt2::cuda::attention_forward(d_y.ptr, d_lse.ptr, d_qkv.ptr, B, T, NH, HS, 0);
  std::vector<bf16> first;
  bool same = true;
  for (int run = 0; run < 3; ++run) {
    d_dqkv.poison();
    d_scratch.poison();
    gpt2::cuda::attention_backward(d_dqkv.ptr, d_scratch.ptr, d_dy.ptr, d_qkv.ptr, d_y.ptr, d_lse.ptr, B, T, NH, HS, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<bf16> h = fetch_all(d_dqkv);
    if (run == 0)
      first = h;
    else
      same = same && std::memcmp(first.data(), h.data(), h.size() * sizeof(bf16)) == 0;
  }
  std::printf("determinism B=%d NH=%d T=%d HS=%d: 3 backward runs %s\n", B, NH, T, HS,
              same ? "bitwise equal" : "DIFFER (FAIL)");
  check(same);
}

// Forward + backward allocate nothing: free device memory is unchanged across a run (after a
// warm-up run, which loads the kernels' modules; module loading is the CUDA runtime's, not ours).
template <typename S>
void test_memory(int B, int NH, int T, int HS, const char* what) {
  const int C = NH * HS;
  const size_t n_qkv = static_cast<size_t>(B) * T * 3 * C, n_y = static_cast<size_t>(B) * T * C;
  DeviceBuffer<S> d_qkv(n_qkv), d_dy(n_y), d_y(n_y), d_dqkv(n_qkv);
  DeviceBuffer<float> d_lse(static_cast<size_t>(B) * NH * T), d_scratch(gpt2::cuda::attention_scratch_floats(B, T, NH));
  d_qkv.zero();
  d_dy.zero();
  auto run = [&] {
    gpt2::cuda::attention_forward(d_y.ptr, d_lse.ptr, d_qkv.ptr, B, T, NH, HS, 0);
    gpt2::cuda::attention_backward(d_dqkv.ptr, d_scratch.ptr, d_dy.ptr, d_qkv.ptr, d_y.ptr, d_lse.ptr, B, T, NH, HS, 0);
  };
  run();
  CUDA_CHECK(cudaDeviceSynchronize());
  size_t free0 = 0, free1 = 0, total = 0;
  CUDA_CHECK(cudaMemGetInfo(&free0, &total));
  for (int i = 0; i < 3; ++i) run();
  CUDA_CHECK(cudaDeviceSynchronize());
  CUDA_CHECK(cudaMemGetInfo(&free1, &total));
  const bool ok = free0 == free1;
  std::printf("memory %s B=%d NH=%d T=%d HS=%d: free before %zu, after %zu: %s\n", what, B, NH, T, HS, free0, free1,
              ok ? "no change" : "CHANGED (FAIL)");
  check(ok);
}

}  // namespace

// `--quick`: only the small shapes (T ≤ 200) and the determinism check, no memory check: for
// compute-sanitizer (memcheck, racecheck, synccheck), which is slow and allocates on its own.
int main(int argc, char** argv) {
  require_device_or_skip("test_attention");
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  struct Case {
    int B, NH, T, HS;
  };
  const std::vector<Case> full = {
      {1, 1, 1, 64},    {1, 1, 1, 128},    {2, 3, 17, 64},    {2, 2, 17, 128}, {1, 2, 64, 64},
      {2, 1, 65, 128},  {1, 3, 200, 64},   {2, 2, 333, 128},  {3, 4, 128, 64}, {1, 2, 1000, 64},
      {1, 2, 1024, 64}, {1, 2, 1024, 128}, {1, 1, 1000, 128},
      // Head sizes the flash kernels do not take: the simple kernels with the size read at run
      // time (one, two, four and eight dims per lane; 24 and 96 leave lanes idle).
      {2, 4, 200, 16},  {1, 3, 129, 24},   {1, 2, 300, 96},   {1, 1, 100, 256},
  };
  // Under the SIMT layer (every mma/ldmatrix emulated per thread, the simple kernels' rows
  // looping over all keys): per head size 64 and 128, T = 1 (one row, dS = 0), T = 17 (a partial
  // warp tile, warps past T), T = 64 (exactly one block), T = 65 (a one-row tail block, B and NH
  // > 1 with several blocks), and T = 150: three 64-key blocks, so a cp.async buffer is reused,
  // the middle block is masked for causality only and the last one for the tail too, and the
  // causal skips of the forward (n_kb), of the dK/dV kernel (query steps before a warp's keys;
  // 32-query steps for HS 128) and of the dQ kernel (key steps past a warp's rows; 32-key steps
  // for HS 128) are taken. All three paths (flash bf16, simple bf16, simple fp32) on each (at
  // other head sizes the "flash" call runs the simple kernels, as the dispatcher does);
  // determinism and memory checks for both head sizes with several blocks.
  const std::vector<Case> emulated = {
      {1, 1, 1, 64},  {1, 1, 1, 128},  {2, 3, 17, 64},  {2, 2, 17, 128},
      {1, 2, 64, 64}, {2, 2, 65, 128}, {1, 1, 150, 64}, {1, 1, 150, 128},
      // Head sizes the flash kernels do not take (the simple kernels, head size read at run time):
      // 16 (one dim per lane, lanes 16-31 idle), 24, 96 (four per lane) and 256 (eight per lane);
      // T = 40 crosses a 32-key chunk.
      {2, 4, 17, 16}, {1, 3, 40, 24}, {1, 2, 40, 96}, {1, 1, 33, 256},
  };
  uint64_t seed = 1234;
  for (const Case& c : kEmulated ? emulated : full) {
    seed += 17;
    if (!quick || c.T <= 200) test_case(c.B, c.NH, c.T, c.HS, seed);
  }
  if (kEmulated) {
    test_determinism(1, 1, 150, 64);
    test_determinism(1, 1, 150, 128);
  } else if (quick) {
    test_determinism(1, 2, 150, 64);
    test_determinism(1, 1, 97, 128);
  } else {
    test_determinism(2, 3, 1000, 64);
    test_determinism(1, 2, 777, 128);
  }
  if (kEmulated && !quick) {
    // The same no-allocation check at emulation size: two query and key blocks per head.
    test_memory<bf16>(1, 2, 70, 64, "bf16");
    test_memory<bf16>(1, 1, 65, 128, "bf16");
    test_memory<float>(1, 1, 70, 64, "fp32");
  } else if (!quick) {
    test_memory<bf16>(4, 12, 1024, 64, "bf16");
    test_memory<bf16>(2, 8, 1024, 128, "bf16");
    test_memory<float>(2, 4, 512, 64, "fp32");
  }
  if (g_failures) {
    std::printf("test_attention: %d FAILED checks\n", g_failures);
    return 1;
  }
  std::printf("test_attention: all checks passed\n");
  return 0;
}
