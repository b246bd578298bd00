// Progress bar on stderr; see progress.h.
#include "engine/util/progress.h"

#include <unistd.h>

#include <cstdio>

#include "engine/util/units.h"

namespace gpt2 {
namespace {

std::string decimal_bytes(double b) {
  const char* unit[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000.0 && u < 4) {
    b /= 1000.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
  return buf;
}

std::string rate(double per_s) {
  char buf[32];
  if (per_s >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2f M", per_s / 1e6);
  } else if (per_s >= 1e3) {
    std::snprintf(buf, sizeof buf, "%.1f k", per_s / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f ", per_s);
  }
  return buf;
}

std::string clock(double s) {
  if (s < 0 || s > 359999) return "--:--";
  const long t = long(s + 0.5);
  char buf[32];
  if (t >= 3600) {
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  }
  return buf;
}

}  // namespace

ProgressBar::ProgressBar(std::string label, uint64_t total, Mode mode, uint64_t min_total)
    : label_(std::move(label)), total_(total), tty_(::isatty(STDERR_FILENO) == 1) {
  enabled_ = mode == Mode::kAlways || (mode == Mode::kAuto && total >= min_total);
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

ProgressBar::~ProgressBar() {
  if (drawn_ && !finished_ && tty_) std::fputc('\n', stderr);
}

void ProgressBar::update(uint64_t done, uint64_t tokens) {
  done_ = done;
  tokens_ = tokens;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  if (since < (tty_ ? 0.1 : 10.0)) return;
  last_draw_ = now;
  draw(false);
}

void ProgressBar::finish() {
  if (!enabled_ || finished_) return;
  done_ = total_ > done_ ? total_ : done_;
  draw(true);
  finished_ = true;
}

void ProgressBar::draw(bool final_line) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double frac = total_ ? double(done_) / double(total_) : 1.0;
  constexpr int kWidth = 20;
  const int filled = int(frac * kWidth + 0.5);
  std::string bar(size_t(filled < 0 ? 0 : filled > kWidth ? kWidth : filled), '#');
  bar.resize(kWidth, '-');
  const double tok_rate = elapsed > 0 ? double(tokens_) / elapsed : 0.0;
  const double eta = (frac > 0 && !final_line) ? elapsed * (1.0 - frac) / frac : 0.0;
  std::string line = label_ + " [" + bar + "] ";
  char pct[16];
  std::snprintf(pct, sizeof pct, "%3.0f%%", frac * 100.0);
  line += pct;
  line += "  " + decimal_bytes(double(done_)) + " / " + decimal_bytes(double(total_));
  line += "  " + format_count(int64_t(tokens_)) + " tok  " + rate(tok_rate) + "tok/s";
  line += final_line ? "  in " + clock(elapsed) : "  ETA " + clock(eta);
  if (tty_) {
    std::fprintf(stderr, "\r%s\033[K%s", line.c_str(), final_line ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace gpt2
