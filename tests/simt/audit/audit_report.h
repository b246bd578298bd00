// The kernel audit's figures per kernel: the access counts, the ptxas resources and occupancy on
// each architecture, and the predicted time on every card of the catalog; written as JSON and as
// a table (tools: tests/simt/audit/kernel_audit.cpp).
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "audit_cases.h"
#include "engine/plan/kernel_resources.h"
#include "nlohmann/json.hpp"

namespace gpt2::audit {

struct AuditOptions {
  std::vector<int> widths{768, 1600};
  std::string filter;          // run only cases whose op or kernel contains this text
  std::string resources_path;  // ptxas table; empty: default_kernel_resources_path()
  bool sites = false;          // list each kernel's worst instructions (file:line) in the table
};

// Runs the cases and returns the report:
// {"resources": {...source...}, "kernels": [...], "cases": [...]} (see README.md beside this file).
nlohmann::json run_audit(const AuditOptions& options, std::FILE* progress);

// Checks what the attention cases' `scale` rests on: attention over `factor` sequences records
// exactly `factor` times the counts of one sequence (every global and shared count, mma.sync, the
// grid), for the flash (bf16) and simple (fp32) kernels, forward and backward, at T tokens and 4
// heads. Prints one line per launch to `out`; returns the mismatches (empty: all exact).
// GPT2_AUDIT_SCALE_PLANT=extra-head gives the larger launch a fifth head, a launch whose work does
// not scale, which the check must report.
std::vector<std::string> check_attention_scale(int T, int factor, std::FILE* out);

// The readable table of a report.
void print_audit_table(const nlohmann::json& report, std::FILE* out);

}  // namespace gpt2::audit
