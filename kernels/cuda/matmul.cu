// cuBLASLt matmul forward/backward with fused epilogues and unfused fallbacks: see matmul.cuh.
#include "kernels/cuda/matmul.cuh"

#include "kernels/cuda/gelu.cuh"

namespace gpt2::cuda {

namespace {

template <typename T>
constexpr cudaDataType_t lt_type();
template <>
constexpr cudaDataType_t lt_type<bf16>() {
  return CUDA_R_16BF;
}
template <>
constexpr cudaDataType_t lt_type<float>() {
  return CUDA_R_32F;
}

// One GEMM in cuBLAS terms: D (m,n, ld ldd) = alpha·op(A)·op(B) + beta·D, column-major.
struct LtProblem {
  int m = 0, n = 0, k = 0;
  bool transA = false, transB = false;
  int lda = 0, ldb = 0, ldd = 0;
  float beta = 0.0f;
  cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  const void* bias = nullptr;  // bias (BIAS epilogues) or bias-gradient output (BGRAD epilogues)
  void* aux = nullptr;         // GELU input: written by GELU_AUX*, read by DGELU
  int64_t aux_ld = 0;
};

// Owns the descriptors of one call (created per call: cheap host work, no device allocation).
struct LtDescs {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~LtDescs() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

// Runs the GEMM. Returns false (and runs nothing) when cuBLASLt has no algorithm for it and
// `required` is false; a required GEMM without an algorithm is a fatal error.
template <typename T>
bool lt_matmul(MatmulContext& ctx, T* D, const T* A, const T* B, const LtProblem& p, cudaStream_t stream,
               bool required) {
  GPT2_REQUIRE(ctx.handle != nullptr);
  const cudaDataType_t type = lt_type<T>();
  LtDescs ds;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&ds.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = p.transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t tb = p.transB ? CUBLAS_OP_T : CUBLAS_OP_N;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &p.epilogue, sizeof p.epilogue));
  if (p.bias)
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p.bias, sizeof p.bias));
  if (p.aux) {
    CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &p.aux, sizeof p.aux));
    CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &p.aux_ld, sizeof p.aux_ld));
  }
  // Stored shapes: op(A) is (m,k), so A is (k,m) when transposed; op(B) is (k,n).
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&ds.a, type, p.transA ? p.k : p.m, p.transA ? p.m : p.k, p.lda));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&ds.b, type, p.transB ? p.n : p.k, p.transB ? p.k : p.n, p.ldb));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&ds.d, type, p.m, p.n, p.ldd));

  const int al_a = pointer_alignment(A), al_b = pointer_alignment(B), al_d = pointer_alignment(D);
  const std::array<int64_t, 16> key = {static_cast<int64_t>(type),
                                       p.m,
                                       p.n,
                                       p.k,
                                       p.transA,
                                       p.transB,
                                       p.lda,
                                       p.ldb,
                                       p.ldd,
                                       p.beta != 0.0f,
                                       static_cast<int64_t>(p.epilogue),
                                       al_a,
                                       al_b,
                                       al_d,
                                       p.bias ? pointer_alignment(p.bias) : 0,
                                       p.aux ? pointer_alignment(p.aux) * 1000000 + p.aux_ld : 0};
  auto it = ctx.cache.find(key);
  if (it == ctx.cache.end()) {
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&ds.pref));
    const uint64_t ws = ctx.workspace_bytes;
    CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(ds.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    const uint32_t ua = al_a, ub = al_b, ud = al_d;
    CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(ds.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &ua, sizeof ua));
    CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(ds.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &ub, sizeof ub));
    CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(ds.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &ud, sizeof ud));
    CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(ds.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &ud, sizeof ud));
    cublasLtMatmulHeuristicResult_t res{};
    int count = 0;
    const cublasStatus_t st =
        cublasLtMatmulAlgoGetHeuristic(ctx.handle, ds.op, ds.a, ds.b, ds.d, ds.d, ds.pref, 1, &res, &count);
    MatmulContext::Choice choice;
    choice.supported = st == CUBLAS_STATUS_SUCCESS && count > 0 && res.state == CUBLAS_STATUS_SUCCESS;
    if (choice.supported) choice.algo = res.algo;
    it = ctx.cache.emplace(key, choice).first;
  }
  if (!it->second.supported) {
    if (required)
      report_failure("cuBLASLt", "no algorithm for this matmul (heuristic returned none)", "lt_matmul", __FILE__,
                     __LINE__);
    return false;
  }
  const float alpha = 1.0f;
  CUBLAS_CHECK(cublasLtMatmul(ctx.handle, ds.op, &alpha, A, ds.a, B, ds.b, &p.beta, D, ds.d, D, ds.d, &it->second.algo,
                              ctx.workspace, ctx.workspace_bytes, stream));
  return true;
}

}  // namespace

