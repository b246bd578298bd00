#include "engine/cli/dry_run.h"

#include <ostream>

#include "engine/cli/resolve.h"
#include "engine/util/errors.h"

namespace gpt2 {

int dry_run(const RunOptions& o, std::ostream& out) {
  if (o.profile || !o.profile_json.empty())
    throw ConfigError(o.profile ? "--profile" : "--profile-json",
                      "measures a real run's steps; a dry run prints the prediction alone (drop --dry-run)");
  const ResolvedRun rr = resolve(o);
  const MemoryPlan plan = make_memory_plan(rr.model, rr.run);
  const Verdict v = judge(plan, rr.budget);
  if (o.json) {
    out << plan_json(plan, rr.budget, rr.autofit_used ? &rr.autofit : nullptr) << "\n";
    return v.fits ? kExitOk : kExitDoesNotFit;
  }
  print_plan(out, plan, rr.budget, rr.autofit_used ? &rr.autofit : nullptr);
  if (!v.fits) print_fit_suggestion(out, rr);
  return v.fits ? kExitOk : kExitDoesNotFit;
}

}  // namespace gpt2
