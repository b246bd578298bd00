#include "audit_report.h"

#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <stdexcept>

#include "engine/plan/gpu_catalog.h"
#include "engine/plan/kernel_cost_model.h"

namespace gpt2::audit {
namespace {

using nlohmann::json;

// The architectures whose resources the report lists, and their table names.
const char* const kArchs[] = {"sm_80", "sm_86", "sm_89", "sm_90", "sm_100", "sm_120"};

// A path inside the checkout as "kernels/cuda/x.cu" or "tests/simt/...": reports name no machine.
std::string project_relative(const std::string& path) {
  for (const char* top : {"/kernels/", "/tests/", "/engine/"})
    if (const size_t k = path.rfind(top); k != std::string::npos) return path.substr(k + 1);
  return path;
}

uintptr_t main_load_bias() {
  uintptr_t bias = 0;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        *static_cast<uintptr_t*>(data) = info->dlpi_addr;
        return 1;
      },
      &bias);
  return bias;
}

// "file:line" of instruction addresses in this executable, through addr2line (binutils); the
// address itself when that fails.
std::map<uintptr_t, std::string> symbolize(const std::vector<uintptr_t>& pcs) {
  std::map<uintptr_t, std::string> out;
  if (pcs.empty()) return out;
  const uintptr_t bias = main_load_bias();
  std::string cmd = "addr2line -e /proc/" + std::to_string(getpid()) + "/exe";
  for (uintptr_t pc : pcs) {
    char buf[32];
    std::snprintf(buf, sizeof buf, " 0x%lx", static_cast<unsigned long>(pc - bias - 1));
    cmd += buf;
  }
  std::FILE* p = popen((cmd + " 2>/dev/null").c_str(), "r");
  char line[4096];
  for (uintptr_t pc : pcs) {
    std::string where;
    if (p && std::fgets(line, sizeof line, p)) {
      where = line;
      while (!where.empty() && (where.back() == '\n' || where.back() == ' ')) where.pop_back();
      if (const size_t k = where.find(" (discriminator"); k != std::string::npos) where.resize(k);
      where = project_relative(where);
    }
    if (where.empty() || where[0] == '?') {
      char buf[32];
      std::snprintf(buf, sizeof buf, "pc 0x%lx", static_cast<unsigned long>(pc));
      where = buf;
    }
    out[pc] = where;
  }
  if (p) pclose(p);
  return out;
}

double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

