// The ops of the op table over the Backend interface, and the harness (see backend_ops.h).
#include "tests/ops/backend_ops.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <stdexcept>

#include "engine/backend/cpu_backend.h"
#include "engine/plan/model_config.h"
#include "engine/util/bf16.h"
#include "engine/util/errors.h"
#include "kernels/cpu/gelu.h"
#include "kernels/cuda/scratch_sizes.h"

namespace gpt2::ops {

namespace {

constexpr int64_t kAlign = 256;
constexpr int64_t kGuardBytes = 16 << 10;     // after every written tensor; must keep its poison
constexpr int64_t kChunk = int64_t{1} << 22;  // elements generated and uploaded at a time

int64_t round_up(int64_t x, int64_t a) { return (x + a - 1) / a * a; }
int elem_size(DType d) { return dtype_size(d); }
float round_bf16(float x) { return bf16_bits_to_float(float_to_bf16_bits(x)); }

// ---- deterministic draws ----------------------------------------------------------------------
uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : s) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return h;
}
uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
uint64_t seed_of(const OpInstance& inst, const TensorSpec& s) {
  return fnv1a(inst.label + "/" + (s.gen.draws.empty() ? s.name : s.gen.draws));
}

// Elements [begin, begin + count) of a float tensor's initial values.
void draw_floats(const OpInstance& inst, const TensorSpec& s, int64_t begin, int64_t count, float* out) {
  const uint64_t seed = seed_of(inst, s);
  const bool round = s.elem == Elem::Store && inst.dtype == DType::BF16;
  const float lo = s.gen.lo, span = s.gen.hi - s.gen.lo;
#pragma omp parallel for schedule(static) if (count > 65536)
  for (int64_t k = 0; k < count; ++k) {
    const float u = static_cast<float>(splitmix(seed + static_cast<uint64_t>(begin + k)) >> 40) * (1.0f / 16777216.0f);
    const float x = lo + span * u;
    out[k] = round ? round_bf16(x) : x;
  }
  if (s.gen.kind == Gen::GeluOf) {
    std::vector<float> pre(out, out + count);
    cpu::gelu_forward(out, pre.data(), static_cast<size_t>(count));
    if (round)
      for (int64_t k = 0; k < count; ++k) out[k] = round_bf16(out[k]);
  }
}

void draw_ints(const OpInstance& inst, const TensorSpec& s, int64_t begin, int64_t count, int32_t* out) {
  const uint64_t seed = seed_of(inst, s);
  const uint64_t V = static_cast<uint64_t>(s.gen.V);
  for (int64_t k = 0; k < count; ++k) {
    const int64_t i = begin + k;
    const uint64_t h = splitmix(seed + static_cast<uint64_t>(i));
    if (s.gen.kind == Gen::Targets)
      out[k] = i == 0 ? s.gen.V - 1 : static_cast<int32_t>(h % V);
    else
      out[k] = (s.gen.skewed && (h & 1) == 0) ? 1 : static_cast<int32_t>((h >> 1) % V);
  }
}

std::vector<int32_t> all_ints(const OpInstance& inst, const std::string& name) {
  const TensorSpec& s = inst.spec(name);
  std::vector<int32_t> v(static_cast<size_t>(s.n));
  draw_ints(inst, s, 0, s.n, v.data());
  return v;
}

// ---- comparisons ------------------------------------------------------------------------------
std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

bool compare_close(Report& r, const std::string& name, const std::vector<float>& got, const std::vector<float>& ref,
                   const Tolerance& t) {
  if (got.size() != ref.size()) return r.result(false, name, fmt("size %zu vs %zu", got.size(), ref.size()));
  double sq = 0;
  for (float x : ref) sq += static_cast<double>(x) * x;
  const double rms = ref.empty() ? 0.0 : std::sqrt(sq / static_cast<double>(ref.size()));
  const double atol = t.atol + t.atol_rms * rms;
  double max_abs = 0, max_rel = 0;
  size_t bad = 0, worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::fabs(static_cast<double>(got[i]) - ref[i]);
    const bool ok = std::isfinite(got[i]) && d <= atol + t.rtol * std::fabs(static_cast<double>(ref[i]));
    if (!ok && bad++ == 0) worst = i;
    if (!(d <= max_abs)) max_abs = std::isfinite(d) ? d : INFINITY;
    if (std::fabs(ref[i]) > 1e-6) max_rel = std::max(max_rel, d / std::fabs(ref[i]));
  }
  std::string detail = fmt("max|d| %.2e  max rel %.2e  (atol %.1e rtol %.1e)", max_abs, max_rel, atol, t.rtol);
  if (bad) detail += fmt("; %zu of %zu bad, first [%zu] got %g ref %g", bad, got.size(), worst, got[worst], ref[worst]);
  return r.result(bad == 0, name, detail);
}

size_t bit_differences(const std::vector<float>& a, const std::vector<float>& b, size_t* first) {
  size_t bad = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0 && bad++ == 0) *first = i;
  return bad + (a.size() > b.size() ? a.size() - b.size() : b.size() - a.size());
}

bool compare_bitwise(Report& r, const std::string& name, const std::vector<float>& got, const std::vector<float>& ref) {
  size_t first = 0;
  const size_t bad = bit_differences(got, ref, &first);
  if (bad == 0) return r.result(true, name, fmt("bitwise identical (%zu elements)", got.size()));
  return r.result(false, name,
                  fmt("differs in %zu of %zu elements (first [%zu]: %.9g vs %.9g)", bad, ref.size(), first,
                      first < got.size() ? got[first] : NAN, first < ref.size() ? ref[first] : NAN));
}

double max_abs_error(const std::vector<float>& got, const std::vector<float>& ref) {
  double e = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    e = std::max(e, std::fabs(static_cast<double>(got[i]) - ref[i]));
  }
  return e;
}

bool compare_naive(Report& r, const std::string& name, const std::vector<float>& got, const std::vector<float>& ref,
                   const std::vector<float>& naive, const Tolerance& t) {
  if (got.size() != ref.size() || naive.size() != ref.size())
    return r.result(false, name, fmt("size %zu vs %zu (naive %zu)", got.size(), ref.size(), naive.size()));
  const double e = max_abs_error(got, ref), en = max_abs_error(naive, ref);
  const double limit = t.naive * en + t.atol;
  return r.result(
      got.size() == ref.size() && e <= limit, name,
      fmt("max|d| %.2e  naive bf16 %.2e  (limit %.0f x naive + %.0e = %.2e)", e, en, t.naive, t.atol, limit));
}

// ---- builders ---------------------------------------------------------------------------------
Gen uni(float lo, float hi) {
  Gen g;
  g.lo = lo, g.hi = hi;
  return g;
}
Check cmp(const std::string& tensor, const std::string& output = "") {
  Check c;
  c.tensor = tensor;
  c.output = output;
  return c;
}
Check same(const std::string& tensor, const std::string& other) {
  Check c;
  c.tensor = tensor;
  c.same_as = other;
  return c;
}

void add(OpInstance& I, const std::string& name, int64_t n, Elem e, Role r, Gen g = uni(-1.f, 1.f)) {
  I.tensors.push_back({name, n, e, r, g});
}

