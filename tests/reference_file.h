// Reader for the reference files written by tests/reference/*.py (format documented at the top
// of tests/reference/ops_reference.py), plus the helpers every PyTorch-comparison test shares:
// finding a Python with torch, running a script into a fresh temporary directory, and a
// relative-error measure. Header-only; used by test_cpu_ops.cpp and the end-to-end test.
//
// Torch policy: when the Python cannot import torch, a test reports "SKIPPED: <reason>" as a
// Catch2 WARN and returns; with GPT2_REQUIRE_TORCH=1 in the environment (CI) it FAILS instead.
// GPT2_TORCH_PYTHON overrides the interpreter (default /usr/bin/python3, Debian's python3-torch).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

namespace gpt2::testref {

struct RefTensor {
  std::vector<int64_t> shape;
  std::vector<float> data;     // always filled (int32 arrays converted, exact below 2^24)
  std::vector<int32_t> idata;  // filled for int32 arrays only
  bool is_int = false;
  size_t numel() const { return data.size(); }
};

using RefFile = std::map<std::string, RefTensor>;

inline RefFile load_reference_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot open reference file");
  auto read = [&](void* p, size_t n) {
    f.read(static_cast<char*>(p), static_cast<std::streamsize>(n));
    if (!f) throw std::runtime_error(path + ": truncated reference file");
  };
  char magic[8];
  read(magic, 8);
  if (std::memcmp(magic, "GPT2REF1", 8) != 0) throw std::runtime_error(path + ": bad magic");
  uint32_t count = 0;
  read(&count, 4);
  RefFile out;
  for (uint32_t i = 0; i < count; i++) {
    uint32_t name_len = 0, dtype = 0, ndim = 0;
    read(&name_len, 4);
    std::string name(name_len, '\0');
    read(name.data(), name_len);
    read(&dtype, 4);
    read(&ndim, 4);
    if (dtype > 1 || ndim > 8) throw std::runtime_error(path + ": bad header for " + name);
    RefTensor t;
    t.shape.resize(ndim);
    if (ndim) read(t.shape.data(), 8 * ndim);
    size_t n = 1;
    for (int64_t d : t.shape) n *= static_cast<size_t>(d);
    t.is_int = dtype == 1;
    if (t.is_int) {
      t.idata.resize(n);
      if (n) read(t.idata.data(), 4 * n);
      t.data.assign(t.idata.begin(), t.idata.end());
    } else {
      t.data.resize(n);
      if (n) read(t.data.data(), 4 * n);
    }
    out.emplace(std::move(name), std::move(t));
  }
  return out;
}

// The tensor named `name`, or an exception naming the file's missing entry.
inline const RefTensor& get(const RefFile& f, const std::string& name) {
  auto it = f.find(name);
  if (it == f.end()) throw std::runtime_error("reference file has no array '" + name + "'");
  return it->second;
}

inline std::string python() {
  const char* p = std::getenv("GPT2_TORCH_PYTHON");
  return p && *p ? p : "/usr/bin/python3";
}

// True when GPT2_REQUIRE_TORCH is set to something other than "" or "0".
inline bool torch_required() {
  const char* p = std::getenv("GPT2_REQUIRE_TORCH");
  return p && *p && std::string(p) != "0";
}

// Checks once per process whether python() can import torch; `reason` says why not.
inline bool torch_available(std::string* reason = nullptr) {
  static int state = -1;
  static std::string why;
  if (state < 0) {
    const std::string cmd = python() + " -c \"import torch, numpy\" > /dev/null 2>&1";
    state = std::system(cmd.c_str()) == 0 ? 1 : 0;
    if (!state) why = "torch not importable by " + python() + " (install python3-torch)";
  }
  if (reason) *reason = why;
  return state == 1;
}

// A fresh directory under the system temp dir.
inline std::string make_temp_dir(const std::string& prefix = "gpt2ref") {
  std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
  return buf.data();
}

// Runs `python() script args`, with stdout/stderr appended to `log_path` when given.
// Returns the exit status (0 = success).
inline int run_python_script(const std::string& script, const std::string& args, const std::string& log_path = "") {
  std::string cmd = python() + " \"" + script + "\" " + args;
  if (!log_path.empty()) cmd += " >> \"" + log_path + "\" 2>&1";
  return std::system(cmd.c_str());
}

// max_i |got_i - ref_i| / max(max_i |ref_i|, tiny): the error relative to the tensor's scale,
// which stays meaningful where individual reference values cross zero.
inline double max_rel_error(const float* got, const float* ref, size_t n) {
  double max_diff = 0.0, max_ref = 0.0;
  for (size_t i = 0; i < n; i++) {
    const double d = std::fabs(static_cast<double>(got[i]) - ref[i]);
    if (std::isnan(d)) return INFINITY;  // a NaN anywhere is a failure
    max_diff = std::max(max_diff, d);
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(ref[i])));
  }
  return max_diff / std::max(max_ref, 1e-30);
}

inline double max_rel_error(const std::vector<float>& got, const RefTensor& ref) {
  if (got.size() != ref.data.size()) return INFINITY;
  return max_rel_error(got.data(), ref.data.data(), got.size());
}

}  // namespace gpt2::testref

// In a Catch2 test: skip (WARN + return) or, under GPT2_REQUIRE_TORCH=1, fail when torch is
// missing.
#define GPT2_REQUIRE_TORCH_OR_SKIP()                                                                  \
  do {                                                                                                \
    std::string gpt2_torch_why_;                                                                      \
    if (!gpt2::testref::torch_available(&gpt2_torch_why_)) {                                          \
      if (gpt2::testref::torch_required()) FAIL("GPT2_REQUIRE_TORCH is set but " << gpt2_torch_why_); \
      WARN("SKIPPED: " << gpt2_torch_why_);                                                           \
      return;                                                                                         \
    }                                                                                                 \
  } while (0)
