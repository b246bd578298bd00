// CPU ops (kernels/cpu) against PyTorch autograd, plus finite-difference gradient checks and the
// determinism contracts (thread count, chunking, recompute). The PyTorch values come from one
// run of tests/reference/ops_reference.py into a temporary directory (shared by all cases).
#include <omp.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/adamw.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/classifier.h"
#include "kernels/cpu/encoder.h"
#include "kernels/cpu/gelu.h"
#include "kernels/cpu/global_norm.h"
#include "kernels/cpu/layernorm.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/residual.h"
#include "tests/reference_file.h"

using namespace gpt2::cpu;
using gpt2::testref::get;
using gpt2::testref::RefFile;
using gpt2::testref::RefTensor;
using Vec = std::vector<float>;

namespace {

constexpr double kTorchTol = 1e-5;  // DESIGN.md: fp32 against PyTorch

// Generates every op's reference file once per process; nullptr when torch is missing.
const RefFile* op_reference(const std::string& op) {
  static bool generated = false;
  static std::string dir;
  static std::map<std::string, RefFile> cache;
  if (!gpt2::testref::torch_available()) return nullptr;
  if (!generated) {
    generated = true;
    dir = gpt2::testref::make_temp_dir("gpt2-opsref");
    const std::string script = std::string(GPT2_SOURCE_DIR) + "/tests/reference/ops_reference.py";
    const int rc = gpt2::testref::run_python_script(script, "--out \"" + dir + "\" --seed 1234", dir + "/log.txt");
    if (rc != 0) FAIL("ops_reference.py failed (exit " << rc << "), see " << dir << "/log.txt");
  }
  auto it = cache.find(op);
  if (it == cache.end()) it = cache.emplace(op, gpt2::testref::load_reference_file(dir + "/" + op + ".bin")).first;
  return &it->second;
}

struct Dims {
  int B, T, C, NH, V, Vp, maxT;
};
Dims dims(const RefFile& r) {
  const auto& d = get(r, "config_B_T_C_NH_V_Vp_maxT").idata;
  return {d[0], d[1], d[2], d[3], d[4], d[5], d[6]};
}

Vec vec(const RefFile& r, const std::string& name) { return get(r, name).data; }

// Prints and checks the max relative error of one tensor against the reference.
void check_torch(const std::string& op, const std::string& name, const Vec& got, const RefFile& r,
                 double tol = kTorchTol) {
  const double err = gpt2::testref::max_rel_error(got, get(r, name));
  std::printf("  torch  %-12s %-10s max rel err %.3e\n", op.c_str(), name.c_str(), err);
  INFO(op << "." << name << " max relative error " << err);
  CHECK(err <= tol);
}

// Central differences of loss() w.r.t. sampled elements of x, against the analytic gradient.
// Returns max |fd - analytic| / max |analytic| over the samples. loss() is evaluated in double
// on top of fp32 ops; eps is relative to the element's magnitude.
double fd_check(const std::string& what, const std::function<double()>& loss, float* x, size_t n, const float* analytic,
                int samples = 24, float eps = 1e-3f) {
  std::mt19937 rng(static_cast<unsigned>(n * 7919 + what.size()));
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  double max_an = 0.0, max_diff = 0.0;
  for (size_t i = 0; i < n; i++) max_an = std::max(max_an, std::fabs(double(analytic[i])));
  for (int s = 0; s < samples; s++) {
    const size_t i = pick(rng);
    const float x0 = x[i];
    const float h = eps * std::max(1.0f, std::fabs(x0));
    x[i] = x0 + h;
    const float xp = x[i];
    const double lp = loss();
    x[i] = x0 - h;
    const float xm = x[i];
    const double lm = loss();
    x[i] = x0;
    const double fd = (lp - lm) / (double(xp) - double(xm));
    max_diff = std::max(max_diff, std::fabs(fd - analytic[i]));
  }
  const double err = max_diff / std::max(max_an, 1e-30);
  std::printf("  fd     %-23s max rel err %.3e\n", what.c_str(), err);
  return err;
}

constexpr double kFdTol = 2e-3;  // fp32 forward, central differences, eps = 1e-3 (see fd_check)

double dot(const Vec& a, const Vec& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); i++) s += double(a[i]) * b[i];
  return s;
}

