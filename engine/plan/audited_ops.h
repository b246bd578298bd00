// The kernel audit's predictions per op, for the dry run and auto-fit.
//
// kernels/cuda/kernel_audit.json is written by the audit (tests/simt/audit, `kernel_audit --json`)
// and checked in. Its "cases" give, per op group of engine/plan/op_costs.h, storage type and model
// width, the compulsory bytes (or, for attention, the FLOPs) of the audited shape and the predicted
// time on every card of the catalog (engine/plan/kernel_cost_model.h). From them the roofline takes
// the op's efficiency on that card: compulsory bytes / (predicted time · bandwidth) for a
// memory-bound op, FLOPs / (predicted time · peak) for attention, the launch overhead taken out
// (the roofline adds its own per call). Ops the audit does not cover (the cuBLASLt matmuls, zeroing,
// transfers) keep the card's per-class efficiency.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace gpt2 {

struct AuditedOp {
  std::string op;     // "layernorm forward"
  std::string dtype;  // "bf16" or "fp32"
  int C = 0;          // model width of the audited shape; 0 when the op does not depend on it
  std::string shape;  // the audited shape ("N=4096 C=768")
  bool memory_bound = true;
  double flops = 0;             // of the audited shape (attention)
  double compulsory_bytes = 0;  // of the audited shape
  int launches = 0;
  std::map<std::string, double> predicted_s;  // by card name
};

struct AuditedOps {
  std::string path;  // where they were read from; empty when no audit file was found
  std::vector<AuditedOp> ops;
  // The audited case for `op` in `dtype` nearest to width C, or nullptr.
  const AuditedOp* find(const std::string& op, const std::string& dtype, int C) const;
};

// Reads the "cases" of a kernel_audit report. Throws FileError naming the path when it is malformed.
AuditedOps load_audited_ops(const std::string& path);
// The checked-in kernels/cuda/kernel_audit.json, read once; empty (path "") when the file is absent.
const AuditedOps& default_audited_ops();

// The op's efficiency on `card` (fraction of its bandwidth for a memory-bound op, of `peak_flops`
// for attention), or a negative value when the audit has no prediction for it.
double audited_efficiency(const AuditedOp& op, const std::string& card, double bandwidth_bytes_s, double peak_flops,
                          double launch_s);

}  // namespace gpt2
