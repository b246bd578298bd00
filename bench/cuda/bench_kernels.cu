// One microbenchmark for the CUDA kernels, driven by the op table (tests/ops/op_table.cpp): its
// timed rows (scope kBench) are GPT-2's training shapes at d12 (B=64, T=1024, C=768, NH=12) and
// d48 (B=16, T=1024, C=1600, NH=25), bf16 storage.
//
// 1. Measures the card's ceilings: device-to-device cudaMemcpy bandwidth ((read + write) bytes
//    per second) and a large cuBLASLt bf16 GEMM (8192^3) in TFLOP/s.
// 2. Checks every op it times: the table's quick cases of that op, fp32 and bf16, through the
//    CUDA backend against the CPU backend, as tests/ops/test_backend_ops does (failures only are
//    printed). A failed check marks that op's rows and makes the exit code 1; timing still runs.
// 3. Times each stage of each row (tests/ops/backend_ops.cpp: the Backend calls of the op, with
//    the bytes or FLOPs the stage states) on the CUDA backend, inputs in its arena: CUDA events on
//    the backend's stream, warm-up, L2 flushed between repeats, median of the repeats.
//    Bytes = one read of each input + one write of each output; GEMM FLOPs = 2·M·N·K; attention
//    FLOPs as FlashAttention counts them (causal forward 2·B·T²·C, backward 2.5×).
// 4. Prints a table (ms, GB/s or TFLOP/s, % of the measured ceiling) and writes JSON (--json).
// --quick-rows times the table's small quick rows instead, without the ceilings: a smoke test of
// the benchmark itself, and the only run it makes under the SIMT layer (elsewhere there it exits
// 77: an emulation's timings mean nothing).
//
// Usage: bench_kernels [--json out.json] [--repeats N] [--only d12|d48] [--op NAME[,NAME...]]
//                      [--no-check] [--quick-rows] [--list] [--help]
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "bench/cuda/bench_util.cuh"
#include "engine/util/errors.h"
#include "kernels/cuda/matmul.cuh"
#include "tests/ops/backend_ops.h"

using namespace gpt2;
using gpt2::cuda::bf16;

namespace {

// Deterministic pseudo-random fill on the device (uniform in [lo, hi)), for the ceiling GEMM.
__global__ void fill_kernel(bf16* p, size_t n, uint32_t seed, float lo, float hi) {
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 0x9e3779b1u ^ seed;
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    h *= 0x846ca68bu;
    h ^= h >> 16;
    p[i] = cuda::from_float<bf16>(lo + (hi - lo) * (h >> 8) * (1.0f / 16777216.0f));
  }
}

