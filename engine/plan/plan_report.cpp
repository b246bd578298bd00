#include "engine/plan/plan_report.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

#include "engine/plan/config_json.h"
#include "engine/util/units.h"

namespace gpt2 {

namespace {

constexpr Category kAllCategories[kNumCategories] = {
    Category::Parameters,  Category::Gradients, Category::MasterWeights, Category::AdamM,     Category::AdamV,
    Category::Activations, Category::Scratch,   Category::Logits,        Category::Workspace, Category::Reserve};

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

std::string pct(double part, double whole) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%5.1f%%", whole > 0 ? 100.0 * part / whole : 0.0);
  return buf;
}

Category largest_category(const MemoryPlan& plan) {
  Category best = Category::Parameters;
  int64_t best_bytes = -1;
  for (Category c : kAllCategories) {
    if (plan.category_bytes(c) > best_bytes) {
      best_bytes = plan.category_bytes(c);
      best = c;
    }
  }
  return best;
}

// The offloaded optimizer's host arena: its buffers, total and the host budget.
void print_host_arena(std::ostream& os, const MemoryPlan& plan, const Budget& budget) {
  char line[512];
  os << "\n  host arena (offloaded optimizer, pinned host memory)\n";
  for (const Buffer& b : plan.host_buffers) {
    std::snprintf(line, sizeof line, "      %-22s %-26s %-5s %12s  %s\n", b.name.c_str(), shape_string(b.shape).c_str(),
                  to_string(b.dtype), format_bytes(b.bytes).c_str(), to_string(b.category));
    os << line;
  }
  std::snprintf(line, sizeof line, "  %-15s %15s %12s\n", "host total", format_count(plan.host_arena_bytes).c_str(),
                format_bytes(plan.host_arena_bytes).c_str());
  os << line;
  std::snprintf(line, sizeof line, "  %-15s %15s %12s  (%s)\n", "host budget", format_count(budget.host_bytes).c_str(),
                format_bytes(budget.host_bytes).c_str(), budget.host_source.c_str());
  os << line;
}

// The "bound" column of a predicted op.
const char* bound_label(const OpPrediction& o, bool with_audit) {
  if (o.cost.resource == OpResource::HostLink) return "host link";
  if (o.cost.resource == OpResource::HostMemory) return "host memory";
  if (o.cost.cls == OpClass::Comm) return "interconnect";
  if (o.compute_bound) return with_audit && o.audited ? "compute (audit)" : "compute";
  return with_audit && o.audited ? "memory (audit)" : "memory";
}

}  // namespace

Verdict judge(const MemoryPlan& plan, const Budget& budget) {
  Verdict v;
  const int64_t total = plan.total_bytes();
  v.margin_bytes = budget.bytes - total;
  v.fits = v.margin_bytes >= 0;
  const Category big = largest_category(plan);
  const int64_t big_bytes = plan.category_bytes(big);
  char buf[512];
  if (v.fits) {
    std::snprintf(buf, sizeof buf, "FITS: needs %s of %s (%s), %s to spare. Largest category: %s, %s.",
                  format_bytes(total).c_str(), format_bytes(budget.bytes).c_str(), budget.source.c_str(),
                  format_bytes(v.margin_bytes).c_str(), to_string(big), format_bytes(big_bytes).c_str());
  } else {
    std::snprintf(buf, sizeof buf,
                  "DOES NOT FIT: needs %s but the budget is %s (%s), %s over. %s take %s (%s of the total).",
                  format_bytes(total).c_str(), format_bytes(budget.bytes).c_str(), budget.source.c_str(),
                  format_bytes(-v.margin_bytes).c_str(), to_string(big), format_bytes(big_bytes).c_str(),
                  pct(static_cast<double>(big_bytes), static_cast<double>(total)).c_str());
  }
  v.text = buf;
  if (plan.host_arena_bytes > 0) {
    // The offloaded optimizer's host arena against the host budget (named by its flag).
    const int64_t host_margin = budget.host_bytes - plan.host_arena_bytes;
    if (host_margin >= 0) {
      std::snprintf(buf, sizeof buf, " Host arena (offloaded optimizer): %s of %s (%s), %s to spare.",
                    format_bytes(plan.host_arena_bytes).c_str(), format_bytes(budget.host_bytes).c_str(),
                    budget.host_source.c_str(), format_bytes(host_margin).c_str());
    } else {
      v.fits = false;
      std::snprintf(buf, sizeof buf,
                    " DOES NOT FIT in host memory: the offloaded optimizer's host arena needs %s but --host-mem "
                    "allows %s (%s), %s over.",
                    format_bytes(plan.host_arena_bytes).c_str(), format_bytes(budget.host_bytes).c_str(),
                    budget.host_source.c_str(), format_bytes(-host_margin).c_str());
    }
    v.text += buf;
  }
  return v;
}