Vec random_vec(size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  Vec v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

bool bitwise_equal(const Vec& a, const Vec& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("cpu encoder matches torch and finite differences", "[cpu][ops][torch]") {
  GPT2_REQUIRE_TORCH_OR_SKIP();
  const RefFile& r = *op_reference("encoder");
  const Dims d = dims(r);
  const auto& tok = get(r, "tokens").idata;
  Vec wte = vec(r, "wte"), wpe = vec(r, "wpe"), dout = vec(r, "dout");
  Vec out(size_t(d.B) * d.T * d.C);
  encoder_forward(out.data(), tok.data(), wte.data(), wpe.data(), d.B, d.T, d.C);
  check_torch("encoder", "out", out, r);
  Vec dwte = vec(r, "dwte_init"), dwpe = vec(r, "dwpe_init");
  encoder_backward(dwte.data(), dwpe.data(), dout.data(), tok.data(), d.B, d.T, d.C);
  check_torch("encoder", "dwte", dwte, r);
  check_torch("encoder", "dwpe", dwpe, r);

  // Finite differences on fresh (zeroed) gradients.
  Vec gwte(wte.size(), 0.f), gwpe(wpe.size(), 0.f);
  encoder_backward(gwte.data(), gwpe.data(), dout.data(), tok.data(), d.B, d.T, d.C);
  auto loss = [&] {
    encoder_forward(out.data(), tok.data(), wte.data(), wpe.data(), d.B, d.T, d.C);
    return dot(out, dout);
  };
  // Sample the rows that are used (tokens of the batch), not the unused vocabulary rows.
  const size_t row = size_t(tok[0]) * d.C;
  CHECK(fd_check("encoder.dwte(row)", loss, wte.data() + row, d.C, gwte.data() + row) <= kFdTol);
  CHECK(fd_check("encoder.dwpe", loss, wpe.data(), size_t(d.T) * d.C, gwpe.data()) <= kFdTol);

  CHECK(encoder_check_tokens(tok.data(), int64_t(tok.size()), d.V) == -1);
  std::vector<int32_t> bad(tok.begin(), tok.end());
  bad[5] = d.V;
  bad[9] = -1;
  CHECK(encoder_check_tokens(bad.data(), int64_t(bad.size()), d.V) == 5);
}

TEST_CASE("cpu layernorm matches torch and finite differences", "[cpu][ops][torch]") {
  GPT2_REQUIRE_TORCH_OR_SKIP();
  const RefFile& r = *op_reference("layernorm");
  const Dims d = dims(r);
  const size_t N = size_t(d.B) * d.T;
  Vec inp = vec(r, "inp"), w = vec(r, "weight"), b = vec(r, "bias"), dout = vec(r, "dout");
  Vec out(N * d.C), mean(N), rstd(N);
  layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), w.data(), b.data(), d.B, d.T, d.C);
  check_torch("layernorm", "out", out, r);
  check_torch("layernorm", "mean", mean, r);
  check_torch("layernorm", "rstd", rstd, r);
  Vec dinp = vec(r, "dinp_init"), dw = vec(r, "dweight_init"), db = vec(r, "dbias_init");
  layernorm_backward(dinp.data(), dw.data(), db.data(), dout.data(), inp.data(), w.data(), mean.data(), rstd.data(),
                     d.B, d.T, d.C);
  check_torch("layernorm", "dinp", dinp, r);  // dinp_init + grad: the fused residual add
  check_torch("layernorm", "dweight", dw, r);
  check_torch("layernorm", "dbias", db, r);

  // Recompute is bitwise identical to the forward.
  Vec out2(out.size(), -1.f);
  layernorm_recompute(out2.data(), inp.data(), mean.data(), rstd.data(), w.data(), b.data(), d.B, d.T, d.C);
  CHECK(bitwise_equal(out, out2));

  Vec gi(inp.size(), 0.f), gw(w.size(), 0.f), gb(b.size(), 0.f);
  layernorm_backward(gi.data(), gw.data(), gb.data(), dout.data(), inp.data(), w.data(), mean.data(), rstd.data(), d.B,
                     d.T, d.C);
  Vec m2(N), r2(N);
  auto loss = [&] {
    layernorm_forward(out.data(), m2.data(), r2.data(), inp.data(), w.data(), b.data(), d.B, d.T, d.C);
    return dot(out, dout);
  };
  CHECK(fd_check("layernorm.dinp", loss, inp.data(), inp.size(), gi.data()) <= kFdTol);
  CHECK(fd_check("layernorm.dweight", loss, w.data(), w.size(), gw.data()) <= kFdTol);
  CHECK(fd_check("layernorm.dbias", loss, b.data(), b.size(), gb.data()) <= kFdTol);
}