void build_encoder(OpInstance& I) {
  const OpCase& c = I.c;
  const int B = c.B, T = c.T, C = c.C, V = c.V, maxT = c.T + 3;
  const int64_t BT = static_cast<int64_t>(B) * T, NC = BT * C;
  Gen tok;
  tok.kind = Gen::Tokens, tok.V = V, tok.skewed = c.skewed;
  add(I, "tokens", BT, Elem::I32, Role::In, tok);
  add(I, "wte", static_cast<int64_t>(c.Vp) * C, Elem::Store, Role::In);
  add(I, "wpe", static_cast<int64_t>(maxT) * C, Elem::Store, Role::In);
  add(I, "out", NC, Elem::Store, Role::Out);
  add(I, "dout", NC, Elem::Store, Role::In);
  add(I, "dwte", static_cast<int64_t>(c.Vp) * C, Elem::Store, Role::InOut, uni(-0.5f, 0.5f));
  add(I, "dwpe", static_cast<int64_t>(maxT) * C, Elem::Store, Role::InOut, uni(-0.5f, 0.5f));
  I.needs.enc_ints = cuda::encoder_backward_scratch_ints(B, T);
  const double e = elem_size(I.dtype);
  const std::vector<int32_t> tokens = all_ints(I, "tokens");
  const double S = static_cast<double>(std::set<int32_t>(tokens.begin(), tokens.end()).size());
  I.stages.push_back(
      {"encoder_fwd",
       [=](Side& s) { s.be.encoder_forward(s.t("out"), s.i("tokens"), s.t("wte"), s.t("wpe"), B, T, C); },
       {cmp("out")},
       4.0 * BT + 2 * e * NC + e * T * C});
  // Bytes: dout once, the touched wte rows and wpe read + written, the sorted positions and
  // segments. Through the Backend the call includes the host grouping of positions by token.
  I.stages.push_back({"encoder_bwd",
                      [=](Side& s) {
                        s.be.encoder_backward(s.t("dwte"), s.t("dwpe"), s.t("dout"), s.i("tokens"), s.host_i("tokens"),
                                              B, T, C, V);
                      },
                      {cmp("dwte"), cmp("dwpe")},
                      e * NC + 2 * e * S * C + 2 * e * T * C + 4.0 * (BT + 3 * S)});
}

void build_layernorm(OpInstance& I) {
  const int N = I.c.N, C = I.c.C;
  const int64_t NC = static_cast<int64_t>(N) * C;
  // An offset in the input (mean != 0) makes the two-pass variance matter. `a` is updated in
  // place by the last stage.
  add(I, "a", NC, Elem::Store, Role::InOut, uni(-0.5f, 1.5f));
  add(I, "b", NC, Elem::Store, Role::In);
  add(I, "weight", C, Elem::Store, Role::In, uni(0.5f, 1.5f));
  add(I, "bias", C, Elem::Store, Role::In, uni(-0.2f, 0.2f));
  add(I, "dout", NC, Elem::Store, Role::In);
  for (const char* o : {"out", "rec", "residual", "out2", "residual_sep", "out_sep"})
    add(I, o, NC, Elem::Store, Role::Out);
  for (const char* o : {"mean", "rstd", "mean2", "rstd2", "mean_sep", "rstd_sep"}) add(I, o, N, Elem::F32, Role::Out);
  add(I, "dinp", NC, Elem::Store, Role::InOut, uni(-0.1f, 0.1f));
  add(I, "dweight", C, Elem::Store, Role::InOut);
  add(I, "dbias", C, Elem::Store, Role::InOut);
  I.needs.ln_floats = cuda::layernorm_backward_scratch_floats(N, C);
  const double e = elem_size(I.dtype);
  I.stages.push_back({"layernorm_fwd",
                      [=](Side& s) {
                        s.be.layernorm_forward(s.t("out"), s.f("mean"), s.f("rstd"), s.t("a"), s.t("weight"),
                                               s.t("bias"), N, C);
                      },
                      {cmp("out"), cmp("mean"), cmp("rstd")},
                      2 * e * NC + 8.0 * N});
  // The interface's contract: the recompute gives the forward's bits.
  I.stages.push_back({"layernorm_recompute",
                      [=](Side& s) {
                        s.be.layernorm_recompute(s.t("rec"), s.t("a"), s.f("mean"), s.f("rstd"), s.t("weight"),
                                                 s.t("bias"), N, C);
                      },
                      {same("rec", "out")}});
  // Each backend's backward reads its own mean and rstd. dinp, dweight, dbias start non-zero: +=.
  I.stages.push_back({"layernorm_bwd",
                      [=](Side& s) {
                        s.be.layernorm_backward(s.t("dinp"), s.t("dweight"), s.t("dbias"), s.t("dout"), s.t("a"),
                                                s.t("weight"), s.f("mean"), s.f("rstd"), N, C);
                      },
                      {cmp("dinp"), cmp("dweight"), cmp("dbias")},
                      4 * e * NC + 8.0 * N});
  // residual = a + b rounded to the storage type, then layernorm(residual). The CPU backend
  // stores fp32, so for a bf16 case its reference makes the two calls and holds the residual as
  // the device stores it (bf16) in between; in fp32 it makes the fused call itself.
  const bool split_ref = I.dtype == DType::BF16;
  auto residual_layernorm = [=](Side& s, const std::string& res, const char* out, const char* mean, const char* rstd) {
    if (s.reference && split_ref) {
      s.be.residual_forward(s.t(res), s.t("a"), s.t("b"), NC);
      s.hold_as_stored(res);
      s.be.layernorm_forward(s.t(out), s.f(mean), s.f(rstd), s.t(res), s.t("weight"), s.t("bias"), N, C);
    } else {
      s.be.residual_layernorm_forward(s.t(res), s.t(out), s.f(mean), s.f(rstd), s.t("a"), s.t("b"), s.t("weight"),
                                      s.t("bias"), N, C);
    }
  };
  I.stages.push_back({"residual_layernorm_fwd",
                      [=](Side& s) { residual_layernorm(s, "residual", "out2", "mean2", "rstd2"); },
                      {cmp("residual"), cmp("out2"), cmp("mean2"), cmp("rstd2")},
                      4 * e * NC + 8.0 * N});
  // The contract: the fused call gives the bits of residual_forward followed by layernorm_forward.
  I.stages.push_back({"residual_forward + layernorm_forward",
                      [=](Side& s) {
                        s.be.residual_forward(s.t("residual_sep"), s.t("a"), s.t("b"), NC);
                        s.hold_as_stored("residual_sep");
                        s.be.layernorm_forward(s.t("out_sep"), s.f("mean_sep"), s.f("rstd_sep"), s.t("residual_sep"),
                                               s.t("weight"), s.t("bias"), N, C);
                      },
                      {same("residual_sep", "residual"), same("out_sep", "out2"), same("mean_sep", "mean2"),
                       same("rstd_sep", "rstd2")}});
  // In place: the residual aliases a (x += y, then layernorm), as the model calls it.
  I.stages.push_back({"residual_layernorm_fwd in place",
                      [=](Side& s) { residual_layernorm(s, "a", "out2", "mean2", "rstd2"); },
                      {cmp("a"), same("a", "residual")}});
}

