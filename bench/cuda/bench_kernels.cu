// One microbenchmark for the CUDA kernels at the d12 training shapes (B=64, T=1024, C=768) and
// d48 shapes (B=16, T=1024, C=1600, NH=25).
//
// 1. Measures the card's ceilings: device-to-device cudaMemcpy bandwidth ((read + write) bytes
//    per second) and a large cuBLASLt bf16 GEMM (8192^3) in TFLOP/s.
// 2. Checks every kernel against the CPU reference at a small shape (bf16 storage). A failed
//    check is reported in its rows and makes the exit code 1; timing still runs.
// 3. Times each kernel: CUDA events, warm-up, L2 flushed between repeats, median of the repeats.
//    Bytes = one read of each input + one write of each output; GEMM FLOPs = 2·M·N·K.
// 4. Prints a table (ms, GB/s or TFLOP/s, % of the measured ceiling) and writes JSON (--json).
// Attention's section lives in bench/cuda/attention_bench.cuh (see bench_util.cuh).
//
// Usage: bench_kernels [--json out.json] [--repeats N] [--only d12|d48]
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench/cuda/attention_bench.cuh"  // attention's section, after the helpers it uses
#include "bench/cuda/bench_util.cuh"
#include "engine/plan/model_config.h"
#include "kernels/cpu/adamw.h"
#include "kernels/cpu/classifier.h"
#include "kernels/cpu/encoder.h"
#include "kernels/cpu/gelu.h"
#include "kernels/cpu/global_norm.h"
#include "kernels/cpu/layernorm.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/residual.h"
#include "kernels/cuda/adamw.cuh"
#include "kernels/cuda/classifier.cuh"
#include "kernels/cuda/encoder.cuh"
#include "kernels/cuda/gelu.cuh"
#include "kernels/cuda/global_norm.cuh"
#include "kernels/cuda/layernorm.cuh"
#include "kernels/cuda/matmul.cuh"
#include "kernels/cuda/residual.cuh"
#include "tests/cuda/gpu_test_util.cuh"

using namespace gpt2;
using gpt2::cuda::bf16;
using gpt2::gputest::DeviceBuffer;

namespace {

// Deterministic pseudo-random fill on the device (uniform in [lo, hi)), for the large buffers.
template <typename T>
__global__ void fill_kernel(T* p, size_t n, uint32_t seed, float lo, float hi) {
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 0x9e3779b1u ^ seed;
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    h *= 0x846ca68bu;
    h ^= h >> 16;
    p[i] = cuda::from_float<T>(lo + (hi - lo) * (h >> 8) * (1.0f / 16777216.0f));
  }
}
template <typename T>
void fill(DeviceBuffer<T>& b, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  CUDA_CHECK(gpt2::cuda::launch(fill_kernel<T>, 1024, 256, 0, nullptr, b.ptr, b.n, seed, lo, hi));
}

struct Bench {
  bench::BenchReport report;
  cuda::MatmulContext ctx;
  DeviceBuffer<uint8_t> workspace{32u << 20};
  DeviceBuffer<uint8_t> bias_scratch{cuda::matmul_bias_scratch_bytes(4 * 1600)};
  bool all_ok = true;

  float time(const std::function<void()>& fn) {
    return bench::time_median_ms(fn, report.repeats, report.warmup, &report.flusher());
  }
};

// ---- ceilings ---------------------------------------------------------------------------------

