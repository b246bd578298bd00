#include "engine/cli/flag_checks.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <thread>

#include "engine/util/errors.h"

namespace gpt2 {

namespace {

// Plain decimal for the message: "1", "0.5", "1e+06"; never hundreds of digits.
std::string plain(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string quote_given(const std::string& s) { return s.size() > 40 ? s.substr(0, 40) + "..." : s; }

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// Parses a whole string as a finite number into v; returns the message for anything else.
std::string parse_finite(const std::string& s, double& v) {
  const char* begin = s.c_str();
  char* end = nullptr;
  errno = 0;
  v = std::strtod(begin, &end);
  if (end == begin || *end != '\0') return "expected a number, got '" + quote_given(s) + "'";
  if (!std::isfinite(v) || errno == ERANGE) return "must be a finite number, got " + quote_given(s);
  return "";
}

}  // namespace

CLI::Validator finite_in(double lo, double hi) {
  const bool open_top = std::isinf(hi);
  const std::string desc = open_top ? "NUMBER >= " + plain(lo) : "NUMBER in [" + plain(lo) + " - " + plain(hi) + "]";
  return CLI::Validator(
      [lo, hi, open_top](std::string& s) -> std::string {
        double v = 0;
        if (std::string err = parse_finite(s, v); !err.empty()) return err;
        if (v < lo || v > hi) {
          if (open_top) return "must be at least " + plain(lo) + ", got " + quote_given(s);
          return "must be from " + plain(lo) + " to " + plain(hi) + ", got " + quote_given(s);
        }
        return "";
      },
      desc);
}

CLI::Validator finite_positive() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        double v = 0;
        if (std::string err = parse_finite(s, v); !err.empty()) return err;
        if (!(v > 0)) return "must be positive, got " + quote_given(s);
        return "";
      },
      "NUMBER > 0");
}

CLI::Validator whole_at_least(int64_t lo) {
  return CLI::Validator(
      [lo](std::string& s) -> std::string {
        size_t i = 0;
        if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
        if (i == s.size() || s.find_first_not_of("0123456789", i) != std::string::npos)
          return "expected a whole number, got '" + quote_given(s) + "'";
        errno = 0;
        const long long v = std::strtoll(s.c_str(), nullptr, 10);
        if (errno == ERANGE) return "is too large: " + quote_given(s);
        if (v < lo) {
          if (lo == 1) return "must be positive, got " + s;
          if (lo == 0) return "must be 0 or more, got " + s;
          return "must be at least " + std::to_string(lo) + ", got " + s;
        }
        return "";
      },
      lo == 1 ? "INT > 0" : "INT >= " + std::to_string(lo));
}

CLI::Validator whole_unsigned64() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        const std::string range = "must be from 0 to 18446744073709551615, got ";
        size_t i = s.size() > 0 && s[0] == '+' ? 1 : 0;
        if (i < s.size() && s[i] == '-' && s.find_first_not_of("0123456789", i + 1) == std::string::npos &&
            i + 1 < s.size())
          return range + quote_given(s);
        if (i == s.size() || s.find_first_not_of("0123456789", i) != std::string::npos)
          return "expected a whole number, got '" + quote_given(s) + "'";
        errno = 0;
        std::strtoull(s.c_str() + i, nullptr, 10);
        if (errno == ERANGE) return range + quote_given(s);
        return "";
      },
      "UINT64");
}

void last_value_wins(CLI::App& app) {
  for (CLI::Option* opt : app.get_options())
    if (opt->get_expected_max() == 1 && opt->nonpositional())  // flags; a positional argument is not repeated
      opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

std::string thread_oversubscription_warning(const std::string& program, int threads, const std::string& asked_by) {
  const unsigned hardware = std::thread::hardware_concurrency();
  if (hardware == 0 || threads <= static_cast<int>(hardware)) return "";
  const char* env = std::getenv("OMP_NUM_THREADS");
  const std::string asked = !asked_by.empty() ? asked_by
                            : env && *env     ? "OMP_NUM_THREADS=" + std::string(env)
                                              : "OpenMP";
  return program + ": warning: " + asked + " asks for " + std::to_string(threads) + " threads, but this machine has " +
         std::to_string(hardware) + " hardware threads; the run will be much slower than it should (" +
         (asked_by.empty() ? "set OMP_NUM_THREADS=" : "give ") + std::to_string(hardware) + " or less)";
}

void check_config_file(const std::string& path, const std::vector<std::string>& known) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(path, "cannot open the --config file");
  auto norm = [](std::string k) {
    std::replace(k.begin(), k.end(), '_', '-');
    return k;
  };
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    const std::string where = path + ":" + std::to_string(n);
    for (unsigned char c : line)
      if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f)
        throw FileError(where, "not a text line (control byte 0x" + std::string(1, "0123456789abcdef"[c >> 4]) +
                                   std::string(1, "0123456789abcdef"[c & 15]) + "); expected key = value");
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    const size_t eq = t.find('=');
    if (eq == std::string::npos) throw FileError(where, "expected key = value, got '" + quote_given(t) + "'");
    const std::string key = trim(t.substr(0, eq));
    const std::string value = trim(t.substr(eq + 1));
    if (key.empty() || key.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_") != std::string::npos)
      throw FileError(where, "expected key = value, got '" + quote_given(t) + "'");
    const std::string k = norm(key);
    const bool ok = std::any_of(known.begin(), known.end(), [&](const std::string& name) { return norm(name) == k; });
    if (!ok) throw FileError(where, "unknown key '" + key + "' (the keys are the flags' names, e.g. steps = 10)");
    if (value.empty()) throw FileError(where, "'" + key + "' has no value");
  }
  if (in.bad()) throw FileError(path, "cannot read the --config file");
}

std::string config_file_in_argv(int argc, const char* const* argv) {
  std::string file;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") break;
    if (a == "--config" && i + 1 < argc)
      file = argv[++i];
    else if (a.rfind("--config=", 0) == 0)
      file = a.substr(9);
  }
  return file;
}

std::vector<std::string> option_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::Option* opt : app.get_options())
    for (const std::string& n : opt->get_lnames()) names.push_back(n);
  return names;
}

}  // namespace gpt2