void build_matmul(OpInstance& I) {
  const OpCase& c = I.c;
  const int N = c.N, C = c.C, OC = c.OC;
  const bool bias = c.bias, gelu_out = c.gelu_out, gelu_in = c.gelu_in;
  const int64_t nin = static_cast<int64_t>(N) * C, nout = static_cast<int64_t>(N) * OC;
  const int64_t nw = static_cast<int64_t>(OC) * C;
  if (gelu_in) {
    // The fcproj layer: its input is gelu(pre_in) of a stored pre-activation.
    add(I, "pre_in", nin, Elem::Store, Role::In, uni(-3.f, 3.f));
    Gen g = uni(-3.f, 3.f);
    g.kind = Gen::GeluOf, g.draws = "pre_in";
    add(I, "inp", nin, Elem::Store, Role::In, g);
  } else {
    add(I, "inp", nin, Elem::Store, Role::In);
  }
  add(I, "weight", nw, Elem::Store, Role::In);
  if (bias) add(I, "bias", OC, Elem::Store, Role::In);
  add(I, "out", nout, Elem::Store, Role::Out);
  if (gelu_out) add(I, "pre", nout, Elem::Store, Role::Out);
  add(I, "dout", nout, Elem::Store, Role::In);
  add(I, "dinp", nin, Elem::Store, Role::Out);
  add(I, "dweight", nw, Elem::Store, Role::InOut);
  if (bias) add(I, "dbias", OC, Elem::Store, Role::InOut);
  if (bias) I.needs.max_oc = OC;
  const double flops = 2.0 * N * static_cast<double>(C) * OC;
  auto b_of = [bias](Side& s, const char* name) { return bias ? s.t(name) : TensorRef{}; };
  if (gelu_out)
    I.stages.push_back({"matmul_fwd_gelu",
                        [=](Side& s) {
                          s.be.matmul_forward_gelu(s.t("pre"), s.t("out"), s.t("inp"), s.t("weight"), b_of(s, "bias"),
                                                   N, C, OC);
                        },
                        {cmp("pre"), cmp("out")},
                        0,
                        flops});
  else
    I.stages.push_back(
        {"matmul_fwd",
         [=](Side& s) { s.be.matmul_forward(s.t("out"), s.t("inp"), s.t("weight"), b_of(s, "bias"), N, C, OC); },
         {cmp("out")},
         0,
         flops});
  // dweight and dbias start non-zero: +=. dinp is written (poisoned before).
  std::vector<Check> bwd_checks = {cmp("dinp", gelu_in ? "dinp_gelu" : "dinp"), cmp("dweight")};
  if (bias) bwd_checks.push_back(cmp("dbias"));
  I.stages.push_back({gelu_in ? "matmul_bwd_gelu" : "matmul_bwd",
                      [=](Side& s) {
                        if (s.planted("matmul-dweight-overwrite"))
                          s.be.zero(s.t("dweight").ptr, static_cast<size_t>(nw) * dtype_size(s.t("dweight").dtype));
                        if (gelu_in)
                          s.be.matmul_backward_gelu(s.t("dinp"), s.t("dweight"), b_of(s, "dbias"), s.t("dout"),
                                                    s.t("inp"), s.t("weight"), s.t("pre_in"), N, C, OC);
                        else
                          s.be.matmul_backward(s.t("dinp"), s.t("dweight"), b_of(s, "dbias"), s.t("dout"), s.t("inp"),
                                               s.t("weight"), N, C, OC);
                      },
                      bwd_checks, 0, 2 * flops});
  // Without dinp (null) and dbias: dweight accumulates a second time.
  I.stages.push_back({"matmul_bwd without dinp",
                      [=](Side& s) {
                        s.be.matmul_backward(TensorRef{}, s.t("dweight"), TensorRef{}, s.t("dout"), s.t("inp"),
                                             s.t("weight"), N, C, OC);
                      },
                      {cmp("dweight")}});
}

void build_gelu(OpInstance& I) {
  const int64_t n = I.c.n;
  add(I, "x", n, Elem::Store, Role::In, uni(-5.f, 5.f));
  add(I, "dout", n, Elem::Store, Role::InOut);  // the in-place stage writes it
  add(I, "out", n, Elem::Store, Role::Out);
  add(I, "dinp", n, Elem::Store, Role::Out);
  const double e = elem_size(I.dtype);
  I.stages.push_back({"gelu_fwd",
                      [=](Side& s) { s.be.gelu_forward(s.t("out"), s.t("x"), s.planted("gelu-tail") ? n - 1 : n); },
                      {cmp("out")},
                      2 * e * n});
  I.stages.push_back({"gelu_bwd",
                      [=](Side& s) { s.be.gelu_backward(s.t("dinp"), s.t("x"), s.t("dout"), n); },
                      {cmp("dinp")},
                      3 * e * n});
  // In place (dinp aliases dout): the same bits as out of place.
  I.stages.push_back({"gelu_bwd in place",
                      [=](Side& s) { s.be.gelu_backward(s.t("dout"), s.t("x"), s.t("dout"), n); },
                      {cmp("dout"), same("dout", "dinp")}});
}

void build_residual(OpInstance& I) {
  const int64_t n = I.c.n;
  add(I, "a", n, Elem::Store, Role::InOut);  // the in-place stage writes it
  add(I, "b", n, Elem::Store, Role::In);
  add(I, "out", n, Elem::Store, Role::Out);
  const double e = elem_size(I.dtype);
  I.stages.push_back({"residual_fwd",
                      [=](Side& s) {
                        s.be.residual_forward(s.t("out"), s.t("a"), s.t("b"), n);
                        if (s.planted("residual-overrun")) {
                          const uint32_t zero = 0;
                          s.be.upload(s.t("out").at(n).ptr, &zero, static_cast<size_t>(dtype_size(s.store())));
                        }
                      },
                      {cmp("out")},
                      3 * e * n});
  I.stages.push_back({"residual_fwd in place",
                      [=](Side& s) { s.be.residual_forward(s.t("a"), s.t("a"), s.t("b"), n); },
                      {cmp("a"), same("a", "out")}});
}

// Naive bf16 attention on the CPU: every matmul reads bf16 values and accumulates in fp32, and
// every T×T intermediate (S, P, dP, dS) and every output is rounded to bf16, as an unfused
// implementation storing them in bf16 would. Its error against the fp32 reference is the scale
// of attention's bf16 rule.
struct NaiveAttention {
  bool done = false;
  std::vector<float> y, lse, dqkv;
};
void naive_bf16_attention(NaiveAttention& o, const std::vector<float>& qkv, const std::vector<float>& dy, int B, int T,
                          int NH, int HS) {
  const auto bfr = round_bf16;
  const int C = NH * HS;
  const size_t C3 = 3 * static_cast<size_t>(C);
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  o.y.assign(static_cast<size_t>(B) * T * C, 0.f);
  o.lse.assign(static_cast<size_t>(B) * NH * T, 0.f);
  o.dqkv.assign(static_cast<size_t>(B) * T * C3, 0.f);
  std::vector<float> P(static_cast<size_t>(T) * T), dk(static_cast<size_t>(T) * HS), dv(static_cast<size_t>(T) * HS);
  std::vector<float> acc(HS), dS(T);
  auto dot = [HS](const float* a, const float* b) {
    float s = 0.f;
    for (int d = 0; d < HS; ++d) s += a[d] * b[d];
    return s;
  };
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h) {
      const float* base = qkv.data() + static_cast<size_t>(b) * T * C3 + h * HS;
      auto q = [&](int i) { return base + i * C3; };
      auto k = [&](int j) { return base + j * C3 + C; };
      auto v = [&](int j) { return base + j * C3 + 2 * C; };
      auto dyr = [&](int i) { return dy.data() + (static_cast<size_t>(b) * T + i) * C + h * HS; };
      for (int i = 0; i < T; ++i) {
        float* p = &P[static_cast<size_t>(i) * T];
        float m = -INFINITY;
        for (int j = 0; j <= i; ++j) {
          p[j] = bfr(scale * dot(q(i), k(j)));  // S in bf16
          m = std::max(m, p[j]);
        }
        float sum = 0.f;
        for (int j = 0; j <= i; ++j) {
          p[j] = std::exp(p[j] - m);
          sum += p[j];
        }
        for (int j = 0; j <= i; ++j) p[j] = bfr(p[j] / sum);  // P in bf16
        o.lse[(static_cast<size_t>(b) * NH + h) * T + i] = m + std::log(sum);
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int j = 0; j <= i; ++j)
          for (int d = 0; d < HS; ++d) acc[d] += p[j] * v(j)[d];
        for (int d = 0; d < HS; ++d) o.y[(static_cast<size_t>(b) * T + i) * C + h * HS + d] = bfr(acc[d]);
      }
      std::fill(dk.begin(), dk.end(), 0.f);
      std::fill(dv.begin(), dv.end(), 0.f);
      for (int i = 0; i < T; ++i) {
        const float* p = &P[static_cast<size_t>(i) * T];
        float Dn = 0.f;
        for (int j = 0; j <= i; ++j) {
          dS[j] = bfr(dot(dyr(i), v(j)));  // dP in bf16
          Dn += p[j] * dS[j];
        }
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int j = 0; j <= i; ++j) {
          const float ds = bfr(p[j] * (dS[j] - Dn));  // dS in bf16
          for (int d = 0; d < HS; ++d) {
            acc[d] += ds * k(j)[d];
            dk[static_cast<size_t>(j) * HS + d] += ds * q(i)[d];
            dv[static_cast<size_t>(j) * HS + d] += p[j] * dyr(i)[d];
          }
        }
        float* dq = o.dqkv.data() + (static_cast<size_t>(b) * T + i) * C3 + h * HS;
        for (int d = 0; d < HS; ++d) dq[d] = bfr(scale * acc[d]);
      }
      for (int j = 0; j < T; ++j) {
        float* out = o.dqkv.data() + (static_cast<size_t>(b) * T + j) * C3 + h * HS;
        for (int d = 0; d < HS; ++d) {
          out[C + d] = bfr(scale * dk[static_cast<size_t>(j) * HS + d]);
          out[2 * C + d] = bfr(dv[static_cast<size_t>(j) * HS + d]);
        }
      }
    }
  o.done = true;
}

