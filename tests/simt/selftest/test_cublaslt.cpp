// Self-test of the SIMT layer's cuBLASLt (tests/simt/src/cublaslt.cpp): every transpose
// combination and data type against a double-precision reference with padded leading dimensions,
// each epilogue against its reference, the documented statuses for invalid and unsupported
// configurations, and a fault check showing that the comparison does catch a wrong transpose.
// Plain main(): prints one PASSED/FAILED line per check and returns 0 when all passed.
#include <cublasLt.h>
#include <cuda_bf16.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace {

int g_failed = 0, g_passed = 0;

void report(bool ok, const std::string& name, const std::string& detail) {
  std::printf("%s %s%s%s\n", ok ? "PASSED" : "FAILED", name.c_str(), detail.empty() ? "" : ": ", detail.c_str());
  (ok ? g_passed : g_failed)++;
}

const char* tname(cudaDataType_t t) { return t == CUDA_R_16BF ? "bf16" : "fp32"; }
size_t tsize(cudaDataType_t t) { return t == CUDA_R_16BF ? 2 : 4; }
float round_to(cudaDataType_t t, float v) { return t == CUDA_R_16BF ? simt::bf16_to_f32(simt::f32_to_bf16_rn(v)) : v; }

// Device buffer holding values of one type, with host-side float views.
struct Dev {
  void* p = nullptr;
  size_t count = 0;
  cudaDataType_t type = CUDA_R_32F;
  Dev(size_t n, cudaDataType_t t) : count(n), type(t) {
    if (cudaMalloc(&p, n * tsize(t)) != cudaSuccess) p = nullptr;
  }
  ~Dev() { cudaFree(p); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  // The host reads and writes device memory directly (it is host memory under the layer), so
  // queued work runs first: the matmul that reads or writes this buffer.
  void upload(const std::vector<float>& v) {
    cudaDeviceSynchronize();
    for (size_t i = 0; i < v.size() && i < count; ++i) {
      if (type == CUDA_R_16BF)
        static_cast<uint16_t*>(p)[i] = simt::f32_to_bf16_rn(v[i]);
      else
        static_cast<float*>(p)[i] = v[i];
    }
  }
  std::vector<float> download() const {
    cudaDeviceSynchronize();
    std::vector<float> v(count);
    for (size_t i = 0; i < count; ++i)
      v[i] =
          type == CUDA_R_16BF ? simt::bf16_to_f32(static_cast<const uint16_t*>(p)[i]) : static_cast<const float*>(p)[i];
    return v;
  }
};

std::mt19937 g_rng(12345);
constexpr float kPad = 1000.0f;  // padding between columns: read by mistake, it ruins the result

// rows x cols column-major with leading dimension ld, values in [-1, 1] representable in `t`.
std::vector<float> random_matrix(int64_t rows, int64_t cols, int64_t ld, cudaDataType_t t) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(ld * (cols - 1) + rows), kPad);
  for (int64_t j = 0; j < cols; ++j)
    for (int64_t i = 0; i < rows; ++i) v[static_cast<size_t>(i + j * ld)] = round_to(t, u(g_rng));
  return v;
}

// Owns the descriptors of one matmul.
struct Descs {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr, d = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~Descs() {
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(d);
    cublasLtMatrixLayoutDestroy(c);
    cublasLtMatrixLayoutDestroy(b);
    cublasLtMatrixLayoutDestroy(a);
    cublasLtMatmulDescDestroy(op);
  }
};

struct Gemm {
  int64_t m = 0, n = 0, k = 0;
  bool ta = false, tb = false;
  cudaDataType_t ab = CUDA_R_32F, cd = CUDA_R_32F;
  int64_t lda = 0, ldb = 0, ldc = 0, ldd = 0;
  float alpha = 1.0f, beta = 0.0f;
  cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;
  const void* bias = nullptr;
  void* aux = nullptr;
  int64_t aux_ld = 0;
  uint32_t align = 0;  // MIN_ALIGNMENT_* preference for A..D; 0: the pointers' own alignment
  bool row_order_d = false;
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
};

uint32_t ptr_align(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  uint32_t al = 256;
  while (al > 1 && a % al) al >>= 1;
  return al;
}

struct Result {
  cublasStatus_t heuristic = CUBLAS_STATUS_SUCCESS;
  int count = 0;
  cublasStatus_t matmul = CUBLAS_STATUS_SUCCESS;
};

cublasLtHandle_t g_handle = nullptr;