void measure_ceilings(Bench& b) {
  const size_t bytes = static_cast<size_t>(1) << 30;
  DeviceBuffer<uint8_t> src(bytes), dst(bytes);
  const float ms = b.time([&] { cudaMemcpyAsync(dst.ptr, src.ptr, bytes, cudaMemcpyDeviceToDevice); });
  b.report.copy_gbps = 2.0 * bytes / (ms * 1e-3) / 1e9;
  const int n = 8192;
  DeviceBuffer<bf16> A(static_cast<size_t>(1) * n * n), B(static_cast<size_t>(1) * n * n),
      D(static_cast<size_t>(1) * n * n);
  fill(A, 1);
  fill(B, 2);
  const float gms = b.time([&] { cuda::matmul_raw(b.ctx, D.ptr, A.ptr, B.ptr, n, n, n, true, false, 0.0f, 0); });
  b.report.gemm_tflops = 2.0 * n * n * double(n) / (gms * 1e-3) / 1e12;
  std::printf("ceilings: copy %.0f GB/s (1 GiB D2D, read+write), bf16 GEMM %.0f TFLOP/s (8192^3, cuBLASLt)\n",
              b.report.copy_gbps, b.report.gemm_tflops);
}

// ---- correctness checks at small shapes (bf16 storage) --------------------------------------------

template <typename T>
std::vector<float> stored(std::vector<float> v) {
  return gputest::as_stored<T>(std::move(v));
}

bool check_elementwise() {
  const size_t N = 3 * 4096 + 5;
  const auto x = stored<bf16>(gputest::random_vector(N, 1, -4, 4)), y = stored<bf16>(gputest::random_vector(N, 2));
  std::vector<float> r1(N), r2(N), r3(N);
  cpu::gelu_forward(r1.data(), x.data(), N);
  cpu::gelu_backward(r2.data(), x.data(), y.data(), N);
  cpu::residual_forward(r3.data(), x.data(), y.data(), N);
  DeviceBuffer<bf16> dx(N), dy(N), o1(N), o2(N), o3(N);
  gputest::upload(dx, x);
  gputest::upload(dy, y);
  cuda::gelu_forward(o1.ptr, dx.ptr, N, 0);
  cuda::gelu_backward(o2.ptr, dx.ptr, dy.ptr, N, 0);
  cuda::residual_forward(o3.ptr, dx.ptr, dy.ptr, N, 0);
  gputest::sync_or_die();
  bool ok = gputest::check_close("gelu_fwd", gputest::download(o1), r1, 1e-5f, 1.f / 128);
  ok &= gputest::check_close("gelu_bwd", gputest::download(o2), r2, 1e-5f, 1.f / 128);
  ok &= gputest::check_close("residual", gputest::download(o3), r3, 1e-6f, 1.f / 128);
  return ok;
}

bool check_encoder() {
  const int B = 2, T = 33, C = 768, V = 500;
  std::vector<int32_t> tok(B * T);
  std::mt19937 rng(3);
  for (auto& t : tok) t = rng() % V;
  const auto wte = stored<bf16>(gputest::random_vector(static_cast<size_t>(V) * C, 4)),
             wpe = stored<bf16>(gputest::random_vector(static_cast<size_t>(T) * C, 5));
  const auto dout = stored<bf16>(gputest::random_vector(static_cast<size_t>(B) * T * C, 6));
  std::vector<float> out(static_cast<size_t>(B) * T * C), dwte(wte.size(), 0.f), dwpe(wpe.size(), 0.f);
  cpu::encoder_forward(out.data(), tok.data(), wte.data(), wpe.data(), B, T, C);
  cpu::encoder_backward(dwte.data(), dwpe.data(), dout.data(), tok.data(), B, T, C);
  DeviceBuffer<int32_t> dtok(tok.size()), scratch(cuda::encoder_backward_scratch_ints(B, T));
  DeviceBuffer<bf16> dwte_in(wte.size()), dwpe_in(wpe.size()), dout_d(dout.size()), o(out.size()), gw(wte.size()),
      gp(wpe.size());
  gputest::upload_raw(dtok, tok);
  gputest::upload(dwte_in, wte);
  gputest::upload(dwpe_in, wpe);
  gputest::upload(dout_d, dout);
  gw.zero();
  gp.zero();
  cuda::encoder_forward(o.ptr, dtok.ptr, dwte_in.ptr, dwpe_in.ptr, B, T, C, 0);
  cuda::encoder_backward(gw.ptr, gp.ptr, scratch.ptr, dout_d.ptr, tok.data(), B, T, C, V, 0);
  gputest::sync_or_die();
  bool ok = gputest::check_close("encoder_fwd", gputest::download(o), out, 1e-5f, 1.f / 128);
  ok &= gputest::check_close("encoder_bwd dwte", gputest::download(gw), dwte, 1e-5f, 1.f / 128);
  ok &= gputest::check_close("encoder_bwd dwpe", gputest::download(gp), dwpe, 1e-5f, 1.f / 128);
  return ok;
}