// Fallback: out[n,o] += bias[o] (row-major (N,OC)).
template <typename T>
static __global__ void add_bias_kernel(T* out, const T* __restrict__ bias, int N, int OC) {
  const size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<size_t>(N) * OC) return;
  const int o = static_cast<int>(idx % OC);
  out[idx] = from_float<T>(to_float(out[idx]) + to_float(bias[o]));
}

// dbias[o] += src[o].
template <typename T>
static __global__ void add_vector_kernel(T* dst, const T* __restrict__ src, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = from_float<T>(to_float(dst[i]) + to_float(src[i]));
}

// Fallback bias gradient: dbias[o] += sum_n dout[n,o]. Block (32,32): threadIdx.x picks the
// column, threadIdx.y sums rows y, y+32, ...; the 32 partial sums are added in y order.
template <typename T>
static __global__ void __launch_bounds__(1024) column_sum_kernel(T* dbias, const T* __restrict__ dout, int N, int OC) {
  __shared__ float part[32][33];
  const int o = blockIdx.x * 32 + threadIdx.x;
  float acc = 0.0f;
  if (o < OC)
    for (int n = threadIdx.y; n < N; n += 32) acc += to_float(dout[static_cast<size_t>(n) * OC + o]);
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && o < OC) {
    float total = 0.0f;
#pragma unroll 8
    for (int y = 0; y < 32; ++y) total += part[y][threadIdx.x];
    dbias[o] = from_float<T>(to_float(dbias[o]) + total);
  }
}

template <typename T>
static void matmul_forward_impl(MatmulContext& ctx, T* out, T* pre_gelu, const T* inp, const T* weight, const T* bias,
                                int N, int C, int OC, cudaStream_t stream) {
  GPT2_REQUIRE(N > 0 && C > 0 && OC > 0 && out && inp && weight);
  // outᵀ (OC,N) = W (OC,C) · inpᵀ (C,N)
  LtProblem p;
  p.m = OC;
  p.n = N;
  p.k = C;
  p.transA = true;
  p.transB = false;
  p.lda = C;
  p.ldb = C;
  p.ldd = OC;
  p.bias = bias;
  if (pre_gelu && ctx.allow_fused_epilogues && OC % 8 == 0) {
    p.epilogue = bias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX;
    p.aux = pre_gelu;
    p.aux_ld = OC;
    if (lt_matmul<T>(ctx, out, weight, inp, p, stream, false)) return;
    p.aux = nullptr;
    p.aux_ld = 0;
  }
  T* dst = pre_gelu ? pre_gelu : out;
  bool bias_done = false;
  if (bias && ctx.allow_fused_epilogues) {
    p.epilogue = CUBLASLT_EPILOGUE_BIAS;
    bias_done = lt_matmul<T>(ctx, dst, weight, inp, p, stream, false);
  }
  if (!bias_done) {
    p.epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    p.bias = nullptr;
    lt_matmul<T>(ctx, dst, weight, inp, p, stream, true);
    if (bias) {
      const size_t total = static_cast<size_t>(N) * OC;
      CUDA_CHECK(launch(add_bias_kernel<T>, static_cast<unsigned>(CEIL_DIV(total, size_t{256})), 256, 0, stream, dst,
                        bias, N, OC));
    }
  }
  if (pre_gelu) gelu_forward(out, pre_gelu, static_cast<size_t>(N) * OC, stream);
}