json kernel_entry(const AuditCase& c, const KernelRun& r, const KernelResourceTable* table, bool sites) {
  const simt::trace::LaunchCounts& k = r.counts;
  const simt::trace::GlobalCounts& g = k.global;
  const simt::trace::SharedCounts& s = k.shared;
  json e;
  e["kernel"] = r.kernel;
  e["shape"] = c.shape;
  if (c.scale > 1) {
    e["counted_shape"] = c.counted_shape;
    e["scale"] = c.scale;
  }
  e["op"] = c.op;
  e["dtype"] = c.dtype;
  e["C"] = c.C;
  e["memory_bound"] = c.memory_bound;
  e["launch"] = {{"grid", {k.grid.x, k.grid.y, k.grid.z}},
                 {"block", {k.block.x, k.block.y, k.block.z}},
                 {"dynamic_smem", k.dynamic_smem}};
  const double sectors = static_cast<double>(g.load_sectors + g.store_sectors);
  const double requested = static_cast<double>(g.load_bytes + g.store_bytes);
  const double unique = 32.0 * static_cast<double>(g.unique_load_sectors + g.unique_store_sectors);
  e["global"] = {{"load_requests", g.load_requests},
                 {"load_sectors", g.load_sectors},
                 {"store_requests", g.store_requests},
                 {"store_sectors", g.store_sectors},
                 {"bytes_requested", requested},
                 {"efficiency", ratio(requested, sectors * 32)},
                 {"unique_bytes", unique},
                 {"compulsory_bytes", r.compulsory_bytes}};
  e["shared"] = {{"requests", s.load_requests + s.store_requests},
                 {"wavefronts", s.wavefronts},
                 {"ideal_wavefronts", s.ideal_wavefronts}};
  e["mma"] = k.mma;

  const int threads = static_cast<int>(k.block.x * k.block.y * k.block.z);
  const LaunchResources launch{threads, static_cast<int64_t>(k.dynamic_smem)};
  const char* full_name = simt::kernel_name(k.func);
  std::map<std::string, Occupancy> occupancy;  // by architecture
  json res = json::object();
  for (const char* arch : kArchs) {
    const KernelResources* kr = table && full_name ? table->find(full_name, arch) : nullptr;
    if (!kr) continue;
    const Occupancy o = compute_occupancy(*kr, launch);
    occupancy[arch] = o;
    res[arch] = {{"registers", kr->registers},
                 {"spill_bytes", kr->spill_store_bytes + kr->spill_load_bytes},
                 {"stack_bytes", kr->stack_bytes},
                 {"static_smem", kr->static_smem},
                 {"blocks_per_sm", o.blocks_per_sm},
                 {"occupancy", o.occupancy},
                 {"limit", occupancy_limit_name(o.limit)},
                 {"refused", o.refused}};
  }
  e["resources"] = res;

  KernelTraffic t;
  t.load_requests = static_cast<double>(g.load_requests);
  t.load_sectors = static_cast<double>(g.load_sectors);
  t.store_sectors = static_cast<double>(g.store_sectors);
  t.load_bytes = static_cast<double>(g.load_bytes);
  t.unique_bytes = unique;
  t.shared_wavefronts = static_cast<double>(s.wavefronts);
  t.mma = static_cast<double>(k.mma);
  t.blocks = static_cast<int64_t>(k.grid.x) * k.grid.y * k.grid.z;
  // The launch the case stands for: `scale` times the counted blocks, alike and independent.
  for (double* count : {&t.load_requests, &t.load_sectors, &t.store_sectors, &t.load_bytes, &t.unique_bytes,
                        &t.shared_wavefronts, &t.mma})
    *count *= c.scale;
  t.blocks *= c.scale;
  t.threads_per_block = threads;
  json predicted = json::object(), bound = json::object();
  for (const GpuSpec& card : gpu_catalog()) {
    const SmArchitecture& sm = catalog_card_architecture(card.name);
    Occupancy o;
    if (auto it = occupancy.find(sm.arch); it != occupancy.end()) {
      o = it->second;
    } else {  // no ptxas entry for this architecture: a full SM assumed
      o.warps_per_sm = sm.max_warps_per_sm();
    }
    const KernelTimePrediction p = predict_kernel_time(t, o, card, sm);
    predicted[card.name] = p.seconds * 1e6;
    bound[card.name] = p.bound;
  }
  e["predicted_us"] = predicted;
  e["bound"] = bound;

  if (sites) {
    // The instructions that lose most: global sectors beyond the bytes requested, shared
    // wavefronts beyond the ideal.
    std::vector<const simt::trace::SiteCounts*> v;
    for (const auto& site : k.sites) v.push_back(&site);
    auto waste = [](const simt::trace::SiteCounts* x) {
      return x->shared ? 128.0 * static_cast<double>(x->wavefronts - x->ideal_wavefronts)
                       : 32.0 * static_cast<double>(x->sectors) - static_cast<double>(x->bytes);
    };
    std::sort(v.begin(), v.end(), [&](auto* a, auto* b) { return waste(a) > waste(b); });
    if (v.size() > 4) v.resize(4);
    std::vector<uintptr_t> pcs;
    for (auto* x : v)
      if (x->pc) pcs.push_back(x->pc);
    const std::map<uintptr_t, std::string> where = symbolize(pcs);
    json list = json::array();
    for (auto* x : v) {
      if (waste(x) <= 0) continue;
      std::string at = x->pc ? where.at(x->pc) : std::string(x->file ? x->file : "?") + ":" + std::to_string(x->line);
      json j = {{"at", at}, {"space", x->shared ? "shared" : "global"}, {"store", x->store}, {"requests", x->requests}};
      if (x->shared)
        j["wavefronts_per_ideal"] = ratio(static_cast<double>(x->wavefronts), static_cast<double>(x->ideal_wavefronts));
      else
        j["efficiency"] = ratio(static_cast<double>(x->bytes), 32.0 * static_cast<double>(x->sectors));
      list.push_back(j);
    }
    e["worst_sites"] = list;
  }
  return e;
}

}  // namespace