bool check_layernorm() {
  const int N = 37, C = 768;
  const size_t NC = static_cast<size_t>(N) * C;
  const auto x = stored<bf16>(gputest::random_vector(NC, 7)), y = stored<bf16>(gputest::random_vector(NC, 8));
  const auto w = stored<bf16>(gputest::random_vector(C, 9, 0.5f, 1.5f)),
             bb = stored<bf16>(gputest::random_vector(C, 10));
  const auto dout = stored<bf16>(gputest::random_vector(NC, 11));
  std::vector<float> r(NC), mean(N), rstd(N), res(NC), r2(NC), m2(N), s2(N), dinp(NC, 0.f), dw(C, 0.f), db(C, 0.f);
  cpu::layernorm_forward(r.data(), mean.data(), rstd.data(), x.data(), w.data(), bb.data(), N, 1, C);
  cpu::residual_forward(res.data(), x.data(), y.data(), NC);
  res = stored<bf16>(res);
  cpu::layernorm_forward(r2.data(), m2.data(), s2.data(), res.data(), w.data(), bb.data(), N, 1, C);
  cpu::layernorm_backward(dinp.data(), dw.data(), db.data(), dout.data(), x.data(), w.data(), mean.data(), rstd.data(),
                          N, 1, C);
  DeviceBuffer<bf16> dx(NC), dy(NC), dw_(C), db_(C), o(NC), o2(NC), ores(NC), ddout(NC), gin(NC), gw(C), gb(C);
  DeviceBuffer<float> dm(N), ds(N), scratch(cuda::layernorm_backward_scratch_floats(N, C));
  gputest::upload(dx, x);
  gputest::upload(dy, y);
  gputest::upload(dw_, w);
  gputest::upload(db_, bb);
  gputest::upload(ddout, dout);
  gin.zero();
  gw.zero();
  gb.zero();
  cuda::layernorm_forward(o.ptr, dm.ptr, ds.ptr, dx.ptr, dw_.ptr, db_.ptr, N, C, 0);
  cuda::layernorm_backward(gin.ptr, gw.ptr, gb.ptr, scratch.ptr, ddout.ptr, dx.ptr, dw_.ptr, dm.ptr, ds.ptr, N, C, 0);
  gputest::sync_or_die();
  bool ok = gputest::check_close("layernorm_fwd", gputest::download(o), r, 1e-5f, 1.f / 128);
  ok &= gputest::check_close("layernorm_bwd dinp", gputest::download(gin), dinp, 1e-4f, 1.f / 128);
  ok &= gputest::check_close("layernorm_bwd dweight", gputest::download(gw), dw, 1e-3f, 1.f / 128);
  ok &= gputest::check_close("layernorm_bwd dbias", gputest::download(gb), db, 1e-3f, 1.f / 128);
  cuda::residual_layernorm_forward(ores.ptr, o2.ptr, dm.ptr, ds.ptr, dx.ptr, dy.ptr, dw_.ptr, db_.ptr, N, C, 0);
  gputest::sync_or_die();
  ok &= gputest::check_close("residual_layernorm_fwd", gputest::download(o2), r2, 1e-5f, 1.f / 128);
  return ok;
}