// Heuristic then matmul (when the heuristic gave an algorithm, or when `force` is set, with a
// null algo = implicit heuristic).
Result run_gemm(const Gemm& g, const void* A, const void* B, const void* C, void* D, void* ws = nullptr,
                size_t ws_bytes = 0, bool force = false) {
  Result r;
  Descs ds;
  cublasLtMatmulDescCreate(&ds.op, g.compute, CUDA_R_32F);
  const cublasOperation_t ta = g.ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb = g.tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
  cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
  cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &g.epi, sizeof g.epi);
  if (g.bias) cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof g.bias);
  if (g.aux) {
    cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &g.aux, sizeof g.aux);
    cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &g.aux_ld, sizeof g.aux_ld);
  }
  cublasLtMatrixLayoutCreate(&ds.a, g.ab, g.ta ? g.k : g.m, g.ta ? g.m : g.k, g.lda);
  cublasLtMatrixLayoutCreate(&ds.b, g.ab, g.tb ? g.n : g.k, g.tb ? g.k : g.n, g.ldb);
  cublasLtMatrixLayoutCreate(&ds.c, g.cd, g.m, g.n, C == D ? g.ldd : g.ldc);  // in place: Cdesc like Ddesc
  cublasLtMatrixLayoutCreate(&ds.d, g.cd, g.m, g.n, g.ldd);
  if (g.row_order_d) {
    const int32_t order = CUBLASLT_ORDER_ROW;
    cublasLtMatrixLayoutSetAttribute(ds.d, CUBLASLT_MATRIX_LAYOUT_ORDER, &order, sizeof order);
  }
  cublasLtMatmulPreferenceCreate(&ds.pref);
  const uint64_t wsb = ws_bytes;
  cublasLtMatmulPreferenceSetAttribute(ds.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb);
  const uint32_t al[4] = {g.align ? g.align : ptr_align(A), g.align ? g.align : ptr_align(B),
                          g.align ? g.align : ptr_align(C ? C : D), g.align ? g.align : ptr_align(D)};
  cublasLtMatmulPreferenceSetAttribute(ds.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al[0], 4);
  cublasLtMatmulPreferenceSetAttribute(ds.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al[1], 4);
  cublasLtMatmulPreferenceSetAttribute(ds.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al[2], 4);
  cublasLtMatmulPreferenceSetAttribute(ds.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al[3], 4);
  cublasLtMatmulHeuristicResult_t res{};
  r.heuristic = cublasLtMatmulAlgoGetHeuristic(g_handle, ds.op, ds.a, ds.b, ds.c, ds.d, ds.pref, 1, &res, &r.count);
  const bool have = r.heuristic == CUBLAS_STATUS_SUCCESS && r.count > 0;
  if (!have && !force) {
    r.matmul = CUBLAS_STATUS_NOT_SUPPORTED;
    return r;
  }
  r.matmul = cublasLtMatmul(g_handle, ds.op, &g.alpha, A, ds.a, B, ds.b, &g.beta, C, ds.c, D, ds.d,
                            have ? &res.algo : nullptr, ws, ws_bytes, nullptr);
  return r;
}

constexpr double kPi = 3.14159265358979323846;
double gelu_ref(double x) { return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / kPi) * (x + 0.044715 * x * x * x))); }
double gelu_grad_ref(double x) {
  const double c = std::sqrt(2.0 / kPi), u = c * (x + 0.044715 * x * x * x), t = std::tanh(u);
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * x * x);
}

// Compares got[i + j*ld] with ref(i, j) within bound(i, j); also checks that padding rows of the
// output were left alone. Returns max(|err| / bound).
struct Cmp {
  double worst = 0;
  int64_t bad = 0;
  bool pad_ok = true;
};
Cmp compare(const std::vector<float>& got, int64_t rows, int64_t cols, int64_t ld,
            const std::function<double(int64_t, int64_t)>& ref, const std::function<double(int64_t, int64_t)>& bound) {
  Cmp c;
  for (int64_t j = 0; j < cols; ++j) {
    for (int64_t i = 0; i < ld && i + j * ld < static_cast<int64_t>(got.size()); ++i) {
      const float v = got[static_cast<size_t>(i + j * ld)];
      if (i >= rows) {
        if (v != kPad) c.pad_ok = false;
        continue;
      }
      const double e = std::fabs(static_cast<double>(v) - ref(i, j)), b = bound(i, j);
      const double q = std::isfinite(v) ? e / b : 1e30;
      if (q > c.worst) c.worst = q;
      if (q > 1.0) ++c.bad;
    }
  }
  return c;
}
std::string cmp_detail(const Cmp& c) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "max err/bound %.3g, %lld out of bound%s", c.worst, static_cast<long long>(c.bad),
                c.pad_ok ? "" : ", padding overwritten");
  return buf;
}