namespace {
void matmul_against_torch(const std::string& op, const RefFile& r) {
  const auto& ishape = get(r, "inp").shape;
  const int N = int(ishape[0]), C = int(ishape[1]), OC = int(get(r, "weight").shape[0]);
  Vec inp = vec(r, "inp"), w = vec(r, "weight"), b = vec(r, "bias"), dout = vec(r, "dout");
  for (const char* isa : {"avx512", "avx2", "sse2"}) {
    if (!matmul_force_isa(isa)) {
      std::printf("  (%s: ISA %s not available on this CPU)\n", op.c_str(), isa);
      continue;
    }
    const std::string tag = op + "/" + isa;
    Vec out(size_t(N) * OC, 123.f), dinp(size_t(N) * C, 123.f);
    matmul_forward(out.data(), inp.data(), w.data(), b.data(), N, C, OC);
    check_torch(tag, "out", out, r);
    Vec dw = vec(r, "dweight_init"), db = vec(r, "dbias_init");
    matmul_backward(dinp.data(), dw.data(), db.data(), dout.data(), inp.data(), w.data(), N, C, OC);
    check_torch(tag, "dinp", dinp, r);
    check_torch(tag, "dweight", dw, r);
    check_torch(tag, "dbias", db, r);
    // Without bias: out = inp·Wᵀ, i.e. the reference minus the bias.
    Vec out_nb(size_t(N) * OC, 7.f), ref_nb = vec(r, "out");
    for (int n = 0; n < N; n++)
      for (int o = 0; o < OC; o++) ref_nb[size_t(n) * OC + o] -= b[o];
    matmul_forward(out_nb.data(), inp.data(), w.data(), nullptr, N, C, OC);
    const double err = gpt2::testref::max_rel_error(out_nb.data(), ref_nb.data(), ref_nb.size());
    std::printf("  torch  %-12s %-10s max rel err %.3e\n", tag.c_str(), "out(nobias)", err);
    CHECK(err <= kTorchTol);
  }
  matmul_force_isa("auto");
}
}  // namespace

TEST_CASE("cpu matmul matches torch on every instruction set", "[cpu][ops][torch][matmul]") {
  GPT2_REQUIRE_TORCH_OR_SKIP();
  matmul_against_torch("matmul", *op_reference("matmul"));
  matmul_against_torch("matmul_big", *op_reference("matmul_big"));
}

TEST_CASE("cpu matmul finite differences", "[cpu][ops][matmul]") {
  const int N = 13, C = 21, OC = 35;
  Vec inp = random_vec(size_t(N) * C, 1), w = random_vec(size_t(OC) * C, 2, 0.3f), b = random_vec(OC, 3),
      dout = random_vec(size_t(N) * OC, 4);
  Vec out(size_t(N) * OC), dinp(size_t(N) * C), dw(w.size(), 0.f), db(OC, 0.f);
  matmul_backward(dinp.data(), dw.data(), db.data(), dout.data(), inp.data(), w.data(), N, C, OC);
  auto loss = [&] {
    matmul_forward(out.data(), inp.data(), w.data(), b.data(), N, C, OC);
    return dot(out, dout);
  };
  CHECK(fd_check("matmul.dinp", loss, inp.data(), inp.size(), dinp.data()) <= kFdTol);
  CHECK(fd_check("matmul.dweight", loss, w.data(), w.size(), dw.data()) <= kFdTol);
  CHECK(fd_check("matmul.dbias", loss, b.data(), b.size(), db.data()) <= kFdTol);
}