void print_plan(std::ostream& os, const MemoryPlan& plan, const Budget& budget, const AutoFitResult* autofit) {
  const auto& r = plan.run;
  char line[512];
  os << "Model   " << plan.model.describe() << ", " << format_count(plan.num_params) << " parameters\n";
  std::snprintf(line, sizeof line,
                "Run     device=%s precision=%s master_weights=%s B=%d T=%d grad_accum=%d "
                "(%s tokens/step) recompute=%s logits_chunk=%d zero=%d world_size=%d rank=%d%s\n",
                to_string(r.device), to_string(r.precision), r.master_weights == 1 ? "on" : "off", r.micro_batch,
                r.seq_len, plan.grad_accum, format_count(r.total_batch_tokens).c_str(), to_string(r.recompute).c_str(),
                r.logits_chunk, r.zero_stage, r.world_size, r.rank, plan.offloaded() ? " offload=optimizer" : "");
  os << line << "\n";

  const double total = static_cast<double>(plan.total_bytes());
  os << "  category            bytes         size      share\n";
  for (Category c : kAllCategories) {
    const int64_t b = plan.category_bytes(c);
    std::snprintf(line, sizeof line, "  %-15s %15s %12s  %s%s\n", to_string(c), format_count(b).c_str(),
                  format_bytes(b).c_str(), pct(static_cast<double>(b), total).c_str(),
                  c == Category::Reserve ? "  (outside the arena)" : "");
    os << line;
  }
  std::snprintf(line, sizeof line, "  %-15s %15s %12s\n", "arena", format_count(plan.arena_bytes).c_str(),
                format_bytes(plan.arena_bytes).c_str());
  os << "  ----------------------------------------------------\n" << line;
  std::snprintf(line, sizeof line, "  %-15s %15s %12s\n\n", "total", format_count(plan.total_bytes()).c_str(),
                format_bytes(plan.total_bytes()).c_str());
  os << line;

  std::vector<const Buffer*> order;
  for (const auto& b : plan.buffers) order.push_back(&b);
  std::stable_sort(order.begin(), order.end(), [](const Buffer* a, const Buffer* b) { return a->bytes > b->bytes; });
  os << "  10 largest buffers\n";
  for (size_t i = 0; i < order.size() && i < 10; ++i) {
    const Buffer& b = *order[i];
    std::snprintf(line, sizeof line, "  %2zu. %-22s %-26s %-5s %12s  %s\n", i + 1, b.name.c_str(),
                  shape_string(b.shape).c_str(), to_string(b.dtype), format_bytes(b.bytes).c_str(),
                  to_string(b.category));
    os << line;
  }
  if (plan.offloaded()) print_host_arena(os, plan, budget);
  os << "\n" << judge(plan, budget).text << "\n\n";
  print_prediction(os, plan, budget.gpu);
  if (autofit && autofit->found) {
    os << "\nAuto-fit (" << budget.gpu.description << "):\n";
    for (const auto& why : autofit->reasons) os << "  - " << why << "\n";
    os << "  flags: " << run_flags(autofit->best.run) << "\n";
  }
}

std::string prediction_summary(const StepTimePrediction& p) {
  char line[256];
  std::snprintf(line, sizeof line, "%.4g s/step, %.0f tok/s, MFU %.1f%% of %.4g TFLOP/s%s", p.step_s, p.tokens_per_s,
                100.0 * p.mfu, p.peak_flops / 1e12, p.estimate ? " (estimate)" : "");
  return line;
}

void print_prediction(std::ostream& os, const MemoryPlan& plan, const GpuSpec& device) {
  const StepTimePrediction p = predict_step_time(plan, device);
  char line[256];
  os << "Predicted step time (roofline per op, " << device.name << ": " << device.description
     << "; efficiencies: " << device.eff.basis
     << (std::any_of(p.ops.begin(), p.ops.end(), [](const OpPrediction& o) { return o.audited; })
             ? ", the kernel audit's for the ops marked (audit)"
             : "")
     << ")\n  " << prediction_summary(p) << "\n";
  std::snprintf(line, sizeof line, "  %-30s %8s %10s %10s %10s  %s\n", "op", "calls", "GFLOP", "MB", "pred ms",
                "bound");
  os << line;
  for (const OpPrediction& o : p.ops) {
    std::snprintf(line, sizeof line, "  %-30s %8lld %10.2f %10.1f %10.3f  %s%s%s\n", o.cost.name,
                  static_cast<long long>(o.cost.calls), o.cost.flops / 1e9, o.cost.bytes / 1e6, o.seconds * 1e3,
                  bound_label(o, true), o.note.empty() ? "" : "; ", o.note.c_str());
    os << line;
  }
}