bool check_classifier() {
  const int N = 4, V = 50257, Vp = 50304;
  auto logits = stored<bf16>(gputest::random_vector(static_cast<size_t>(N) * Vp, 12, -6, 6));
  std::vector<int32_t> tgt = {0, 17, 50256, 1234};
  std::vector<float> loss(N), dl = logits;
  cpu::classifier_forward_backward(loss.data(), dl.data(), tgt.data(), N, V, Vp, 0.25f, true);
  DeviceBuffer<bf16> d(logits.size());
  DeviceBuffer<float> dloss(N);
  DeviceBuffer<int32_t> dt(N);
  gputest::upload(d, logits);
  gputest::upload_raw(dt, tgt);
  cuda::classifier_forward_backward(dloss.ptr, d.ptr, dt.ptr, N, V, Vp, 0.25f, true, 0);
  gputest::sync_or_die();
  bool ok = gputest::check_close("classifier loss", gputest::download(dloss), loss, 1e-4f, 1e-5f);
  ok &= gputest::check_close("classifier dlogits", gputest::download(d), dl, 1e-12f, 1.f / 128);
  return ok;
}

bool check_adamw_norm() {
  const size_t n = 3000;
  const std::vector<cpu::AdamWRange> ranges = {{0, 1000, true}, {1024, 1976, false}};
  const auto p0 = gputest::random_vector(n, 13), g = stored<bf16>(gputest::random_vector(n, 14, -0.1f, 0.1f));
  std::vector<float> p = p0, m(n, 0.f), v(n, 0.f);
  cpu::AdamWParams hp;
  hp.weight_decay = 0.1f;
  cpu::adamw_update_ranges(p.data(), g.data(), m.data(), v.data(), ranges.data(), 2, hp);
  DeviceBuffer<bf16> dp(n), dg(n);
  DeviceBuffer<float> dmaster(n), dm(n), dv(n), part(cuda::kGlobalNormPartialsFloats), norm(1);
  gputest::upload(dp, p0);
  gputest::upload(dg, g);
  gputest::upload(dmaster, p0);
  dm.zero();
  dv.zero();
  cuda::adamw_update(dp.ptr, dmaster.ptr, dg.ptr, dm.ptr, dv.ptr, ranges.data(), 2, hp, 1, 0, nullptr, 0.f, 0);
  cuda::global_norm_squared(norm.ptr, part.ptr, dg.ptr, n, 0);
  gputest::sync_or_die();
  std::vector<float> pm = gputest::download(dmaster), ref_pm = p;
  for (size_t i = 1000; i < 1024; ++i) pm[i] = ref_pm[i] = 0;  // padding: not written
  bool ok = gputest::check_close("adamw master", pm, ref_pm, 1e-8f, 1e-6f);
  ok &= gputest::check_close("global_norm", gputest::download(norm), {float(cpu::global_norm_squared(g.data(), n))},
                             0.f, 1e-5f);
  return ok;
}