TEST_CASE("cpu matmul is deterministic across threads and token chunks", "[cpu][ops][matmul]") {
  // Sizes that cross every cache block and leave ragged register tiles.
  const int N = 300, C = 410, OC = 530;
  const Vec inp = random_vec(size_t(N) * C, 11), w = random_vec(size_t(OC) * C, 12, 0.05f), b = random_vec(OC, 13),
            dout = random_vec(size_t(N) * OC, 14);
  auto run = [&](int threads, int chunk, Vec& out, Vec& dinp, Vec& dw, Vec& db) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    out.assign(size_t(N) * OC, 0.f), dinp.assign(size_t(N) * C, 0.f);
    dw.assign(w.size(), 0.5f), db.assign(OC, 0.5f);  // nonzero: accumulation continues from it
    for (int n0 = 0; n0 < N; n0 += chunk) {
      const int rows = std::min(chunk, N - n0);
      matmul_forward(out.data() + size_t(n0) * OC, inp.data() + size_t(n0) * C, w.data(), b.data(), rows, C, OC);
      matmul_backward(dinp.data() + size_t(n0) * C, dw.data(), db.data(), dout.data() + size_t(n0) * OC,
                      inp.data() + size_t(n0) * C, w.data(), rows, C, OC);
    }
    omp_set_num_threads(saved);
  };
  Vec o1, i1, w1, b1;
  run(1, N, o1, i1, w1, b1);
  for (int threads : {2, 3}) {
    for (int chunk : {N, 64, 37}) {
      Vec o2, i2, w2, b2;
      run(threads, chunk, o2, i2, w2, b2);
      INFO("threads " << threads << " chunk " << chunk);
      CHECK(bitwise_equal(o1, o2));
      CHECK(bitwise_equal(i1, i2));
      CHECK(bitwise_equal(w1, w2));
      CHECK(bitwise_equal(b1, b2));
    }
  }
}

TEST_CASE("cpu attention matches torch and finite differences", "[cpu][ops][torch]") {
  GPT2_REQUIRE_TORCH_OR_SKIP();
  const RefFile& r = *op_reference("attention");
  const Dims d = dims(r);
  Vec qkv = vec(r, "qkv"), dy = vec(r, "dy");
  Vec y(size_t(d.B) * d.T * d.C), lse(size_t(d.B) * d.NH * d.T);
  Vec scratch(attention_scratch_floats(d.B, d.T, d.NH));
  attention_forward(y.data(), lse.data(), scratch.data(), qkv.data(), d.B, d.T, d.C, d.NH);
  check_torch("attention", "y", y, r);
  check_torch("attention", "lse", lse, r);
  Vec dqkv(qkv.size(), 123.f);  // garbage: every element must be written
  attention_backward(dqkv.data(), scratch.data(), dy.data(), qkv.data(), y.data(), lse.data(), d.B, d.T, d.C, d.NH);
  check_torch("attention", "dqkv", dqkv, r);

  Vec y2(y.size()), l2(lse.size());
  auto loss = [&] {
    attention_forward(y2.data(), l2.data(), scratch.data(), qkv.data(), d.B, d.T, d.C, d.NH);
    return dot(y2, dy);
  };
  CHECK(fd_check("attention.dqkv", loss, qkv.data(), qkv.size(), dqkv.data(), 48) <= kFdTol);
}

