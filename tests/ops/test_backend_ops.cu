// The op test: every case of the op table (tests/ops/op_table.cpp) through the Backend
// interface on the CPU backend (the reference, fp32) and on the CUDA backend (fp32 or bf16
// storage), compared output by output with the tolerances of the table, as ggml's
// test-backend-ops does. Beside the comparisons (backend_ops.h): contracts that hold bitwise on
// each backend (recompute == forward, fused == unfused, in place == out of place), outputs
// poisoned before each run (an unwritten element fails), guard regions after every written
// tensor, inputs left unchanged, and, for the cases that ask, a second run on the device that
// must give the same bits without allocating device memory.
//
// On a GPU it runs the quick and the full rows; under the SIMT layer (the CUDA code on the CPU)
// the quick rows, which still reach every code path of the full ones. Exit 77 (ctest: skipped)
// without a CUDA device.
//
// Usage: test_backend_ops [--op NAME[,NAME...]] [--dtype fp32|bf16] [--filter TEXT]
//                         [--quick | --full] [--no-rerun] [--no-memory-check] [--list] [--help]
// (--no-memory-check: for compute-sanitizer, which allocates device memory of its own.)
// GPT2_OPS_PLANT=<fault> plants a wrong kernel (backend_ops.cpp lists them); the test must then
// report FAILED (registered as its own tests).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "tests/ops/backend_ops.h"

using namespace gpt2;
using namespace gpt2::ops;

namespace {

#if defined(GPT2_SIMT)
constexpr bool kEmulated = true;
#else
constexpr bool kEmulated = false;
#endif

void usage(const char* argv0, FILE* to) {
  std::fprintf(to,
               "usage: %s [--op NAME[,NAME...]] [--dtype fp32|bf16] [--filter TEXT] [--quick | --full] [--no-rerun]\n"
               "          [--no-memory-check] [--list] [--help]\n"
               "  --op       only these ops:",
               argv0);
  for (int i = 0; i < kNumOps; ++i) std::fprintf(to, " %s", op_name(static_cast<Op>(i)));
  std::fprintf(to,
               "\n  --dtype    only this storage dtype\n"
               "  --filter   only cases whose label contains TEXT (e.g. \"T=150\")\n"
               "  --quick    the quick rows only (the default under the SIMT layer)\n"
               "  --full     the quick and the full rows (the default on a GPU)\n"
               "  --no-rerun skip the second runs (determinism, no allocation)\n"
               "  --no-memory-check  second runs without the free-memory comparison (compute-sanitizer)\n"
               "  --list     print the cases and exit\n"
               "GPT2_OPS_PLANT=FAULT plants a wrong kernel; faults:\n");
  for (const Plant& p : plants()) std::fprintf(to, "  %-28s %s\n", p.name, p.what);
}

int64_t free_device_bytes() {
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return -1;
  return static_cast<int64_t>(free_b);
}

}  // namespace

int main(int argc, char** argv) {
  unsigned scope = kEmulated ? kQuick : (kQuick | kFull);
  unsigned dtypes = kBoth;
  std::vector<Op> only;
  std::string filter;
  bool rerun = true, memory_check = true, list = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--op" && i + 1 < argc) {
      std::string names = argv[++i];
      for (size_t p = 0; p <= names.size();) {
        const size_t q = std::min(names.find(',', p), names.size());
        Op op;
        if (!parse_op(names.substr(p, q - p), &op)) {
          std::fprintf(stderr, "unknown op '%s'\n", names.substr(p, q - p).c_str());
          usage(argv[0], stderr);
          return 2;
        }
        only.push_back(op);
        p = q + 1;
      }
    } else if (a == "--dtype" && i + 1 < argc) {
      const std::string d = argv[++i];
      if (d != "fp32" && d != "bf16") {
        usage(argv[0], stderr);
        return 2;
      }
      dtypes = d == "fp32" ? kF32 : kBF16;
    } else if (a == "--filter" && i + 1 < argc) {
      filter = argv[++i];
    } else if (a == "--quick") {
      scope = kQuick;
    } else if (a == "--full") {
      scope = kQuick | kFull;
    } else if (a == "--no-rerun") {
      rerun = false;
    } else if (a == "--no-memory-check") {
      memory_check = false;
    } else if (a == "--list") {
      list = true;
    } else if (a == "--help" || a == "-h") {
      usage(argv[0], stdout);
      return 0;
    } else {
      usage(argv[0], stderr);
      return 2;
    }
  }
  active_plant();  // an unknown fault name ends the run here

  std::vector<OpInstance> cases = make_instances(scope, dtypes, only, filter);
  if (list) {
    for (const OpInstance& c : cases) std::printf("%-58s %s\n", c.label.c_str(), c.c.what.c_str());
    return 0;
  }
  if (cases.empty()) {
    std::fprintf(stderr, "test_backend_ops: no case matches\n");
    return 2;
  }

  const std::unique_ptr<Harness> harness = open_op_test_harness("test_backend_ops", cases);
  if (!harness) return kOpTestSkipped;
  return run_op_test("test_backend_ops", *harness, cases, rerun, memory_check ? free_device_bytes : nullptr, true);
}
