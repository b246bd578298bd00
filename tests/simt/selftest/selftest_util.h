// The harness shared by the SIMT layer's self-tests (test_layer_*.cpp): PASSED/FAILED checks with
// counters and the final "N passed, M failed" line, printf-style formatting, capture of the
// process's stderr, running the test executable itself as a child process, and a kernel launch
// that waits for the kernel to run.
// Header-only; not a test itself (the test glob matches test_*.cpp only).
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "simt/launch.h"

namespace simt_selftest {

// Counts of the checks that passed and failed so far in this process.
inline int g_passed = 0, g_failed = 0;

// Prints "PASSED name" or "FAILED name" (": detail" when given), flushes, and counts the result.
inline void check(bool ok, const std::string& name, const std::string& detail = "") {
  std::printf("%s %s%s%s\n", ok ? "PASSED" : "FAILED", name.c_str(), detail.empty() ? "" : ": ", detail.c_str());
  std::fflush(stdout);
  (ok ? g_passed : g_failed)++;
}

// Launches `kernel` on the legacy default stream and waits for it to run: the error of a refused
// launch, else what the synchronisation reports (a kernel fault, which stays sticky).
template <typename... P, typename... A>
cudaError_t run_kernel(void (*kernel)(P...), dim3 grid, dim3 block, size_t dynamic_smem, A&&... args) {
  const cudaError_t issued = simt::launch(kernel, grid, block, dynamic_smem, nullptr, std::forward<A>(args)...);
  return issued != cudaSuccess ? issued : cudaStreamSynchronize(nullptr);
}

// Prints the "N passed, M failed" line; returns main()'s exit code (0 when every check passed, else 1).
inline int finish() {
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}

// snprintf into a std::string (at most 511 characters).
template <typename... A>
std::string fmt(const char* f, A... a) {
  char buf[512];
  std::snprintf(buf, sizeof buf, f, a...);
  return buf;
}

// Runs fn with the process's stderr (fd 2, shared by every OS thread) redirected to a file and
// returns what was written there.
template <typename F>
std::string capture_stderr(F&& fn) {
  std::fflush(stderr);
  FILE* tmp = std::tmpfile();
  const int saved = dup(2);
  dup2(fileno(tmp), 2);
  fn();
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::string text;
  std::rewind(tmp);
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, tmp)) > 0;) text.append(buf, n);
  std::fclose(tmp);
  return text;
}

// The text up to (not including) the first newline.
inline std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

// Whether s contains `what`.
inline bool has(const std::string& s, const char* what) { return s.find(what) != std::string::npos; }

// The whole contents of the file at `path` ("" when it cannot be opened).
inline std::string read_file(const char* path) {
  std::string text;
  if (FILE* f = std::fopen(path, "r")) {
    char buf[4096];
    for (size_t k; (k = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, k);
    std::fclose(f);
  }
  return text;
}

// What a child process left: its exit code (128 + signal when killed, -1 when it did not run) and output.
struct ChildRun {
  int status = -1;
  std::string out, err;  // its stdout and stderr
};

// Runs this executable again as `env 'exe' args` through the shell (env: "NAME=value ..." or "")
// and returns its exit status, stdout and stderr.
inline ChildRun run_self(const std::string& args, const std::string& env = "") {
  ChildRun r;
  char exe[4096];
  const ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0) return r;
  exe[len] = '\0';
  char out_path[] = "/tmp/simt_selftest_child_out_XXXXXX";
  char err_path[] = "/tmp/simt_selftest_child_err_XXXXXX";
  const int out_fd = mkstemp(out_path);
  if (out_fd < 0) return r;
  close(out_fd);
  const int err_fd = mkstemp(err_path);
  if (err_fd < 0) {
    std::remove(out_path);
    return r;
  }
  close(err_fd);
  const std::string cmd =
      (env.empty() ? "" : env + " ") + "'" + exe + "' " + args + " >'" + out_path + "' 2>'" + err_path + "'";
  const int st = std::system(cmd.c_str());
  if (st != -1) r.status = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  std::remove(out_path);
  std::remove(err_path);
  return r;
}

}  // namespace simt_selftest
