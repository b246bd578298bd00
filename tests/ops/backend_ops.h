// The ops of the op table (op_table.h) written once over the Backend interface, and the harness
// that runs them: shared by tests/ops/test_backend_ops.cu (compare the CUDA backend with the CPU
// backend), tests/ops/test_op_variants.cu and bench/cuda/bench_kernels.cu (time the stages).
//
// An op instance (one case in one dtype) is
//   tensors     each with a role: In (generated, must come back unchanged), InOut (generated,
//               updated: gradients that accumulate, buffers written in place) or Out (written);
//   stages      a sequence of Backend calls (stage.run(side) makes the same calls on either
//               backend), each followed by its checks: the device's tensor against the
//               reference's (tolerance from op_table.cpp), or a tensor bitwise equal to another
//               on each backend (a contract such as "recompute gives the forward's bits");
//   properties  checks that are not comparisons (e.g. host_adamw gives the device's bits).
// A stage also says what it costs (bytes moved or FLOPs) for the benchmark.
//
// Memory: every tensor lives in the arena the backend created from a memory plan
// (Backend::create_arena). The plan is the test's own (make_op_plan): the CUDA backend's fixed
// buffers (scratch and workspaces, sized for the largest case with the kernels' size functions)
// and one region for the tensors of the case at hand, laid out 256-byte aligned; every written
// tensor is followed by a guard region that must keep its poison.
// Inputs are generated deterministically from (case label, tensor name, element index): a case
// gets the same inputs whatever else runs. Out tensors, guards and the plan's scratch buffers are
// poisoned with 0xFF bytes (NaN in fp32 and bf16) before each run, so an element a kernel leaves
// unwritten fails, and so does a scratch value read before it is written; the scratch bytes past
// what a case needs (the kernels' size functions) must keep the poison.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/backend/cuda_backend_factory.h"
#include "tests/ops/op_table.h"

namespace gpt2::ops {

// Element type of a tensor: Store is the case's storage dtype on the device backend and fp32 on
// the CPU backend (which stores everything in fp32); F32 and I32 are the same on both.
enum class Elem { Store, F32, I32 };
enum class Role { In, InOut, Out };

// How a tensor's initial values are drawn. Store values of a bf16 case are rounded to bf16, so
// both backends start from the same numbers.
struct Gen {
  enum Kind { Uniform, Tokens, Targets, GeluOf };
  Kind kind = Uniform;
  float lo = -1, hi = 1;  // Uniform; GeluOf: gelu of a uniform draw in [lo, hi), rounded first
  int V = 0;              // Tokens, Targets: values in [0, V); Targets: row 0 gets V − 1
  bool skewed = false;    // Tokens: half the positions hold token 1
  std::string draws;      // the draws of this tensor name instead of its own ("" = own)
};

struct TensorSpec {
  std::string name;
  int64_t n = 0;
  Elem elem = Elem::Store;
  Role role = Role::In;
  Gen gen;
};

class Side;
class Report;

// One check after a stage.
struct Check {
  std::string tensor;      // on the device backend
  std::string ref_tensor;  // on the reference ("" = tensor)
  std::string output;      // the tolerance table's name ("" = tensor); also the name printed
  std::string same_as;     // set: instead, tensor == same_as bitwise on each backend
  // Optional: a part of the tensor to compare (e.g. dq of dqkv), applied to both sides.
  std::function<std::vector<float>(const std::vector<float>&)> view;
  // Attention's rule (Tolerance::naive): the naive bf16 implementation's value of this output.
  std::function<std::vector<float>(Side& ref)> naive;
};

struct Stage {
  std::string name;  // e.g. "layernorm_bwd"; the benchmark's row name
  std::function<void(Side&)> run;
  std::vector<Check> checks;
  double bytes = 0, flops = 0;  // per run, for the benchmark; both 0: not timed
};

struct Property {
  std::string name;
  std::function<bool(Side& ref, Side& dev, Report&)> run;
};

// The fixed plan buffers a case uses, in the kernels' units.
struct Needs {
  size_t att_floats = 0;  // scratch.att: attention backward D, decode scores
  size_t enc_ints = 0;    // scratch.encoder_bwd
  size_t ln_floats = 0;   // scratch.layernorm_bwd
  int max_oc = 0;         // workspace.matmul_bias: the largest OC with a bias
  size_t host_bytes = 0;  // the host arena (host_adamw)
  void merge(const Needs& o);
};

struct OpInstance {
  OpCase c;
  DType dtype = DType::FP32;
  std::string label;
  std::vector<TensorSpec> tensors;
  std::vector<Stage> stages;
  std::vector<Property> properties;
  Needs needs;
  const TensorSpec& spec(const std::string& name) const;
  // Bytes of the tensors and guards with Store tensors in `store`.
  int64_t region_bytes(DType store) const;
};

// The op of `c` in `dtype`: its tensors, stages and checks.
OpInstance make_instance(const OpCase& c, DType dtype);
// AdamW's step for a table case: its ranges (the test layout or a model's), hyperparameters,
// rounding seed and shard offset; *flat receives the flat element count.
AdamWStep adamw_step(const OpCase& c, int64_t* flat);
// The instances of every table case that matches, in every dtype it lists that `dtypes` allows.
std::vector<OpInstance> make_instances(unsigned scope, unsigned dtypes, const std::vector<Op>& only_ops,
                                       const std::string& filter, const std::string& bench_label = "");

// The planted faults (GPT2_OPS_PLANT=<name>): each makes one op of the device backend wrong in
// one way, and the test must then report FAILED. Unknown names end the process (exit 2).
struct Plant {
  const char* name;
  const char* what;
};
const std::vector<Plant>& plants();
const char* active_plant();  // nullptr when none

// Prints results and counts failures.
class Report {
 public:
  explicit Report(bool verbose = true) : verbose_(verbose) {}
  bool result(bool ok, const std::string& name, const std::string& detail);
  void note(const std::string& line);  // printed when verbose
  void begin_case(const std::string& header);
  int checks() const { return checks_; }
  int failures() const { return failures_; }

