// `train_gpt2` without --dry-run: resolve the flags, plan memory, fail fast when the plan does
// not fit (before any allocation), build the backend and model, and train.
#pragma once
#include <iosfwd>

#include "engine/cli/run_options.h"

namespace gpt2 {

int train_main(const RunOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace gpt2
