// The op table's cases and tolerances (see op_table.h).
#include "tests/ops/op_table.h"

#include <cstdio>
#include <stdexcept>

namespace gpt2::ops {

namespace {

// ---- constructors: which fields each op reads ------------------------------------------------
// Encoder: tokens (B, T) in [0, V); wte (Vp, C) with Vp = V rounded up to 128; wpe (T + 3, C).
OpCase encoder(int B, int T, int C, int V, bool skewed = false) {
  OpCase c;
  c.op = Op::Encoder;
  c.B = B, c.T = T, c.C = C, c.V = V, c.Vp = (V + 127) / 128 * 128, c.skewed = skewed;
  return c;
}
// Layernorm: N = B·T rows of C channels.
OpCase layernorm(int B, int T, int C) {
  OpCase c;
  c.op = Op::Layernorm;
  c.B = B, c.T = T, c.N = B * T, c.C = C;
  return c;
}
// Matmul: inp (N, C) · weight (OC, C)ᵀ.
OpCase matmul(int N, int C, int OC, bool bias, bool gelu_out, bool gelu_in) {
  OpCase c;
  c.op = Op::Matmul;
  c.N = N, c.C = C, c.OC = OC, c.bias = bias, c.gelu_out = gelu_out, c.gelu_in = gelu_in;
  return c;
}
OpCase elementwise(Op op, int64_t n) {
  OpCase c;
  c.op = op;
  c.n = n;
  return c;
}
// Attention: qkv (B, T, 3C), C = NH·HS.
OpCase attention(int B, int NH, int T, int HS) {
  OpCase c;
  c.op = Op::Attention;
  c.B = B, c.NH = NH, c.T = T, c.C = NH * HS;
  return c;
}
// Decode: qkv (T, 3C), the query of row pos attending to rows 0..pos, pos ∈ {0, 1, T/2, T−1}.
OpCase decode(int T, int C, int NH) {
  OpCase c;
  c.op = Op::AttentionDecode;
  c.T = T, c.C = C, c.NH = NH;
  return c;
}
// Classifier: N rows of Vp logits, V of them real.
OpCase classifier(int N, int V, int Vp) {
  OpCase c;
  c.op = Op::Classifier;
  c.N = N, c.V = V, c.Vp = Vp;
  return c;
}
// Global norm over n elements, or over a model's flat parameter layout.
OpCase global_norm(int64_t n, const char* layout = "") {
  OpCase c;
  c.op = Op::GlobalNorm;
  c.n = n;
  c.layout = layout;
  return c;
}
// AdamW over the test layout (five ranges with padding between them) or a model's layout.
// fp32: parameters updated in place; bf16: with or without fp32 master weights.
OpCase adamw(bool master, float grad_scale = 1.0f, const char* layout = "") {
  OpCase c;
  c.op = Op::AdamW;
  c.master = master, c.grad_scale = grad_scale, c.layout = layout;
  return c;
}

const int64_t kD12Tokens = 64 * 1024, kD48Tokens = 16 * 1024;

// One row per case: op(shape).types(dtypes, both unless stated).in(scope)[.twice()].note(what
// edge it covers); .bench(model) rows are the benchmark's (bf16, timed only). Q: quick (SIMT,
// GPU, the benchmark's checks), F: full (GPU only).
std::vector<OpCase> make_table() {
  const unsigned Q = kQuick, F = kFull;
  return {
      // ---- encoder (gradients start non-zero: += checked) ----
      encoder(2, 37, 768, 1000).in(Q).twice().note("d12 width, T not a multiple of a block; many distinct tokens"),
      encoder(2, 37, 768, 50257).in(F).twice().note("the real vocabulary, padded to 50304"),
      encoder(3, 50, 1600, 20, true).in(Q | F).twice().note("d48 width, tiny vocabulary, one very frequent token"),
      encoder(2, 5, 36, 7)
          .types(kBF16)
          .in(Q | F)
          .twice()
          .note("C not a multiple of the 16-byte vector in bf16: scalar path"),
      encoder(2, 5, 6, 7, true).types(kF32).in(Q | F).twice().note("C = 6: the fp32 scalar path"),
      encoder(64, 1024, 768, 50257).bench("d12"),
      encoder(16, 1024, 1600, 50257).bench("d48"),

      // ---- layernorm: forward, recompute, backward (+=, dinp too), fused residual (+ in place) ----
      layernorm(2, 37, 320)
          .in(Q)
          .twice()
          .note("vector paths, one sweep, a partial last warp; > 32 rows per param-grad column"),
      layernorm(4, 37, 768).in(F).twice().note("d12 width, T not a multiple of anything"),
      layernorm(2, 65, 1600).in(F).twice().note("d48 width (200 bf16 vectors: 224 threads)"),
      layernorm(3, 5, 36).types(kBF16).in(Q | F).note("C % 8 != 0: the bf16 scalar path; 2C not a multiple of 32"),
      layernorm(2, 7, 37).in(Q | F).note("odd C: scalar paths in both dtypes"),
      layernorm(1, 3, 4104).types(kF32).in(Q | F).note("fp32 vector path with 2 sweeps (1026 vectors on 1024 threads)"),
      layernorm(515, 2, 64)
          .types(kBF16)
          .in(Q | F)
          .twice()
          .note("N = 1030 rows > 1024 backward blocks: 2 rows in some blocks"),
      layernorm(64, 1024, 768).bench("d12"),
      layernorm(16, 1024, 1600).bench("d48"),

      // ---- matmul: bias and GELU epilogues, dweight/dbias +=, then dweight += again without dinp ----
      matmul(96, 64, 200, true, false, false).in(Q).twice().note("qkv-like, N > 32, OC not a multiple of 32"),
      matmul(37, 64, 256, true, false, false).types(kBF16).in(Q).note("fc-like, awkward N"),
      matmul(37, 256, 64, true, true, true).types(kBF16).in(Q).note("fcproj-like: GELU forward and backward"),
      matmul(19, 96, 392, true, true, true).types(kBF16).in(Q).note("fc forward with GELU, OC not a multiple of 32"),
      matmul(9, 40, 52, true, true, true).types(kBF16).in(Q | F).note("OC not a multiple of 8: no GELU epilogue"),
      matmul(37, 64, 48, true, false, false).types(kF32).in(Q | F).note("small, several column blocks"),
      matmul(20, 96, 384, true, true, true).types(kF32).in(Q | F).twice().note("GELU both ways at multiples of 8"),
      matmul(8, 64, 1152, false, false, false).types(kBF16).in(Q).note("lm_head-like chunk, no bias"),
      matmul(96, 768, 2304, true, false, false).in(F).twice().note("qkv at d12 width"),
      matmul(37, 768, 3072, true, false, false).in(F).note("fc at d12 width, awkward N"),
      matmul(37, 3072, 768, true, true, true).in(F).twice().note("fcproj at d12 width with GELU"),
      matmul(50, 1600, 6400, true, false, false).in(F).note("d48 fc"),
      matmul(19, 1600, 6400, true, true, true).in(F).note("d48 fc with GELU"),
      matmul(8, 768, 50304, false, false, false).in(F).note("lm_head chunk, no bias"),
      matmul(kD12Tokens, 768, 2304, true, false, false).bench("d12").note("qkv"),
      matmul(kD12Tokens, 768, 768, true, false, false).bench("d12").note("attproj"),
      matmul(kD12Tokens, 768, 3072, true, true, false).bench("d12").note("fc+gelu"),
      matmul(kD12Tokens, 3072, 768, true, false, true).bench("d12").note("fcproj"),
      matmul(4096, 768, 50304, false, false, false).bench("d12").note("lm_head"),
      matmul(kD48Tokens, 1600, 4800, true, false, false).bench("d48").note("qkv"),
      matmul(kD48Tokens, 1600, 1600, true, false, false).bench("d48").note("attproj"),
      matmul(kD48Tokens, 1600, 6400, true, true, false).bench("d48").note("fc+gelu"),
      matmul(kD48Tokens, 6400, 1600, true, false, true).bench("d48").note("fcproj"),
      matmul(4096, 1600, 50304, false, false, false).bench("d48").note("lm_head"),

      // ---- gelu: forward, backward, backward in place ----
      elementwise(Op::Gelu, 5 * 3072).in(Q | F).note("d12 width 4C = 3072, 5 rows"),
      elementwise(Op::Gelu, 256 * 8 * 3 + 5).in(Q | F).note("a scalar tail after the vectors"),
      elementwise(Op::Gelu, 7).in(Q | F).note("less than one vector"),
      elementwise(Op::Gelu, kD12Tokens * 3072).bench("d12").note("(N, 4C)"),
      elementwise(Op::Gelu, kD48Tokens * 6400).bench("d48").note("(N, 4C)"),

      // ---- residual: out = a + b, then in place ----
      elementwise(Op::Residual, 4 * 64 * 768).in(Q | F).note("d12 width"),
      elementwise(Op::Residual, 3 * 1600 + 3).in(Q | F).note("a scalar tail"),
      elementwise(Op::Residual, 1).in(Q | F).note("one element"),
      elementwise(Op::Residual, kD12Tokens * 768).bench("d12"),
      elementwise(Op::Residual, kD48Tokens * 1600).bench("d48"),

      // ---- attention: forward, backward on the forward's own y and lse ----
      // bf16 at HS 64 and 128 is the flash (tensor-core) path; fp32, and bf16 at other head sizes,
      // the simple kernels. Quick rows: T = 1 (one row, dS = 0), 17 (a partial warp tile), 64 (one
      // block), 65 (a one-row tail block, several blocks), 150 (three 64-key blocks: a reused
      // cp.async buffer, the causal skips of all three kernels), and the head sizes the flash
      // kernels do not take: 16 (one dim per lane; the model trains HS 16 under SIMT), 24, 96, 256.
      attention(1, 1, 1, 64).in(Q | F).note("T = 1"),
      attention(1, 1, 1, 128).in(Q | F).note("T = 1"),
      attention(2, 3, 17, 64).in(Q | F).note("a partial warp tile"),
      attention(2, 2, 17, 128).in(Q | F).note("a partial warp tile"),
      attention(1, 2, 64, 64).in(Q | F).note("exactly one block"),
      attention(2, 2, 65, 128).in(Q).note("a one-row tail block"),
      attention(1, 1, 150, 64).in(Q).twice().note("three key blocks; run twice (determinism, no allocation)"),
      attention(1, 1, 150, 128).in(Q).twice().note("three key blocks; run twice (determinism, no allocation)"),
      attention(2, 4, 17, 16).in(Q).note("HS 16: one dim per lane, lanes 16-31 idle"),
      attention(1, 3, 40, 24).in(Q).note("HS 24; T crosses a 32-key chunk"),
      attention(1, 2, 40, 96).in(Q).note("HS 96: three dims per lane"),
      attention(1, 1, 33, 256).in(Q).note("HS 256: the largest the kernels take"),
      attention(2, 1, 65, 128).in(F).note("a one-row tail block"),
      attention(1, 3, 200, 64).in(F),
      attention(2, 2, 333, 128).in(F),
      attention(3, 4, 128, 64).in(F).note("exactly two blocks"),
      attention(1, 2, 1000, 64).in(F),
      attention(1, 2, 1024, 64).in(F),
      attention(1, 2, 1024, 128).in(F),
      attention(1, 1, 1000, 128).in(F),
      attention(2, 3, 1000, 64).in(F).twice().note("run twice (determinism, no allocation)"),
      attention(1, 2, 777, 128).in(F).twice().note("run twice (determinism, no allocation)"),
      attention(2, 4, 200, 16).in(F).note("HS 16"),
      attention(1, 3, 129, 24).in(F).note("HS 24"),
      attention(1, 2, 300, 96).in(F).note("HS 96"),
      attention(1, 1, 100, 256).in(F).note("HS 256"),
      attention(64, 12, 1024, 64).bench("d12").note("HS 64"),
      attention(64, 6, 1024, 128).bench("d12").note("HS 128"),
      attention(16, 25, 1024, 64).bench("d48"),

      // ---- attention_decode: positions 0, 1, T/2, T-1 of a KV cache ----
      decode(77, 256, 4).in(Q | F).note("HS 64"),
      decode(77, 64, 4).in(Q | F).note("HS 16"),
      decode(1024, 768, 12).in(Q | F).note("d12: a full context"),
      decode(1024, 1600, 25).in(F).note("d48"),
      decode(1024, 768, 12).bench("d12"),
      decode(1024, 1600, 25).bench("d48"),

      // ---- classifier: losses without gradient (logits untouched), then with dlogits in place ----
      classifier(4, 50257, 50304).in(Q | F).twice().note("GPT-2's vocabulary, padded to 50304"),
      classifier(5, 100, 128).types(kBF16).in(Q | F).note("padding inside a 16-byte vector"),
      classifier(4, 128, 128).types(kF32).in(Q | F).note("no padding"),
      classifier(1, 1, 8).types(kBF16).in(Q | F).note("one real column: loss 0, dlogits 0"),
      classifier(4096, 50257, 50304).bench("d12"),
      classifier(4096, 50257, 50304).bench("d48"),

      // ---- global norm (Σ x², fp64 partials) ----
      global_norm(1).in(Q | F).twice().note("one element"),
      global_norm(1000 + 3).in(Q | F).twice().note("a scalar tail"),
      global_norm(4096 * 512 + 4096 + 7).in(Q).twice().note("just over 512 blocks: a second grid-stride step"),
      global_norm(int64_t{4096} * 512 * 3 + 7).in(F).twice().note("three grid-stride steps"),
      global_norm(int64_t{25} * 1000 * 1000).in(F).twice().note("a d12-sized gradient"),
      global_norm(0, "d12").bench("d12"),
      global_norm(0, "d48").bench("d48"),

      // ---- AdamW (the device kernel against the CPU's, and host_adamw against the device) ----
      adamw(false, 0.4f).types(kF32).in(Q | F).twice().note("fp32 parameters in place, a clipping scale"),
      adamw(true).types(kBF16).in(Q | F).twice().note("bf16 parameters from fp32 master weights, a shard offset"),
      adamw(false).types(kBF16).in(Q | F).twice().note("bf16 parameters without master weights"),
      adamw(true, 1.0f, "d12").bench("d12"),
      adamw(true, 1.0f, "d48").bench("d48"),
  };
}

// ---- tolerances -------------------------------------------------------------------------------
// The reference is the CPU backend (fp32) on the very values the device holds: every input of a
// bf16 case is rounded to bf16 first, so only the device's own roundings and summation orders
// differ. 2^-7 is one bf16 rounding of the output (≤ 2^-8 relative) with a factor 2 of margin;
// atol covers results near 0 that come from larger terms (cancellation).
struct TolRow {
  Op op;
  const char* outputs;  // the outputs it covers, space-separated
  Tolerance fp32, bf16;
  // Why (the reasons the old per-op tests gave, kept with the numbers).
};
constexpr float kUlp = 1.0f / 128;  // 2^-7
const TolRow kTolerances[] = {
    // Encoder: fp32 sums differ in order only (≲ k·2^-24 for a few hundred terms): 1e-5.
    {Op::Encoder, "out dwte dwpe", {1e-5f, 1e-5f}, {1e-5f, kUlp}},
    // Layernorm. out: fp32 1e-4 relative; atol covers the cancellation in (x − mean)·rstd.
    // dinp: its terms are scaled by rstd ~ 1.7 (bf16 atol 1e-4). dweight/dbias: sums of N terms
    // in another order (atol 1e-3 bf16, 1e-4 fp32). mean/rstd are fp32 in both: 1e-5 relative.
    {Op::Layernorm, "out rec out2", {1e-5f, 1e-4f}, {1e-5f, kUlp}},
    {Op::Layernorm, "mean rstd mean2 rstd2", {1e-6f, 1e-5f}, {1e-6f, 1e-5f}},
    {Op::Layernorm, "dinp", {1e-5f, 1e-4f}, {1e-4f, kUlp}},
    {Op::Layernorm, "dweight dbias", {1e-4f, 1e-4f}, {1e-3f, kUlp}},
    // One add, correctly rounded on both sides.
    {Op::Layernorm, "residual a", {1e-6f, 1e-6f}, {1e-6f, kUlp}},
    // Matmul: atol scales with rms(ref): an output near 0 made of terms of typical size (the
    // GELU tail, dinp·gelu' products) carries their rounding error. fp32: sums of K terms in
    // another order, 1e-5. Through the GELU backward, fp32 1e-3: cuBLASLt's DGELU epilogue
    // computes gelu' with its own tanh/exp.
    {Op::Matmul, "out pre dinp dweight dbias", {0, 1e-5f, 1e-5f}, {0, kUlp, 1.0f / 256}},
    {Op::Matmul, "dinp_gelu", {0, 1e-3f, 1e-3f}, {0, kUlp, 1.0f / 256}},
    // The forward's GELU_AUX epilogue (test_op_variants): cuBLASLt's own GELU, fp32 1e-3 too.
    {Op::Matmul, "out_gelu_epilogue", {0, 1e-3f, 1e-3f}, {0, kUlp, 1.0f / 256}},
    // GELU: fp32 fast-math exp/reciprocal are a few ulp (1e-5). atol: gelu' crosses 0 near
    // x = −0.75; in the far negative tail the CPU's tanh saturates to −1 and returns gelu' = 0
    // where the true value is ~ −1.6e-6 (fp32 backward atol 1e-5).
    {Op::Gelu, "out", {1e-6f, 1e-5f}, {1e-5f, kUlp}},
    {Op::Gelu, "dinp dout", {1e-5f, 1e-5f}, {1e-5f, kUlp}},
    // Residual: one add, correctly rounded on both sides: fp32 exact (1e-6 relative of margin).
    {Op::Residual, "out a", {0, 1e-6f}, {1e-6f, kUlp}},
    // Attention. fp32 (the simple kernels, fp32 maths): 1e-4 + 1e-3·|ref|. bf16: the
    // FlashAttention rule, per output (y, lse, dq, dk, dv): max error at most 2× that of a naive
    // bf16 implementation (S, P, dP, dS and the outputs rounded to bf16) plus 1e-5 for outputs the
    // naive path gets exactly right by luck (T = 1, where dS is exactly 0).
    {Op::Attention, "y lse dqkv dq dk dv", {1e-4f, 1e-3f}, {1e-5f, 0, 0, false, 2.0f}},
    // Decode: fp32 sums in another order; bf16: the output rounded once.
    {Op::AttentionDecode, "y", {1e-5f, 1e-4f}, {1e-3f, kUlp}},
    // Classifier. losses (fp32 in both): lse ~ 11 for V = 50257 with fast-math exp/log, ~1e-6
    // relative, so 1e-4 absolute (10× margin). dlogits: the softmax error is the lse error plus a
    // few ulp of exp (fp32 1e-4 relative); no cancellation, and padded columns must be exactly 0
    // (atol 1e-12). Logits after a call without gradient: untouched, bitwise.
    {Op::Classifier, "losses", {1e-4f, 1e-5f}, {1e-4f, 1e-5f}},
    {Op::Classifier, "dlogits", {1e-12f, 1e-4f}, {1e-12f, kUlp}},
    {Op::Classifier, "logits", {0, 0, 0, true}, {0, 0, 0, true}},
    // Global norm: 16 squares summed in fp32 (≤ 16·2^-24), the rest in fp64, rounded to float.
    {Op::GlobalNorm, "norm2", {0, 1e-5f}, {0, 1e-5f}},
    // AdamW: the CPU and CUDA kernels share the element update (kernels/shared/adamw_math.h:
    // explicit multiply-adds, IEEE division and square root): fp32 state bitwise. bf16
    // parameters are stochastically rounded: within one bf16 ulp of the fp32 result (their bits
    // are checked against host_adamw, which rounds the same way).
    {Op::AdamW, "master m v", {0, 0, 0, true}, {0, 0, 0, true}},
    {Op::AdamW, "params", {0, 0, 0, true}, {0, kUlp}},
};

bool word_in(const char* list, const std::string& word) {
  const std::string s = std::string(" ") + list + " ";
  return s.find(" " + word + " ") != std::string::npos;
}

}  // namespace

const char* op_name(Op op) {
  switch (op) {
    case Op::Encoder: return "encoder";
    case Op::Layernorm: return "layernorm";
    case Op::Matmul: return "matmul";
    case Op::Gelu: return "gelu";
    case Op::Residual: return "residual";
    case Op::Attention: return "attention";
    case Op::AttentionDecode: return "attention_decode";
    case Op::Classifier: return "classifier";
    case Op::GlobalNorm: return "global_norm";
    case Op::AdamW: return "adamw";
  }
  return "?";
}

bool parse_op(const std::string& name, Op* op) {
  for (int i = 0; i < kNumOps; ++i)
    if (name == op_name(static_cast<Op>(i))) {
      *op = static_cast<Op>(i);
      return true;
    }
  return false;
}

const std::vector<OpCase>& op_table() {
  static const std::vector<OpCase> table = make_table();
  return table;
}

std::string case_label(const OpCase& c, DType dtype) {
  char buf[160];
  const char* dt = dtype == DType::BF16 ? "bf16" : "fp32";
  switch (c.op) {
    case Op::Encoder:
      std::snprintf(buf, sizeof buf, "encoder %s B=%d T=%d C=%d V=%d Vp=%d%s", dt, c.B, c.T, c.C, c.V, c.Vp,
                    c.skewed ? " skewed" : "");
      break;
    case Op::Layernorm: std::snprintf(buf, sizeof buf, "layernorm %s N=%d C=%d", dt, c.N, c.C); break;
    case Op::Matmul:
      std::snprintf(buf, sizeof buf, "matmul %s N=%d C=%d OC=%d%s%s%s", dt, c.N, c.C, c.OC, c.bias ? " bias" : "",
                    c.gelu_out ? " gelu-out" : "", c.gelu_in ? " gelu-in" : "");
      break;
    case Op::Gelu:
    case Op::Residual:
      std::snprintf(buf, sizeof buf, "%s %s n=%lld", op_name(c.op), dt, static_cast<long long>(c.n));
      break;
    case Op::Attention:
      std::snprintf(buf, sizeof buf, "attention %s B=%d NH=%d T=%d HS=%d", dt, c.B, c.NH, c.T, c.C / c.NH);
      break;
    case Op::AttentionDecode:
      std::snprintf(buf, sizeof buf, "attention_decode %s T=%d C=%d NH=%d", dt, c.T, c.C, c.NH);
      break;
    case Op::Classifier: std::snprintf(buf, sizeof buf, "classifier %s N=%d V=%d Vp=%d", dt, c.N, c.V, c.Vp); break;
    case Op::GlobalNorm:
      if (c.layout.empty())
        std::snprintf(buf, sizeof buf, "global_norm %s n=%lld", dt, static_cast<long long>(c.n));
      else
        std::snprintf(buf, sizeof buf, "global_norm %s %s parameters", dt, c.layout.c_str());
      break;
    case Op::AdamW:
      std::snprintf(buf, sizeof buf, "adamw %s%s %s layout grad_scale=%g", dt, c.master ? " +master" : "",
                    c.layout.empty() ? "test" : c.layout.c_str(), c.grad_scale);
      break;
  }
  return buf;
}

Tolerance tolerance(Op op, const std::string& output, DType dtype) {
  for (const TolRow& r : kTolerances)
    if (r.op == op && word_in(r.outputs, output)) return dtype == DType::BF16 ? r.bf16 : r.fp32;
  throw std::logic_error(std::string("op table: no tolerance for ") + op_name(op) + " output " + output);
}

}  // namespace gpt2::ops