void print_suggestion(std::ostream& os, const AutoFitResult& fit, const Budget& budget) {
  if (fit.found) {
    os << "\nTo fit " << format_bytes(budget.bytes) << " with the same "
       << format_count(fit.best.run.total_batch_tokens) << " tokens per step, use:\n  " << run_flags(fit.best.run)
       << "\n  (grad_accum " << fit.best.grad_accum << ", " << format_bytes(fit.best.total_bytes);
    if (fit.best.run.offload == Offload::Optimizer)
      os << " and a host arena of " << format_bytes(fit.best.host_bytes) << " for the offloaded optimizer";
    os << "; or pass --micro-batch auto)\n";
  } else if (fit.host_budget_exceeded) {
    os << "\nNothing fits: with the optimizer offloaded to host memory a plan fits " << format_bytes(budget.bytes)
       << ", but its host arena of " << format_bytes(fit.smallest.host_bytes) << " is over the host budget of "
       << format_bytes(budget.host_bytes) << " (" << budget.host_source
       << "). Give more host memory with --host-mem, or use a smaller model, more GPUs with --zero 1, or a larger "
          "card.\n";
  } else {
    os << "\nNothing fits " << format_bytes(budget.bytes) << ": even the smallest configuration ("
       << run_flags(fit.smallest.run) << ") needs " << format_bytes(fit.smallest.total_bytes)
       << (fit.offload_searched ? " with the optimizer offloaded to host memory" : "")
       << ". Use a smaller model, a shorter --seq-len, more GPUs with --zero 1, or a larger card.\n";
  }
}

std::string plan_json(const MemoryPlan& plan, const Budget& budget, const AutoFitResult* autofit) {
  using nlohmann::json;
  const Verdict v = judge(plan, budget);
  json j;
  j["model"] = model_config_json(plan.model);
  j["params"] = plan.num_params;
  j["total_bytes"] = plan.total_bytes();
  j["arena_bytes"] = plan.arena_bytes;
  j["reserve_bytes"] = plan.reserve_bytes;
  j["budget_bytes"] = budget.bytes;
  j["budget_source"] = budget.source;
  j["fits"] = v.fits;
  j["verdict"] = v.text;
  j["plan_hash"] = plan.hash();
  j["config"] = run_config_json(plan);
  json cats = json::object();
  for (Category c : kAllCategories) cats[to_string(c)] = plan.category_bytes(c);
  j["categories"] = cats;
  json bufs = json::array();
  for (const auto& b : plan.buffers)
    bufs.push_back({{"name", b.name},
                    {"category", to_string(b.category)},
                    {"dtype", to_string(b.dtype)},
                    {"shape", b.shape},
                    {"offset", b.offset},
                    {"bytes", b.bytes}});
  j["buffers"] = bufs;
  if (plan.offloaded()) {
    json host = json::array();
    for (const auto& b : plan.host_buffers)
      host.push_back({{"name", b.name},
                      {"category", to_string(b.category)},
                      {"dtype", to_string(b.dtype)},
                      {"shape", b.shape},
                      {"offset", b.offset},
                      {"bytes", b.bytes}});
    j["host_arena"] = {{"bytes", plan.host_arena_bytes},
                       {"budget_bytes", budget.host_bytes},
                       {"budget_source", budget.host_source},
                       {"buffers", host}};
  }
  {
    const StepTimePrediction p = predict_step_time(plan, budget.gpu);
    json ops = json::array();
    for (const OpPrediction& o : p.ops) {
      json op = {{"name", o.cost.name},
                 {"class", to_string(o.cost.cls)},
                 {"calls", o.cost.calls},
                 {"flops", o.cost.flops},
                 {"bytes", o.cost.bytes},
                 {"predicted_s", o.seconds},
                 {"basis", o.audited ? "audit" : "class"},
                 {"bound", bound_label(o, false)}};
      if (o.hidden_s > 0) op["hidden_s"] = o.hidden_s;
      if (!o.note.empty()) op["note"] = o.note;
      ops.push_back(op);
    }
    j["prediction"] = {{"device", budget.gpu.name},
                       {"step_s", p.step_s},
                       {"tokens_per_s", p.tokens_per_s},
                       {"mfu", p.mfu},
                       {"peak_flops", p.peak_flops},
                       {"estimate", p.estimate},
                       {"efficiency_basis", budget.gpu.eff.basis},
                       {"ops", ops}};
  }
  if (autofit) {
    json a = {{"found", autofit->found},
              {"considered", autofit->considered},
              {"fitting", autofit->fitting},
              {"offload_searched", autofit->offload_searched},
              {"reasons", autofit->reasons}};
    if (autofit->found) {
      a["flags"] = run_flags(autofit->best.run);
      a["predicted_tokens_per_s"] = autofit->best.predicted.tokens_per_s;
      a["predicted_step_s"] = autofit->best.predicted.step_s;
      a["predicted_mfu"] = autofit->best.predicted.mfu;
    }
    j["autofit"] = a;
  }
  return j.dump(2);
}

}  // namespace gpt2
