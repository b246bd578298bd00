#include "engine/train/profile_report.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <ostream>

namespace gpt2 {

ProfileReport make_profile_report(const ProfileData& data, const StepTimePrediction& prediction,
                                  const GpuSpec& device) {
  ProfileReport r;
  r.device = device.name + " (" + device.description + ")";
  r.efficiency_basis = device.eff.basis;
  r.steps = data.steps;
  r.skipped_steps = data.skipped_steps;
  const double steps = data.steps > 0 ? static_cast<double>(data.steps) : 1.0;
  r.step_measured_s = data.step_seconds / steps;
  r.step_median_s = data.median_step_seconds;
  r.step_predicted_s = prediction.step_s;
  r.model_flops_per_step = prediction.flops_per_step;
  r.peak_flops = prediction.peak_flops;
  std::vector<bool> used(data.ops.size(), false);
  for (const OpPrediction& p : prediction.ops) {
    ProfileRow row;
    row.name = p.cost.name;
    row.cls = p.cost.cls;
    row.calls_per_step = static_cast<double>(p.cost.calls);
    row.predicted_s = p.seconds;
    row.flops = p.cost.flops;
    row.bytes = p.cost.bytes;
    row.compute_bound = p.compute_bound;
    for (size_t i = 0; i < data.ops.size(); ++i) {
      if (data.ops[i].name != row.name) continue;
      used[i] = true;
      row.calls_per_step = data.ops[i].calls / steps;
      row.measured_s = data.ops[i].seconds / steps;
    }
    r.rows.push_back(row);
  }
  for (size_t i = 0; i < data.ops.size(); ++i) {
    if (used[i]) continue;
    ProfileRow row;
    row.name = data.ops[i].name;
    row.calls_per_step = data.ops[i].calls / steps;
    row.measured_s = data.ops[i].seconds / steps;
    r.rows.push_back(row);
  }
  double class_flops[kNumOpClasses] = {}, class_bytes[kNumOpClasses] = {}, class_s[kNumOpClasses] = {};
  for (ProfileRow& row : r.rows) {
    if (row.measured_s < 0) continue;
    r.ops_measured_s += row.measured_s;
    if (row.measured_s > 0 && (row.flops > 0 || row.bytes > 0))
      row.achieved = (row.compute_bound ? row.flops : row.bytes) / row.measured_s / 1e9;
    if (row.predicted_s < 0) continue;
    const int c = static_cast<int>(row.cls);
    class_flops[c] += row.flops;
    class_bytes[c] += row.bytes;
    class_s[c] += row.measured_s;
  }
  const double peak = prediction.peak_flops, bw = device.mem_bandwidth_gbs * 1e9;
  for (int c = 0; c < kNumOpClasses; ++c) {
    if (class_s[c] <= 0) continue;
    const bool memory = c == static_cast<int>(OpClass::Memory) || c == static_cast<int>(OpClass::Comm);
    r.implied[c] = memory ? class_bytes[c] / (class_s[c] * bw) : class_flops[c] / (class_s[c] * peak);
  }
  return r;
}

namespace {

std::string ms(double s) {
  if (s < 0) return "-";
  char b[32];
  std::snprintf(b, sizeof b, s * 1e3 < 10 ? "%.3f" : "%.1f", s * 1e3);
  return b;
}

}  // namespace

void print_profile(std::ostream& os, const ProfileReport& r) {
  char line[256];
  os << "profile " << r.steps << " step" << (r.steps == 1 ? "" : "s");
  if (r.skipped_steps > 0) os << " after " << r.skipped_steps << " warm-up step" << (r.skipped_steps == 1 ? "" : "s");
  os << "; prediction for " << r.device << ", efficiencies: " << r.efficiency_basis << "\n";
  std::snprintf(line, sizeof line, "  %-30s %8s %10s %7s %16s %12s  %s\n", "op", "calls", "ms/step", "% step",
                "achieved", "predicted ms", "bound");
  os << line;
  for (const ProfileRow& row : r.rows) {
    char achieved[32] = "-";
    if (row.achieved > 0)
      std::snprintf(achieved, sizeof achieved, "%.1f %s", row.achieved, row.compute_bound ? "GFLOP/s" : "GB/s");
    char share[16] = "-";
    if (row.measured_s >= 0 && r.step_measured_s > 0)
      std::snprintf(share, sizeof share, "%.1f", 100.0 * row.measured_s / r.step_measured_s);
    std::snprintf(line, sizeof line, "  %-30s %8.4g %10s %7s %16s %12s  %s\n", row.name.c_str(), row.calls_per_step,
                  ms(row.measured_s).c_str(), share, achieved, ms(row.predicted_s).c_str(),
                  row.predicted_s < 0        ? ""
                  : row.cls == OpClass::Comm ? "interconnect"
                  : row.compute_bound        ? "compute"
                                             : "memory");
    os << line;
  }
  const double outside = r.step_measured_s - r.ops_measured_s;
  std::snprintf(line, sizeof line, "  %-30s %8s %10s %7.1f\n", "(outside backend calls)", "", ms(outside).c_str(),
                r.step_measured_s > 0 ? 100.0 * outside / r.step_measured_s : 0.0);
  os << line;
  std::snprintf(line, sizeof line, "  %-30s %8s %10s %7s %16s %12s\n", "step (mean)", "", ms(r.step_measured_s).c_str(),
                "100.0", "", ms(r.step_predicted_s).c_str());
  os << line;
  const double err = r.step_median_s > 0 ? 100.0 * (r.step_predicted_s - r.step_median_s) / r.step_median_s : 0;
  std::snprintf(line, sizeof line, "  %-30s %8s %10s %7s %16s %12s  (prediction %+.1f%% of the median)\n",
                "step (median)", "", ms(r.step_median_s).c_str(), "", "", ms(r.step_predicted_s).c_str(), err);
  os << line;
  if (r.step_median_s > 0 && r.peak_flops > 0 && r.model_flops_per_step > 0) {
    const double rate = r.model_flops_per_step / r.step_median_s;
    std::snprintf(line, sizeof line, "  model FLOPs %.1f GFLOP per step: %.1f GFLOP/s at the median, %.1f%% of the peak\n",
                  r.model_flops_per_step / 1e9, rate / 1e9, 100.0 * rate / r.peak_flops);
    os << line;
  }
  os << "  measured efficiencies (as in the device table):";
  const char* names[kNumOpClasses] = {"matmul_large", "matmul_small", "attention", "memory", "interconnect"};
  for (int c = 0; c < kNumOpClasses - 1; ++c) {
    if (r.implied[c] < 0) continue;
    std::snprintf(line, sizeof line, " %s %.3f", names[c], r.implied[c]);
    os << line;
  }
  os << "\n" << std::flush;
}

std::string profile_json(const ProfileReport& r) {
  using nlohmann::json;
  json j;
  j["device"] = r.device;
  j["efficiency_basis"] = r.efficiency_basis;
  j["steps"] = r.steps;
  j["warmup_steps"] = r.skipped_steps;
  j["step_s"] = {{"measured", r.step_measured_s}, {"median", r.step_median_s}, {"predicted", r.step_predicted_s}};
  j["outside_backend_s"] = r.step_measured_s - r.ops_measured_s;
  j["model_flops_per_step"] = r.model_flops_per_step;
  j["peak_flops"] = r.peak_flops;
  json ops = json::array();
  for (const ProfileRow& row : r.rows) {
    json o = {{"name", row.name},
              {"class", to_string(row.cls)},
              {"calls_per_step", row.calls_per_step},
              {"flops", row.flops},
              {"bytes", row.bytes},
              {"measured_s", row.measured_s >= 0 ? json(row.measured_s) : json(nullptr)},
              {"predicted_s", row.predicted_s >= 0 ? json(row.predicted_s) : json(nullptr)},
              {"bound", row.predicted_s < 0        ? json(nullptr)
                        : row.cls == OpClass::Comm ? json("interconnect")
                                                   : json(row.compute_bound ? "compute" : "memory")}};
    if (row.achieved > 0) {
      o["achieved"] = row.achieved;
      o["achieved_unit"] = row.compute_bound ? "GFLOP/s" : "GB/s";
    }
    ops.push_back(o);
  }
  j["ops"] = ops;
  json eff = json::object();
  const char* names[kNumOpClasses] = {"matmul_large", "matmul_small", "attention", "memory", "interconnect"};
  for (int c = 0; c < kNumOpClasses; ++c)
    if (r.implied[c] >= 0) eff[names[c]] = r.implied[c];
  j["measured_efficiency"] = eff;
  return j.dump(2);
}

}  // namespace gpt2