// One GEMM problem with host copies of its inputs and a double-precision reference.
struct Case {
  Gemm g;
  std::vector<float> a, b, c, d0;
  Case(int64_t m, int64_t n, int64_t k, bool ta, bool tb, cudaDataType_t ab, cudaDataType_t cd, int64_t pad) {
    g.m = m, g.n = n, g.k = k, g.ta = ta, g.tb = tb, g.ab = ab, g.cd = cd;
    g.lda = (ta ? k : m) + pad;
    g.ldb = (tb ? n : k) + pad;
    g.ldd = m + pad;
    g.ldc = m + 2 * pad + 1;
    a = random_matrix(ta ? k : m, ta ? m : k, g.lda, ab);
    b = random_matrix(tb ? n : k, tb ? k : n, g.ldb, ab);
    c = random_matrix(m, n, g.ldc, cd);
    d0 = std::vector<float>(static_cast<size_t>(g.ldd * n), kPad);
  }
  double opa(int64_t i, int64_t p, bool ta) const { return a[static_cast<size_t>(ta ? p + i * g.lda : i + p * g.lda)]; }
  double opb(int64_t p, int64_t j) const { return b[static_cast<size_t>(g.tb ? j + p * g.ldb : p + j * g.ldb)]; }
  double prod(int64_t i, int64_t j, bool ta) const {
    double s = 0;
    for (int64_t p = 0; p < g.k; ++p) s += opa(i, p, ta) * opb(p, j);
    return s;
  }
  double prod_abs(int64_t i, int64_t j) const {
    double s = 0;
    for (int64_t p = 0; p < g.k; ++p) s += std::fabs(opa(i, p, g.ta) * opb(p, j));
    return s;
  }
  double cval(int64_t i, int64_t j) const { return c[static_cast<size_t>(i + j * g.ldc)]; }
  // alpha·op(A)op(B) + beta·C, and a bound on fp32 accumulation error (+ output rounding).
  double lin(int64_t i, int64_t j, bool ta) const { return g.alpha * prod(i, j, ta) + g.beta * cval(i, j); }
  double lin_bound(int64_t i, int64_t j) const {
    const double mag = std::fabs(g.alpha) * prod_abs(i, j) + std::fabs(g.beta * cval(i, j));
    return (g.k + 4) * std::ldexp(1.0, -24) * mag + 1e-30;
  }
  double out_round(double ref) const { return g.cd == CUDA_R_16BF ? std::ldexp(std::fabs(ref), -8) : 0.0; }
};

// ---- Tests ----------------------------------------------------------------------------------------------
void test_transposes() {
  const cudaDataType_t types[3][2] = {{CUDA_R_32F, CUDA_R_32F}, {CUDA_R_16BF, CUDA_R_16BF}, {CUDA_R_16BF, CUDA_R_32F}};
  for (const auto& tp : types) {
    for (int t = 0; t < 4; ++t) {
      for (int in_place = 0; in_place < 2; ++in_place) {
        const bool ta = t & 1, tb = t & 2;
        Case cs(37, 29, 53, ta, tb, tp[0], tp[1], 3);
        cs.g.alpha = 0.75f;
        cs.g.beta = -0.5f;
        Dev A(cs.a.size(), tp[0]), B(cs.b.size(), tp[0]), D(cs.d0.size(), tp[1]);
        Dev C(cs.c.size(), tp[1]);
        A.upload(cs.a);
        B.upload(cs.b);
        C.upload(cs.c);
        D.upload(cs.d0);
        const void* cptr = C.p;
        if (in_place) {  // C == D: D holds C's values with D's leading dimension
          std::vector<float> cd(cs.d0);
          for (int64_t j = 0; j < cs.g.n; ++j)
            for (int64_t i = 0; i < cs.g.m; ++i) cd[static_cast<size_t>(i + j * cs.g.ldd)] = cs.cval(i, j);
          D.upload(cd);
          cs.g.ldc = cs.g.ldd;
          cs.c = cd;
          cptr = D.p;
        }
        const Result r = run_gemm(cs.g, A.p, B.p, cptr, D.p);
        char name[128];
        std::snprintf(name, sizeof name, "matmul %s%s A/B %s C/D %s %s", ta ? "T" : "N", tb ? "T" : "N", tname(tp[0]),
                      tname(tp[1]), in_place ? "in place" : "out of place");
        if (r.matmul != CUBLAS_STATUS_SUCCESS) {
          report(false, name, "status " + std::to_string(r.heuristic) + "/" + std::to_string(r.matmul));
          continue;
        }
        const Cmp c = compare(
            D.download(), cs.g.m, cs.g.n, cs.g.ldd, [&](int64_t i, int64_t j) { return cs.lin(i, j, ta); },
            [&](int64_t i, int64_t j) { return cs.lin_bound(i, j) + cs.out_round(cs.lin(i, j, ta)); });
        report(c.bad == 0 && c.pad_ok, name, cmp_detail(c));
      }
    }
  }
}

