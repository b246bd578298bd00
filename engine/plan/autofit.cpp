#include "engine/plan/autofit.h"

#include <algorithm>
#include <cstdio>

#include "engine/util/errors.h"
#include "engine/util/units.h"

namespace gpt2 {

std::string run_flags(const RunConfig& r) {
  std::string s = "--micro-batch " + std::to_string(r.micro_batch) + " --recompute " + to_string(r.recompute) +
                  " --logits-chunk " + std::to_string(r.logits_chunk);
  // Without it a run would take one micro-batch per step (grad_accum 1).
  if (r.total_batch_tokens > 0) s += " --total-batch-tokens " + std::to_string(r.total_batch_tokens);
  if (r.offload == Offload::Optimizer) s += " --offload optimizer";
  return s;
}

namespace {

std::vector<Recompute> policies(const ModelConfig& m) {
  std::vector<Recompute> out;
  out.push_back({Recompute::None, -1});
  out.push_back({Recompute::Gelu, -1});
  out.push_back({Recompute::Norm, -1});
  for (int k = 1; k < m.num_layers; ++k) out.push_back({Recompute::Budget, k});
  out.push_back({Recompute::Block, -1});
  return out;
}

// How much recompute a policy does, for tie-breaking (less is better).
int recompute_rank(const Recompute& r, int L) {
  switch (r.kind) {
    case Recompute::None: return 0;
    case Recompute::Gelu: return 1;
    case Recompute::Norm: return 2;
    case Recompute::Budget: return 3 + r.budget_layers;
    case Recompute::Block: return 3 + L;
  }
  return 1 << 20;
}

bool better(const AutoFitCandidate& a, const AutoFitCandidate& b, int L) {
  const double ta = a.predicted.tokens_per_s, tb = b.predicted.tokens_per_s;
  if (ta > tb * (1 + 1e-9)) return true;
  if (tb > ta * (1 + 1e-9)) return false;
  const int ra = recompute_rank(a.run.recompute, L), rb = recompute_rank(b.run.recompute, L);
  if (ra != rb) return ra < rb;
  if (a.run.logits_chunk != b.run.logits_chunk) return a.run.logits_chunk > b.run.logits_chunk;
  return a.total_bytes < b.total_bytes;
}

std::string describe(const AutoFitCandidate& c) {
  char buf[320];
  std::snprintf(buf, sizeof buf, "B=%d accum=%d recompute=%s chunk=%d%s: %s, %.0f tok/s at MFU %.0f%% predicted%s",
                c.run.micro_batch, c.grad_accum, to_string(c.run.recompute).c_str(), c.run.logits_chunk,
                c.run.offload == Offload::Optimizer ? " offload=optimizer" : "", format_bytes(c.total_bytes).c_str(),
                c.predicted.tokens_per_s, 100.0 * c.predicted.mfu, c.predicted.estimate ? " (estimate)" : "");
  return buf;
}

// "0.4%": how much slower `a` is predicted than `b`.
std::string percent_slower(const AutoFitCandidate& a, const AutoFitCandidate& b) {
  const double p = 100.0 * (1.0 - a.predicted.tokens_per_s / b.predicted.tokens_per_s);
  char pct[32];
  std::snprintf(pct, sizeof pct, p < 0.1 ? "%.3f%%" : "%.1f%%", p);
  return pct;
}

// "0.4%": how much faster `a` is predicted than `b`.
std::string percent_faster(const AutoFitCandidate& a, const AutoFitCandidate& b) {
  const double p = 100.0 * (a.predicted.tokens_per_s / b.predicted.tokens_per_s - 1.0);
  char pct[32];
  std::snprintf(pct, sizeof pct, p < 0.1 ? "%.3f%%" : "%.1f%%", p);
  return pct;
}

// The plans of one search (the optimizer on the device, or offloaded).
struct SearchPass {
  std::vector<AutoFitCandidate> fits;  // within the device and the host budget
  AutoFitCandidate smallest;           // the least device memory
  int considered = 0;
  bool host_budget_exceeded = false;  // a plan fit the device budget but its host arena not the host budget
};

}  // namespace

int64_t autofit_headroom_bytes(int64_t budget_bytes) {
  return std::max<int64_t>(kAutoFitMinHeadroomBytes, budget_bytes / 50);
}

AutoFitResult auto_fit(const ModelConfig& model, const AutoFitRequest& req) {
  RunConfig base = req.base;
  if (req.budget_bytes <= 0) throw ConfigError("--gpu-mem", "auto-fit needs a memory budget");
  const int64_t T = base.seq_len, W = base.world_size;
  if (T <= 0 || T > model.max_seq_len) {
    // Let the shared validation produce the message.
    RunConfig probe = base;
    probe.micro_batch = 1;
    probe.total_batch_tokens = 0;
    validate_run_config(model, probe);
  }
  if (base.total_batch_tokens <= 0) base.total_batch_tokens = 524288;
  if (base.total_batch_tokens % (T * W) != 0)
    throw ConfigError("--total-batch-tokens", std::to_string(base.total_batch_tokens) +
                                                  " is not divisible by T×world = " + std::to_string(T) + "×" +
                                                  std::to_string(W));
  const int64_t max_b = base.total_batch_tokens / (T * W);

  std::vector<int> batches;
  if (req.fix_micro_batch) {
    batches.push_back(base.micro_batch);
  } else {
    // Micro-batches that divide the tokens per step exactly: powers of two, and the step's
    // micro-batch count halved until it is at most kMaxAutoMicroBatch (for a count like 50,000
    // that has few factors of two).
    for (int64_t b = 1; b <= max_b && b <= kMaxAutoMicroBatch; b *= 2)
      if (max_b % b == 0) batches.push_back(static_cast<int>(b));
    for (int64_t b = max_b; b >= 1; b /= 2) {
      if (b <= kMaxAutoMicroBatch && max_b % b == 0 &&
          std::find(batches.begin(), batches.end(), static_cast<int>(b)) == batches.end()) {
        batches.push_back(static_cast<int>(b));
        break;
      }
      if (b % 2 != 0) break;
    }
    std::sort(batches.begin(), batches.end());
  }
  std::vector<Recompute> pols = req.fix_recompute ? std::vector<Recompute>{base.recompute} : policies(model);
  if (req.fix_recompute && base.recompute.kind == Recompute::Budget && base.recompute.budget_layers < 0) {
    pols.clear();  // "budget" without K: search K
    for (int k = 0; k <= model.num_layers; ++k) pols.push_back({Recompute::Budget, k});
  }

  // One search: every combination of micro-batch, recompute policy and logits chunk, with the
  // optimizer on the device or offloaded.
  auto search = [&](Offload offload) {
    SearchPass pass;
    bool have_smallest = false;
    for (int b : batches) {
      const int64_t bt = static_cast<int64_t>(b) * T;
      std::vector<int> chunks;
      if (req.fix_logits_chunk && base.logits_chunk > 0) {
        chunks.push_back(static_cast<int>(std::min<int64_t>(base.logits_chunk, bt)));
      } else {
        // Chunks of 256 .. kMaxAutoLogitsChunk tokens: an lm_head matmul of 8192 rows already runs
        // near peak, so larger chunks would spend memory that a larger micro-batch uses better.
        for (int64_t c = 256; c < bt && c <= kMaxAutoLogitsChunk; c *= 2) chunks.push_back(static_cast<int>(c));
        if (bt <= kMaxAutoLogitsChunk) chunks.push_back(static_cast<int>(bt));
      }
      for (const auto& pol : pols) {
        for (int chunk : chunks) {
          RunConfig run = base;
          run.micro_batch = b;
          run.recompute = pol;
          run.logits_chunk = chunk;
          run.offload = offload;
          MemoryPlan plan = make_memory_plan(model, run);
          ++pass.considered;
          AutoFitCandidate cand;
          cand.run = plan.run;
          cand.grad_accum = plan.grad_accum;
          cand.total_bytes = plan.total_bytes();
          cand.host_bytes = plan.host_arena_bytes;
          cand.predicted = predict_step_time(plan, req.gpu);
          if (!have_smallest || cand.total_bytes < pass.smallest.total_bytes) {
            pass.smallest = cand;
            have_smallest = true;
          }
          const bool fits_device = cand.total_bytes <= req.budget_bytes;
          const bool fits_host = cand.host_bytes <= req.host_budget_bytes;
          if (fits_device && !fits_host) pass.host_budget_exceeded = true;
          if (fits_device && fits_host) pass.fits.push_back(cand);
        }
      }
    }
    return pass;
  };

  // The optimizer on the device first; offloaded only when nothing fits that way, unless the
  // request fixes the choice. Offload needs a CUDA training run with an fp32 master copy.
  const bool can_offload =
      base.device == Device::CUDA && base.training && !(base.precision == Precision::BF16 && base.master_weights == 0);
  std::vector<Offload> modes;
  if (req.fix_offload) {
    modes.push_back(base.offload);
  } else {
    modes.push_back(Offload::None);
    if (can_offload) modes.push_back(Offload::Optimizer);
  }
  AutoFitResult res;
  SearchPass pass;
  int64_t smallest_on_device = -1;  // the least memory of a plan with the optimizer on the device
  for (Offload mode : modes) {
    const bool first = res.considered == 0;
    pass = search(mode);
    res.considered += pass.considered;
    if (first || pass.smallest.total_bytes < res.smallest.total_bytes) res.smallest = pass.smallest;
    if (mode == Offload::Optimizer) {
      res.offload_searched = true;
      res.host_budget_exceeded = pass.host_budget_exceeded;
    } else {
      smallest_on_device = pass.smallest.total_bytes;
    }
    if (!pass.fits.empty()) break;
  }
  std::vector<AutoFitCandidate>& fits = pass.fits;
  res.fitting = static_cast<int>(fits.size());
  if (fits.empty()) return res;

  const int L = model.num_layers;
  std::stable_sort(fits.begin(), fits.end(), [&](const auto& a, const auto& b) { return better(a, b, L); });
  const AutoFitCandidate& fastest = fits.front();
  const double floor_tps = fastest.predicted.tokens_per_s * (1.0 - kAutoFitSpeedTolerance);
  res.headroom_bytes = autofit_headroom_bytes(req.budget_bytes);
  auto spare = [&](const AutoFitCandidate& c) { return req.budget_bytes - c.total_bytes; };
  // The headroom rule. `fits` is in rank order, so the first near-fastest plan that leaves the
  // headroom is the fastest such plan; when none leaves it, the near-fastest plan with the most
  // to spare (the first in rank order among equals).
  const AutoFitCandidate* chosen = nullptr;
  const AutoFitCandidate* most_spare = nullptr;
  for (const auto& c : fits) {
    if (c.predicted.tokens_per_s < floor_tps) continue;
    if (spare(c) >= res.headroom_bytes) {
      chosen = &c;
      break;
    }
    if (!most_spare || c.total_bytes < most_spare->total_bytes) most_spare = &c;
  }
  if (!chosen) chosen = most_spare;
  res.found = true;
  res.best = *chosen;
  res.fastest = fastest;
  res.plan = make_memory_plan(model, res.best.run);

  // Runners-up: the best fit for each other micro-batch size, in rank order.
  std::vector<int> seen_b{res.best.run.micro_batch};
  for (const auto& c : fits) {
    if (std::find(seen_b.begin(), seen_b.end(), c.run.micro_batch) != seen_b.end()) continue;
    seen_b.push_back(c.run.micro_batch);
    res.runners_up.push_back(c);
    if (res.runners_up.size() >= 3) break;
  }

  const std::string headroom = format_bytes(res.headroom_bytes);
  if (res.best.run.offload == Offload::Optimizer) {
    const std::string host = "its host arena takes " + format_bytes(res.best.host_bytes) + " of the host budget of " +
                             format_bytes(req.host_budget_bytes);
    if (req.fix_offload)
      res.reasons.push_back("the optimizer is offloaded to host memory as asked (--offload optimizer): " + host);
    else
      res.reasons.push_back("no plan with the optimizer on the device fits the budget of " +
                            format_bytes(req.budget_bytes) + " (the smallest needs " +
                            format_bytes(smallest_on_device) +
                            "), so the optimizer is offloaded to host memory (--offload optimizer): " + host);
  }
  if (chosen == &fastest) {
    res.reasons.push_back("chose " + describe(res.best) + ", the fastest of " + std::to_string(res.fitting) +
                          " fitting configurations (" + std::to_string(res.considered) + " planned), " +
                          format_bytes(spare(res.best)) + " to spare");
  } else {
    res.reasons.push_back("chose " + describe(res.best) + ", " + format_bytes(spare(res.best)) + " to spare, " +
                          percent_slower(res.best, fastest) + " slower than the fastest of " +
                          std::to_string(res.fitting) + " fitting configurations (" + std::to_string(res.considered) +
                          " planned), " + describe(fastest) + " with " + format_bytes(spare(fastest)) + " to spare");
  }
  char rule[320];
  std::snprintf(rule, sizeof rule,
                "headroom rule: of the plans predicted within %.0f%% of the fastest, the fastest that leaves at "
                "least %s to spare (max(256 MiB, 2%% of the budget)); when none does, the one with the most to spare",
                100.0 * kAutoFitSpeedTolerance, headroom.c_str());
  res.reasons.push_back(rule);
  if (spare(res.best) < res.headroom_bytes)
    res.reasons.push_back("no plan within " + std::to_string(static_cast<int>(100 * kAutoFitSpeedTolerance + 0.5)) +
                          "% of the fastest leaves " + headroom + ": this one leaves the most, " +
                          format_bytes(spare(res.best)));
  for (const auto& c : res.runners_up) {
    const bool faster = c.predicted.tokens_per_s > res.best.predicted.tokens_per_s;
    res.reasons.push_back("next best with B=" + std::to_string(c.run.micro_batch) + ": " + describe(c) + ", " +
                          format_bytes(spare(c)) + " to spare (" +
                          (faster ? percent_faster(c, res.best) + " faster" : percent_slower(c, res.best) + " slower") +
                          ")");
  }
  // Why not a larger micro-batch without recompute? (Above the fastest plan's B: the headroom
  // rule explains a choice below it.)
  if (!req.fix_micro_batch) {
    for (int b : batches) {
      if (b <= std::max(res.best.run.micro_batch, fastest.run.micro_batch)) continue;
      RunConfig run = res.best.run;
      run.micro_batch = b;
      run.recompute = {Recompute::None, -1};
      run.logits_chunk = req.fix_logits_chunk ? base.logits_chunk : 0;
      if (run.logits_chunk > 0) run.logits_chunk = std::min<int>(run.logits_chunk, b * static_cast<int>(T));
      MemoryPlan p = make_memory_plan(model, run);
      if (p.total_bytes() > req.budget_bytes) {
        res.reasons.push_back("B=" + std::to_string(b) + " without recompute needs " + format_bytes(p.total_bytes()) +
                              ", over the budget of " + format_bytes(req.budget_bytes));
        break;
      }
    }
  }
  return res;
}

}  // namespace gpt2