bool check_matmul(cuda::MatmulContext& ctx) {
  const int N = 37, C = 768, OC = 3072;
  const auto x = stored<bf16>(gputest::random_vector(static_cast<size_t>(N) * C, 15)),
             w = stored<bf16>(gputest::random_vector(static_cast<size_t>(OC) * C, 16));
  const auto bias = stored<bf16>(gputest::random_vector(OC, 17)),
             dout = stored<bf16>(gputest::random_vector(static_cast<size_t>(N) * OC, 18));
  std::vector<float> out(static_cast<size_t>(N) * OC), dinp(static_cast<size_t>(N) * C),
      dw(static_cast<size_t>(OC) * C, 0.f), db(OC, 0.f);
  cpu::matmul_forward(out.data(), x.data(), w.data(), bias.data(), N, C, OC);
  cpu::matmul_backward(dinp.data(), dw.data(), db.data(), dout.data(), x.data(), w.data(), N, C, OC);
  DeviceBuffer<bf16> dx(x.size()), dW(w.size()), dB(OC), dO(out.size()), dD(dout.size()), gI(dinp.size()),
      gW(dw.size()), gB(OC);
  gputest::upload(dx, x);
  gputest::upload(dW, w);
  gputest::upload(dB, bias);
  gputest::upload(dD, dout);
  gW.zero();
  gB.zero();
  cuda::matmul_forward(ctx, dO.ptr, nullptr, dx.ptr, dW.ptr, dB.ptr, N, C, OC, 0);
  cuda::matmul_backward(ctx, gI.ptr, gW.ptr, gB.ptr, dD.ptr, dx.ptr, dW.ptr, nullptr, N, C, OC, 0);
  gputest::sync_or_die();
  auto chk = [](const char* name, const std::vector<float>& got, const std::vector<float>& ref) {
    return gputest::check_close(name, got, ref, gputest::rms(ref) / 256, 1.f / 128);
  };
  bool ok = chk("matmul_fwd", gputest::download(dO), out);
  ok &= chk("matmul_bwd dinp", gputest::download(gI), dinp);
  ok &= chk("matmul_bwd dweight", gputest::download(gW), dw);
  ok &= chk("matmul_bwd dbias", gputest::download(gB), db);
  return ok;
}

// ---- timed sections ---------------------------------------------------------------------------

struct Shape {
  const char* name;
  int B, T, C, NH;
};