namespace {

// Causal attention in double, straight from the definitions in attention.h.
struct AttentionRef {
  std::vector<double> y, lse, dqkv;
};
AttentionRef attention_reference(const Vec& qkv, const Vec& dy, int B, int T, int C, int NH) {
  const int HS = C / NH;
  const double scale = 1.0 / std::sqrt(double(HS));
  const size_t C3 = 3 * size_t(C);
  AttentionRef r{std::vector<double>(size_t(B) * T * C, 0.0), std::vector<double>(size_t(B) * NH * T),
                 std::vector<double>(qkv.size(), 0.0)};
  std::vector<double> p(T);
  for (int b = 0; b < B; b++)
    for (int h = 0; h < NH; h++)
      for (int i = 0; i < T; i++) {
        auto at = [&](int t, int part, int d) { return double(qkv[(size_t(b) * T + t) * C3 + part * C + h * HS + d]); };
        double mx = -1e300, sum = 0.0, D = 0.0;
        for (int j = 0; j <= i; j++) {
          double s = 0.0;
          for (int d = 0; d < HS; d++) s += at(i, 0, d) * at(j, 1, d);
          mx = std::max(mx, p[j] = s * scale);
        }
        for (int j = 0; j <= i; j++) sum += (p[j] = std::exp(p[j] - mx));
        r.lse[(size_t(b) * NH + h) * T + i] = mx + std::log(sum);
        double* yi = &r.y[(size_t(b) * T + i) * C + h * HS];
        const float* dyi = &dy[(size_t(b) * T + i) * C + h * HS];
        for (int j = 0; j <= i; j++)
          for (int d = 0; d < HS; d++) yi[d] += p[j] / sum * at(j, 2, d);
        for (int d = 0; d < HS; d++) D += dyi[d] * yi[d];
        for (int j = 0; j <= i; j++) {
          double dp = 0.0;
          for (int d = 0; d < HS; d++) dp += dyi[d] * at(j, 2, d);
          const double pj = p[j] / sum, ds = pj * (dp - D) * scale;
          for (int d = 0; d < HS; d++) {
            r.dqkv[(size_t(b) * T + i) * C3 + h * HS + d] += ds * at(j, 1, d);
            r.dqkv[(size_t(b) * T + j) * C3 + C + h * HS + d] += ds * at(i, 0, d);
            r.dqkv[(size_t(b) * T + j) * C3 + 2 * C + h * HS + d] += pj * dyi[d];
          }
        }
      }
  return r;
}

// max |got - ref| / max |ref|; infinite when got has a non-finite value.
double rel_error(const Vec& got, const std::vector<double>& ref) {
  double diff = 0.0, mag = 1e-30;
  for (size_t i = 0; i < ref.size(); i++) {
    if (!std::isfinite(got[i])) return INFINITY;
    diff = std::max(diff, std::fabs(got[i] - ref[i]));
    mag = std::max(mag, std::fabs(ref[i]));
  }
  return diff / mag;
}

struct AttentionOut {
  Vec y, lse, dqkv;
};
AttentionOut run_attention(const Vec& qkv, const Vec& dy, int B, int T, int C, int NH) {
  AttentionOut o{Vec(size_t(B) * T * C), Vec(size_t(B) * NH * T), Vec(qkv.size(), NAN)};  // NaN: all written
  Vec scratch(attention_scratch_floats(B, T, NH));
  attention_forward(o.y.data(), o.lse.data(), scratch.data(), qkv.data(), B, T, C, NH);
  attention_backward(o.dqkv.data(), scratch.data(), dy.data(), qkv.data(), o.y.data(), o.lse.data(), B, T, C, NH);
  return o;
}

// Shapes that cross the kernel's query/key tiles (96 positions for head sizes up to 64, 48 up to
// 128) with ragged last tiles, head sizes that fill no register tile (26, 32, 2), the row-by-row
// kernel of head sizes past 128, a single position, and a forward task of more than one group of
// query tiles (T = 500: 6 tiles).
struct AttShape {
  int B, T, C, NH;
};
constexpr AttShape kAttentionShapes[] = {
    {1, 300, 128, 2}, {2, 97, 78, 3}, {1, 150, 256, 2}, {1, 70, 320, 2}, {2, 1, 128, 2}, {1, 200, 96, 3},
    {1, 100, 8, 4}, {1, 500, 64, 1},
};

}  // namespace

