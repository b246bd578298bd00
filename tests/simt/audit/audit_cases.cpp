#include "audit_cases.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <stdexcept>

#include "kernels/cuda/adamw.cuh"
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attention_decode.cuh"
#include "kernels/cuda/classifier.cuh"
#include "kernels/cuda/encoder.cuh"
#include "kernels/cuda/gelu.cuh"
#include "kernels/cuda/global_norm.cuh"
#include "kernels/cuda/layernorm.cuh"
#include "kernels/cuda/residual.cuh"
#include "kernels/cuda/scratch_sizes.h"

namespace gpt2::audit {
namespace {

using cuda::bf16;

// GPT-2's vocabulary and the plan's padded vocabulary.
constexpr int kVocab = 50257, kVocabPadded = 50304;

// A device buffer of n elements filled with 0x3C00 half-words: 2^-7 as bf16, about 0.0078 as
// fp32. Kernels' access patterns do not depend on the values; these keep every path finite.
template <typename T>
struct Buffer {
  T* p = nullptr;
  size_t n = 0;
  explicit Buffer(size_t count) : n(count) {
    if (cudaMalloc(&p, bytes()) != cudaSuccess) throw std::runtime_error("cudaMalloc failed");
    std::vector<uint16_t> fill((bytes() + 1) / 2, 0x3C00);
    cudaMemcpy(p, fill.data(), bytes(), cudaMemcpyHostToDevice);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { cudaFree(p); }
  size_t bytes() const { return n * sizeof(T); }
  operator T*() const { return p; }
};

#if defined(GPT2_SIMT)
// Runs `launch` with recording on; pairs each launch with the compulsory bytes given for it.
template <typename F>
std::vector<KernelRun> record(const std::string& file, F&& launch, const std::vector<double>& compulsory) {
  simt::trace::take();
  simt::trace::enable(true);
  launch();
  cudaDeviceSynchronize();
  simt::trace::enable(false);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess)
    throw std::runtime_error(std::string("a launch failed: ") + cudaGetErrorString(e));
  std::vector<simt::trace::LaunchCounts> launches = simt::trace::take();
  if (launches.size() != compulsory.size())
    throw std::runtime_error(file + ": " + std::to_string(launches.size()) + " launches recorded, the case states " +
                             std::to_string(compulsory.size()));
  std::vector<KernelRun> runs;
  for (size_t i = 0; i < launches.size(); ++i) {
    KernelRun r;
    const char* name = simt::kernel_name(launches[i].func);
    r.kernel = file + "/" + short_kernel_name(name ? name : launches[i].kernel);
    r.counts = std::move(launches[i]);
    r.compulsory_bytes = compulsory[i];
    runs.push_back(std::move(r));
  }
  return runs;
}
#else
// Times `launch` on the GPU: one call to warm up, then the mean of kRepeats calls between two
// events. One entry for the whole case, with the sum of its kernels' compulsory bytes.
template <typename F>
std::vector<KernelRun> record(const std::string& file, F&& launch, const std::vector<double>& compulsory) {
  constexpr int kRepeats = 20;
  launch();
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaEventRecord(start);
  for (int i = 0; i < kRepeats; ++i) launch();
  cudaEventRecord(stop);
  cudaEventSynchronize(stop);
  float ms = 0;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess)
    throw std::runtime_error(file + ": a launch failed: " + cudaGetErrorString(e));
  KernelRun r;
  r.kernel = file;
  for (double b : compulsory) r.compulsory_bytes += b;
  r.measured_us = 1000.0 * ms / kRepeats;
  return {r};
}
#endif

std::vector<int32_t> distinct_tokens(size_t n) {
  std::vector<int32_t> t(kVocab);
  std::iota(t.begin(), t.end(), 0);
  std::mt19937 rng(1234);
  std::shuffle(t.begin(), t.end(), rng);
  t.resize(n);
  return t;
}

template <typename T>
const char* dtype_name() {
  return sizeof(T) == 2 ? "bf16" : "fp32";
}

using CaseRun = std::function<std::vector<KernelRun>()>;

// A memory-bound case of storage type T at width C (0: the op does not depend on it).
template <typename T>
AuditCase memory_bound_case(const char* op, const char* file, int C, std::string shape, CaseRun run) {
  AuditCase c;
  c.op = op;
  c.file = file;
  c.dtype = dtype_name<T>();
  c.C = C;
  c.shape = std::move(shape);
  c.run = std::move(run);
  return c;
}

// Memory-bound cases over N rows of width C.
template <typename T>
void add_memory_cases(std::vector<AuditCase>& out, int C) {
  const double E = sizeof(T);
  const int N = C <= 768 ? 4096 : 2048;  // rows of the case (B·T of one micro-step is 8192 and more)
  const std::string nc = "N=" + std::to_string(N) + " C=" + std::to_string(C);
  const double NC = static_cast<double>(N) * C;
  auto add = [&](const char* op, const char* file, std::string shape, CaseRun run) {
    out.push_back(memory_bound_case<T>(op, file, C, std::move(shape), std::move(run)));
  };

  add("encoder forward", "encoder", "B=4 T=" + std::to_string(N / 4) + " C=" + std::to_string(C), [=] {
    const int B = 4, Tn = N / 4;
    Buffer<T> outb(NC), wte(static_cast<size_t>(kVocabPadded) * C), wpe(static_cast<size_t>(1024) * C);
    Buffer<int32_t> tokens(N);
    const std::vector<int32_t> tok = distinct_tokens(N);
    cudaMemcpy(tokens, tok.data(), tokens.bytes(), cudaMemcpyHostToDevice);
    return record("encoder", [&] { cuda::encoder_forward(outb, tokens, wte, wpe, B, Tn, C, nullptr); },
                  {4.0 * N + NC * E + Tn * C * E + NC * E});
  });
  add("encoder backward", "encoder", "B=4 T=" + std::to_string(N / 4) + " C=" + std::to_string(C), [=] {
    const int B = 4, Tn = N / 4;
    Buffer<T> dwte(static_cast<size_t>(kVocabPadded) * C), dwpe(static_cast<size_t>(1024) * C), dout(NC);
    Buffer<int32_t> scratch(cuda::encoder_backward_scratch_ints(B, Tn));
    const std::vector<int32_t> tok = distinct_tokens(N);
    // wte: the scratch's segment lists, dout's rows, each token's dwte row read and written;
    // wpe: dout again (a second kernel), each dwpe row read and written.
    return record("encoder",
                  [&] { cuda::encoder_backward(dwte, dwpe, scratch, dout, tok.data(), B, Tn, C, kVocab, nullptr); },
                  {3.0 * 4 * N + NC * E + 2 * NC * E, NC * E + 2.0 * Tn * C * E});
  });
  add("layernorm forward", "layernorm", nc, [=] {
    Buffer<T> o(NC), inp(NC), w(C), b(C);
    Buffer<float> mean(N), rstd(N);
    return record("layernorm", [&] { cuda::layernorm_forward(o, mean, rstd, inp, w, b, N, C, nullptr); },
                  {2 * NC * E + 2.0 * C * E + 8.0 * N});
  });
  add("residual+layernorm forward", "layernorm", nc, [=] {
    Buffer<T> res(NC), o(NC), a(NC), b(NC), w(C), bias(C);
    Buffer<float> mean(N), rstd(N);
    return record("layernorm",
                  [&] { cuda::residual_layernorm_forward(res, o, mean, rstd, a, b, w, bias, N, C, nullptr); },
                  {4 * NC * E + 2.0 * C * E + 8.0 * N});
  });
  add("layernorm recompute", "layernorm", nc, [=] {
    Buffer<T> o(NC), inp(NC), w(C), b(C);
    Buffer<float> mean(N), rstd(N);
    return record("layernorm", [&] { cuda::layernorm_recompute(o, inp, mean, rstd, w, b, N, C, nullptr); },
                  {2 * NC * E + 2.0 * C * E + 8.0 * N});
  });
  add("layernorm backward", "layernorm", nc, [=] {
    Buffer<T> dinp(NC), dw(C), db(C), dout(NC), inp(NC), w(C);
    Buffer<float> scratch(cuda::layernorm_backward_scratch_floats(N, C)), mean(N), rstd(N);
    const double partials = static_cast<double>(std::min(N, 1024)) * 2 * C * 4;
    // dinp is added to (read and written); the partial sums go to the second kernel.
    return record(
        "layernorm",
        [&] { cuda::layernorm_backward(dinp, dw, db, scratch, dout, inp, w, mean, rstd, N, C, nullptr); },
        {4 * NC * E + C * E + 8.0 * N + partials, partials + 4.0 * C * E});
  });
  add("residual forward", "residual", nc, [=] {
    Buffer<T> o(NC), a(NC), b(NC);
    return record("residual", [&] { cuda::residual_forward(o, a, b, NC, nullptr); }, {3 * NC * E});
  });
  add("gelu forward", "gelu", "N=" + std::to_string(N) + " 4C=" + std::to_string(4 * C), [=] {
    Buffer<T> o(4 * NC), inp(4 * NC);
    return record("gelu", [&] { cuda::gelu_forward(o, inp, 4 * NC, nullptr); }, {2 * 4 * NC * E});
  });
  add("gelu backward", "gelu", "N=" + std::to_string(N) + " 4C=" + std::to_string(4 * C), [=] {
    Buffer<T> dinp(4 * NC), inp(4 * NC), dout(4 * NC);
    return record("gelu", [&] { cuda::gelu_backward(dinp, inp, dout, 4 * NC, nullptr); }, {3 * 4 * NC * E});
  });
}

template <typename T>
void add_width_free_cases(std::vector<AuditCase>& out) {
  const double E = sizeof(T);
  auto add = [&](const char* op, const char* file, std::string shape, CaseRun run) {
    out.push_back(memory_bound_case<T>(op, file, 0, std::move(shape), std::move(run)));
  };
  {
    const int N = 64;  // rows of logits (one chunk of the head is 1024 and more)
    add("classifier", "classifier", "N=64 V=50257 Vp=50304", [=] {
      Buffer<T> logits(static_cast<size_t>(N) * kVocabPadded);
      Buffer<float> losses(N);
      Buffer<int32_t> targets(N);
      const std::vector<int32_t> tok = distinct_tokens(N);
      cudaMemcpy(targets, tok.data(), targets.bytes(), cudaMemcpyHostToDevice);
      const double L = static_cast<double>(N) * kVocabPadded * E;
      return record(
          "classifier",
          [&] { cuda::classifier_forward_backward(losses, logits, targets, N, kVocab, kVocabPadded, 1.0f, true, nullptr); },
          {2 * L + 8.0 * N});
    });
  }
  {
    // AdamW over 2M parameters (GPT-2 124M has 124M: the same pattern, 60 times longer).
    const size_t n = size_t{2} << 20;
    add("adamw", "adamw", "n=2097152", [=] {
      Buffer<T> params(n), grads(n);
      Buffer<float> master(n), m(n), v(n);
      const cuda::AdamWRange ranges[2] = {{0, n / 2, true}, {n / 2, n / 2, false}};
      cuda::AdamWParams hp;
      const bool with_master = sizeof(T) == 2;
      // bf16: fp32 master, m, v read and written, the bf16 copy written, the gradients read.
      const double bytes = with_master ? n * (E + 3 * 8.0 + E) : n * (E + 2 * 8.0 + 2 * E);
      return record(
          "adamw",
          [&] {
            cuda::adamw_update(params, with_master ? master.p : nullptr, grads, m, v, ranges, 2, hp, 42, 0, nullptr, 0.0f,
                               nullptr);
          },
          {bytes});
    });
    add("global norm", "global_norm", "n=2097152", [=] {
      Buffer<T> x(n);
      Buffer<float> partials(1024), result(1);
      return record(
          "global_norm", [&] { cuda::global_norm_squared(result, partials, x, n, nullptr); },
          {n * E + 8.0 * std::min<size_t>(512, (n + 4095) / 4096), 8.0 * std::min<size_t>(512, (n + 4095) / 4096) + 4});
    });
  }
}

// One attention forward, and one backward, over B sequences of T_ tokens with NH heads of size
// 64, recorded: the flash kernels (bf16) or the simple ones (fp32), with each launch's compulsory
// bytes.
template <typename T>
std::vector<KernelRun> attention_forward_runs(int B, int NH, int T_) {
  constexpr int HS = 64;
  const double E = sizeof(T), BTC = static_cast<double>(B) * T_ * NH * HS, rows = static_cast<double>(B) * T_ * NH;
  Buffer<T> y(BTC), qkv(3 * BTC);
  Buffer<float> lse(rows);
  return record("attention", [&] { cuda::attention_forward(y, lse, qkv, B, T_, NH, HS, nullptr); },
                {3 * BTC * E + BTC * E + 4 * rows});
}

template <typename T>
std::vector<KernelRun> attention_backward_runs(int B, int NH, int T_) {
  constexpr int HS = 64;
  const double E = sizeof(T), BTC = static_cast<double>(B) * T_ * NH * HS, rows = static_cast<double>(B) * T_ * NH;
  Buffer<T> dqkv(3 * BTC), dy(BTC), qkv(3 * BTC), y(BTC);
  Buffer<float> lse(rows), scratch(cuda::attention_scratch_floats(B, T_, NH));
  // row_dot: D = rowsum(dy·y). dK/dV: q, k, v, dy, lse, D read; dk, dv written. dQ: the same
  // reads; dq written.
  const double reads = 4 * BTC * E + 8 * rows;
  const bool flash = sizeof(T) == 2;
  return record("attention", [&] { cuda::attention_backward(dqkv, scratch, dy, qkv, y, lse, B, T_, NH, HS, nullptr); },
                flash ? std::vector<double>{2 * BTC * E + 4 * rows, reads + 2 * BTC * E, reads + BTC * E}
                      : std::vector<double>{2 * BTC * E + 4 * rows, reads + BTC * E, reads + 2 * BTC * E});
}

// Attention at the training shape B = 8, NH = 12 (d12 at micro-batch 8), T_ tokens, head size 64:
// the flash kernels (bf16) or the simple ones (fp32), forward and backward; and the decode kernel
// at the last position of one sequence of 4 heads. Under the SIMT layer the forward and backward
// launch one sequence of 4 heads and stand for the 96 (sequence, head) blocks with scale 24: a
// count on 4 heads is cheap, and a launch of 4 heads alone would leave most of a large card idle,
// so a prediction made for it would describe no training run. A real GPU launches all 96.
template <typename T>
void add_attention_cases(std::vector<AuditCase>& out, int T_) {
  const double E = sizeof(T);
  constexpr int kTrainB = 8, kTrainNH = 12, HS = 64;
#if defined(GPT2_SIMT)
  const int B = 1, NH = 4;
#else
  const int B = kTrainB, NH = kTrainNH;
#endif
  const int scale = kTrainB * kTrainNH / (B * NH);
  // Causal attention FLOPs: QKᵀ and PV over the lower triangle, 2·T²/2·HS each per head (forward);
  // the backward recomputes S and computes dV, dP, dQ, dK: 5 of those products.
  const double tri = static_cast<double>(T_) * (T_ + 1) / 2 * HS * 2 * kTrainB * kTrainNH;
  auto shape_of = [&](int b, int nh) {
    return "B=" + std::to_string(b) + " T=" + std::to_string(T_) + " NH=" + std::to_string(nh) + " HS=64";
  };
  AuditCase f;
  f.op = "attention forward";
  f.file = "attention";
  f.dtype = dtype_name<T>();
  f.C = kTrainNH * HS;
  f.shape = shape_of(kTrainB, kTrainNH);
  f.scale = scale;
  if (scale > 1) f.counted_shape = shape_of(B, NH);
  f.memory_bound = false;
  f.flops = 2 * tri;
  f.run = [=] { return attention_forward_runs<T>(B, NH, T_); };
  out.push_back(f);
  AuditCase b = f;
  b.op = "attention backward";
  b.flops = 5 * tri;
  b.run = [=] { return attention_backward_runs<T>(B, NH, T_); };
  out.push_back(b);
  AuditCase d;
  d.op = "attention decode";
  d.file = "attention_decode";
  d.dtype = dtype_name<T>();
  constexpr int kDecodeNH = 4, kDecodeC = kDecodeNH * HS;
  d.C = kDecodeC;
  d.shape = "pos=" + std::to_string(T_ - 1) + " NH=" + std::to_string(kDecodeNH) + " HS=64";
  d.run = [=] {
    const int C = kDecodeC, NH = kDecodeNH;
    Buffer<T> y(C), qkv(3 * static_cast<size_t>(T_) * C);
    Buffer<float> scratch(static_cast<size_t>(NH) * T_);
    // The new query, every cached key and value, the output row.
    return record("attention_decode", [&] { cuda::attention_decode(y, scratch, qkv, T_ - 1, C, NH, nullptr); },
                  {C * E + 2.0 * T_ * C * E + C * E + 8.0 * NH * T_});
  };
  out.push_back(d);
}

}  // namespace