json run_audit(const AuditOptions& options, std::FILE* progress) {
  KernelResourceTable table;
  const std::string path = options.resources_path.empty() ? default_kernel_resources_path() : options.resources_path;
  table = load_kernel_resources(path);
  json report;
  report["resources"] = {{"path", project_relative(path)}, {"compiler", table.compiler}, {"date", table.date}};
  report["kernels"] = json::array();
  report["cases"] = json::array();
  const std::vector<AuditCase> cases = audit_cases(options.widths);
  for (size_t i = 0; i < cases.size(); ++i) {
    const AuditCase& c = cases[i];
    const std::string label = c.op + " " + c.dtype + " " + c.shape;
    if (!options.filter.empty() && label.find(options.filter) == std::string::npos &&
        c.file.find(options.filter) == std::string::npos)
      continue;
    if (progress) {
      std::fprintf(progress, "[%zu/%zu] %s\n", i + 1, cases.size(), label.c_str());
      std::fflush(progress);
    }
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<KernelRun> runs = c.run();
    if (progress) {
      std::fprintf(progress, "      %.1f s\n",
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      std::fflush(progress);
    }
    json names = json::array();
    json predicted = json::object();
    double compulsory = 0;
    for (const KernelRun& r : runs) {
      json e = kernel_entry(c, r, &table, options.sites);
      names.push_back(e["kernel"]);
      compulsory += r.compulsory_bytes * c.scale;
      for (auto& [card, us] : e["predicted_us"].items())
        predicted[card] = predicted.value(card, 0.0) + us.get<double>();
      report["kernels"].push_back(std::move(e));
    }
    report["cases"].push_back({{"op", c.op},
                               {"file", c.file},
                               {"dtype", c.dtype},
                               {"C", c.C},
                               {"shape", c.shape},
                               {"scale", c.scale},
                               {"memory_bound", c.memory_bound},
                               {"flops", c.flops},
                               {"compulsory_bytes", compulsory},
                               {"launches", runs.size()},
                               {"kernels", names},
                               {"predicted_us", predicted}});
  }
  return report;
}

std::vector<std::string> check_attention_scale(int T, int factor, std::FILE* out) {
  const char* plant = std::getenv("GPT2_AUDIT_SCALE_PLANT");
  const int NH = 4, many_NH = plant && std::string(plant) == "extra-head" ? NH + 1 : NH;
  std::vector<std::string> problems;
  for (const char* dtype : {"bf16", "fp32"})
    for (bool backward : {false, true}) {
      const std::vector<KernelRun> one = attention_runs(dtype, backward, 1, NH, T);
      const std::vector<KernelRun> many = attention_runs(dtype, backward, factor, many_NH, T);
      if (one.size() != many.size()) {
        problems.push_back(std::string(dtype) + (backward ? " backward" : " forward") + ": " +
                           std::to_string(one.size()) + " launches against " + std::to_string(many.size()));
        continue;
      }
      for (size_t i = 0; i < one.size(); ++i) {
        const simt::trace::LaunchCounts &a = one[i].counts, &b = many[i].counts;
        auto blocks = [](const simt::trace::LaunchCounts& k) {
          return static_cast<uint64_t>(k.grid.x) * k.grid.y * k.grid.z;
        };
        const std::pair<const char*, std::pair<uint64_t, uint64_t>> fields[] = {
            {"blocks", {blocks(a), blocks(b)}},
            {"load_requests", {a.global.load_requests, b.global.load_requests}},
            {"load_sectors", {a.global.load_sectors, b.global.load_sectors}},
            {"load_bytes", {a.global.load_bytes, b.global.load_bytes}},
            {"store_requests", {a.global.store_requests, b.global.store_requests}},
            {"store_sectors", {a.global.store_sectors, b.global.store_sectors}},
            {"store_bytes", {a.global.store_bytes, b.global.store_bytes}},
            {"unique_load_sectors", {a.global.unique_load_sectors, b.global.unique_load_sectors}},
            {"unique_store_sectors", {a.global.unique_store_sectors, b.global.unique_store_sectors}},
            {"shared_requests",
             {a.shared.load_requests + a.shared.store_requests, b.shared.load_requests + b.shared.store_requests}},
            {"wavefronts", {a.shared.wavefronts, b.shared.wavefronts}},
            {"ideal_wavefronts", {a.shared.ideal_wavefronts, b.shared.ideal_wavefronts}},
            {"mma", {a.mma, b.mma}},
        };
        int bad = 0;
        for (const auto& [name, v] : fields)
          if (v.second != v.first * static_cast<uint64_t>(factor)) {
            ++bad;
            problems.push_back(one[i].kernel + " [" + dtype + "]: " + name + " " + std::to_string(v.second) + " for " +
                               std::to_string(factor) + " sequences, " + std::to_string(factor) + " x " +
                               std::to_string(v.first) + " expected");
          }
        if (out)
          std::fprintf(out, "%-60s %s: %s\n", one[i].kernel.c_str(), dtype,
                       bad ? "does NOT scale" : ("every count x" + std::to_string(factor)).c_str());
      }
    }
  return problems;
}

void print_audit_table(const json& report, std::FILE* out) {
  std::fprintf(out, "%-62s %-24s %5s %6s %6s %5s %5s %6s %9s %9s %s\n", "kernel", "shape", "eff", "uniq/c",
               "wf/id", "occ86", "occ90", "spl90", "h100 us", "3060 us", "bound h100");
  auto occ = [](const json& e, const char* arch) -> std::string {
    if (!e["resources"].contains(arch)) return "-";
    char b[16];
    std::snprintf(b, sizeof b, "%.0f%%", 100 * e["resources"][arch]["occupancy"].get<double>());
    return b;
  };
  for (const json& e : report["kernels"]) {
    const json& g = e["global"];
    const json& s = e["shared"];
    const double wf = s["ideal_wavefronts"].get<double>() > 0
                          ? s["wavefronts"].get<double>() / s["ideal_wavefronts"].get<double>()
                          : 0.0;
    const std::string spills =
        e["resources"].contains("sm_90") ? std::to_string(e["resources"]["sm_90"]["spill_bytes"].get<int>()) : "-";
    std::string name = e["kernel"].get<std::string>();
    if (name.size() > 62) name = name.substr(0, 59) + "...";
    std::fprintf(out, "%-62s %-24s %5.2f %6.2f %6s %5s %5s %6s %9.1f %9.1f %s\n", name.c_str(),
                 e["shape"].get<std::string>().c_str(), g["efficiency"].get<double>(),
                 ratio(g["unique_bytes"].get<double>(), g["compulsory_bytes"].get<double>()),
                 wf > 0 ? (std::to_string(wf).substr(0, 4)).c_str() : "-", occ(e, "sm_86").c_str(),
                 occ(e, "sm_90").c_str(), spills.c_str(), e["predicted_us"]["h100-80gb"].get<double>(),
                 e["predicted_us"]["rtx3060-12gb"].get<double>(), e["bound"]["h100-80gb"].get<std::string>().c_str());
    if (e.contains("worst_sites"))
      for (const json& w : e["worst_sites"]) {
        if (w.contains("efficiency"))
          std::fprintf(out, "    %s %s at %s: efficiency %.2f over %llu requests\n", w["space"].get<std::string>().c_str(),
                       w["store"].get<bool>() ? "store" : "load", w["at"].get<std::string>().c_str(),
                       w["efficiency"].get<double>(), w["requests"].get<unsigned long long>());
        else
          std::fprintf(out, "    %s %s at %s: %.2f wavefronts per ideal over %llu requests\n",
                       w["space"].get<std::string>().c_str(), w["store"].get<bool>() ? "store" : "load",
                       w["at"].get<std::string>().c_str(), w["wavefronts_per_ideal"].get<double>(),
                       w["requests"].get<unsigned long long>());
      }
  }
}

}  // namespace gpt2::audit
