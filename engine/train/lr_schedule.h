// Learning-rate schedules: linear warmup, then cosine, linear, constant or WSD
// (warmup-stable-decay) down to final_lr_frac · lr.
//   warmup:   lr · (step+1) / warmup                        for step < warmup
//   cosine:   min + (lr - min) · ½(1 + cos(π·p))            p = progress after warmup in [0, 1]
//   linear:   lr - (lr - min) · p
//   constant: lr
//   wsd:      lr until the last kWsdDecayFraction of the post-warmup steps, then linear to min
#pragma once
#include <cstdint>
#include <string>

namespace gpt2 {

enum class LrScheduleKind { Cosine, Linear, Constant, Wsd };
LrScheduleKind parse_lr_schedule(const std::string& s);  // ConfigError("--lr-schedule")
const char* to_string(LrScheduleKind k);

constexpr double kWsdDecayFraction = 0.2;

struct LrSchedule {
  LrScheduleKind kind = LrScheduleKind::Cosine;
  double lr = 6e-4;
  int64_t warmup = 0;
  int64_t total_steps = 1;
  double final_lr_frac = 0.0;
};

// Learning rate at 0-based step `step`.
double learning_rate(const LrSchedule& s, int64_t step);

}  // namespace gpt2
