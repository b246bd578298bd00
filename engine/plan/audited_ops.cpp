#include "engine/plan/audited_ops.h"

#include <sys/stat.h>

#include <cmath>
#include <cstdlib>
#include <fstream>

#include "engine/util/errors.h"
#include "nlohmann/json.hpp"

namespace gpt2 {

const AuditedOp* AuditedOps::find(const std::string& op, const std::string& dtype, int C) const {
  const AuditedOp* best = nullptr;
  for (const AuditedOp& a : ops) {
    if (a.op != op || a.dtype != dtype) continue;
    if (!best || std::abs(a.C - C) < std::abs(best->C - C)) best = &a;
  }
  return best;
}

AuditedOps load_audited_ops(const std::string& path) {
  AuditedOps out;
  out.path = path;
  std::ifstream f(path);
  if (!f) throw FileError(path, "cannot open the kernel audit");
  try {
    const nlohmann::json j = nlohmann::json::parse(f);
    for (const auto& c : j.at("cases")) {
      AuditedOp a;
      a.op = c.at("op").get<std::string>();
      a.dtype = c.at("dtype").get<std::string>();
      a.C = c.at("C").get<int>();
      a.shape = c.at("shape").get<std::string>();
      a.memory_bound = c.at("memory_bound").get<bool>();
      a.flops = c.at("flops").get<double>();
      a.compulsory_bytes = c.at("compulsory_bytes").get<double>();
      a.launches = c.at("launches").get<int>();
      for (const auto& [card, us] : c.at("predicted_us").items()) a.predicted_s[card] = us.get<double>() * 1e-6;
      out.ops.push_back(std::move(a));
    }
  } catch (const nlohmann::json::exception& e) {
    throw FileError(path, std::string("not a kernel_audit report (") + e.what() + ")");
  }
  return out;
}

const AuditedOps& default_audited_ops() {
  static const AuditedOps ops = [] {
    struct stat st{};
    if (::stat(GPT2_KERNEL_AUDIT_PATH, &st) != 0) return AuditedOps{};
    return load_audited_ops(GPT2_KERNEL_AUDIT_PATH);
  }();
  return ops;
}

double audited_efficiency(const AuditedOp& op, const std::string& card, double bandwidth_bytes_s, double peak_flops,
                          double launch_s) {
  const auto it = op.predicted_s.find(card);
  if (it == op.predicted_s.end()) return -1;
  const double busy = it->second - op.launches * launch_s;
  if (busy <= 0) return -1;
  const double eff = op.memory_bound ? op.compulsory_bytes / (busy * bandwidth_bytes_s) : op.flops / (busy * peak_flops);
  return eff > 0 ? std::min(eff, 1.0) : -1;
}

}  // namespace gpt2
