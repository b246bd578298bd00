// train_gpt2: the engine's main binary. Thin: flags, dry run and training live in engine/.
#include <iostream>

#include "engine/cli/dry_run.h"
#include "engine/cli/run_options.h"
#include "engine/cli/tool_main.h"
#include "engine/cli/train_main.h"

int main(int argc, char** argv) {
  gpt2::RunOptions opts;
  const int parsed = gpt2::parse_run_options(argc, argv, opts, std::cout, std::cerr);
  if (parsed >= 0) return parsed;
  return gpt2::run_tool("train_gpt2", [&] {
    return opts.dry_run ? gpt2::dry_run(opts, std::cout) : gpt2::train_main(opts, std::cout, std::cerr);
  });
}