void build_attention(OpInstance& I) {
  const OpCase& c = I.c;
  const int B = c.B, T = c.T, C = c.C, NH = c.NH, HS = c.C / c.NH;
  const int64_t BTC = static_cast<int64_t>(B) * T * C;
  // q, k in [-2, 2] make the softmax far from uniform (score std ≈ 1.3).
  add(I, "qkv", 3 * BTC, Elem::Store, Role::In, uni(-2.f, 2.f));
  add(I, "dy", BTC, Elem::Store, Role::In);
  add(I, "y", BTC, Elem::Store, Role::Out);
  add(I, "lse", static_cast<int64_t>(B) * NH * T, Elem::F32, Role::Out);
  add(I, "dqkv", 3 * BTC, Elem::Store, Role::Out);
  I.needs.att_floats = static_cast<size_t>(B) * NH * T;
  const bool bf16 = I.dtype == DType::BF16;
  auto naive = std::make_shared<NaiveAttention>();
  auto naive_of = [naive, B, T, NH, HS](Side& ref) -> const NaiveAttention& {
    if (!naive->done) naive_bf16_attention(*naive, ref.read("qkv"), ref.read("dy"), B, T, NH, HS);
    return *naive;
  };
  auto with_naive = [&](Check ch, std::function<std::vector<float>(const NaiveAttention&)> pick) {
    if (bf16) ch.naive = [naive_of, pick](Side& ref) { return pick(naive_of(ref)); };
    return ch;
  };
  std::vector<Check> fwd = {with_naive(cmp("y"), [](const NaiveAttention& n) { return n.y; }),
                            with_naive(cmp("lse"), [](const NaiveAttention& n) { return n.lse; })};
  std::vector<Check> bwd;
  if (bf16) {
    // The rule holds per output: dq, dk and dv separately.
    const char* part[3] = {"dq", "dk", "dv"};
    for (int p = 0; p < 3; ++p) {
      auto view = [p, C](const std::vector<float>& dqkv) {
        std::vector<float> out(dqkv.size() / 3);
        for (size_t bt = 0; bt < out.size() / C; ++bt)
          std::copy_n(dqkv.begin() + static_cast<std::ptrdiff_t>(bt * 3 * C + p * C), C,
                      out.begin() + static_cast<std::ptrdiff_t>(bt * C));
        return out;
      };
      Check ch = cmp("dqkv");
      ch.output = part[p];
      ch.view = view;
      ch.naive = [naive_of, view](Side& ref) { return view(naive_of(ref).dqkv); };
      bwd.push_back(ch);
    }
  } else {
    bwd.push_back(cmp("dqkv"));
  }
  // FLOPs as FlashAttention counts them: forward 4·B·T²·NH·HS halved for causal, backward 2.5×.
  const double flops = 2.0 * B * static_cast<double>(T) * T * C;
  I.stages.push_back(
      {"attention_fwd",
       [=](Side& s) { s.be.attention_forward(s.t("y"), s.f("lse"), s.att_scratch(), s.t("qkv"), B, T, C, NH); }, fwd, 0,
       flops});
  I.stages.push_back({"attention_bwd",
                      [=](Side& s) {
                        s.be.attention_backward(s.t("dqkv"), s.att_scratch(), s.t("dy"), s.t("qkv"), s.t("y"),
                                                s.f("lse"), B, T, C, NH);
                        if (s.planted("attention-nondeterministic") && s.run_index == 1) {
                          unsigned char byte = 0;  // the lowest byte of element 0: its last mantissa bit
                          s.be.download(&byte, s.t("dqkv").ptr, 1);
                          byte ^= 1;
                          s.be.upload(s.t("dqkv").ptr, &byte, 1);
                        }
                      },
                      bwd, 0, 2.5 * flops});
}

void build_decode(OpInstance& I) {
  const int T = I.c.T, C = I.c.C, NH = I.c.NH;
  add(I, "qkv", static_cast<int64_t>(T) * 3 * C, Elem::Store, Role::In);
  I.needs.att_floats = static_cast<size_t>(NH) * T;
  const double e = elem_size(I.dtype);
  std::vector<int> positions;
  for (int p : {0, 1, T / 2, T - 1})
    if (p < T && std::find(positions.begin(), positions.end(), p) == positions.end()) positions.push_back(p);
  for (int pos : positions) {
    const std::string y = "y_" + std::to_string(pos);
    add(I, y, C, Elem::Store, Role::Out);
    // Bytes (the last position only is timed): the keys and values of rows 0..pos, q, y.
    I.stages.push_back({"attention_decode pos=" + std::to_string(pos),
                        [=](Side& s) { s.be.attention_decode(s.t(y), s.att_scratch(), s.t("qkv"), pos, C, NH); },
                        {cmp(y, "y")},
                        pos == T - 1 ? e * (2.0 * C * (pos + 1) + 2.0 * C) : 0});
  }
}

void build_classifier(OpInstance& I) {
  const int N = I.c.N, V = I.c.V, Vp = I.c.Vp;
  add(I, "logits", static_cast<int64_t>(N) * Vp, Elem::Store, Role::InOut, uni(-6.f, 6.f));
  Gen tg;
  tg.kind = Gen::Targets, tg.V = V;
  add(I, "targets", N, Elem::I32, Role::In, tg);
  add(I, "losses", N, Elem::F32, Role::Out);
  const float scale = 1.0f / (N * 3.0f);
  const double e = elem_size(I.dtype);
  // Evaluation: losses only, the logits untouched.
  I.stages.push_back(
      {"classifier without gradient",
       [=](Side& s) { s.be.classifier(s.f("losses"), s.t("logits"), s.i("targets"), N, V, Vp, scale, false); },
       {cmp("losses"), cmp("logits")}});
  I.stages.push_back(
      {"classifier",
       [=](Side& s) { s.be.classifier(s.f("losses"), s.t("logits"), s.i("targets"), N, V, Vp, scale, true); },
       {cmp("losses"), cmp("logits", "dlogits")},
       2 * e * N * Vp + 8.0 * N});
  if (N < 2) return;
  // A target out of range: the CUDA kernel gives a NaN loss for that row and leaves the others
  // right; the CPU backend refuses the call (std::logic_error).
  I.properties.push_back(
      {"bad target", [=](Side& ref, Side& dev, Report& r) {
         const int32_t bad = V, good = ref.host_i("targets")[1];
         const float ref_loss0 = ref.read("losses")[0];
         bool threw = false;
         ref.be.upload(ref.i("targets") + 1, &bad, sizeof bad);
         try {
           ref.be.classifier(ref.f("losses"), ref.t("logits"), ref.i("targets"), N, V, Vp, scale, true);
         } catch (const std::logic_error&) {
           threw = true;
         }
         ref.be.upload(ref.i("targets") + 1, &good, sizeof good);
         bool ok =
             r.result(threw, "bad target: the CPU backend refuses it", threw ? "std::logic_error" : "no exception");
         dev.restore("logits");  // the last stage left dlogits there
         dev.be.upload(dev.i("targets") + 1, &bad, sizeof bad);
         dev.be.classifier(dev.f("losses"), dev.t("logits"), dev.i("targets"), N, V, Vp, scale, true);
         const std::vector<float> loss = dev.read("losses");
         dev.be.upload(dev.i("targets") + 1, &good, sizeof good);
         const bool nan_ok =
             std::isnan(loss[1]) && std::fabs(loss[0] - ref_loss0) <= 1e-4f + 1e-5f * std::fabs(ref_loss0);
         ok &= r.result(nan_ok, "bad target: NaN loss for its row only",
                        fmt("loss[1] %g, loss[0] %g (ref %g)", loss[1], loss[0], ref_loss0));
         return ok;
       }});
}