void bench_memory_bound(Bench& b, const Shape& s, const bool ok[6]) {
  const int N = s.B * s.T, C = s.C;
  const size_t NC = static_cast<size_t>(N) * C, N4C = 4 * NC;
  const int V = 50257, Vp = 50304, maxT = 1024;
  const std::string shape = "B=" + std::to_string(s.B) + " T=" + std::to_string(s.T) + " C=" + std::to_string(C);
  const std::string tag = std::string(" ") + s.name;
  const double e = sizeof(bf16);

  DeviceBuffer<bf16> x(NC), y(NC), out(NC), res(NC), w(C), bias(C), dw(C), db(C);
  DeviceBuffer<float> mean(N), rstd(N), ln_scratch(cuda::layernorm_backward_scratch_floats(N, C));
  fill(x, 1);
  fill(y, 2);
  fill(w, 3, 0.5f, 1.5f);
  fill(bias, 4);
  {  // encoder
    std::vector<int32_t> tok(N);
    std::mt19937 rng(5);
    for (auto& t : tok) t = rng() % V;
    DeviceBuffer<int32_t> dtok(N), scratch(cuda::encoder_backward_scratch_ints(s.B, s.T));
    DeviceBuffer<bf16> wte(static_cast<size_t>(Vp) * C), wpe(static_cast<size_t>(maxT) * C),
        dwte(static_cast<size_t>(Vp) * C), dwpe(static_cast<size_t>(maxT) * C);
    fill(wte, 6);
    fill(wpe, 7);
    dwte.zero();
    dwpe.zero();
    gputest::upload_raw(dtok, tok);
    float ms = b.time([&] { cuda::encoder_forward(out.ptr, dtok.ptr, wte.ptr, wpe.ptr, s.B, s.T, C, 0); });
    b.report.add_gbps("encoder_fwd" + tag, shape, ms, 4.0 * N + e * NC + e * s.T * C + e * NC, ok[0]);
    const int S = cuda::encoder_backward_prepare(scratch.ptr, tok.data(), s.B, s.T, V, 0);
    ms = b.time([&] { cuda::encoder_backward(dwte.ptr, dwpe.ptr, scratch.ptr, S, x.ptr, s.B, s.T, C, 0); });
    // dout once, the touched wte rows and wpe read + written, the sorted positions and segments.
    b.report.add_gbps("encoder_bwd" + tag, shape + " (kernels; host sort excluded)", ms,
                      e * NC + 2.0 * e * S * C + 2.0 * e * s.T * C + 4.0 * (N + 3.0 * S), ok[0]);
  }
  {  // layernorm
    float ms = b.time([&] { cuda::layernorm_forward(out.ptr, mean.ptr, rstd.ptr, x.ptr, w.ptr, bias.ptr, N, C, 0); });
    b.report.add_gbps("layernorm_fwd" + tag, shape, ms, 2.0 * e * NC + 8.0 * N, ok[1]);
    ms = b.time([&] {
      cuda::residual_layernorm_forward(res.ptr, out.ptr, mean.ptr, rstd.ptr, x.ptr, y.ptr, w.ptr, bias.ptr, N, C, 0);
    });
    b.report.add_gbps("residual_layernorm_fwd" + tag, shape, ms, 4.0 * e * NC + 8.0 * N, ok[1]);
    ms = b.time([&] {
      cuda::layernorm_backward(res.ptr, dw.ptr, db.ptr, ln_scratch.ptr, y.ptr, x.ptr, w.ptr, mean.ptr, rstd.ptr, N, C,
                               0);
    });
    // dout, inp, dinp read; dinp written; mean/rstd read.
    b.report.add_gbps("layernorm_bwd" + tag, shape, ms, 4.0 * e * NC + 8.0 * N, ok[1]);
    ms = b.time([&] { cuda::residual_forward(out.ptr, x.ptr, y.ptr, NC, 0); });
    b.report.add_gbps("residual_fwd" + tag, shape, ms, 3.0 * e * NC, ok[0]);
  }
  {  // GELU over (N, 4C)
    DeviceBuffer<bf16> h(N4C), g(N4C);
    fill(h, 8, -3.f, 3.f);
    float ms = b.time([&] { cuda::gelu_forward(g.ptr, h.ptr, N4C, 0); });
    b.report.add_gbps("gelu_fwd" + tag, shape + " (N,4C)", ms, 2.0 * e * N4C, ok[0]);
    ms = b.time([&] { cuda::gelu_backward(g.ptr, h.ptr, g.ptr, N4C, 0); });
    b.report.add_gbps("gelu_bwd" + tag, shape + " (N,4C)", ms, 3.0 * e * N4C, ok[0]);
  }
  {  // classifier over one logits chunk of 4096 tokens
    const int Nc = 4096;
    DeviceBuffer<bf16> logits(static_cast<size_t>(Nc) * Vp);
    DeviceBuffer<float> losses(Nc);
    DeviceBuffer<int32_t> tgt(Nc);
    std::vector<int32_t> t(Nc);
    for (int i = 0; i < Nc; ++i) t[i] = (i * 7919) % V;
    gputest::upload_raw(tgt, t);
    fill(logits, 9, -4.f, 4.f);
    // Overwriting the logits with dlogits each repeat is fine for timing: the values stay finite.
    const float ms = b.time(
        [&] { cuda::classifier_forward_backward(losses.ptr, logits.ptr, tgt.ptr, Nc, V, Vp, 1.0f / Nc, true, 0); });
    b.report.add_gbps("classifier" + tag, "chunk=4096 Vp=50304", ms, 2.0 * e * Nc * Vp + 8.0 * Nc, ok[2]);
  }
}