TEST_CASE("cpu attention tiles match a double-precision reference on every instruction set", "[cpu][ops]") {
  for (const AttShape& s : kAttentionShapes) {
    const Vec qkv = random_vec(size_t(s.B) * s.T * 3 * s.C, 31 + s.T, 0.8f), dy = random_vec(size_t(s.B) * s.T * s.C, 32);
    const AttentionRef ref = attention_reference(qkv, dy, s.B, s.T, s.C, s.NH);
    for (const char* isa : {"avx512", "avx2", "sse2"}) {
      if (!matmul_force_isa(isa)) continue;  // the attention follows the matmul's instruction set
      const AttentionOut o = run_attention(qkv, dy, s.B, s.T, s.C, s.NH);
      const double ey = rel_error(o.y, ref.y), el = rel_error(o.lse, ref.lse), ed = rel_error(o.dqkv, ref.dqkv);
      std::printf("  double attention B=%d T=%d C=%d NH=%d %-6s y %.2e lse %.2e dqkv %.2e\n", s.B, s.T, s.C, s.NH, isa,
                  ey, el, ed);
      INFO("B=" << s.B << " T=" << s.T << " C=" << s.C << " NH=" << s.NH << " isa " << isa);
      CHECK(ey <= kTorchTol);
      CHECK(el <= kTorchTol);
      CHECK(ed <= kTorchTol);
    }
    matmul_force_isa("auto");
  }
}

TEST_CASE("cpu attention tiles are bitwise thread-count independent", "[cpu][ops]") {
  for (const AttShape& s : kAttentionShapes) {
    const Vec qkv = random_vec(size_t(s.B) * s.T * 3 * s.C, 41 + s.T, 0.8f), dy = random_vec(size_t(s.B) * s.T * s.C, 42);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    const AttentionOut one = run_attention(qkv, dy, s.B, s.T, s.C, s.NH);
    for (int threads : {2, 3, 5}) {
      omp_set_num_threads(threads);
      const AttentionOut o = run_attention(qkv, dy, s.B, s.T, s.C, s.NH);
      INFO("B=" << s.B << " T=" << s.T << " C=" << s.C << " NH=" << s.NH << " threads " << threads);
      CHECK(bitwise_equal(o.y, one.y));
      CHECK(bitwise_equal(o.lse, one.lse));
      CHECK(bitwise_equal(o.dqkv, one.dqkv));
    }
    omp_set_num_threads(saved);
  }
}

TEST_CASE("cpu gelu and residual match torch and finite differences", "[cpu][ops][torch]") {
  GPT2_REQUIRE_TORCH_OR_SKIP();
  {
    const RefFile& r = *op_reference("gelu");
    Vec inp = vec(r, "inp"), dout = vec(r, "dout"), out(inp.size()), dinp(inp.size());
    gelu_forward(out.data(), inp.data(), inp.size());
    check_torch("gelu", "out", out, r);
    gelu_backward(dinp.data(), inp.data(), dout.data(), inp.size());
    check_torch("gelu", "dinp", dinp, r);
    auto loss = [&] {
      gelu_forward(out.data(), inp.data(), inp.size());
      return dot(out, dout);
    };
    CHECK(fd_check("gelu.dinp", loss, inp.data(), inp.size(), dinp.data()) <= kFdTol);
    Vec inplace = dout;  // dinp may alias dout
    gelu_backward(inplace.data(), inp.data(), inplace.data(), inp.size());
    CHECK(bitwise_equal(inplace, dinp));
  }
  {
    const RefFile& r = *op_reference("residual");
    Vec a = vec(r, "a"), b = vec(r, "b"), dout = vec(r, "dout"), out(a.size());
    residual_forward(out.data(), a.data(), b.data(), a.size());
    check_torch("residual", "out", out, r);
    // The gradient is the identity (da = db = dout): check torch agrees, and check it by FD.
    check_torch("residual", "da", dout, r);
    check_torch("residual", "db", dout, r);
    auto loss = [&] {
      residual_forward(out.data(), a.data(), b.data(), a.size());
      return dot(out, dout);
    };
    CHECK(fd_check("residual.da", loss, a.data(), a.size(), dout.data()) <= kFdTol);
    residual_forward(out.data(), a.data(), b.data(), a.size());  // unperturbed again
    Vec acc = a;
    add_inplace(acc.data(), b.data(), acc.size());
    CHECK(bitwise_equal(acc, out));
  }
}