// The fault check: a result computed with TRANSA=T compared against a reference that ignores the
// flag (square A so both shapes are legal) must be rejected by the same comparison.
void test_transpose_fault() {
  Case cs(32, 24, 32, true, false, CUDA_R_32F, CUDA_R_32F, 0);
  Dev A(cs.a.size(), CUDA_R_32F), B(cs.b.size(), CUDA_R_32F), D(cs.d0.size(), CUDA_R_32F);
  A.upload(cs.a);
  B.upload(cs.b);
  D.upload(cs.d0);
  const Result r = run_gemm(cs.g, A.p, B.p, D.p, D.p);
  const std::vector<float> got = D.download();
  const Cmp right = compare(
      got, cs.g.m, cs.g.n, cs.g.ldd, [&](int64_t i, int64_t j) { return cs.lin(i, j, true); },
      [&](int64_t i, int64_t j) { return cs.lin_bound(i, j); });
  const Cmp wrong = compare(
      got, cs.g.m, cs.g.n, cs.g.ldd, [&](int64_t i, int64_t j) { return cs.lin(i, j, false); },
      [&](int64_t i, int64_t j) { return cs.lin_bound(i, j); });
  report(r.matmul == CUBLAS_STATUS_SUCCESS && right.bad == 0 && wrong.bad > 0,
         "fault check: reference with the transpose flag ignored disagrees",
         "right ref " + cmp_detail(right) + "; wrong ref " + cmp_detail(wrong));
}

void test_large() {
  Case cs(64, 256, 768, true, false, CUDA_R_16BF, CUDA_R_16BF, 0);
  Dev A(cs.a.size(), CUDA_R_16BF), B(cs.b.size(), CUDA_R_16BF), D(cs.d0.size(), CUDA_R_16BF);
  A.upload(cs.a);
  B.upload(cs.b);
  const Result r1 = run_gemm(cs.g, A.p, B.p, D.p, D.p);
  const std::vector<float> d1 = D.download();
  const Result r2 = run_gemm(cs.g, A.p, B.p, D.p, D.p);
  const std::vector<float> d2 = D.download();
  const Cmp c = compare(
      d1, cs.g.m, cs.g.n, cs.g.ldd, [&](int64_t i, int64_t j) { return cs.lin(i, j, true); },
      [&](int64_t i, int64_t j) { return cs.lin_bound(i, j) + cs.out_round(cs.lin(i, j, true)); });
  const bool same = std::memcmp(d1.data(), d2.data(), d1.size() * sizeof(float)) == 0;
  report(r1.matmul == CUBLAS_STATUS_SUCCESS && r2.matmul == CUBLAS_STATUS_SUCCESS && c.bad == 0 && same,
         "matmul TN bf16 64x256x768, repeated run bitwise identical", cmp_detail(c) + (same ? "" : ", runs differ"));
}