// A model's parameter layout: each tensor padded to 128 elements, as the memory plan lays them.
std::vector<AdamWStep::Range> model_ranges(const std::string& model, int64_t* flat) {
  std::vector<AdamWStep::Range> ranges;
  int64_t off = 0;
  for (const auto& sp : param_tensor_specs(preset_config(model))) {
    ranges.push_back({off, sp.numel(), sp.weight_decay});
    off += round_up(sp.numel(), 128);
  }
  *flat = off;
  return ranges;
}

void build_global_norm(OpInstance& I) {
  int64_t n = I.c.n;
  if (!I.c.layout.empty()) model_ranges(I.c.layout, &n);
  add(I, "x", n, Elem::Store, Role::In, uni(-2.f, 2.f));
  add(I, "norm2", 1, Elem::F32, Role::Out);
  I.stages.push_back({"global_norm",
                      [=](Side& s) {
                        const float v = static_cast<float>(s.be.global_norm_squared(s.t("x"), n, s.norm_partials()));
                        s.be.upload(s.f("norm2"), &v, sizeof v);
                      },
                      {cmp("norm2")},
                      static_cast<double>(elem_size(I.dtype)) * n});
}

void build_adamw(OpInstance& I) {
  const OpCase& c = I.c;
  const bool master = c.master, bf16 = I.dtype == DType::BF16;
  const DType dt = I.dtype;
  int64_t flat = 0;
  const AdamWStep step = adamw_step(c, &flat);
  Gen pg = uni(-1.f, 1.f);
  pg.draws = "master";  // params start as the (rounded) master weights
  add(I, "params", flat, Elem::Store, Role::InOut, pg);
  if (master) add(I, "master", flat, Elem::F32, Role::InOut);
  add(I, "grads", flat, Elem::Store, Role::In, uni(-0.1f, 0.1f));
  add(I, "m", flat, Elem::F32, Role::InOut, uni(-0.01f, 0.01f));
  add(I, "v", flat, Elem::F32, Role::InOut, uni(0.f, 1e-4f));
  const int e = elem_size(I.dtype);
  I.needs.host_bytes = static_cast<size_t>(round_up(flat * 4, kAlign) * 3 + round_up(flat * e, kAlign) * 2);
  int64_t count = 0;
  for (const auto& r : step.ranges) count += r.count;
  // Bytes per parameter: grads read; master, m, v (or fp32 params) read and written; bf16
  // params written (and read without master).
  const double bytes = static_cast<double>(count) * (master ? 2.0 * e + 24 : (bf16 ? 3.0 * e + 16 : 28.0));
  std::vector<Check> checks = {cmp("m"), cmp("v")};
  if (master) {
    checks.push_back(cmp("master"));
    Check p = cmp("params");
    p.ref_tensor = "master";  // the CPU updates fp32 parameters: the master weights
    checks.push_back(p);
  } else {
    checks.push_back(cmp("params"));
  }
  I.stages.push_back(
      {"adamw",
       [=](Side& s) {
         if (s.reference)  // fp32 parameters updated in place: the master weights
           s.be.adamw(master ? s.t("master") : s.t("params"), nullptr, s.t("grads"), s.f("m"), s.f("v"), step);
         else
           s.be.adamw(s.t("params"), master ? s.f("master") : nullptr, s.t("grads"), s.f("m"), s.f("v"), step);
       },
       checks, bytes});

  auto in_range = [step](int64_t i) {
    for (const auto& r : step.ranges)
      if (i >= r.offset && i < r.offset + r.count) return true;
    return false;
  };
  // The optimizer offload: Backend::host_adamw over the host arena, from the same state, gives the
  // device's bits: master (or fp32 params), m, v and the parameters (bf16: the same stochastic
  // rounding, from the same seed, step and flat index).
  I.properties.push_back(
      {"host_adamw", [=](Side&, Side& dev, Report& r) {
         std::byte* h = dev.host_arena();
         float* hm = reinterpret_cast<float*>(h);
         float* hmm = reinterpret_cast<float*>(h + round_up(flat * 4, kAlign));
         float* hv = reinterpret_cast<float*>(h + 2 * round_up(flat * 4, kAlign));
         std::byte* hg = h + 3 * round_up(flat * 4, kAlign);
         std::byte* hp = hg + round_up(flat * e, kAlign);
         const std::vector<float> w0 = dev.initial(master ? "master" : "params");
         const std::vector<float> m0 = dev.initial("m"), v0 = dev.initial("v");
         const std::vector<float> g0 = dev.initial("grads");
         std::copy(w0.begin(), w0.end(), hm);
         std::copy(m0.begin(), m0.end(), hmm);
         std::copy(v0.begin(), v0.end(), hv);
         for (int64_t i = 0; i < flat; ++i) {
           if (bf16)
             reinterpret_cast<uint16_t*>(hg)[i] = float_to_bf16_bits(g0[i]);
           else
             reinterpret_cast<float*>(hg)[i] = g0[i];
         }
         dev.be.host_adamw(TensorRef{hp, dt}, hm, TensorRef{hg, dt}, hmm, hv, step);
         bool ok = true;
         // The updated fp32 weights (bf16 without master: the device keeps none).
         if (master || !bf16)
           ok &= compare_bitwise(r, master ? "host_adamw master" : "host_adamw fp32 weights",
                                 std::vector<float>(hm, hm + flat), dev.read(master ? "master" : "params"));
         ok &= compare_bitwise(r, "host_adamw m", std::vector<float>(hmm, hmm + flat), dev.read("m"));
         ok &= compare_bitwise(r, "host_adamw v", std::vector<float>(hv, hv + flat), dev.read("v"));
         // The parameters the host sends back (in the ranges; padding is the device's).
         size_t bad = 0, up = 0, total = 0;
         const std::vector<uint16_t> dev_bits = bf16 ? dev.read_bf16_bits("params") : std::vector<uint16_t>();
         const std::vector<float> dev_p = dev.read("params");
         for (int64_t i = 0; i < flat; ++i) {
           if (!in_range(i)) continue;
           ++total;
           if (bf16) {
             const uint16_t hb = reinterpret_cast<uint16_t*>(hp)[i];
             if (hb != dev_bits[static_cast<size_t>(i)]) ++bad;
             if (std::fabs(bf16_bits_to_float(hb)) > std::fabs(hm[i])) ++up;
           } else if (std::memcmp(reinterpret_cast<float*>(hp) + i, &dev_p[static_cast<size_t>(i)], 4) != 0) {
             ++bad;
           }
         }
         ok &= r.result(bad == 0, "host_adamw params",
                        fmt("%zu of %zu differ from the device's %s parameters", bad, total, bf16 ? "bf16" : "fp32"));
         if (bf16) {
           // Unbiased rounding rounds up about half the time on random data.
           ok &= r.result(up > total / 4 && up < 3 * total / 4, "stochastic rounding",
                          fmt("%.1f%% of %zu rounded away from zero", 100.0 * up / total, total));
         }
         // Elements between the ranges (padding) stay bitwise unchanged on the device.
         size_t moved = 0;
         for (const char* name : {"params", "master", "m", "v"}) {
           if (!master && std::string(name) == "master") continue;
           const std::vector<float> now = dev.read(name), before = dev.initial(name);
           for (int64_t i = 0; i < flat; ++i)
             if (!in_range(i) && std::memcmp(&now[static_cast<size_t>(i)], &before[static_cast<size_t>(i)], 4) != 0)
               ++moved;
         }
         ok &= r.result(moved == 0, "padding untouched", fmt("%zu padding elements changed on the device", moved));
         return ok;
       }});
}

}  // namespace

AdamWStep adamw_step(const OpCase& c, int64_t* flat) {
  AdamWStep step;
  if (c.layout.empty()) {
    // Like the plan: tensors start at multiples of 128 elements, odd counts, padding between.
    step.ranges = {
        {0, 1000, true}, {1024, 37, false}, {1152, 5000, true}, {6272, 3, false}, {6400, 2048 * 3 + 1, true}};
    *flat = 6400 + 2048 * 3 + 128;
    step.index_base = c.master ? 4096 : 0;  // a ZeRO-1 shard's start: stochastic rounding must use it
  } else {
    step.ranges = model_ranges(c.layout, flat);
  }
  step.lr = 1e-3f, step.beta1 = 0.9f, step.beta2 = 0.95f, step.eps = 1e-8f, step.weight_decay = 0.1f;
  step.t = 3;
  step.grad_scale = c.grad_scale;
  step.seed = 1234;
  return step;
}

