// `train_gpt2` without --dry-run: check the outputs, bring the device up, resolve the run
// (resolve.h), plan memory, fail fast when the plan does not fit (before any allocation), build
// the model, and train (engine/train/training_run.h).
#pragma once
#include <iosfwd>

#include "engine/cli/run_options.h"

namespace gpt2 {

int train_main(const RunOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace gpt2