TEST_CASE("cpu classifier matches torch and finite differences", "[cpu][ops][torch]") {
  GPT2_REQUIRE_TORCH_OR_SKIP();
  const RefFile& r = *op_reference("classifier");
  const Dims d = dims(r);
  const int N = int(get(r, "targets").numel());
  const auto& tg = get(r, "targets").idata;
  const float scale = get(r, "dloss_scale").data[0];
  const Vec logits0 = vec(r, "logits");
  Vec logits = logits0, losses(N);
  REQUIRE(classifier_forward_backward(losses.data(), logits.data(), tg.data(), N, d.V, d.Vp, scale, true) == -1);
  check_torch("classifier", "losses", losses, r);
  check_torch("classifier", "dlogits", logits, r);
  for (int i = 0; i < N; i++)
    for (int v = d.V; v < d.Vp; v++) REQUIRE(logits[size_t(i) * d.Vp + v] == 0.0f);

  // Eval mode: same losses, logits untouched.
  Vec ev = logits0, losses2(N);
  REQUIRE(classifier_forward_backward(losses2.data(), ev.data(), tg.data(), N, d.V, d.Vp, scale, false) == -1);
  CHECK(bitwise_equal(ev, logits0));
  CHECK(bitwise_equal(losses, losses2));

  // Finite differences of scale * sum(losses) w.r.t. the (real) logits.
  Vec x = logits0, tmp(x.size());
  auto loss = [&] {
    tmp = x;
    classifier_forward_backward(losses2.data(), tmp.data(), tg.data(), N, d.V, d.Vp, scale, false);
    double s = 0;
    for (float l : losses2) s += l;
    return s * scale;
  };
  CHECK(fd_check("classifier.dlogits(row0)", loss, x.data(), size_t(d.V), logits.data()) <= kFdTol);

  // A bad target: its position is reported and nothing is written.
  std::vector<int32_t> bad(tg.begin(), tg.end());
  bad[7] = d.V;  // a padded column is not a valid class
  Vec lb = logits0, lossb(N, -3.f);
  CHECK(classifier_forward_backward(lossb.data(), lb.data(), bad.data(), N, d.V, d.Vp, scale, true) == 7);
  CHECK(bitwise_equal(lb, logits0));
  CHECK(bitwise_equal(lossb, Vec(N, -3.f)));
  bad[7] = tg[7];
  bad[N - 1] = -5;
  CHECK(classifier_forward_backward(lossb.data(), lb.data(), bad.data(), N, d.V, d.Vp, scale, true) == N - 1);
}

TEST_CASE("cpu adamw matches torch.optim.AdamW", "[cpu][ops][torch]") {
  GPT2_REQUIRE_TORCH_OR_SKIP();
  const RefFile& r = *op_reference("adamw");
  const auto& h = get(r, "hyper").data;
  Vec w = vec(r, "w0"), b = vec(r, "b0");
  // Both tensors in one flat buffer with alignment padding between them, updated by ranges.
  const size_t pad = 5, nw = w.size(), nb = b.size(), total = nw + pad + nb;
  Vec params(total, 42.f), grads(total, 0.f), m(total, 0.f), v(total, 0.f);
  std::copy(w.begin(), w.end(), params.begin());
  std::copy(b.begin(), b.end(), params.begin() + nw + pad);
  const AdamWRange ranges[2] = {{0, nw, true}, {nw + pad, nb, false}};
  for (int t = 1; t <= 3; t++) {
    const std::string s = std::to_string(t);
    const Vec gw = vec(r, "gw" + s), gb = vec(r, "gb" + s);
    std::copy(gw.begin(), gw.end(), grads.begin());
    std::copy(gb.begin(), gb.end(), grads.begin() + nw + pad);
    AdamWParams hp;
    hp.lr = h[0], hp.beta1 = h[1], hp.beta2 = h[2], hp.eps = h[3], hp.weight_decay = h[4];
    hp.t = t;
    hp.grad_scale = get(r, "gscale" + s).data[0];
    adamw_update_ranges(params.data(), grads.data(), m.data(), v.data(), ranges, 2, hp);
    const Vec pw(params.begin(), params.begin() + nw), pb(params.begin() + nw + pad, params.end());
    const Vec mw(m.begin(), m.begin() + nw), vw(v.begin(), v.begin() + nw);
    check_torch("adamw", "w" + s, pw, r);
    check_torch("adamw", "b" + s, pb, r);
    check_torch("adamw", "mw" + s, mw, r);
    check_torch("adamw", "vw" + s, vw, r);
  }
  for (size_t i = nw; i < nw + pad; i++) CHECK(params[i] == 42.f);  // padding untouched
}