void test_epilogues() {
  const cublasLtEpilogue_t epis[] = {CUBLASLT_EPILOGUE_RELU,     CUBLASLT_EPILOGUE_BIAS,
                                     CUBLASLT_EPILOGUE_GELU,     CUBLASLT_EPILOGUE_GELU_BIAS,
                                     CUBLASLT_EPILOGUE_GELU_AUX, CUBLASLT_EPILOGUE_GELU_AUX_BIAS,
                                     CUBLASLT_EPILOGUE_DGELU,    CUBLASLT_EPILOGUE_DGELU_BGRAD,
                                     CUBLASLT_EPILOGUE_BGRADA,   CUBLASLT_EPILOGUE_BGRADB};
  const char* names[] = {"RELU",          "BIAS",  "GELU",        "GELU_BIAS", "GELU_AUX",
                         "GELU_AUX_BIAS", "DGELU", "DGELU_BGRAD", "BGRADA",    "BGRADB"};
  const cudaDataType_t types[2] = {CUDA_R_32F, CUDA_R_16BF};
  for (cudaDataType_t t : types) {
    for (size_t e = 0; e < sizeof epis / sizeof epis[0]; ++e) {
      const cublasLtEpilogue_t epi = epis[e];
      const bool ta = e % 2 == 0, tb = e % 3 == 0;  // vary the transposes too
      Case cs(40, 27, 45, ta, tb, t, t, 2);
      cs.g.alpha = 1.25f;
      cs.g.beta = (epi == CUBLASLT_EPILOGUE_BGRADA || epi == CUBLASLT_EPILOGUE_BGRADB) ? 1.0f : 0.0f;
      cs.g.epi = epi;
      const bool has_bias_in =
          epi == CUBLASLT_EPILOGUE_BIAS || epi == CUBLASLT_EPILOGUE_GELU_BIAS || epi == CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
      const bool bgrad =
          epi == CUBLASLT_EPILOGUE_BGRADA || epi == CUBLASLT_EPILOGUE_BGRADB || epi == CUBLASLT_EPILOGUE_DGELU_BGRAD;
      const bool aux_out = epi == CUBLASLT_EPILOGUE_GELU_AUX || epi == CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
      const bool aux_in = epi == CUBLASLT_EPILOGUE_DGELU || epi == CUBLASLT_EPILOGUE_DGELU_BGRAD;
      const int64_t bias_len = epi == CUBLASLT_EPILOGUE_BGRADB ? cs.g.n : cs.g.m;
      const int64_t aux_ld = (cs.g.m + 7) / 8 * 8 + 8;
      Dev A(cs.a.size(), t), B(cs.b.size(), t), D(cs.d0.size(), t), bias(static_cast<size_t>(bias_len), t);
      Dev aux(static_cast<size_t>(aux_ld * cs.g.n), t);
      std::vector<float> bias_h = random_matrix(bias_len, 1, bias_len, t);
      std::vector<float> aux_h = random_matrix(cs.g.m, cs.g.n, aux_ld, t);
      for (float& v : aux_h) v = v == kPad ? kPad : round_to(t, 3.0f * v);  // GELU inputs in [-3, 3]
      A.upload(cs.a);
      B.upload(cs.b);
      // D starts as C (in place) so beta != 0 cases use it.
      std::vector<float> dinit(cs.d0);
      for (int64_t j = 0; j < cs.g.n; ++j)
        for (int64_t i = 0; i < cs.g.m; ++i) dinit[static_cast<size_t>(i + j * cs.g.ldd)] = cs.cval(i, j);
      cs.c = dinit;
      cs.g.ldc = cs.g.ldd;
      D.upload(dinit);
      if (has_bias_in) bias.upload(bias_h);
      if (aux_in) aux.upload(aux_h);
      if (aux_out) aux.upload(std::vector<float>(aux.count, kPad));
      if (has_bias_in || bgrad) cs.g.bias = bias.p;
      if (aux_in || aux_out) {
        cs.g.aux = aux.p;
        cs.g.aux_ld = aux_ld;
      }
      const Result r = run_gemm(cs.g, A.p, B.p, D.p, D.p);
      const std::string name = std::string("epilogue ") + names[e] + " " + tname(t);
      if (r.matmul != CUBLAS_STATUS_SUCCESS) {
        report(false, name, "status " + std::to_string(r.heuristic) + "/" + std::to_string(r.matmul));
        continue;
      }
      auto bias_at = [&](int64_t i) { return has_bias_in ? static_cast<double>(bias_h[static_cast<size_t>(i)]) : 0.0; };
      auto pre = [&](int64_t i, int64_t j) { return cs.lin(i, j, ta) + bias_at(i); };
      auto pre_bound = [&](int64_t i, int64_t j) {
        return cs.lin_bound(i, j) + std::ldexp(std::fabs(bias_at(i)), -23);
      };
      auto out = [&](int64_t i, int64_t j) {
        const double x = pre(i, j);
        switch (epi) {
          case CUBLASLT_EPILOGUE_RELU: return x > 0 ? x : 0.0;
          case CUBLASLT_EPILOGUE_GELU:
          case CUBLASLT_EPILOGUE_GELU_BIAS:
          case CUBLASLT_EPILOGUE_GELU_AUX:
          case CUBLASLT_EPILOGUE_GELU_AUX_BIAS: return gelu_ref(x);
          case CUBLASLT_EPILOGUE_DGELU:
          case CUBLASLT_EPILOGUE_DGELU_BGRAD: return x * gelu_grad_ref(aux_h[static_cast<size_t>(i + j * aux_ld)]);
          default: return x;
        }
      };
      auto out_bound = [&](int64_t i, int64_t j) {
        const double o = out(i, j);
        return 1.3 * pre_bound(i, j) + 8 * std::ldexp(std::fabs(o), -24) + cs.out_round(o) + 1e-7;
      };
      Cmp c = compare(D.download(), cs.g.m, cs.g.n, cs.g.ldd, out, out_bound);
      std::string detail = "D " + cmp_detail(c);
      bool ok = c.bad == 0 && c.pad_ok;
      if (aux_out) {
        const Cmp ca = compare(aux.download(), cs.g.m, cs.g.n, aux_ld, pre,
                               [&](int64_t i, int64_t j) { return pre_bound(i, j) + cs.out_round(pre(i, j)) + 1e-7; });
        ok = ok && ca.bad == 0 && ca.pad_ok;
        detail += "; aux " + cmp_detail(ca);
      }
      if (bgrad) {
        const std::vector<float> got = bias.download();
        double worst = 0;
        for (int64_t x = 0; x < bias_len; ++x) {
          double s = 0, s_abs = 0;
          if (epi == CUBLASLT_EPILOGUE_BGRADA)
            for (int64_t p = 0; p < cs.g.k; ++p) s += cs.opa(x, p, ta), s_abs += std::fabs(cs.opa(x, p, ta));
          else if (epi == CUBLASLT_EPILOGUE_BGRADB)
            for (int64_t p = 0; p < cs.g.k; ++p) s += cs.opb(p, x), s_abs += std::fabs(cs.opb(p, x));
          else
            for (int64_t j = 0; j < cs.g.n; ++j) s += out(x, j), s_abs += std::fabs(out(x, j)) + out_bound(x, j);
          const double bound = (cs.g.n + cs.g.k + 4) * std::ldexp(s_abs, -23) + cs.out_round(s) + 1e-6;
          worst = std::max(worst, std::fabs(got[static_cast<size_t>(x)] - s) / bound);
        }
        ok = ok && worst <= 1.0;
        char buf[96];
        std::snprintf(buf, sizeof buf, "; bias gradient (length %lld) max err/bound %.3g",
                      static_cast<long long>(bias_len), worst);
        detail += buf;
      }
      report(ok, name, detail);
    }
  }
}