template <typename T>
static void matmul_backward_impl(MatmulContext& ctx, T* dinp, T* dweight, T* dbias, const T* dout, const T* inp,
                                 const T* weight, const T* pre_gelu, int N, int C, int OC, cudaStream_t stream) {
  GPT2_REQUIRE(N > 0 && C > 0 && OC > 0 && dweight && dout && inp && weight);
  if (dinp) {
    // dinpᵀ (C,N) = Wᵀ (C,OC) · doutᵀ (OC,N)
    LtProblem p;
    p.m = C;
    p.n = N;
    p.k = OC;
    p.transA = false;
    p.transB = false;
    p.lda = C;
    p.ldb = OC;
    p.ldd = C;
    bool done = false;
    if (pre_gelu && ctx.allow_fused_epilogues && C % 8 == 0) {
      p.epilogue = CUBLASLT_EPILOGUE_DGELU;
      p.aux = const_cast<T*>(pre_gelu);  // read-only for DGELU
      p.aux_ld = C;
      done = lt_matmul<T>(ctx, dinp, weight, dout, p, stream, false);
      p.aux = nullptr;
      p.aux_ld = 0;
    }
    if (!done) {
      p.epilogue = CUBLASLT_EPILOGUE_DEFAULT;
      lt_matmul<T>(ctx, dinp, weight, dout, p, stream, true);
      if (pre_gelu) gelu_backward(dinp, pre_gelu, dinp, static_cast<size_t>(N) * C, stream);
    }
  }
  // dWᵀ (C,OC) += inpᵀ (C,N) · dout (N,OC); BGRADB reduces op(B) = dout over k = N.
  LtProblem p;
  p.m = C;
  p.n = OC;
  p.k = N;
  p.transA = false;
  p.transB = true;
  p.lda = C;
  p.ldb = OC;
  p.ldd = C;
  p.beta = 1.0f;
  bool bias_done = false;
  if (dbias && ctx.allow_fused_epilogues && ctx.bias_scratch &&
      ctx.bias_scratch_bytes >= static_cast<size_t>(OC) * sizeof(T)) {
    p.epilogue = CUBLASLT_EPILOGUE_BGRADB;
    p.bias = ctx.bias_scratch;
    if (lt_matmul<T>(ctx, dweight, inp, dout, p, stream, false)) {
      CUDA_CHECK(launch(add_vector_kernel<T>, CEIL_DIV(OC, 256), 256, 0, stream, dbias,
                        static_cast<const T*>(ctx.bias_scratch), OC));
      bias_done = true;
    }
  }
  if (!bias_done) {
    p.epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    p.bias = nullptr;
    lt_matmul<T>(ctx, dweight, inp, dout, p, stream, true);
    if (dbias) {
      CUDA_CHECK(launch(column_sum_kernel<T>, CEIL_DIV(OC, 32), dim3(32, 32), 0, stream, dbias, dout, N, OC));
    }
  }
}

void matmul_context_init(MatmulContext& ctx, void* workspace, size_t workspace_bytes, void* bias_scratch,
                         size_t bias_scratch_bytes) {
  GPT2_REQUIRE(workspace == nullptr || is_aligned16(workspace));
  CUBLAS_CHECK(cublasLtCreate(&ctx.handle));
  ctx.workspace = workspace;
  ctx.workspace_bytes = workspace ? workspace_bytes : 0;
  ctx.bias_scratch = bias_scratch;
  ctx.bias_scratch_bytes = bias_scratch ? bias_scratch_bytes : 0;
  ctx.cache.clear();
}

void matmul_context_destroy(MatmulContext& ctx) {
  if (ctx.handle) CUBLAS_CHECK(cublasLtDestroy(ctx.handle));
  ctx.handle = nullptr;
  ctx.cache.clear();
}

void matmul_forward(MatmulContext& ctx, bf16* out, bf16* pre_gelu, const bf16* inp, const bf16* weight,
                    const bf16* bias, int N, int C, int OC, cudaStream_t s) {
  matmul_forward_impl(ctx, out, pre_gelu, inp, weight, bias, N, C, OC, s);
}
void matmul_forward(MatmulContext& ctx, float* out, float* pre_gelu, const float* inp, const float* weight,
                    const float* bias, int N, int C, int OC, cudaStream_t s) {
  matmul_forward_impl(ctx, out, pre_gelu, inp, weight, bias, N, C, OC, s);
}
void matmul_backward(MatmulContext& ctx, bf16* dinp, bf16* dweight, bf16* dbias, const bf16* dout, const bf16* inp,
                     const bf16* weight, const bf16* pre_gelu, int N, int C, int OC, cudaStream_t s) {
  matmul_backward_impl(ctx, dinp, dweight, dbias, dout, inp, weight, pre_gelu, N, C, OC, s);
}
void matmul_backward(MatmulContext& ctx, float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, const float* pre_gelu, int N, int C, int OC, cudaStream_t s) {
  matmul_backward_impl(ctx, dinp, dweight, dbias, dout, inp, weight, pre_gelu, N, C, OC, s);
}

void matmul_raw(MatmulContext& ctx, bf16* D, const bf16* A, const bf16* B, int m, int n, int k, bool transA,
                bool transB, float beta, cudaStream_t stream) {
  LtProblem p;
  p.m = m;
  p.n = n;
  p.k = k;
  p.transA = transA;
  p.transB = transB;
  p.lda = transA ? k : m;
  p.ldb = transB ? n : k;
  p.ldd = m;
  p.beta = beta;
  lt_matmul<bf16>(ctx, D, A, B, p, stream, true);
}

}  // namespace gpt2::cuda
