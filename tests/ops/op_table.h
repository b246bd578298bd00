// The op table: every op of the Backend interface (engine/backend/backend.h) × the shapes that
// matter × the storage dtypes, in one list (op_table.cpp). It drives
//   tests/ops/test_backend_ops.cu   each case through the CPU backend and the CUDA backend (on a
//                                   GPU, or on the CPU under the SIMT layer), results compared;
//   tests/ops/test_op_variants.cu   the kernel entry points the Backend does not call, at the
//                                   table's shapes;
//   bench/cuda/bench_kernels.cu     the timed rows (scope kBench) and the checks before them.
// The ops themselves (tensors, calls, checks, benchmark costs) are in backend_ops.h; the
// tolerances are the second table of op_table.cpp, beside the cases.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/plan/memory_plan.h"

namespace gpt2::ops {

enum class Op {
  Encoder,          // encoder_forward, encoder_backward
  Layernorm,        // layernorm_forward/_recompute/_backward, residual_layernorm_forward
  Matmul,           // matmul_forward(_gelu), matmul_backward(_gelu)
  Gelu,             // gelu_forward, gelu_backward
  Residual,         // residual_forward
  Attention,        // attention_forward, attention_backward
  AttentionDecode,  // attention_decode
  Classifier,       // classifier
  GlobalNorm,       // global_norm_squared
  AdamW,            // adamw, host_adamw
};
constexpr int kNumOps = 10;
const char* op_name(Op op);
bool parse_op(const std::string& name, Op* op);

// Which runs take a case (bits).
enum Scope : unsigned {
  kQuick = 1,  // everywhere: under the SIMT layer (CI), on a GPU, and the benchmark's checks
  kFull = 2,   // on a real GPU (or with --full): the larger shapes
  kBench = 4,  // timed by bench_kernels only (training shapes; too large for the CPU reference)
};
// Storage dtypes a case runs in (bits).
enum Dtypes : unsigned { kF32 = 1, kBF16 = 2, kBoth = 3 };

struct OpCase {
  Op op = Op::Gelu;
  unsigned dtypes = kBoth;
  unsigned scope = kQuick;
  // The shape; each op reads its own fields (op_table.cpp's constructors say which).
  int N = 0, B = 0, T = 0, C = 0, NH = 0, OC = 0, V = 0, Vp = 0;
  int64_t n = 0;
  bool bias = false;        // matmul: with a bias
  bool gelu_out = false;    // matmul: forward through matmul_forward_gelu (out = gelu(pre))
  bool gelu_in = false;     // matmul: inp = gelu(pre_in), backward through matmul_backward_gelu
  bool skewed = false;      // encoder: half the positions hold one token
  bool master = false;      // adamw: bf16 parameters with fp32 master weights
  float grad_scale = 1.0f;  // adamw
  std::string layout;       // adamw, global_norm: "" = the test layout, else a model preset (d12, d48)
  // Run the whole case a second time on the device backend: every checked output bitwise equal
  // to the first run, and no change in free device memory across the second run.
  bool rerun = false;
  std::string bench_label;  // kBench rows: the model the shape is from ("d12", "d48")
  std::string what;         // the edge it covers

  // Fluent setters for the table.
  OpCase& in(unsigned s) {
    scope = s;
    return *this;
  }
  OpCase& types(unsigned d) {
    dtypes = d;
    return *this;
  }
  OpCase& twice() {
    rerun = true;
    return *this;
  }
  OpCase& note(const char* w) {
    what = w;
    return *this;
  }
  OpCase& bench(const char* label) {
    scope = kBench;
    dtypes = kBF16;
    bench_label = label;
    return *this;
  }
};

// The whole table, in a fixed order.
const std::vector<OpCase>& op_table();

// "layernorm bf16 N=74 C=320" and the like: the case's name in output and the seed of its inputs.
std::string case_label(const OpCase& c, DType dtype);

// ---- tolerances (values and reasons: op_table.cpp) --------------------------------------------
// |got − ref| ≤ atol + atol_rms·rms(ref) + rtol·|ref| for every element, NaN failing; rms(ref)
// is the root mean square of the reference tensor. Bitwise: the same bits as the reference.
// The attention rule (naive > 0): the largest error against the reference is at most `naive`
// times that of a naive bf16 implementation (backend_ops.cpp) plus atol.
struct Tolerance {
  float atol = 0, rtol = 0, atol_rms = 0;
  bool bitwise = false;
  float naive = 0;
};
// The tolerance of output `output` ("out", "dinp", ...) of `op` in storage dtype `dtype`.
// Throws std::logic_error for a pair the table does not list.
Tolerance tolerance(Op op, const std::string& output, DType dtype);

}  // namespace gpt2::ops
