// A one-line progress bar for long jobs (prepro, large conversions), on stderr:
//
//   prepro [##########----------]  48%  12.1 MB / 25.3 MB  2,901,223 tok  1.20 M tok/s  ETA 0:11
//
// On a terminal it redraws in place at most 10 times a second. When stderr is not a terminal
// (CI logs) it prints a plain line every 10 seconds instead, so logs stay short.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace gpt2 {

class ProgressBar {
 public:
  enum class Mode { kAuto, kAlways, kNever };
  // kAuto shows the bar only when `total` is at least `min_total` (a "long" job).
  ProgressBar(std::string label, uint64_t total, Mode mode = Mode::kAuto, uint64_t min_total = 16'000'000);
  ~ProgressBar();  // ends the line if the bar was drawn
  // `done` counts toward `total` (bytes); `tokens` is shown with its rate.
  void update(uint64_t done, uint64_t tokens);
  void finish();
  bool enabled() const { return enabled_; }

 private:
  void draw(bool final_line);
  std::string label_;
  uint64_t total_, done_ = 0, tokens_ = 0;
  bool enabled_, tty_, drawn_ = false, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace gpt2