void bench_optimizer(Bench& b, const char* model, const bool ok) {
  const ModelConfig cfg = preset_config(model);
  const auto specs = param_tensor_specs(cfg);
  std::vector<cpu::AdamWRange> ranges;
  size_t off = 0;
  for (const auto& sp : specs) {
    ranges.push_back({off, static_cast<size_t>(sp.numel()), sp.weight_decay});
    off += (sp.numel() + 127) / 128 * 128;
  }
  const size_t n = off, nparams = static_cast<size_t>(num_parameters(cfg));
  DeviceBuffer<bf16> p(n), g(n);
  DeviceBuffer<float> master(n), m(n), v(n), part(cuda::kGlobalNormPartialsFloats), norm(1);
  fill(g, 10, -0.01f, 0.01f);
  fill(master, 11);
  m.zero();
  v.zero();
  cpu::AdamWParams hp;
  hp.weight_decay = 0.1f;
  const std::string shape = std::string(model) + " " + std::to_string(nparams) + " params";
  cuda::global_norm_squared(norm.ptr, part.ptr, g.ptr, n, 0);  // a finite norm for the clip read
  float ms = b.time([&] {
    cuda::adamw_update(p.ptr, master.ptr, g.ptr, m.ptr, v.ptr, ranges.data(), static_cast<int>(ranges.size()), hp, 1, 0,
                       norm.ptr, 1.0f, 0);
  });
  // grads (bf16) + master, m, v read; master, m, v, params (bf16) written.
  b.report.add_gbps(std::string("adamw ") + model, shape, ms, (2.0 + 12.0 + 12.0 + 2.0) * nparams, ok);
  ms = b.time([&] { cuda::global_norm_squared(norm.ptr, part.ptr, g.ptr, n, 0); });
  b.report.add_gbps(std::string("global_norm ") + model, shape, ms, 2.0 * nparams, ok);
}

void bench_matmuls(Bench& b, const Shape& s, bool ok) {
  const int N = s.B * s.T, C = s.C;
  struct G {
    const char* name;
    int K, OC;
    bool gelu;
  };
  const G layers[] = {
      {"qkv", C, 3 * C, false}, {"attproj", C, C, false}, {"fc+gelu", C, 4 * C, true}, {"fcproj", 4 * C, C, false}};
  for (const G& l : layers) {
    DeviceBuffer<bf16> inp(static_cast<size_t>(N) * l.K), w(static_cast<size_t>(l.OC) * l.K), bias(l.OC),
        out(static_cast<size_t>(N) * l.OC), pre(l.gelu ? static_cast<size_t>(N) * l.OC : 1),
        dinp(static_cast<size_t>(N) * l.K), dw(static_cast<size_t>(l.OC) * l.K), db(l.OC);
    fill(inp, 20);
    fill(w, 21, -0.05f, 0.05f);
    fill(bias, 22);
    fill(out, 23, -0.01f, 0.01f);
    dw.zero();
    db.zero();
    const double flops = 2.0 * N * double(l.K) * l.OC;
    const std::string shape = "M=" + std::to_string(N) + " N=" + std::to_string(l.OC) + " K=" + std::to_string(l.K);
    float ms = b.time([&] {
      cuda::matmul_forward(b.ctx, out.ptr, l.gelu ? pre.ptr : nullptr, inp.ptr, w.ptr, bias.ptr, N, l.K, l.OC, 0);
    });
    b.report.add_tflops(std::string("matmul_fwd ") + l.name + " " + s.name, shape, ms, flops, ok);
    // Backward: dinp and dweight (+dbias), 2 GEMMs; out doubles as dout.
    ms = b.time([&] {
      cuda::matmul_backward(b.ctx, dinp.ptr, dw.ptr, db.ptr, out.ptr, inp.ptr, w.ptr, nullptr, N, l.K, l.OC, 0);
    });
    b.report.add_tflops(std::string("matmul_bwd ") + l.name + " " + s.name, shape + " (2 GEMMs)", ms, 2 * flops, ok);
  }
  {  // lm_head chunk: (4096, C) x (Vp, C)^T
    const int Nc = 4096, Vp = 50304;
    DeviceBuffer<bf16> inp(static_cast<size_t>(Nc) * C), w(static_cast<size_t>(Vp) * C),
        out(static_cast<size_t>(Nc) * Vp);
    fill(inp, 24);
    fill(w, 25, -0.05f, 0.05f);
    const float ms =
        b.time([&] { cuda::matmul_forward(b.ctx, out.ptr, nullptr, inp.ptr, w.ptr, nullptr, Nc, C, Vp, 0); });
    b.report.add_tflops(std::string("matmul_fwd lm_head ") + s.name, "M=4096 N=50304 K=" + std::to_string(C), ms,
                        2.0 * Nc * double(C) * Vp, ok);
  }
}

