// libFuzzer target: the --config file check (check_config_file, engine/cli/flag_checks.h) on
// arbitrary bytes, with train_gpt2's usual option names as the known keys. Every input must
// either pass or raise FileError naming the file (and line); anything else (a crash, a sanitizer
// report, another exception type) is a bug.
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "engine/cli/flag_checks.h"
#include "engine/util/errors.h"
#include "tests/fuzz/fuzz_scratch.h"

namespace {

// Most of train_gpt2's flags (what option_names() gives check_config_file there).
const std::vector<std::string>& known_keys() {
  static const std::vector<std::string> k = [] {
    std::istringstream in(
        "config model layers heads width vocab max-seq-len device micro-batch seq-len total-batch-tokens "
        "precision master-weights recompute logits-chunk zero lr warmup lr-schedule final-lr-frac weight-decay "
        "grad-clip seed steps train-data val-data data-format checkpoint-dir checkpoint-every resume");
    std::vector<std::string> names;
    for (std::string n; in >> n;) names.push_back(n);
    return names;
  }();
  return k;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = gpt2::fuzz::scratch_dir("config");
  const std::string path = gpt2::fuzz::write_scratch(dir, "run.toml", data, size);
  if (path.empty()) return 0;
  try {
    gpt2::check_config_file(path, known_keys());
  } catch (const gpt2::FileError& e) {
    gpt2::fuzz::check_names_file(e, dir);  // the expected outcome for malformed input
  }
  return 0;
}