 private:
  bool verbose_;
  std::string header_;
  bool header_printed_ = false;
  int checks_ = 0, failures_ = 0;
};

// One backend with the tensors of the current instance laid out in its arena.
class Side {
 public:
  Side(Backend& backend, bool reference, const MemoryPlan& plan, std::byte* arena, std::byte* host_arena);
  Backend& be;
  const bool reference;  // the CPU backend, whose results are the reference
  int run_index = 0;     // 0: first run of the instance, 1: the rerun

  // Lays out `inst`'s tensors, then uploads the inputs and poisons the outputs and guards.
  void bind(const OpInstance& inst);
  void reset();
  DType store() const { return store_; }
  TensorRef t(const std::string& name) const;            // Store and F32 tensors
  float* f(const std::string& name) const;               // F32 tensors
  int32_t* i(const std::string& name) const;             // I32 tensors (arena)
  const int32_t* host_i(const std::string& name) const;  // I32 tensors: their host copy
  std::vector<float> read(const std::string& name) const;
  std::vector<uint16_t> read_bf16_bits(const std::string& name) const;
  // The values `name` was generated with (as floats).
  std::vector<float> initial(const std::string& name) const;
  // Uploads `name`'s generated values again.
  void restore(const std::string& name) { fill(bound(name)); }
  // On the reference of a bf16 case: rounds `name` to bf16 in place, i.e. holds what the device
  // stores between two calls. Elsewhere nothing.
  void hold_as_stored(const std::string& name) const;
  float* att_scratch() const;
  float* norm_partials() const;
  std::byte* plan_buffer(const std::string& name) const;  // a fixed buffer of the plan
  std::byte* host_arena() const { return host_arena_; }
  // True when the planted fault `name` is active and this is the device under test.
  bool planted(const char* name) const;
  bool guards_intact(Report& r) const;
  bool inputs_unchanged(Report& r) const;
  const OpInstance& instance() const { return *inst_; }

 private:
  struct Bound {
    const TensorSpec* spec;
    DType dtype;
    int64_t offset, bytes, guard;
  };
  const Bound& bound(const std::string& name) const;
  void fill(const Bound& b);
  void poison(int64_t offset, int64_t bytes) const;

  const MemoryPlan& plan_;
  std::byte* arena_;
  std::byte* host_arena_;
  int64_t region_offset_ = 0, region_bytes_ = 0;
  const OpInstance* inst_ = nullptr;
  DType store_ = DType::FP32;
  std::map<std::string, Bound> bound_;
  std::map<std::string, std::vector<int32_t>> host_ints_;
};

// The plan of the test arena: the CUDA backend's fixed buffers for `needs`, and a region of
// `tensor_bytes` for the tensors ("ops.tensors"); the host arena holds needs.host_bytes.
MemoryPlan make_op_plan(const Needs& needs, int64_t tensor_bytes);

// The backends with their arenas, sized for the largest of the instances given.
class Harness {
 public:
  // with_reference: also the CPU backend and the device's host arena, for check(); without them
  // the device side alone (the benchmark). Throws ConfigError when there is no CUDA device.
  Harness(const std::vector<OpInstance>& instances, bool with_reference);
  ~Harness();
  CudaBackendBase& cuda() { return *dev_; }
  Side& device() { return *dev_side_; }
  // Runs `inst` on both backends and checks it; true when every check passed. rerun: run it
  // again on the device when the case asks for it; free_device_bytes measures free device memory
  // around the rerun (none: not checked).
  bool check(OpInstance& inst, Report& r, bool rerun, const std::function<int64_t()>& free_device_bytes);

 private:
  std::unique_ptr<Backend> cpu_;
  std::unique_ptr<CudaBackendBase> dev_;
  MemoryPlan plan_;
  std::unique_ptr<Side> cpu_side_, dev_side_;
};

// The end of an op test's main (test_backend_ops, test_op_variants), named `tool` in its output.
// open_op_test_harness: the harness with the CPU reference, or nullptr after printing
// "SKIPPED <tool>: no CUDA device (...)" (exit with kOpTestSkipped then).
// run_op_test: every case through harness.check, each case's seconds, with per_op_seconds the
// seconds summed per op, then the check counts, the failed cases and "<tool> PASSED|FAILED";
// returns the exit status (0 passed, 1 failed).
constexpr int kOpTestSkipped = 77;  // ctest's SKIP_RETURN_CODE
std::unique_ptr<Harness> open_op_test_harness(const char* tool, const std::vector<OpInstance>& cases);
int run_op_test(const char* tool, Harness& harness, std::vector<OpInstance>& cases, bool rerun,
                const std::function<int64_t()>& free_device_bytes, bool per_op_seconds);

}  // namespace gpt2::ops