// ---- OpInstance -------------------------------------------------------------------------------
const TensorSpec& OpInstance::spec(const std::string& name) const {
  for (const TensorSpec& s : tensors)
    if (s.name == name) return s;
  throw std::logic_error(label + ": no tensor '" + name + "'");
}

int64_t OpInstance::region_bytes(DType store) const {
  int64_t total = 0;
  for (const TensorSpec& s : tensors) {
    const int size = s.elem == Elem::Store ? dtype_size(store) : 4;
    total += round_up(s.n * size, kAlign) + (s.role == Role::In ? 0 : kGuardBytes);
  }
  return total;
}

void Needs::merge(const Needs& o) {
  att_floats = std::max(att_floats, o.att_floats);
  enc_ints = std::max(enc_ints, o.enc_ints);
  ln_floats = std::max(ln_floats, o.ln_floats);
  max_oc = std::max(max_oc, o.max_oc);
  host_bytes = std::max(host_bytes, o.host_bytes);
}

OpInstance make_instance(const OpCase& c, DType dtype) {
  OpInstance I;
  I.c = c;
  I.dtype = dtype;
  I.label = case_label(c, dtype);
  switch (c.op) {
    case Op::Encoder: build_encoder(I); break;
    case Op::Layernorm: build_layernorm(I); break;
    case Op::Matmul: build_matmul(I); break;
    case Op::Gelu: build_gelu(I); break;
    case Op::Residual: build_residual(I); break;
    case Op::Attention: build_attention(I); break;
    case Op::AttentionDecode: build_decode(I); break;
    case Op::Classifier: build_classifier(I); break;
    case Op::GlobalNorm: build_global_norm(I); break;
    case Op::AdamW: build_adamw(I); break;
  }
  return I;
}

std::vector<OpInstance> make_instances(unsigned scope, unsigned dtypes, const std::vector<Op>& only_ops,
                                       const std::string& filter, const std::string& bench_label) {
  std::vector<OpInstance> out;
  for (const OpCase& c : op_table()) {
    if (!(c.scope & scope)) continue;
    if (!bench_label.empty() && c.bench_label != bench_label) continue;
    if (!only_ops.empty() && std::find(only_ops.begin(), only_ops.end(), c.op) == only_ops.end()) continue;
    for (DType dt : {DType::FP32, DType::BF16}) {
      const unsigned bit = dt == DType::FP32 ? kF32 : kBF16;
      if (!(c.dtypes & dtypes & bit)) continue;
      if (!filter.empty() && case_label(c, dt).find(filter) == std::string::npos) continue;
      out.push_back(make_instance(c, dt));
    }
  }
  return out;
}

// ---- planted faults ---------------------------------------------------------------------------
const std::vector<Plant>& plants() {
  static const std::vector<Plant> list = {
      {"matmul-dweight-overwrite", "matmul_backward writes dweight (=) instead of accumulating into it (+=)"},
      {"gelu-tail", "gelu_forward leaves the last element unwritten"},
      {"residual-overrun", "residual_forward writes one element past the end of its output"},
      {"attention-nondeterministic", "attention_backward's second run differs in the last bit of one element"},
  };
  return list;
}

const char* active_plant() {
  static const char* active = [] {
    const char* e = std::getenv("GPT2_OPS_PLANT");
    if (!e || !*e) return static_cast<const char*>(nullptr);
    for (const Plant& p : plants())
      if (std::strcmp(p.name, e) == 0) {
        std::printf("PLANTED FAULT %s: %s\n", p.name, p.what);
        return p.name;
      }
    std::fprintf(stderr, "GPT2_OPS_PLANT: unknown fault '%s'; known:", e);
    for (const Plant& p : plants()) std::fprintf(stderr, " %s", p.name);
    std::fprintf(stderr, "\n");
    std::exit(2);
  }();
  return active;
}

// ---- Report -----------------------------------------------------------------------------------
void Report::begin_case(const std::string& header) {
  header_ = header;
  header_printed_ = false;
  if (verbose_) {
    std::printf("%s\n", header_.c_str());
    header_printed_ = true;
  }
}

bool Report::result(bool ok, const std::string& name, const std::string& detail) {
  ++checks_;
  if (!ok) ++failures_;
  if (verbose_ || !ok) {
    if (!header_printed_ && !header_.empty()) {
      std::printf("%s\n", header_.c_str());
      header_printed_ = true;
    }
    std::printf("  %s %-34s %s\n", ok ? "ok  " : "FAIL", name.c_str(), detail.c_str());
  }
  std::fflush(stdout);
  return ok;
}

void Report::note(const std::string& line) {
  if (verbose_) std::printf("  %s\n", line.c_str());
}

// ---- Side -------------------------------------------------------------------------------------
Side::Side(Backend& backend, bool ref, const MemoryPlan& plan, std::byte* arena, std::byte* host_arena)
    : be(backend), reference(ref), plan_(plan), arena_(arena), host_arena_(host_arena) {
  const Buffer& region = plan.find("ops.tensors");
  region_offset_ = region.offset;
  region_bytes_ = region.bytes;
}

void Side::bind(const OpInstance& inst) {
  inst_ = &inst;
  store_ = reference ? DType::FP32 : inst.dtype;
  bound_.clear();
  host_ints_.clear();
  int64_t off = region_offset_;
  for (const TensorSpec& s : inst.tensors) {
    Bound b;
    b.spec = &s;
    b.dtype = s.elem == Elem::Store ? store_ : s.elem == Elem::F32 ? DType::FP32 : DType::INT32;
    b.offset = off;
    b.bytes = s.n * dtype_size(b.dtype);
    b.guard = s.role == Role::In ? 0 : round_up(b.bytes, kAlign) - b.bytes + kGuardBytes;
    off += round_up(b.bytes, kAlign) + (s.role == Role::In ? 0 : kGuardBytes);
    bound_[s.name] = b;
  }
  if (off - region_offset_ > region_bytes_)
    throw std::logic_error(inst.label + ": the tensors need more than the plan's region");
  run_index = 0;
}

const Side::Bound& Side::bound(const std::string& name) const {
  const auto it = bound_.find(name);
  if (it == bound_.end()) throw std::logic_error(inst_->label + ": no tensor '" + name + "'");
  return it->second;
}

void Side::poison(int64_t offset, int64_t bytes) const {
  static const std::vector<unsigned char> ff(1 << 20, 0xFF);
  for (int64_t done = 0; done < bytes;) {
    const int64_t n = std::min<int64_t>(bytes - done, static_cast<int64_t>(ff.size()));
    be.upload(arena_ + offset + done, ff.data(), static_cast<size_t>(n));
    done += n;
  }
}

void Side::fill(const Bound& b) {
  const TensorSpec& s = *b.spec;
  if (s.elem == Elem::I32) {
    std::vector<int32_t>& host = host_ints_[s.name];
    host = all_ints(*inst_, s.name);
    be.upload(arena_ + b.offset, host.data(), host.size() * sizeof(int32_t));
    return;
  }
  std::vector<float> vals;
  std::vector<uint16_t> bits;
  for (int64_t begin = 0; begin < s.n; begin += kChunk) {
    const int64_t count = std::min(kChunk, s.n - begin);
    vals.resize(static_cast<size_t>(count));
    draw_floats(*inst_, s, begin, count, vals.data());
    if (b.dtype == DType::BF16) {
      bits.resize(vals.size());
      for (size_t k = 0; k < vals.size(); ++k) bits[k] = float_to_bf16_bits(vals[k]);
      be.upload(arena_ + b.offset + begin * 2, bits.data(), bits.size() * 2);
    } else {
      be.upload(arena_ + b.offset + begin * 4, vals.data(), vals.size() * 4);
    }
  }
}