// The ceilings' own device buffers (the benchmark measures the card, outside any arena).
struct Scratch {
  void* p = nullptr;
  explicit Scratch(size_t bytes) { CUDA_CHECK(cudaMalloc(&p, bytes)); }
  ~Scratch() { cudaFree(p); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <typename T>
  T* as() const {
    return static_cast<T*>(p);
  }
};

void measure_ceilings(bench::BenchReport& report) {
  const size_t bytes = static_cast<size_t>(1) << 30;
  {
    Scratch src(bytes), dst(bytes);
    const float ms = bench::time_median_ms([&] { cudaMemcpyAsync(dst.p, src.p, bytes, cudaMemcpyDeviceToDevice); },
                                           report.repeats, report.warmup, &report.flusher());
    report.copy_gbps = 2.0 * bytes / (ms * 1e-3) / 1e9;
  }
  const int n = 8192;
  const size_t nn = static_cast<size_t>(n) * n;
  Scratch A(nn * sizeof(bf16)), B(nn * sizeof(bf16)), D(nn * sizeof(bf16)), ws(cuda::kMatmulWorkspaceBytes);
  CUDA_CHECK(cuda::launch(fill_kernel, 1024, 256, 0, nullptr, A.as<bf16>(), nn, 1u, -1.f, 1.f));
  CUDA_CHECK(cuda::launch(fill_kernel, 1024, 256, 0, nullptr, B.as<bf16>(), nn, 2u, -1.f, 1.f));
  cuda::MatmulContext ctx;
  cuda::matmul_context_init(ctx, ws.p, cuda::kMatmulWorkspaceBytes, nullptr, 0);
  const float gms = bench::time_median_ms(
      [&] { cuda::matmul_raw(ctx, D.as<bf16>(), A.as<bf16>(), B.as<bf16>(), n, n, n, true, false, 0.0f, 0); },
      report.repeats, report.warmup, &report.flusher());
  cuda::matmul_context_destroy(ctx);
  report.gemm_tflops = 2.0 * n * n * static_cast<double>(n) / (gms * 1e-3) / 1e12;
  std::printf("ceilings: copy %.0f GB/s (1 GiB D2D, read+write), bf16 GEMM %.0f TFLOP/s (8192^3, cuBLASLt)\n",
              report.copy_gbps, report.gemm_tflops);
}

// The table's quick cases of `ops` through both backends; true per op when all its cases passed.
std::map<ops::Op, bool> check_ops(const std::vector<ops::Op>& ops_timed) {
  std::vector<ops::OpInstance> cases = ops::make_instances(ops::kQuick, ops::kBoth, ops_timed, "");
  ops::Harness harness(cases, true);
  ops::Report quiet(false);  // failures only
  std::map<ops::Op, bool> ok;
  std::map<ops::Op, int> count;
  for (ops::OpInstance& c : cases) {
    const bool passed = harness.check(c, quiet, false, nullptr);
    ok[c.c.op] = ok.count(c.c.op) ? ok[c.c.op] && passed : passed;
    ++count[c.c.op];
  }
  std::printf("checks against the CPU backend (the table's quick cases, fp32 and bf16):");
  for (const auto& [op, passed] : ok)
    std::printf(" %s %s (%d);", ops::op_name(op), passed ? "ok" : "FAILED", count[op]);
  std::printf("\n");
  return ok;
}

// "N=65536 C=768 OC=2304 bias" from "matmul bf16 N=65536 C=768 OC=2304 bias".
std::string shape_of(const std::string& label) {
  const size_t a = label.find(' '), b = label.find(' ', a + 1);
  return b == std::string::npos ? label : label.substr(b + 1);
}

void time_rows(bench::BenchReport& report, std::vector<ops::OpInstance>& rows, const std::map<ops::Op, bool>& ok) {
  ops::Harness harness(rows, false);
  ops::Side& dev = harness.device();
  const cudaStream_t stream = static_cast<cudaStream_t>(harness.cuda().native_stream());
  for (ops::OpInstance& inst : rows) {
    const bool checked = !ok.count(inst.c.op) || ok.at(inst.c.op);
    std::printf("timing %s ...\n", inst.label.c_str());
    dev.bind(inst);
    dev.reset();
    // "matmul_fwd qkv d12"; the quick rows (--quick-rows) are told apart by their shape alone.
    const std::string tag =
        inst.c.bench_label.empty() ? "" : (inst.c.what.empty() ? "" : " " + inst.c.what) + " " + inst.c.bench_label;
    std::string shape = shape_of(inst.label);
    std::vector<const ops::Stage*> timed;
    for (const ops::Stage& st : inst.stages) {
      auto run = [&] { st.run(dev); };
      if (st.bytes == 0 && st.flops == 0) {  // untimed: run once, in order, for the stages after it
        run();
        continue;
      }
      timed.push_back(&st);
      const float ms = bench::time_median_ms(run, report.repeats, report.warmup, &report.flusher(), stream);
      std::string note;
      if (st.name == "encoder_bwd") note = " (+ host grouping)";
      if (st.name == "global_norm") note = " (+ result to host)";
      if (st.flops > 0)
        report.add_tflops(st.name + tag, shape + note, ms, st.flops, checked);
      else
        report.add_gbps(st.name + tag, shape + note, ms, st.bytes, checked);
    }
    if (inst.c.op == ops::Op::Attention && timed.size() == 2) {  // the training step's pair
      const float ms = bench::time_median_ms(
          [&] {
            timed[0]->run(dev);
            timed[1]->run(dev);
          },
          report.repeats, report.warmup, &report.flusher(), stream);
      report.add_tflops("attention_fwd+bwd" + tag, shape, ms, timed[0]->flops + timed[1]->flops, checked);
    }
  }
}

// checked: false with --no-check (the check column says "-", the JSON's checked_ok is null).
void print_and_write(const bench::BenchReport& report, const char* json_path, bool checked) {
  std::printf("\n%-36s %-40s %9s %12s %8s %s\n", "kernel", "shape", "ms", "throughput", "% ceil", "check");
  for (const auto& r : report.rows)
    std::printf("%-36s %-40s %9.4f %8.1f %-7s %6.1f%% %s\n", r.name.c_str(), r.shape.c_str(), r.ms, r.value,
                r.unit.c_str(), r.pct_of_ceiling,
                !checked       ? "-"
                : r.checked_ok ? "ok"
                               : "FAILED");
  if (!json_path) return;
  FILE* f = std::fopen(json_path, "w");
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", json_path);
    return;
  }
  std::fprintf(f, "{\n  \"device\": \"%s\",\n  \"copy_gbps\": %.1f,\n  \"gemm_tflops\": %.1f,\n  \"rows\": [\n",
               report.device.c_str(), report.copy_gbps, report.gemm_tflops);
  for (size_t i = 0; i < report.rows.size(); ++i) {
    const auto& r = report.rows[i];
    std::fprintf(f,
                 "    {\"name\": \"%s\", \"shape\": \"%s\", \"ms\": %.5f, \"value\": %.2f, \"unit\": \"%s\", "
                 "\"pct_of_ceiling\": %.1f, \"checked_ok\": %s}%s\n",
                 r.name.c_str(), r.shape.c_str(), r.ms, r.value, r.unit.c_str(), r.pct_of_ceiling,
                 !checked       ? "null"
                 : r.checked_ok ? "true"
                                : "false",
                 i + 1 < report.rows.size() ? "," : "");
  }
  std::fprintf(f, "  ]\n}\n");
  std::fclose(f);
  std::printf("\nwrote %s\n", json_path);
}

