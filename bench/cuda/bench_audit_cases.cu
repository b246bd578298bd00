// The kernel audit's cases (tests/simt/audit/audit_cases.cpp) timed on a real GPU, each beside the
// time the audit predicts for this card (kernels/cuda/kernel_audit.json), so one GPU run calibrates
// the model of engine/plan/kernel_cost_model.h. bench/gpu_check.sh runs it.
//   bench_audit_cases [--json FILE] [--widths 768,1600] [--filter TEXT]
// Under the SIMT layer it builds but refuses to run: an emulation's timings mean nothing.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "engine/plan/audited_ops.h"
#include "engine/plan/gpu_catalog.h"
#include "nlohmann/json.hpp"
#include "tests/simt/audit/audit_cases.h"

int main(int argc, char** argv) {
  std::string json_path, filter;
  std::vector<int> widths{768, 1600};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--json" || a == "--filter" || a == "--widths") && i + 1 < argc) {
      const std::string v = argv[++i];
      if (a == "--json") json_path = v;
      if (a == "--filter") filter = v;
      if (a == "--widths") {
        widths.clear();
        for (size_t p = 0; p <= v.size();) {
          const size_t q = std::min(v.find(',', p), v.size());
          const int c = std::atoi(v.substr(p, q - p).c_str());
          if (c < 64 || c % 64 != 0) {
            std::fprintf(stderr, "bench_audit_cases: --widths: '%s' is not a multiple of 64\n", v.c_str());
            return 2;
          }
          widths.push_back(c);
          p = q + 1;
        }
      }
    } else {
      std::fprintf(stderr, "usage: bench_audit_cases [--json FILE] [--widths 768,1600] [--filter TEXT]\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
#if defined(GPT2_SIMT)
  std::fprintf(stderr, "bench_audit_cases: built against the SIMT layer; timings need a real GPU\n");
  return 77;
#else
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "SKIPPED bench_audit_cases: no CUDA device\n");
    return 77;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  const gpt2::GpuSpec* card = gpt2::match_gpu_by_device_name(prop.name);
  const gpt2::AuditedOps& audited = gpt2::default_audited_ops();
  std::printf("device: %s (%s); predictions: %s\n", prop.name, card ? card->name.c_str() : "not in the catalog",
              audited.path.empty() ? "none (kernels/cuda/kernel_audit.json missing)" : audited.path.c_str());
  std::printf("%-28s %-5s %-26s %11s %11s %7s %9s\n", "op", "dtype", "shape", "measured us", "predicted", "ratio",
              "GB/s");
  nlohmann::json out = nlohmann::json::array();
  for (const gpt2::audit::AuditCase& c : gpt2::audit::audit_cases(widths)) {
    const std::string label = c.op + " " + c.dtype + " " + c.shape;
    if (!filter.empty() && label.find(filter) == std::string::npos) continue;
    const std::vector<gpt2::audit::KernelRun> runs = c.run();
    const double us = runs.at(0).measured_us, bytes = runs.at(0).compulsory_bytes;
    double predicted = -1;
    for (const gpt2::AuditedOp& a : audited.ops)
      if (card && a.op == c.op && a.dtype == c.dtype && a.shape == c.shape && a.predicted_s.count(card->name))
        predicted = a.predicted_s.at(card->name) * 1e6;
    std::printf("%-28s %-5s %-26s %11.1f %11.1f %7.2f %9.0f\n", c.op.c_str(), c.dtype.c_str(), c.shape.c_str(), us,
                predicted, predicted > 0 ? us / predicted : 0.0, bytes / (us * 1e3));
    out.push_back({{"op", c.op},
                   {"dtype", c.dtype},
                   {"shape", c.shape},
                   {"measured_us", us},
                   {"predicted_us", predicted},
                   {"compulsory_bytes", bytes}});
  }
  if (!json_path.empty()) {
    std::ofstream f(json_path);
    f << nlohmann::json{{"device", prop.name}, {"card", card ? card->name : ""}, {"cases", out}}.dump(1) << "\n";
    if (!f) {
      std::fprintf(stderr, "bench_audit_cases: --json: cannot write %s\n", json_path.c_str());
      return 1;
    }
  }
  return 0;
#endif
}