namespace {

// The plan's scratch buffers: poisoned at every reset (a kernel must write what it reads), and
// for the first three, the bytes past what the case needs must keep the poison.
const char* const kScratch[] = {"scratch.att",           "scratch.encoder_bwd",
                                "scratch.layernorm_bwd", "workspace.norm_partials",
                                "workspace.norm_result", "workspace.matmul_bias"};
int64_t scratch_need(const Needs& n, const std::string& name) {
  if (name == "scratch.att") return static_cast<int64_t>(n.att_floats) * 4;
  if (name == "scratch.encoder_bwd") return static_cast<int64_t>(n.enc_ints) * 4;
  if (name == "scratch.layernorm_bwd") return static_cast<int64_t>(n.ln_floats) * 4;
  return -1;  // not checked
}

}  // namespace

void Side::reset() {
  for (const auto& [name, b] : bound_) {
    if (b.spec->role == Role::Out)
      poison(b.offset, b.bytes);
    else
      fill(b);
    if (b.guard) poison(b.offset + b.bytes, b.guard);
  }
  for (const char* name : kScratch) {
    const Buffer& b = plan_.find(name);
    poison(b.offset, b.bytes);
  }
  run_index = 0;
}

TensorRef Side::t(const std::string& name) const {
  const Bound& b = bound(name);
  if (b.dtype == DType::INT32) throw std::logic_error(name + " is an int tensor");
  return {arena_ + b.offset, b.dtype};
}
float* Side::f(const std::string& name) const {
  const Bound& b = bound(name);
  if (b.dtype != DType::FP32) throw std::logic_error(name + " is not an fp32 tensor");
  return reinterpret_cast<float*>(arena_ + b.offset);
}
int32_t* Side::i(const std::string& name) const {
  const Bound& b = bound(name);
  if (b.dtype != DType::INT32) throw std::logic_error(name + " is not an int tensor");
  return reinterpret_cast<int32_t*>(arena_ + b.offset);
}
const int32_t* Side::host_i(const std::string& name) const {
  const auto it = host_ints_.find(name);
  if (it == host_ints_.end()) throw std::logic_error(name + ": no host copy");
  return it->second.data();
}

std::vector<float> Side::read(const std::string& name) const {
  const Bound& b = bound(name);
  const size_t n = static_cast<size_t>(b.spec->n);
  std::vector<float> out(n);
  if (b.dtype == DType::BF16) {
    std::vector<uint16_t> bits(n);
    be.download(bits.data(), arena_ + b.offset, n * 2);
    for (size_t k = 0; k < n; ++k) out[k] = bf16_bits_to_float(bits[k]);
  } else if (b.dtype == DType::INT32) {
    std::vector<int32_t> v(n);
    be.download(v.data(), arena_ + b.offset, n * 4);
    for (size_t k = 0; k < n; ++k) out[k] = static_cast<float>(v[k]);
  } else {
    be.download(out.data(), arena_ + b.offset, n * 4);
  }
  return out;
}

std::vector<uint16_t> Side::read_bf16_bits(const std::string& name) const {
  const Bound& b = bound(name);
  if (b.dtype != DType::BF16) throw std::logic_error(name + " is not a bf16 tensor");
  std::vector<uint16_t> bits(static_cast<size_t>(b.spec->n));
  be.download(bits.data(), arena_ + b.offset, bits.size() * 2);
  return bits;
}

std::vector<float> Side::initial(const std::string& name) const {
  const TensorSpec& s = *bound(name).spec;
  std::vector<float> v(static_cast<size_t>(s.n));
  if (s.elem == Elem::I32) {
    const std::vector<int32_t> ints = all_ints(*inst_, name);
    for (size_t k = 0; k < v.size(); ++k) v[k] = static_cast<float>(ints[k]);
  } else {
    draw_floats(*inst_, s, 0, s.n, v.data());
  }
  return v;
}

void Side::hold_as_stored(const std::string& name) const {
  if (!reference || inst_->dtype != DType::BF16) return;
  const Bound& b = bound(name);
  if (b.dtype != DType::FP32 || b.spec->elem != Elem::Store) throw std::logic_error(name + ": not a stored tensor");
  std::vector<float> v = read(name);
  for (float& x : v) x = round_bf16(x);
  be.upload(arena_ + b.offset, v.data(), v.size() * 4);
}

std::byte* Side::plan_buffer(const std::string& name) const { return arena_ + plan_.find(name).offset; }

float* Side::att_scratch() const { return reinterpret_cast<float*>(arena_ + plan_.find("scratch.att").offset); }
float* Side::norm_partials() const {
  return reinterpret_cast<float*>(arena_ + plan_.find("workspace.norm_partials").offset);
}

bool Side::planted(const char* name) const {
  const char* p = active_plant();
  return !reference && p && std::strcmp(p, name) == 0;
}

bool Side::guards_intact(Report& r) const {
  int regions = 0;
  std::string broken;
  auto check = [&](const std::string& name, int64_t offset, int64_t bytes) {
    ++regions;
    std::vector<unsigned char> g(static_cast<size_t>(bytes));
    be.download(g.data(), arena_ + offset, g.size());
    for (size_t k = 0; k < g.size(); ++k)
      if (g[k] != 0xFF) {
        broken += fmt("%s%s (byte %zu past its end)", broken.empty() ? "" : ", ", name.c_str(), k);
        break;
      }
  };
  for (const auto& [name, b] : bound_)
    if (b.guard) check(name, b.offset + b.bytes, b.guard);
  for (const char* name : kScratch) {
    const Buffer& b = plan_.find(name);
    const int64_t need = scratch_need(inst_->needs, name);
    if (need >= 0 && need < b.bytes) check(name, b.offset + need, b.bytes - need);
  }
  return r.result(broken.empty(), std::string(reference ? "cpu" : "device") + ": guards intact",
                  broken.empty() ? fmt("after %d written tensors and scratch buffers", regions) : "written: " + broken);
}

bool Side::inputs_unchanged(Report& r) const {
  int tensors = 0;
  std::string changed;
  for (const auto& [name, b] : bound_) {
    if (b.spec->role != Role::In) continue;
    ++tensors;
    size_t first = 0;
    if (bit_differences(read(name), initial(name), &first)) changed += (changed.empty() ? "" : ", ") + name;
  }
  return r.result(changed.empty(), std::string(reference ? "cpu" : "device") + ": inputs unchanged",
                  changed.empty() ? fmt("%d input tensors", tensors) : "written: " + changed);
}

// ---- plan and harness -------------------------------------------------------------------------
MemoryPlan make_op_plan(const Needs& needs, int64_t tensor_bytes) {
  MemoryPlan p;
  // The plan describes no model. The CUDA backend checks each scratch buffer against the kernels'
  // size for the plan's (micro_batch, seq_len, channels, num_heads); all four are 1 here, a lower
  // bound that every buffer below meets: each is sized for the largest case of the run.
  p.model.name = "op-table";
  p.model.num_layers = 1;
  p.model.num_heads = 1;
  p.model.channels = 1;
  p.run.micro_batch = 1;
  p.run.seq_len = 1;
  p.run.training = true;
  int64_t off = 0;
  auto add_buffer = [&](const char* name, Category cat, DType dt, int64_t bytes) {
    Buffer b;
    b.name = name;
    b.category = cat;
    b.dtype = dt;
    b.numel = std::max<int64_t>(1, bytes / dtype_size(dt));
    b.shape = {b.numel};
    b.bytes = round_up(std::max<int64_t>(bytes, 1), kAlign);
    b.offset = off;
    off += b.bytes;
    p.buffers.push_back(b);
  };
  add_buffer("scratch.att", Category::Scratch, DType::FP32, static_cast<int64_t>(needs.att_floats) * 4);
  add_buffer("scratch.encoder_bwd", Category::Scratch, DType::INT32, static_cast<int64_t>(needs.enc_ints) * 4);
  add_buffer("scratch.layernorm_bwd", Category::Scratch, DType::FP32, static_cast<int64_t>(needs.ln_floats) * 4);
  add_buffer("workspace.cublaslt", Category::Workspace, DType::INT32,
             static_cast<int64_t>(cuda::kMatmulWorkspaceBytes));
  add_buffer("workspace.matmul_bias", Category::Workspace, DType::FP32,
             static_cast<int64_t>(cuda::matmul_bias_scratch_bytes(std::max(needs.max_oc, 4))));
  add_buffer("workspace.norm_partials", Category::Workspace, DType::FP32,
             static_cast<int64_t>(cuda::kGlobalNormPartialsFloats) * 4);
  add_buffer("workspace.norm_result", Category::Workspace, DType::FP32, 4);
  add_buffer("ops.tensors", Category::Activations, DType::FP32, tensor_bytes);
  p.arena_bytes = off;
  if (needs.host_bytes) {
    Buffer h;
    h.name = "ops.host";
    h.category = Category::MasterWeights;
    h.dtype = DType::FP32;
    h.bytes = round_up(static_cast<int64_t>(needs.host_bytes), kAlign);
    h.numel = h.bytes / 4;
    h.shape = {h.numel};
    h.offset = 0;
    p.host_buffers.push_back(h);
    p.host_arena_bytes = h.bytes;
  }
  return p;
}

