// `train_gpt2 --dry-run`: print the memory plan of the resolved run (resolve.h; tables or JSON)
// with a verdict, and a fit suggestion when it does not fit. Needs no GPU.
#pragma once
#include <iosfwd>

#include "engine/cli/run_options.h"

namespace gpt2 {

// Exit codes of train_gpt2.
constexpr int kExitOk = 0;
constexpr int kExitError = 1;       // bad flag, bad file, nothing can fit, runtime failure
constexpr int kExitUsage = 2;       // the command line could not be parsed
constexpr int kExitDoesNotFit = 3;  // dry run: the plan does not fit the budget

// Prints the plan; returns kExitOk when it fits and kExitDoesNotFit when it does not.
int dry_run(const RunOptions& opts, std::ostream& out);

}  // namespace gpt2