void expect_status(const std::string& name, cublasStatus_t got, cublasStatus_t want) {
  report(got == want, name, std::string("got ") + cublasLtGetStatusName(got) + ", want " + cublasLtGetStatusName(want));
}

void test_invalid() {
  Case base(32, 16, 24, false, false, CUDA_R_16BF, CUDA_R_16BF, 0);
  Dev A(base.a.size(), CUDA_R_16BF), B(base.b.size(), CUDA_R_16BF), D(base.d0.size(), CUDA_R_16BF);
  Dev bias(32, CUDA_R_16BF), aux(32 * 16, CUDA_R_16BF);
  A.upload(base.a);
  B.upload(base.b);

  {  // BIAS without a bias pointer
    Gemm g = base.g;
    g.epi = CUBLASLT_EPILOGUE_BIAS;
    const Result r = run_gemm(g, A.p, B.p, D.p, D.p, nullptr, 0, true);
    expect_status("BIAS without bias pointer: heuristic", r.heuristic, CUBLAS_STATUS_INVALID_VALUE);
    expect_status("BIAS without bias pointer: matmul", r.matmul, CUBLAS_STATUS_INVALID_VALUE);
  }
  {  // BGRADB without a bias pointer
    Gemm g = base.g;
    g.epi = CUBLASLT_EPILOGUE_BGRADB;
    expect_status("BGRADB without bias pointer: matmul", run_gemm(g, A.p, B.p, D.p, D.p, nullptr, 0, true).matmul,
                  CUBLAS_STATUS_INVALID_VALUE);
  }
  {  // GELU_AUX without aux
    Gemm g = base.g;
    g.epi = CUBLASLT_EPILOGUE_GELU_AUX;
    const Result r = run_gemm(g, A.p, B.p, D.p, D.p, nullptr, 0, true);
    expect_status("GELU_AUX without aux pointer: heuristic", r.heuristic, CUBLAS_STATUS_INVALID_VALUE);
    expect_status("GELU_AUX without aux pointer: matmul", r.matmul, CUBLAS_STATUS_INVALID_VALUE);
  }
  {  // DGELU with an aux ld that is not a multiple of 8
    Gemm g = base.g;
    g.epi = CUBLASLT_EPILOGUE_DGELU;
    g.aux = aux.p;
    g.aux_ld = 36;
    expect_status("DGELU with aux ld 36 (not divisible by 8)", run_gemm(g, A.p, B.p, D.p, D.p, nullptr, 0, true).matmul,
                  CUBLAS_STATUS_INVALID_VALUE);
    g.aux_ld = 24;
    expect_status("DGELU with aux ld 24 < rows(D) 32", run_gemm(g, A.p, B.p, D.p, D.p, nullptr, 0, true).matmul,
                  CUBLAS_STATUS_INVALID_VALUE);
  }
  {  // k mismatch between A and B
    Gemm g = base.g;
    Descs ds;
    cublasLtMatmulDescCreate(&ds.op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    cublasLtMatrixLayoutCreate(&ds.a, CUDA_R_16BF, g.m, g.k, g.lda);
    cublasLtMatrixLayoutCreate(&ds.b, CUDA_R_16BF, g.k - 1, g.n, g.ldb);
    cublasLtMatrixLayoutCreate(&ds.d, CUDA_R_16BF, g.m, g.n, g.ldd);
    cublasLtMatmulHeuristicResult_t res{};
    int count = 0;
    expect_status("dimension mismatch k(A) != k(B): heuristic",
                  cublasLtMatmulAlgoGetHeuristic(g_handle, ds.op, ds.a, ds.b, ds.d, ds.d, nullptr, 1, &res, &count),
                  CUBLAS_STATUS_INVALID_VALUE);
    const float one = 1.0f, zero = 0.0f;
    expect_status("dimension mismatch k(A) != k(B): matmul",
                  cublasLtMatmul(g_handle, ds.op, &one, A.p, ds.a, B.p, ds.b, &zero, D.p, ds.d, D.p, ds.d, nullptr,
                                 nullptr, 0, nullptr),
                  CUBLAS_STATUS_INVALID_VALUE);
  }
  {  // ld < rows
    Gemm g = base.g;
    g.lda = g.m - 1;
    expect_status("lda < rows(A)", run_gemm(g, A.p, B.p, D.p, D.p, nullptr, 0, true).matmul,
                  CUBLAS_STATUS_INVALID_VALUE);
  }
  {  // D in row order with an activation+bias epilogue (documented as unsupported)
    Gemm g = base.g;
    g.row_order_d = true;
    g.epi = CUBLASLT_EPILOGUE_GELU_BIAS;
    g.bias = bias.p;
    const Result r = run_gemm(g, A.p, B.p, D.p, D.p, nullptr, 0, true);
    expect_status("GELU_BIAS with ORDER_ROW D: heuristic", r.heuristic, CUBLAS_STATUS_NOT_SUPPORTED);
    expect_status("GELU_BIAS with ORDER_ROW D: matmul", r.matmul, CUBLAS_STATUS_NOT_SUPPORTED);
  }
  {  // fp32 A/B with bf16 C/D: not a row of the datatypes table
    Dev Af(base.a.size(), CUDA_R_32F), Bf(base.b.size(), CUDA_R_32F);
    Gemm g = base.g;
    g.ab = CUDA_R_32F;
    const Result r = run_gemm(g, Af.p, Bf.p, D.p, D.p, nullptr, 0, true);
    expect_status("A/B fp32 with C/D bf16: heuristic", r.heuristic, CUBLAS_STATUS_NOT_SUPPORTED);
    expect_status("A/B fp32 with C/D bf16: matmul", r.matmul, CUBLAS_STATUS_NOT_SUPPORTED);
  }
  {  // 16F compute with bf16 data
    Gemm g = base.g;
    g.compute = CUBLAS_COMPUTE_16F;
    expect_status("CUBLAS_COMPUTE_16F with bf16: heuristic", run_gemm(g, A.p, B.p, D.p, D.p).heuristic,
                  CUBLAS_STATUS_NOT_SUPPORTED);
  }
  {  // ReLU bit-mask epilogue (not emulated)
    Gemm g = base.g;
    g.epi = CUBLASLT_EPILOGUE_RELU_AUX;
    g.aux = aux.p;
    g.aux_ld = 128;
    expect_status("RELU_AUX: heuristic", run_gemm(g, A.p, B.p, D.p, D.p).heuristic, CUBLAS_STATUS_NOT_SUPPORTED);
  }
  {  // Operand spans outside device memory
    Gemm g = base.g;
    std::vector<uint16_t> host_a(base.a.size());
    expect_status("A in host memory", run_gemm(g, host_a.data(), B.p, D.p, D.p).matmul, CUBLAS_STATUS_INVALID_VALUE);
    Gemm g2 = base.g;
    g2.n = base.g.n + 1;  // D and B one column longer than their allocations
    Dev B2(static_cast<size_t>(g2.ldb * g2.n), CUDA_R_16BF);
    expect_status("D span past the end of its allocation", run_gemm(g2, A.p, B2.p, D.p, D.p).matmul,
                  CUBLAS_STATUS_INVALID_VALUE);
    Gemm g3 = base.g;
    g3.epi = CUBLASLT_EPILOGUE_BIAS;
    Dev short_bias(static_cast<size_t>(g3.m - 8), CUDA_R_16BF);
    g3.bias = short_bias.p;
    expect_status("bias shorter than rows(D)", run_gemm(g3, A.p, B.p, D.p, D.p).matmul, CUBLAS_STATUS_INVALID_VALUE);
    Gemm g4 = base.g;
    g4.epi = CUBLASLT_EPILOGUE_GELU_AUX;
    g4.aux = aux.p;
    g4.aux_ld = 40;  // 40 * 15 + 32 elements > the 32 * 16 allocated
    expect_status("aux span past the end of its allocation", run_gemm(g4, A.p, B.p, D.p, D.p).matmul,
                  CUBLAS_STATUS_INVALID_VALUE);
    Dev ws(1 << 12, CUDA_R_32F);
    expect_status("workspace larger than its allocation", run_gemm(base.g, A.p, B.p, D.p, D.p, ws.p, 1 << 16).matmul,
                  CUBLAS_STATUS_INVALID_VALUE);
    expect_status("workspace not 256-byte aligned",
                  run_gemm(base.g, A.p, B.p, D.p, D.p, static_cast<char*>(ws.p) + 16, 1 << 10).matmul,
                  CUBLAS_STATUS_INVALID_VALUE);
    expect_status("valid workspace", run_gemm(base.g, A.p, B.p, D.p, D.p, ws.p, 1 << 14).matmul, CUBLAS_STATUS_SUCCESS);
  }
  {  // Alignment: an algorithm chosen for aligned pointers must not run on misaligned ones
    Gemm g = base.g;
    g.m = 31;  // D + 1 element still holds the 31 x 16 matrix with ld 32
    g.ldd = 32;
    g.ldc = 32;
    Descs ds;
    cublasLtMatmulDescCreate(&ds.op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    cublasLtMatrixLayoutCreate(&ds.a, CUDA_R_16BF, g.m, g.k, g.lda);
    cublasLtMatrixLayoutCreate(&ds.b, CUDA_R_16BF, g.k, g.n, g.ldb);
    cublasLtMatrixLayoutCreate(&ds.d, CUDA_R_16BF, g.m, g.n, g.ldd);
    cublasLtMatmulPreferenceCreate(&ds.pref);  // default MIN_ALIGNMENT 256
    cublasLtMatmulHeuristicResult_t res{};
    int count = 0;
    cublasLtMatmulAlgoGetHeuristic(g_handle, ds.op, ds.a, ds.b, ds.d, ds.d, ds.pref, 1, &res, &count);
    const float one = 1.0f, zero = 0.0f;
    uint16_t* d1 = static_cast<uint16_t*>(D.p) + 1;
    expect_status("algo for 256-byte alignment used with a 2-byte aligned D",
                  cublasLtMatmul(g_handle, ds.op, &one, A.p, ds.a, B.p, ds.b, &zero, d1, ds.d, d1, ds.d, &res.algo,
                                 nullptr, 0, nullptr),
                  CUBLAS_STATUS_INVALID_VALUE);
    const uint32_t two = 2;
    cublasLtMatmulPreferenceSetAttribute(ds.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &two, 4);
    cublasLtMatmulPreferenceSetAttribute(ds.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &two, 4);
    cublasLtMatmulAlgoGetHeuristic(g_handle, ds.op, ds.a, ds.b, ds.d, ds.d, ds.pref, 1, &res, &count);
    expect_status("algo for 2-byte alignment used with a 2-byte aligned D",
                  cublasLtMatmul(g_handle, ds.op, &one, A.p, ds.a, B.p, ds.b, &zero, d1, ds.d, d1, ds.d, &res.algo,
                                 nullptr, 0, nullptr),
                  CUBLAS_STATUS_SUCCESS);
    const uint32_t one_byte = 1;
    cublasLtMatmulPreferenceSetAttribute(ds.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &one_byte, 4);
    const cublasStatus_t st =
        cublasLtMatmulAlgoGetHeuristic(g_handle, ds.op, ds.a, ds.b, ds.d, ds.d, ds.pref, 1, &res, &count);
    report(st == CUBLAS_STATUS_SUCCESS && count == 0, "MIN_ALIGNMENT_D 1 byte for bf16 D: no algorithm",
           "status " + std::to_string(st) + ", count " + std::to_string(count));
    expect_status("requestedAlgoCount 0",
                  cublasLtMatmulAlgoGetHeuristic(g_handle, ds.op, ds.a, ds.b, ds.d, ds.d, ds.pref, 0, &res, &count),
                  CUBLAS_STATUS_INVALID_VALUE);
  }
  {  // Attribute sizes
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    const int64_t wide = CUBLAS_OP_T;
    expect_status("SetAttribute TRANSA with 8 bytes",
                  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &wide, sizeof wide),
                  CUBLAS_STATUS_INVALID_VALUE);
    const int32_t ld32 = 64;
    expect_status("SetAttribute EPILOGUE_AUX_LD with 4 bytes",
                  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ld32, sizeof ld32),
                  CUBLAS_STATUS_INVALID_VALUE);
    size_t need = 0;
    const cublasStatus_t st = cublasLtMatmulDescGetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, nullptr, 0, &need);
    report(st == CUBLAS_STATUS_SUCCESS && need == sizeof(void*), "GetAttribute size query for BIAS_POINTER",
           "size " + std::to_string(need));
    int32_t mode = -1;
    cublasLtMatmulDescGetAttribute(op, CUBLASLT_MATMUL_DESC_POINTER_MODE, &mode, sizeof mode, nullptr);
    report(mode == CUBLASLT_POINTER_MODE_HOST, "default pointer mode is HOST", "mode " + std::to_string(mode));
    cublasLtMatmulDescDestroy(op);
    cublasLtMatmulPreference_t pref = nullptr;
    cublasLtMatmulPreferenceCreate(&pref);
    uint32_t al = 0;
    cublasLtMatmulPreferenceGetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al, 4, nullptr);
    report(al == 256, "default MIN_ALIGNMENT_A_BYTES is 256", "value " + std::to_string(al));
    const uint32_t ws32 = 1024;
    expect_status("SetAttribute MAX_WORKSPACE_BYTES with 4 bytes",
                  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws32, 4),
                  CUBLAS_STATUS_INVALID_VALUE);
    cublasLtMatmulPreferenceDestroy(pref);
  }
  expect_status("matmul with a NULL handle",
                cublasLtMatmul(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                               nullptr, nullptr, nullptr, nullptr, 0, nullptr),
                CUBLAS_STATUS_NOT_INITIALIZED);
}

}  // namespace

int main() {
  if (cublasLtCreate(&g_handle) != CUBLAS_STATUS_SUCCESS) {
    std::printf("FAILED cublasLtCreate\n");
    return 1;
  }
  test_transposes();
  test_transpose_fault();
  test_large();
  test_epilogues();
  test_invalid();
  cublasLtDestroy(g_handle);
  std::printf("%s: %d passed, %d failed\n", g_failed ? "FAILED" : "PASSED", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