void usage(const char* argv0, FILE* to) {
  std::fprintf(to,
               "usage: %s [--json out.json] [--repeats N] [--only d12|d48] [--op NAME[,NAME...]] [--no-check]\n"
               "          [--quick-rows] [--list] [--help]\n"
               "  --json FILE   also write the rows as JSON\n"
               "  --repeats N   timed repeats per row (median; default 30)\n"
               "  --only NAME   only the rows of one model's shapes (d12 or d48)\n"
               "  --op NAMES    only these ops (as test_backend_ops names them, e.g. attention,matmul)\n"
               "  --no-check    skip the checks against the CPU backend before timing\n"
               "  --quick-rows  time the table's small quick rows (bf16), no ceilings: a smoke test\n"
               "  --list        print the rows and what each stage counts, and exit\n",
               argv0);
}

}  // namespace

int main(int argc, char** argv) {
  const char* json = nullptr;
  std::string only;
  int repeats = 30;
  bool check = true, quick_rows = false, list = false;
  std::vector<ops::Op> only_ops;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) {
      json = argv[++i];
    } else if (!std::strcmp(argv[i], "--repeats") && i + 1 < argc) {
      repeats = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) {
      only = argv[++i];
    } else if (!std::strcmp(argv[i], "--op") && i + 1 < argc) {
      const std::string names = argv[++i];
      for (size_t p = 0; p <= names.size();) {
        const size_t q = std::min(names.find(',', p), names.size());
        ops::Op op;
        if (!ops::parse_op(names.substr(p, q - p), &op)) {
          std::fprintf(stderr, "unknown op '%s'\n", names.substr(p, q - p).c_str());
          return 2;
        }
        only_ops.push_back(op);
        p = q + 1;
      }
    } else if (!std::strcmp(argv[i], "--no-check")) {
      check = false;
    } else if (!std::strcmp(argv[i], "--quick-rows")) {
      quick_rows = true;
    } else if (!std::strcmp(argv[i], "--list")) {
      list = true;
    } else if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      usage(argv[0], stdout);
      return 0;
    } else {
      usage(argv[0], stderr);
      return 2;
    }
  }
  if (repeats < 1 || (!only.empty() && only != "d12" && only != "d48")) {
    usage(argv[0], stderr);
    return 2;
  }
  std::vector<ops::OpInstance> rows;
  if (quick_rows) rows = ops::make_instances(ops::kQuick, ops::kBF16, only_ops, "");
  for (const char* label : {"d12", "d48"})
    if (!quick_rows && (only.empty() || only == label))
      for (ops::OpInstance& r : ops::make_instances(ops::kBench, ops::kBF16, only_ops, "", label))
        rows.push_back(std::move(r));
  std::vector<ops::Op> ops_timed;
  for (const ops::OpInstance& r : rows)
    if (std::find(ops_timed.begin(), ops_timed.end(), r.c.op) == ops_timed.end()) ops_timed.push_back(r.c.op);

  if (list) {
    for (const ops::OpInstance& r : rows)
      for (const ops::Stage& st : r.stages)
        if (st.flops > 0)
          std::printf("%-24s %-58s %10.1f GFLOP\n", st.name.c_str(), r.label.c_str(), st.flops / 1e9);
        else if (st.bytes > 0)
          std::printf("%-24s %-58s %10.1f MB\n", st.name.c_str(), r.label.c_str(), st.bytes / 1e6);
    return 0;
  }
#if defined(GPT2_SIMT)
  if (!quick_rows) {
    std::fprintf(stderr, "bench_kernels: built against the SIMT layer; timings need a real GPU (or --quick-rows)\n");
    return 77;
  }
#endif
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("SKIPPED bench_kernels: no CUDA device\n");
    return 77;
  }
  bench::BenchReport report;
  report.repeats = repeats;
  if (quick_rows) report.warmup = 1;
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  report.device = prop.name;
  std::printf("bench_kernels on %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);

  if (!quick_rows) measure_ceilings(report);
  std::map<ops::Op, bool> ok;
  if (check) ok = check_ops(ops_timed);
  time_rows(report, rows, ok);
  bool all_ok = true;
  for (const auto& r : report.rows) all_ok &= r.checked_ok;
  print_and_write(report, json, check);
  return all_ok ? 0 : 1;
}
