#include "engine/train/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "engine/util/errors.h"

namespace gpt2 {

LrScheduleKind parse_lr_schedule(const std::string& s) {
  if (s == "cosine") return LrScheduleKind::Cosine;
  if (s == "linear") return LrScheduleKind::Linear;
  if (s == "constant") return LrScheduleKind::Constant;
  if (s == "wsd") return LrScheduleKind::Wsd;
  throw ConfigError("--lr-schedule", "unknown schedule '" + s + "' (cosine, linear, constant, wsd)");
}

const char* to_string(LrScheduleKind k) {
  switch (k) {
    case LrScheduleKind::Cosine: return "cosine";
    case LrScheduleKind::Linear: return "linear";
    case LrScheduleKind::Constant: return "constant";
    case LrScheduleKind::Wsd: return "wsd";
  }
  return "?";
}

double learning_rate(const LrSchedule& s, int64_t step) {
  if (step < s.warmup) return s.lr * static_cast<double>(step + 1) / static_cast<double>(s.warmup);
  const double min_lr = s.lr * s.final_lr_frac;
  const int64_t decay_steps = std::max<int64_t>(1, s.total_steps - s.warmup - 1);
  const double p = std::clamp(static_cast<double>(step - s.warmup) / static_cast<double>(decay_steps), 0.0, 1.0);
  switch (s.kind) {
    case LrScheduleKind::Cosine: return min_lr + (s.lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * p));
    case LrScheduleKind::Linear: return s.lr - (s.lr - min_lr) * p;
    case LrScheduleKind::Constant: return s.lr;
    case LrScheduleKind::Wsd: {
      const double start = 1.0 - kWsdDecayFraction;
      if (p <= start) return s.lr;
      return s.lr - (s.lr - min_lr) * (p - start) / kWsdDecayFraction;
    }
  }
  return s.lr;
}

}  // namespace gpt2