void print_and_write(const Bench& b, const char* json_path) {
  std::printf("\n%-34s %-34s %9s %12s %8s %s\n", "kernel", "shape", "ms", "throughput", "% ceil", "check");
  for (const auto& r : b.report.rows)
    std::printf("%-34s %-34s %9.4f %8.1f %-7s %6.1f%% %s\n", r.name.c_str(), r.shape.c_str(), r.ms, r.value,
                r.unit.c_str(), r.pct_of_ceiling, r.checked_ok ? "ok" : "FAILED");
  if (!json_path) return;
  FILE* f = std::fopen(json_path, "w");
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", json_path);
    return;
  }
  std::fprintf(f, "{\n  \"device\": \"%s\",\n  \"copy_gbps\": %.1f,\n  \"gemm_tflops\": %.1f,\n  \"rows\": [\n",
               b.report.device.c_str(), b.report.copy_gbps, b.report.gemm_tflops);
  for (size_t i = 0; i < b.report.rows.size(); ++i) {
    const auto& r = b.report.rows[i];
    std::fprintf(f,
                 "    {\"name\": \"%s\", \"shape\": \"%s\", \"ms\": %.5f, \"value\": %.2f, \"unit\": \"%s\", "
                 "\"pct_of_ceiling\": %.1f, \"checked_ok\": %s}%s\n",
                 r.name.c_str(), r.shape.c_str(), r.ms, r.value, r.unit.c_str(), r.pct_of_ceiling,
                 r.checked_ok ? "true" : "false", i + 1 < b.report.rows.size() ? "," : "");
  }
  std::fprintf(f, "  ]\n}\n");
  std::fclose(f);
  std::printf("\nwrote %s\n", json_path);
}

}  // namespace

int main(int argc, char** argv) {
  const char* json = nullptr;
  std::string only;
  int repeats = 30;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc)
      json = argv[++i];
    else if (!std::strcmp(argv[i], "--repeats") && i + 1 < argc)
      repeats = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--only") && i + 1 < argc)
      only = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--json out.json] [--repeats N] [--only d12|d48]\n", argv[0]);
      return 2;
    }
  }
  gputest::require_device_or_skip("bench_kernels");
  Bench b;
  b.report.repeats = repeats;
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  b.report.device = prop.name;
  cuda::matmul_context_init(b.ctx, b.workspace.ptr, b.workspace.n, b.bias_scratch.ptr, b.bias_scratch.n);

  measure_ceilings(b);
  std::printf("\nchecks against the CPU reference (bf16, small shapes):\n");
  const bool ok_elem = check_elementwise(), ok_enc = check_encoder(), ok_ln = check_layernorm(),
             ok_cls = check_classifier(), ok_opt = check_adamw_norm(), ok_mm = check_matmul(b.ctx);
  const bool ok_mem[6] = {ok_elem && ok_enc, ok_ln, ok_cls, ok_opt, ok_mm, true};
  b.all_ok = ok_elem && ok_enc && ok_ln && ok_cls && ok_opt && ok_mm;

  const Shape shapes[] = {{"d12", 64, 1024, 768, 12}, {"d48", 16, 1024, 1600, 25}};
  for (const Shape& s : shapes) {
    if (!only.empty() && only != s.name) continue;
    std::printf("timing %s ...\n", s.name);
    bench_memory_bound(b, s, ok_mem);
    bench_optimizer(b, s.name, ok_opt);
    bench_matmuls(b, s, ok_mm);
  }
  run_attention_bench(b.report);
  for (const auto& r : b.report.rows) b.all_ok &= r.checked_ok;
  print_and_write(b, json);
  cuda::matmul_context_destroy(b.ctx);
  return b.all_ok ? 0 : 1;
}
