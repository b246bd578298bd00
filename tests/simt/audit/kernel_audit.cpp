// kernel_audit: every kernel of kernels/cuda at GPT-2 widths under the SIMT layer, with what a GPU
// would see: global sectors per request and efficiency, unique against compulsory bytes, shared
// wavefronts against the ideal, registers/spills/occupancy from ptxas, and the predicted time on
// every card. Built by the `audit` preset: cmake --preset audit && cmake --build --preset audit.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "audit_report.h"

int main(int argc, char** argv) {
  CLI::App app{"kernel_audit: the CUDA kernels' memory traffic, bank conflicts, occupancy and predicted time, "
               "counted on the CPU"};
  gpt2::audit::AuditOptions options;
  std::string json_path, widths = "768,1600";
  app.add_option("--json", json_path, "also write the report as JSON to this file");
  app.add_option("--widths", widths, "model widths C to run, comma-separated (head size 64)");
  app.add_option("--filter", options.filter, "only the cases whose op, dtype, shape or file contains this text");
  app.add_option("--resources", options.resources_path,
                 "ptxas resource table (default: the build's, else kernels/cuda/kernel_resources.json)");
  app.add_flag("--sites", options.sites, "list each kernel's most wasteful instructions (file:line)");
  bool check_scale = false;
  app.add_flag("--check-scale", check_scale,
               "instead of the report: check that attention's counts over 3 sequences are exactly 3x those of one "
               "(what the attention cases' scale rests on)");
  CLI11_PARSE(app, argc, argv);
  if (check_scale) {
    try {
      const std::vector<std::string> problems = gpt2::audit::check_attention_scale(128, 3, stdout);
      for (const std::string& p : problems) std::fprintf(stderr, "kernel_audit: --check-scale: %s\n", p.c_str());
      if (!problems.empty()) return 1;
      std::printf("attention's counts scale exactly with the number of sequences\n");
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kernel_audit: %s\n", e.what());
      return 1;
    }
  }
  options.widths.clear();
  std::stringstream ss(widths);
  for (std::string w; std::getline(ss, w, ',');) {
    try {
      size_t used = 0;
      const int c = std::stoi(w, &used);
      if (used != w.size() || c < 64 || c % 64 != 0) throw std::invalid_argument(w);
      options.widths.push_back(c);
    } catch (const std::exception&) {
      std::fprintf(stderr, "kernel_audit: --widths: '%s' is not a multiple of 64 (head size 64)\n", w.c_str());
      return 2;
    }
  }
  // The output is checked before the minutes of work: a temporary beside it must be writable.
  if (!json_path.empty()) {
    const std::string tmp = json_path + ".tmp";
    std::ofstream probe(tmp);
    if (!probe) {
      std::fprintf(stderr, "kernel_audit: --json: cannot write %s\n", json_path.c_str());
      return 2;
    }
    probe.close();
    std::remove(tmp.c_str());
  }
  try {
    const nlohmann::json report = gpt2::audit::run_audit(options, stderr);
    if (report["cases"].empty()) {
      std::fprintf(stderr, "kernel_audit: --filter: '%s' matches no case (try an op such as \"layernorm\" or a dtype)\n",
                   options.filter.c_str());
      return 2;
    }
    gpt2::audit::print_audit_table(report, stdout);
    if (!json_path.empty()) {
      const std::string tmp = json_path + ".tmp";
      std::ofstream f(tmp);
      f << report.dump(1) << "\n";
      f.close();
      if (!f || std::rename(tmp.c_str(), json_path.c_str()) != 0) {
        std::fprintf(stderr, "kernel_audit: --json: cannot write %s\n", json_path.c_str());
        std::remove(tmp.c_str());
        return 1;
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kernel_audit: %s\n", e.what());
    return 1;
  }
  return 0;
}