Harness::Harness(const std::vector<OpInstance>& instances, bool with_reference) {
  Needs needs;
  int64_t region = 0;
  for (const OpInstance& I : instances) {
    needs.merge(I.needs);
    region = std::max(region, I.region_bytes(I.dtype));
    if (with_reference) region = std::max(region, I.region_bytes(DType::FP32));
  }
  plan_ = make_op_plan(needs, region);
  dev_ = make_cuda_backend(0);  // ConfigError without a device: the caller skips
  std::byte* arena = dev_->create_arena(plan_);
  // The host arena serves the properties (host_adamw), which only check() runs.
  std::byte* host = with_reference && plan_.host_arena_bytes ? dev_->create_host_arena(plan_) : nullptr;
  dev_side_ = std::make_unique<Side>(*dev_, false, plan_, arena, host);
  if (with_reference) {
    cpu_ = std::make_unique<CpuBackend>();
    cpu_side_ = std::make_unique<Side>(*cpu_, true, plan_, cpu_->create_arena(plan_), nullptr);
  }
}

Harness::~Harness() = default;

bool Harness::check(OpInstance& inst, Report& r, bool rerun, const std::function<int64_t()>& free_device_bytes) {
  if (!cpu_side_) throw std::logic_error("Harness::check needs the reference backend");
  const int failures_before = r.failures();
  r.begin_case("case " + inst.label + (inst.c.what.empty() ? "" : "   (" + inst.c.what + ")"));
  Side& ref = *cpu_side_;
  Side& dev = *dev_side_;
  try {
    ref.bind(inst);
    dev.bind(inst);
    ref.reset();
    dev.reset();
    // What each checked tensor held after its stage, on the device: the rerun must match it.
    std::vector<std::vector<std::pair<std::string, std::vector<float>>>> first(inst.stages.size());
    for (size_t si = 0; si < inst.stages.size(); ++si) {
      const Stage& st = inst.stages[si];
      st.run(ref);
      st.run(dev);
      dev.be.synchronize();
      for (const Check& ch : st.checks) {
        const std::string shown = st.name + " " + (ch.output.empty() ? ch.tensor : ch.output);
        if (!ch.same_as.empty()) {
          size_t first_diff = 0;
          const size_t d_dev = bit_differences(dev.read(ch.tensor), dev.read(ch.same_as), &first_diff);
          const size_t d_ref = bit_differences(ref.read(ch.tensor), ref.read(ch.same_as), &first_diff);
          r.result(d_dev == 0 && d_ref == 0, st.name + " " + ch.tensor + " == " + ch.same_as,
                   fmt("bitwise: %zu elements differ on the device, %zu on the cpu", d_dev, d_ref));
          continue;
        }
        std::vector<float> got = dev.read(ch.tensor);
        std::vector<float> want = ref.read(ch.ref_tensor.empty() ? ch.tensor : ch.ref_tensor);
        if (ch.view) {
          got = ch.view(got);
          want = ch.view(want);
        }
        const Tolerance tol = tolerance(inst.c.op, ch.output.empty() ? ch.tensor : ch.output, inst.dtype);
        if (tol.naive > 0 && ch.naive)
          compare_naive(r, shown, got, want, ch.naive(ref), tol);
        else if (tol.bitwise)
          compare_bitwise(r, shown, got, want);
        else
          compare_close(r, shown, got, want, tol);
        first[si].emplace_back(shown, std::move(got));
      }
    }
    ref.inputs_unchanged(r);
    dev.inputs_unchanged(r);
    ref.guards_intact(r);
    dev.guards_intact(r);
    for (const Property& p : inst.properties) p.run(ref, dev, r);

    if (rerun && inst.c.rerun) {
      // The whole case again on the device from the same inputs: bitwise the same outputs, and
      // no device memory allocated by the ops (the first run has loaded every kernel).
      dev.reset();
      dev.run_index = 1;
      const int64_t free0 = free_device_bytes ? free_device_bytes() : -1;
      size_t tensors = 0;
      std::string differ;
      for (size_t si = 0; si < inst.stages.size(); ++si) {
        const Stage& st = inst.stages[si];
        st.run(dev);
        dev.be.synchronize();
        size_t k = 0;
        for (const Check& ch : st.checks) {
          if (!ch.same_as.empty()) continue;
          std::vector<float> got = dev.read(ch.tensor);
          if (ch.view) got = ch.view(got);
          size_t first_diff = 0;
          const auto& [shown, before] = first[si][k++];
          ++tensors;
          const size_t d = bit_differences(got, before, &first_diff);
          if (d)
            differ += fmt("%s%s (%zu elements, first [%zu])", differ.empty() ? "" : ", ", shown.c_str(), d, first_diff);
        }
      }
      const int64_t free1 = free_device_bytes ? free_device_bytes() : -1;
      r.result(differ.empty(), "rerun: bitwise identical",
               differ.empty() ? fmt("%zu checked outputs", tensors) : "differs: " + differ);
      if (free_device_bytes)
        r.result(free0 == free1, "rerun: no device allocation",
                 fmt("free device memory %lld before, %lld after", static_cast<long long>(free0),
                     static_cast<long long>(free1)));
      dev.guards_intact(r);
    }
  } catch (const std::exception& e) {
    r.result(false, "exception", e.what());
  }
  return r.failures() == failures_before;
}

std::unique_ptr<Harness> open_op_test_harness(const char* tool, const std::vector<OpInstance>& cases) {
  try {
    return std::make_unique<Harness>(cases, true);
  } catch (const ConfigError& e) {
    std::printf("SKIPPED %s: no CUDA device (%s)\n", tool, e.what());
    return nullptr;
  }
}

int run_op_test(const char* tool, Harness& harness, std::vector<OpInstance>& cases, bool rerun,
                const std::function<int64_t()>& free_device_bytes, bool per_op_seconds) {
  std::printf("%s: %zu cases, cpu (reference) vs %s\n", tool, cases.size(), harness.cuda().describe().c_str());
  Report report;
  std::vector<std::string> failed;
  double seconds[kNumOps] = {};
  for (OpInstance& c : cases) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!harness.check(c, report, rerun, free_device_bytes)) failed.push_back(c.label);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    seconds[static_cast<int>(c.c.op)] += s;
    std::printf("  %.2f s\n", s);
  }
  if (per_op_seconds) {
    std::printf("\nseconds per op:");
    for (int i = 0; i < kNumOps; ++i)
      if (seconds[i] > 0) std::printf(" %s %.1f", op_name(static_cast<Op>(i)), seconds[i]);
  }
  std::printf("\n%s: %zu cases, %d checks, %d failed checks\n", tool, cases.size(), report.checks(), report.failures());
  for (const std::string& f : failed) std::printf("  FAILED case %s\n", f.c_str());
  const bool ok = report.failures() == 0;
  std::printf("%s %s\n", tool, ok ? "PASSED" : "FAILED");
  return ok ? 0 : 1;
}

}  // namespace gpt2::ops
