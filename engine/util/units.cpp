#include "engine/util/units.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "engine/util/errors.h"

namespace gpt2 {

int64_t parse_bytes(const std::string& text, const std::string& flag) {
  const auto bad = [&](const std::string& why) {
    return ConfigError(flag, "malformed size '" + text + "' (" + why + "; examples: 12GiB, 11.5G, 512MiB, 24GB)");
  };
  size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  size_t num_start = i;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == num_start) throw bad("no number");
  const std::string number = text.substr(num_start, i - num_start);
  char* end = nullptr;
  const double value = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size() || !std::isfinite(value)) throw bad("bad number");
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  std::string unit;
  for (; i < text.size(); ++i) unit += static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
  double mult = 0;
  if (unit.empty() || unit == "b")
    mult = 1;
  else if (unit == "k" || unit == "kib")
    mult = 1024.0;
  else if (unit == "m" || unit == "mib")
    mult = 1024.0 * 1024;
  else if (unit == "g" || unit == "gib")
    mult = 1024.0 * 1024 * 1024;
  else if (unit == "t" || unit == "tib")
    mult = 1024.0 * 1024 * 1024 * 1024;
  else if (unit == "kb")
    mult = 1e3;
  else if (unit == "mb")
    mult = 1e6;
  else if (unit == "gb")
    mult = 1e9;
  else if (unit == "tb")
    mult = 1e12;
  else
    throw bad("unknown unit '" + unit + "'");
  const double bytes = value * mult;
  if (value == 0) throw ConfigError(flag, "'" + text + "' is zero bytes; give a size, e.g. 12GiB, 512MiB");
  if (bytes < 1) {
    if (unit.empty())
      throw ConfigError(flag, "'" + text + "' is less than one byte: a number without a unit counts bytes; " +
                                  "give a unit, e.g. " + number + "GiB");
    throw ConfigError(flag, "'" + text + "' is less than one byte; give a size of at least 1 byte, e.g. 512MiB");
  }
  if (bytes > 9.0e18) throw bad("too large");
  return static_cast<int64_t>(std::llround(bytes));
}

std::string format_bytes(int64_t bytes) {
  char buf[64];
  const double b = static_cast<double>(bytes);
  const double ab = std::fabs(b);
  if (ab >= kGiB)
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / kGiB);
  else if (ab >= kMiB)
    std::snprintf(buf, sizeof buf, "%.1f MiB", b / kMiB);
  else if (ab >= kKiB)
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / kKiB);
  else
    std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(bytes));
  return buf;
}

std::string format_count(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  int c = 0;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    if (c > 0 && c % 3 == 0) out.insert(out.begin(), ',');
    out.insert(out.begin(), *it);
    ++c;
  }
  return n < 0 ? "-" + out : out;
}

std::string format_duration(double seconds) {
  char buf[64];
  if (!(seconds >= 0)) return "?";
  if (seconds < 10) {
    std::snprintf(buf, sizeof buf, "%.2g s", seconds);
  } else if (seconds < 60) {
    std::snprintf(buf, sizeof buf, "%.0f s", seconds);
  } else if (seconds < 3600) {
    const long s = std::lround(seconds);
    std::snprintf(buf, sizeof buf, "%ld min %ld s", s / 60, s % 60);
  } else {
    const long m = std::lround(seconds / 60);
    std::snprintf(buf, sizeof buf, "%ld h %ld min", m / 60, m % 60);
  }
  return buf;
}

}  // namespace gpt2
