// train_gpt2: the engine's main binary. Thin: flags, dry run and training live in engine/.
#include <iostream>

#include "engine/cli/dry_run.h"
#include "engine/cli/run_options.h"
#include "engine/cli/train_main.h"
#include "engine/util/file_io.h"

int main(int argc, char** argv) {
  gpt2::RunOptions opts;
  const int parsed = gpt2::parse_run_options(argc, argv, opts, std::cout, std::cerr);
  if (parsed >= 0) return parsed;
  try {
    const int rc = opts.dry_run ? gpt2::dry_run(opts, std::cout) : gpt2::train_main(opts, std::cout, std::cerr);
    gpt2::flush_stdout_checked();
    return rc;
  } catch (const std::exception& e) {
    std::cerr << "train_gpt2: error: " << e.what() << "\n";
    return gpt2::kExitError;
  }
}