TEST_CASE("cpu global_norm matches torch and is thread-count independent", "[cpu][ops][torch]") {
  GPT2_REQUIRE_TORCH_OR_SKIP();
  const RefFile& r = *op_reference("global_norm");
  const Vec x = vec(r, "x");
  const double n2 = global_norm_squared(x.data(), x.size());
  const double ref = get(r, "norm_sq").data[0];
  const double err = std::fabs(n2 - ref) / ref;
  std::printf("  torch  %-12s %-10s max rel err %.3e\n", "global_norm", "norm_sq", err);
  CHECK(err <= 1e-6);  // the reference is stored in fp32
  CHECK(global_norm(x.data(), x.size()) == Approx(std::sqrt(ref)).epsilon(1e-6));
  const int saved = omp_get_max_threads();
  for (int th : {1, 2, 3, 7}) {
    omp_set_num_threads(th);
    const double again = global_norm_squared(x.data(), x.size());
    CHECK(std::memcmp(&again, &n2, sizeof(double)) == 0);
  }
  omp_set_num_threads(saved);
  CHECK(global_norm_squared(x.data(), 0) == 0.0);
  CHECK(global_norm_squared(x.data(), 3) == Approx(double(x[0]) * x[0] + double(x[1]) * x[1] + double(x[2]) * x[2]));
}

TEST_CASE("cpu ops backward passes are thread-count independent", "[cpu][ops]") {
  const int B = 2, T = 33, C = 130, NH = 5, Vp = 97;
  const size_t N = size_t(B) * T;
  const Vec inp = random_vec(N * C, 21), w = random_vec(C, 22), b = random_vec(C, 23), dout = random_vec(N * C, 24),
            qkv = random_vec(N * 3 * C, 25), wte = random_vec(size_t(Vp) * C, 26);
  std::vector<int32_t> tok(N);
  for (size_t i = 0; i < N; i++) tok[i] = int32_t((i * 7) % 11);  // many repeats
  auto run = [&](int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    std::vector<Vec> res;
    Vec out(N * C), mean(N), rstd(N), di(N * C, 0.f), dw(C, 0.f), db(C, 0.f);
    layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), w.data(), b.data(), B, T, C);
    layernorm_backward(di.data(), dw.data(), db.data(), dout.data(), inp.data(), w.data(), mean.data(), rstd.data(), B,
                       T, C);
    res.insert(res.end(), {out, di, dw, db});
    Vec y(N * C), lse(size_t(B) * NH * T), sc(attention_scratch_floats(B, T, NH)), dq(N * 3 * C);
    attention_forward(y.data(), lse.data(), sc.data(), qkv.data(), B, T, C, NH);
    attention_backward(dq.data(), sc.data(), dout.data(), qkv.data(), y.data(), lse.data(), B, T, C, NH);
    res.insert(res.end(), {y, lse, dq});
    Vec dwte(size_t(Vp) * C, 0.f), dwpe(size_t(T) * C, 0.f);
    encoder_backward(dwte.data(), dwpe.data(), dout.data(), tok.data(), B, T, C);
    res.insert(res.end(), {dwte, dwpe});
    omp_set_num_threads(saved);
    return res;
  };
  const auto r1 = run(1), r2 = run(2), r3 = run(3);
  for (size_t i = 0; i < r1.size(); i++) {
    INFO("result " << i);
    CHECK(bitwise_equal(r1[i], r2[i]));
    CHECK(bitwise_equal(r1[i], r3[i]));
  }
  // A repeated token's embedding gradient is the sum of its positions' gradients.
  double s = 0;
  for (size_t i = 0; i < N; i++)
    if (tok[i] == 3) s += dout[i * C + 5];
  CHECK(r1[7][3 * C + 5] == Approx(s).epsilon(1e-5));
}