std::string short_kernel_name(const std::string& demangled) {
  std::string s = demangled;
  for (const char* ns : {"(anonymous namespace)::", "gpt2::cuda::"})
    for (size_t p; (p = s.find(ns)) != std::string::npos;) s.erase(p, std::strlen(ns));
  // Drop the return type and the parameter list: keep "name<args>".
  int depth = 0;
  size_t open = std::string::npos;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '<') ++depth;
    if (s[i] == '>') --depth;
    if (s[i] == '(' && depth == 0) {
      open = i;
      break;
    }
  }
  if (open != std::string::npos) s = s.substr(0, open);
  if (const size_t sp = s.find(' '); sp != std::string::npos && s.compare(0, 5, "void ") == 0) s = s.substr(sp + 1);
  for (size_t p; (p = s.find("__nv_bfloat16")) != std::string::npos;) s.replace(p, 13, "bf16");
  return s;
}

std::vector<AuditCase> audit_cases(const std::vector<int>& widths) {
  std::vector<AuditCase> cases;
  for (int C : widths) {
    add_memory_cases<bf16>(cases, C);
    add_memory_cases<float>(cases, C);
  }
  // Attention works per (sequence, head) block, and a head's rows are the same 64 contiguous
  // elements at any width, so one training shape stands for every width. The simple kernels
  // (fp32, and head sizes the flash kernels do not take) run every lane's scalar loop: T = 256
  // keeps the audit to minutes with the same per-warp pattern.
  add_attention_cases<bf16>(cases, 1024);
  add_attention_cases<float>(cases, 256);
  add_width_free_cases<bf16>(cases);
  add_width_free_cases<float>(cases);
  return cases;
}

std::vector<KernelRun> attention_runs(const std::string& dtype, bool backward, int B, int NH, int T) {
  if (dtype == "bf16") return backward ? attention_backward_runs<bf16>(B, NH, T) : attention_forward_runs<bf16>(B, NH, T);
  if (dtype == "fp32")
    return backward ? attention_backward_runs<float>(B, NH, T) : attention_forward_runs<float>(B, NH, T);
  throw std::runtime_error("attention_runs: dtype '" + dtype + "' is not bf16 or fp32");
}

}  // namespace gpt2::audit
