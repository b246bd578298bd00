// cuBLASLt on the CPU for the SIMT layer: see tests/simt/include/cublasLt.h for the scope and the
// emulation's choices. Semantics follow NVIDIA's cuBLAS documentation:
//   * cublasLtMatmul(): D = alpha·op(A)·op(B) + beta·C, column-major; in place (C == D, same
//     layout) or out of place (same type, rows, cols, order; C's ld may differ, and may be 0 to
//     broadcast one column); workspace 256-byte aligned; algo == NULL runs an implicit heuristic
//     query with default preferences; supported type rows of the "Datatypes Supported" table;
//     epilogues that combine an activation with a bias are not supported for ORDER_ROW D.
//   * cublasLtEpilogue_t: BIAS adds a packed vector of length rows(D) to every column before the
//     activation; GELU is the tanh approximation 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x³)));
//     *_AUX write the GELU input (after the bias) into the aux matrix; DGELU multiplies the
//     result by GELU'(aux); BGRADA writes the sum over k of op(A) (length rows(D)), BGRADB the
//     sum over k of op(B) (length cols(D)); DGELU_BGRAD writes the row sums of its output.
//   * CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD: for GELU aux matrices it must be divisible by 8 and no
//     less than rows(D); the aux type defaults to D's type.
//   * CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE defaults to D's type (-1), which is the bias type of
//     every supported row of the datatypes table.
// The emulation's own choices: fp32 accumulation in ascending k without FMA, bf16 rounded to
// nearest even once; bias gradients are plain (unscaled) fp32 sums rounded once.

// Keep a·b + c as two rounded operations whatever -march / -ffp-contract the build uses, so the
// results are the same on every machine.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <cublasLt.h>

#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "internal.h"

// ---- Opaque objects ---------------------------------------------------------------------------------
namespace {
constexpr uint32_t kHandleMagic = 0x4C54484Eu;          // "LTHN"
constexpr uint64_t kAlgoMagic = 0x53494D544C54414CULL;  // "SIMTLTAL"
constexpr int32_t kFillModeFull = 2;                    // CUBLAS_FILL_MODE_FULL
constexpr uint32_t kDefaultAlignment = 256;             // MIN_ALIGNMENT_* default
constexpr uint32_t kAlgoMaxAlignment = 16;              // widest access the emulated algo "uses"
constexpr size_t kWorkspaceAlignment = 256;             // cublasLtMatmul(): workspace alignment
}  // namespace

struct cublasLtContext {
  uint32_t magic = kHandleMagic;
};

struct cublasLtMatmulDescOpaque_t {
  int32_t compute_type = CUBLAS_COMPUTE_32F;
  int32_t scale_type = CUDA_R_32F;
  int32_t pointer_mode = CUBLASLT_POINTER_MODE_HOST;
  int32_t transa = CUBLAS_OP_N;
  int32_t transb = CUBLAS_OP_N;
  int32_t transc = CUBLAS_OP_N;
  int32_t fill_mode = kFillModeFull;
  uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  void* bias = nullptr;
  int64_t bias_batch_stride = 0;
  void* aux = nullptr;
  int64_t aux_ld = 0;
  int64_t aux_batch_stride = 0;
  int64_t alpha_vector_batch_stride = 0;
  int32_t sm_count_target = 0;
  void* a_scale = nullptr;
  void* b_scale = nullptr;
  void* c_scale = nullptr;
  void* d_scale = nullptr;
  void* amax_d = nullptr;
  int32_t aux_type = -1;
  void* aux_scale = nullptr;
  void* aux_amax = nullptr;
  int8_t fast_accum = 0;
  int32_t bias_type = -1;
};

struct cublasLtMatrixLayoutOpaque_t {
  uint32_t type = CUDA_R_32F;
  int32_t order = CUBLASLT_ORDER_COL;
  uint64_t rows = 0;
  uint64_t cols = 0;
  int64_t ld = 0;
  int32_t batch_count = 1;
  int64_t batch_offset = 0;
  int64_t plane_offset = 0;
};

struct cublasLtMatmulPreferenceOpaque_t {
  uint32_t search_mode = 0;
  uint64_t max_workspace = 0;
  uint32_t reduction_mask = 0x7;
  uint32_t align[4] = {kDefaultAlignment, kDefaultAlignment, kDefaultAlignment, kDefaultAlignment};
  float max_waves = 0.0f;
  uint64_t impl_mask = ~uint64_t{0};
};

namespace {

// ---- Diagnostics ----------------------------------------------------------------------------------------
cublasStatus_t invalid(const char* fn, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
cublasStatus_t invalid(const char* fn, const char* fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "cublasLt (SIMT layer): %s: CUBLAS_STATUS_INVALID_VALUE: %s\n", fn, msg);
  return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t not_supported(const char* fn, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
cublasStatus_t not_supported(const char* fn, const char* fmt, ...) {
  if (std::getenv("GPT2_SIMT_VERBOSE")) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    std::fprintf(stderr, "cublasLt (SIMT layer): %s: CUBLAS_STATUS_NOT_SUPPORTED: %s\n", fn, msg);
  }
  return CUBLAS_STATUS_NOT_SUPPORTED;
}

// ---- Attribute tables ------------------------------------------------------------------------------------
// Each table maps an attribute to its storage; Set/Get check the size as the documentation requires.
struct Field {
  void* ptr;
  size_t size;
};

bool desc_field(cublasLtMatmulDescOpaque_t* d, int attr, Field* f) {
  switch (attr) {
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE: *f = {&d->compute_type, 4}; return true;
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE: *f = {&d->scale_type, 4}; return true;
    case CUBLASLT_MATMUL_DESC_POINTER_MODE: *f = {&d->pointer_mode, 4}; return true;
    case CUBLASLT_MATMUL_DESC_TRANSA: *f = {&d->transa, 4}; return true;
    case CUBLASLT_MATMUL_DESC_TRANSB: *f = {&d->transb, 4}; return true;
    case CUBLASLT_MATMUL_DESC_TRANSC: *f = {&d->transc, 4}; return true;
    case CUBLASLT_MATMUL_DESC_FILL_MODE: *f = {&d->fill_mode, 4}; return true;
    case CUBLASLT_MATMUL_DESC_EPILOGUE: *f = {&d->epilogue, 4}; return true;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: *f = {&d->bias, sizeof(void*)}; return true;
    case CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE: *f = {&d->bias_batch_stride, 8}; return true;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER: *f = {&d->aux, sizeof(void*)}; return true;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD: *f = {&d->aux_ld, 8}; return true;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE: *f = {&d->aux_batch_stride, 8}; return true;
    case CUBLASLT_MATMUL_DESC_ALPHA_VECTOR_BATCH_STRIDE: *f = {&d->alpha_vector_batch_stride, 8}; return true;
    case CUBLASLT_MATMUL_DESC_SM_COUNT_TARGET: *f = {&d->sm_count_target, 4}; return true;
    case CUBLASLT_MATMUL_DESC_A_SCALE_POINTER: *f = {&d->a_scale, sizeof(void*)}; return true;
    case CUBLASLT_MATMUL_DESC_B_SCALE_POINTER: *f = {&d->b_scale, sizeof(void*)}; return true;
    case CUBLASLT_MATMUL_DESC_C_SCALE_POINTER: *f = {&d->c_scale, sizeof(void*)}; return true;
    case CUBLASLT_MATMUL_DESC_D_SCALE_POINTER: *f = {&d->d_scale, sizeof(void*)}; return true;
    case CUBLASLT_MATMUL_DESC_AMAX_D_POINTER: *f = {&d->amax_d, sizeof(void*)}; return true;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE: *f = {&d->aux_type, 4}; return true;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_SCALE_POINTER: *f = {&d->aux_scale, sizeof(void*)}; return true;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_AMAX_POINTER: *f = {&d->aux_amax, sizeof(void*)}; return true;
    case CUBLASLT_MATMUL_DESC_FAST_ACCUM: *f = {&d->fast_accum, 1}; return true;
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: *f = {&d->bias_type, 4}; return true;
  }
  return false;
}

bool layout_field(cublasLtMatrixLayoutOpaque_t* l, int attr, Field* f) {
  switch (attr) {
    case CUBLASLT_MATRIX_LAYOUT_TYPE: *f = {&l->type, 4}; return true;
    case CUBLASLT_MATRIX_LAYOUT_ORDER: *f = {&l->order, 4}; return true;
    case CUBLASLT_MATRIX_LAYOUT_ROWS: *f = {&l->rows, 8}; return true;
    case CUBLASLT_MATRIX_LAYOUT_COLS: *f = {&l->cols, 8}; return true;
    case CUBLASLT_MATRIX_LAYOUT_LD: *f = {&l->ld, 8}; return true;
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT: *f = {&l->batch_count, 4}; return true;
    case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET: *f = {&l->batch_offset, 8}; return true;
    case CUBLASLT_MATRIX_LAYOUT_PLANE_OFFSET: *f = {&l->plane_offset, 8}; return true;
  }
  return false;
}

bool pref_field(cublasLtMatmulPreferenceOpaque_t* p, int attr, Field* f) {
  switch (attr) {
    case CUBLASLT_MATMUL_PREF_SEARCH_MODE: *f = {&p->search_mode, 4}; return true;
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES: *f = {&p->max_workspace, 8}; return true;
    case CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK: *f = {&p->reduction_mask, 4}; return true;
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES: *f = {&p->align[0], 4}; return true;
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES: *f = {&p->align[1], 4}; return true;
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES: *f = {&p->align[2], 4}; return true;
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES: *f = {&p->align[3], 4}; return true;
    case CUBLASLT_MATMUL_PREF_MAX_WAVES_COUNT: *f = {&p->max_waves, 4}; return true;
    case CUBLASLT_MATMUL_PREF_IMPL_MASK: *f = {&p->impl_mask, 8}; return true;
  }
  return false;
}

cublasStatus_t set_field(const char* fn, bool known, int attr, const Field& f, const void* buf, size_t size) {
  if (!known) return invalid(fn, "unknown attribute %d", attr);
  if (!buf) return invalid(fn, "attribute %d: buf is NULL", attr);
  if (size != f.size) return invalid(fn, "attribute %d takes %zu bytes, sizeInBytes is %zu", attr, f.size, size);
  std::memcpy(f.ptr, buf, size);
  return CUBLAS_STATUS_SUCCESS;
}

// GetAttribute: sizeInBytes == 0 asks for the size (into *sizeWritten); otherwise it must match.
cublasStatus_t get_field(const char* fn, bool known, int attr, const Field& f, void* buf, size_t size,
                         size_t* written) {
  if (!known) return invalid(fn, "unknown attribute %d", attr);
  if (size == 0) {
    if (!written) return invalid(fn, "sizeInBytes is 0 and sizeWritten is NULL");
    *written = f.size;
    return CUBLAS_STATUS_SUCCESS;
  }
  if (!buf) return invalid(fn, "attribute %d: buf is NULL", attr);
  if (size != f.size) return invalid(fn, "attribute %d takes %zu bytes, sizeInBytes is %zu", attr, f.size, size);
  std::memcpy(buf, f.ptr, size);
  if (written) *written = size;
  return CUBLAS_STATUS_SUCCESS;
}

// ---- Problem resolution ---------------------------------------------------------------------------------
size_t type_size(int32_t t) {
  switch (t) {
    case CUDA_R_32F: return 4;
    case CUDA_R_16BF: return 2;
    case CUDA_R_16F: return 2;
    case CUDA_R_64F: return 8;
    case CUDA_R_8I: return 1;
    case CUDA_R_32I: return 4;
  }
  return 0;
}

const char* type_name(int32_t t) {
  switch (t) {
    case CUDA_R_32F: return "CUDA_R_32F";
    case CUDA_R_16BF: return "CUDA_R_16BF";
    case CUDA_R_16F: return "CUDA_R_16F";
    case CUDA_R_64F: return "CUDA_R_64F";
    case CUDA_R_8I: return "CUDA_R_8I";
    case CUDA_R_32I: return "CUDA_R_32I";
  }
  return "unknown type";
}

enum class Bias { None, Add, GradRows, GradCols, GradOut };  // GradOut: row sums of D (DGELU_BGRAD)
enum class Act { None, Relu, Gelu, DGelu };

struct Problem {
  int64_t m = 0, n = 0, k = 0;
  bool ta = false, tb = false;
  int32_t ab_type = CUDA_R_32F, cd_type = CUDA_R_32F;
  size_t ab_size = 4, cd_size = 4;
  int64_t lda = 0, ldb = 0, ldc = 0, ldd = 0;
  Bias bias = Bias::None;
  int32_t bias_type = CUDA_R_32F;
  int64_t bias_len = 0;
  bool aux_out = false, aux_in = false;
  int32_t aux_type = CUDA_R_32F;
  int64_t aux_ld = 0;
  Act act = Act::None;
};

bool op_ok(int32_t op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C; }

// Checks everything that does not depend on the data pointers and fills `p`. INVALID_VALUE for
// inconsistent or impossible parameters, NOT_SUPPORTED for configurations without an algorithm.
cublasStatus_t resolve(const char* fn, const cublasLtMatmulDescOpaque_t* d, const cublasLtMatrixLayoutOpaque_t* A,
                       const cublasLtMatrixLayoutOpaque_t* B, const cublasLtMatrixLayoutOpaque_t* C,
                       const cublasLtMatrixLayoutOpaque_t* D, Problem* p) {
  if (!d) return invalid(fn, "matmul descriptor is NULL");
  if (!A || !B || !D) return invalid(fn, "a matrix layout (A, B or D) is NULL");
  if (!C) C = D;  // cublasLtMatmul(): an omitted Cdesc is taken to be Ddesc

  // Compute and scale types (rows of the cublasLtMatmul() datatypes table with fp32 compute).
  const bool fast = d->compute_type == CUBLAS_COMPUTE_32F_FAST_16F || d->compute_type == CUBLAS_COMPUTE_32F_FAST_16BF ||
                    d->compute_type == CUBLAS_COMPUTE_32F_FAST_TF32;
  if (d->compute_type != CUBLAS_COMPUTE_32F && d->compute_type != CUBLAS_COMPUTE_32F_PEDANTIC && !fast)
    return not_supported(fn, "compute type %d is not emulated (only CUBLAS_COMPUTE_32F*)", d->compute_type);
  if (d->scale_type != CUDA_R_32F)
    return not_supported(fn, "scale type %s with an fp32 compute type", type_name(d->scale_type));

  // Layouts.
  const cublasLtMatrixLayoutOpaque_t* lay[4] = {A, B, C, D};
  static const char* const names[4] = {"A", "B", "C", "D"};
  for (int i = 0; i < 4; ++i) {
    if (lay[i]->order != CUBLASLT_ORDER_COL)
      return not_supported(fn, "matrix %s: memory order %d is not emulated (column-major only)", names[i],
                           lay[i]->order);
    if (lay[i]->batch_count < 1) return invalid(fn, "matrix %s: batch count %d", names[i], lay[i]->batch_count);
    if (lay[i]->batch_count != 1)
      return not_supported(fn, "matrix %s: batched matmul (batch count %d) is not emulated", names[i],
                           lay[i]->batch_count);
    if (lay[i]->plane_offset != 0) return not_supported(fn, "matrix %s: planar-complex layout", names[i]);
    if (lay[i]->rows > 0x7fffffffu || lay[i]->cols > 0x7fffffffu)
      return not_supported(fn, "matrix %s: dimensions beyond int32", names[i]);
  }

  // Data types.
  if (A->type != B->type) return not_supported(fn, "A is %s but B is %s", type_name(A->type), type_name(B->type));
  if (C->type != D->type)
    return invalid(fn, "C is %s but D is %s (they must have the same type)", type_name(C->type), type_name(D->type));
  const bool types_ok = (A->type == CUDA_R_16BF && (D->type == CUDA_R_16BF || D->type == CUDA_R_32F)) ||
                        (A->type == CUDA_R_32F && D->type == CUDA_R_32F);
  if (!types_ok)
    return not_supported(fn, "A/B %s with C/D %s is not a supported combination", type_name(A->type),
                         type_name(D->type));
  if (fast && A->type != CUDA_R_32F) return not_supported(fn, "CUBLAS_COMPUTE_32F_FAST_* needs fp32 A/B");

  // Operations.
  if (!op_ok(d->transa) || !op_ok(d->transb)) return invalid(fn, "TRANSA/TRANSB is not a cublasOperation_t");
  if (d->transc != CUBLAS_OP_N) return not_supported(fn, "TRANSC must be CUBLAS_OP_N");
  if (d->fill_mode != kFillModeFull) return not_supported(fn, "fill mode %d (only FULL)", d->fill_mode);
  if (d->pointer_mode != CUBLASLT_POINTER_MODE_HOST && d->pointer_mode != CUBLASLT_POINTER_MODE_DEVICE)
    return not_supported(fn, "pointer mode %d is not emulated (HOST and DEVICE only)", d->pointer_mode);
  if (d->a_scale || d->b_scale || d->c_scale || d->d_scale || d->amax_d || d->aux_scale || d->aux_amax)
    return invalid(fn, "scale/amax pointers are set, which these data types do not support");

  // Dimensions: D is m x n, op(A) m x k, op(B) k x n, C like D.
  p->ta = d->transa != CUBLAS_OP_N;
  p->tb = d->transb != CUBLAS_OP_N;
  p->m = static_cast<int64_t>(D->rows);
  p->n = static_cast<int64_t>(D->cols);
  const int64_t a_m = static_cast<int64_t>(p->ta ? A->cols : A->rows);
  p->k = static_cast<int64_t>(p->ta ? A->rows : A->cols);
  const int64_t b_k = static_cast<int64_t>(p->tb ? B->cols : B->rows);
  const int64_t b_n = static_cast<int64_t>(p->tb ? B->rows : B->cols);
  if (a_m != p->m)
    return invalid(fn, "op(A) has %lld rows but D has %lld (A is %llux%llu, TRANSA %d)", (long long)a_m,
                   (long long)p->m, (unsigned long long)A->rows, (unsigned long long)A->cols, d->transa);
  if (b_k != p->k)
    return invalid(fn, "op(A) is %lldx%lld but op(B) has %lld rows (B is %llux%llu, TRANSB %d)", (long long)p->m,
                   (long long)p->k, (long long)b_k, (unsigned long long)B->rows, (unsigned long long)B->cols,
                   d->transb);
  if (b_n != p->n) return invalid(fn, "op(B) has %lld columns but D has %lld", (long long)b_n, (long long)p->n);
  if (C->rows != D->rows || C->cols != D->cols)
    return invalid(fn, "C is %llux%llu but D is %llux%llu", (unsigned long long)C->rows, (unsigned long long)C->cols,
                   (unsigned long long)D->rows, (unsigned long long)D->cols);
  for (int i = 0; i < 4; ++i) {
    const int64_t need = static_cast<int64_t>(lay[i]->rows > 0 ? lay[i]->rows : 1);
    const bool c_broadcast = i == 2 && C != D && lay[i]->ld == 0;  // out-of-place C may use ld 0
    if (lay[i]->ld < need && !c_broadcast)
      return invalid(fn, "matrix %s: ld %lld is less than its %llu rows", names[i], (long long)lay[i]->ld,
                     (unsigned long long)lay[i]->rows);
  }
  p->lda = A->ld;
  p->ldb = B->ld;
  p->ldc = C->ld;
  p->ldd = D->ld;
  p->ab_type = static_cast<int32_t>(A->type);
  p->cd_type = static_cast<int32_t>(D->type);
  p->ab_size = type_size(p->ab_type);
  p->cd_size = type_size(p->cd_type);

  // Epilogue.
  switch (d->epilogue) {
    case CUBLASLT_EPILOGUE_DEFAULT: break;
    case CUBLASLT_EPILOGUE_RELU: p->act = Act::Relu; break;
    case CUBLASLT_EPILOGUE_BIAS: p->bias = Bias::Add; break;
    case CUBLASLT_EPILOGUE_RELU_BIAS:
      p->bias = Bias::Add;
      p->act = Act::Relu;
      break;
    case CUBLASLT_EPILOGUE_GELU: p->act = Act::Gelu; break;
    case CUBLASLT_EPILOGUE_GELU_BIAS:
      p->bias = Bias::Add;
      p->act = Act::Gelu;
      break;
    case CUBLASLT_EPILOGUE_GELU_AUX:
      p->act = Act::Gelu;
      p->aux_out = true;
      break;
    case CUBLASLT_EPILOGUE_GELU_AUX_BIAS:
      p->bias = Bias::Add;
      p->act = Act::Gelu;
      p->aux_out = true;
      break;
    case CUBLASLT_EPILOGUE_DGELU:
      p->act = Act::DGelu;
      p->aux_in = true;
      break;
    case CUBLASLT_EPILOGUE_DGELU_BGRAD:
      p->act = Act::DGelu;
      p->aux_in = true;
      p->bias = Bias::GradOut;
      break;
    case CUBLASLT_EPILOGUE_BGRADA: p->bias = Bias::GradRows; break;
    case CUBLASLT_EPILOGUE_BGRADB: p->bias = Bias::GradCols; break;
    case CUBLASLT_EPILOGUE_RELU_AUX:
    case CUBLASLT_EPILOGUE_RELU_AUX_BIAS:
    case CUBLASLT_EPILOGUE_DRELU:
    case CUBLASLT_EPILOGUE_DRELU_BGRAD:
      return not_supported(fn, "epilogue %u (ReLU bit-mask) is not emulated", d->epilogue);
    default: return not_supported(fn, "epilogue %u is not a cublasLtEpilogue_t value", d->epilogue);
  }
  if (p->bias != Bias::None) {
    if (!d->bias) return invalid(fn, "epilogue %u needs CUBLASLT_MATMUL_DESC_BIAS_POINTER, which is NULL", d->epilogue);
    p->bias_type = d->bias_type == -1 ? p->cd_type : d->bias_type;
    if (p->bias_type != p->cd_type)
      return not_supported(fn, "bias type %s with D %s", type_name(p->bias_type), type_name(p->cd_type));
    p->bias_len = p->bias == Bias::GradCols ? p->n : p->m;
  }
  if (p->aux_out || p->aux_in) {
    if (!d->aux)
      return invalid(fn, "epilogue %u needs CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, which is NULL", d->epilogue);
    if (d->aux_ld % 8 != 0 || d->aux_ld < p->m)
      return invalid(fn, "EPILOGUE_AUX_LD %lld must be divisible by 8 and at least rows(D) = %lld",
                     (long long)d->aux_ld, (long long)p->m);
    p->aux_type = d->aux_type == -1 ? p->cd_type : d->aux_type;
    if (p->aux_type != p->cd_type)
      return invalid(fn, "EPILOGUE_AUX_DATA_TYPE %s differs from D's %s", type_name(p->aux_type),
                     type_name(p->cd_type));
    p->aux_ld = d->aux_ld;
  }
  return CUBLAS_STATUS_SUCCESS;
}

// ---- The emulated algorithm: required alignments, recorded in cublasLtMatmulAlgo_t -----------------------
enum Operand { kA, kB, kC, kD, kBias, kAux, kOperands };
const char* const kOperandName[kOperands] = {"A", "B", "C", "D", "bias", "aux"};

uint32_t pointer_alignment(const void* ptr) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(ptr);
  uint32_t al = kDefaultAlignment;
  while (al > 1 && (a % al) != 0) al >>= 1;
  return al;
}
uint32_t floor_pow2(uint32_t v) {
  uint32_t r = 1;
  while (r * 2 <= v && r < (1u << 30)) r *= 2;
  return r;
}

// Returns false when the alignments the caller promises are below what any algorithm needs (a
// pointer that is not even element-aligned).
bool choose_algo(const Problem& p, const cublasLtMatmulDescOpaque_t* d, const cublasLtMatmulPreferenceOpaque_t& pref,
                 cublasLtMatmulAlgo_t* algo) {
  uint32_t need[kOperands] = {};
  const size_t esize[kOperands] = {p.ab_size, p.ab_size, p.cd_size, p.cd_size, p.cd_size, p.cd_size};
  uint32_t promised[kOperands] = {pref.align[0], pref.align[1],     pref.align[2],
                                  pref.align[3], kAlgoMaxAlignment, kAlgoMaxAlignment};
  // For bias and aux the heuristic derives the alignment from the pointer values themselves.
  if (p.bias != Bias::None) promised[kBias] = pointer_alignment(d->bias);
  if (p.aux_in || p.aux_out) promised[kAux] = pointer_alignment(d->aux);
  for (int i = 0; i < kOperands; ++i) {
    if (promised[i] == 0 || promised[i] % esize[i] != 0) return false;
    need[i] = floor_pow2(promised[i] < kAlgoMaxAlignment ? promised[i] : kAlgoMaxAlignment);
  }
  std::memset(algo, 0, sizeof *algo);
  algo->data[0] = kAlgoMagic;
  for (int i = 0; i < kOperands; ++i) algo->data[1] |= static_cast<uint64_t>(need[i]) << (8 * i);
  return true;
}

uint32_t algo_alignment(const cublasLtMatmulAlgo_t& algo, int operand) {
  return static_cast<uint32_t>((algo.data[1] >> (8 * operand)) & 0xffu);
}

// ---- Arithmetic -----------------------------------------------------------------------------------------
inline float load(const void* base, int32_t type, int64_t idx) {
  if (type == CUDA_R_16BF) return simt::bf16_to_f32(static_cast<const uint16_t*>(base)[idx]);
  return static_cast<const float*>(base)[idx];
}
inline void store(void* base, int32_t type, int64_t idx, float v) {
  if (type == CUDA_R_16BF)
    static_cast<uint16_t*>(base)[idx] = simt::f32_to_bf16_rn(v);
  else
    static_cast<float*>(base)[idx] = v;
}

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCoef = 0.044715f;
inline float gelu(float x) {
  const float u = kSqrt2OverPi * (x + kGeluCoef * x * x * x);
  return 0.5f * x * (1.0f + std::tanh(u));
}
inline float gelu_grad(float x) {
  const float u = kSqrt2OverPi * (x + kGeluCoef * x * x * x);
  const float t = std::tanh(u);
  const float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluCoef * x * x);
  return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
}

size_t matrix_bytes(int64_t rows, int64_t cols, int64_t ld, size_t esize) {
  if (rows <= 0 || cols <= 0) return 0;
  return (static_cast<size_t>(cols - 1) * static_cast<size_t>(ld) + static_cast<size_t>(rows)) * esize;
}

void run(const Problem& p, float alpha, float beta, const void* A, const void* B, const void* C, void* D, void* bias,
         void* aux) {
  const int64_t m = p.m, n = p.n, k = p.k;
  // op(A) as fp32 m x k and op(B) as fp32 k x n, both column-major and packed.
  std::vector<float> a(static_cast<size_t>(m * k)), b(static_cast<size_t>(k * n));
  for (int64_t kk = 0; kk < k; ++kk)
    for (int64_t i = 0; i < m; ++i)
      a[static_cast<size_t>(kk * m + i)] = load(A, p.ab_type, p.ta ? kk + i * p.lda : i + kk * p.lda);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t kk = 0; kk < k; ++kk)
      b[static_cast<size_t>(j * k + kk)] = load(B, p.ab_type, p.tb ? j + kk * p.ldb : kk + j * p.ldb);

  std::vector<float> out;  // the fp32 epilogue output, kept for DGELU_BGRAD's row sums
  if (p.bias == Bias::GradOut) out.resize(static_cast<size_t>(m * n));

#pragma omp parallel
  {
    std::vector<float> acc(static_cast<size_t>(m));
#pragma omp for schedule(static)
    for (int64_t j = 0; j < n; ++j) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t kk = 0; kk < k; ++kk) {  // ascending k for every element
        const float bv = b[static_cast<size_t>(j * k + kk)];
        const float* ak = a.data() + kk * m;
        for (int64_t i = 0; i < m; ++i) acc[i] = acc[i] + ak[i] * bv;
      }
      for (int64_t i = 0; i < m; ++i) {
        float x = alpha * acc[i];
        if (beta != 0.0f) x = x + beta * load(C, p.cd_type, i + j * p.ldc);  // beta == 0: C is not read
        if (p.bias == Bias::Add) x = x + load(bias, p.bias_type, i);
        if (p.aux_out) store(aux, p.aux_type, i + j * p.aux_ld, x);
        switch (p.act) {
          case Act::None: break;
          case Act::Relu: x = x > 0.0f ? x : 0.0f; break;
          case Act::Gelu: x = gelu(x); break;
          case Act::DGelu: x = x * gelu_grad(load(aux, p.aux_type, i + j * p.aux_ld)); break;
        }
        if (!out.empty()) out[static_cast<size_t>(j * m + i)] = x;
        store(D, p.cd_type, i + j * p.ldd, x);
      }
    }
  }

  // Bias gradients, each element summed in ascending order and rounded once.
  if (p.bias == Bias::GradRows) {
    for (int64_t i = 0; i < m; ++i) {
      float s = 0.0f;
      for (int64_t kk = 0; kk < k; ++kk) s = s + a[static_cast<size_t>(kk * m + i)];
      store(bias, p.bias_type, i, s);
    }
  } else if (p.bias == Bias::GradCols) {
    for (int64_t j = 0; j < n; ++j) {
      float s = 0.0f;
      for (int64_t kk = 0; kk < k; ++kk) s = s + b[static_cast<size_t>(j * k + kk)];
      store(bias, p.bias_type, j, s);
    }
  } else if (p.bias == Bias::GradOut) {
    for (int64_t i = 0; i < m; ++i) {
      float s = 0.0f;
      for (int64_t j = 0; j < n; ++j) s = s + out[static_cast<size_t>(j * m + i)];
      store(bias, p.bias_type, i, s);
    }
  }
}

bool valid_handle(cublasLtHandle_t h) { return h && h->magic == kHandleMagic; }

// alpha and beta of one matmul: their values (host pointer mode) or where they are (device mode).
struct Scalars {
  bool device;
  const float* alpha_ptr;
  const float* beta_ptr;
  float alpha, beta;
};

}  // namespace

// ---- API ------------------------------------------------------------------------------------------------
size_t cublasLtGetVersion() { return 120000; }

const char* cublasLtGetStatusName(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}
const char* cublasLtGetStatusString(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "license error";
  }
  return "unknown status";
}

cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) {
  if (!handle) return invalid("cublasLtCreate", "handle is NULL");
  *handle = new (std::nothrow) cublasLtContext();
  return *handle ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
  if (!valid_handle(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->magic = 0;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc, cublasComputeType_t computeType,
                                        cudaDataType_t scaleType) {
  if (!desc) return invalid("cublasLtMatmulDescCreate", "desc is NULL");
  *desc = new (std::nothrow) cublasLtMatmulDescOpaque_t();
  if (!*desc) return CUBLAS_STATUS_ALLOC_FAILED;
  (*desc)->compute_type = computeType;
  (*desc)->scale_type = scaleType;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
  delete desc;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
                                              const void* buf, size_t sizeInBytes) {
  const char* fn = "cublasLtMatmulDescSetAttribute";
  if (!desc) return invalid(fn, "desc is NULL");
  Field f{};
  const bool known = desc_field(desc, attr, &f);
  return set_field(fn, known, attr, f, buf, sizeInBytes);
}
cublasStatus_t cublasLtMatmulDescGetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, void* buf,
                                              size_t sizeInBytes, size_t* sizeWritten) {
  const char* fn = "cublasLtMatmulDescGetAttribute";
  if (!desc) return invalid(fn, "desc is NULL");
  Field f{};
  const bool known = desc_field(desc, attr, &f);
  return get_field(fn, known, attr, f, buf, sizeInBytes, sizeWritten);
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType_t type, uint64_t rows,
                                          uint64_t cols, int64_t ld) {
  if (!layout) return invalid("cublasLtMatrixLayoutCreate", "layout is NULL");
  *layout = new (std::nothrow) cublasLtMatrixLayoutOpaque_t();
  if (!*layout) return CUBLAS_STATUS_ALLOC_FAILED;
  (*layout)->type = static_cast<uint32_t>(type);
  (*layout)->rows = rows;
  (*layout)->cols = cols;
  (*layout)->ld = ld;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
  delete layout;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t layout, cublasLtMatrixLayoutAttribute_t attr,
                                                const void* buf, size_t sizeInBytes) {
  const char* fn = "cublasLtMatrixLayoutSetAttribute";
  if (!layout) return invalid(fn, "layout is NULL");
  Field f{};
  const bool known = layout_field(layout, attr, &f);
  return set_field(fn, known, attr, f, buf, sizeInBytes);
}
cublasStatus_t cublasLtMatrixLayoutGetAttribute(cublasLtMatrixLayout_t layout, cublasLtMatrixLayoutAttribute_t attr,
                                                void* buf, size_t sizeInBytes, size_t* sizeWritten) {
  const char* fn = "cublasLtMatrixLayoutGetAttribute";
  if (!layout) return invalid(fn, "layout is NULL");
  Field f{};
  const bool known = layout_field(layout, attr, &f);
  return get_field(fn, known, attr, f, buf, sizeInBytes, sizeWritten);
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* pref) {
  if (!pref) return invalid("cublasLtMatmulPreferenceCreate", "pref is NULL");
  *pref = new (std::nothrow) cublasLtMatmulPreferenceOpaque_t();
  return *pref ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
  delete pref;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void* buf,
                                                    size_t sizeInBytes) {
  const char* fn = "cublasLtMatmulPreferenceSetAttribute";
  if (!pref) return invalid(fn, "pref is NULL");
  Field f{};
  const bool known = pref_field(pref, attr, &f);
  return set_field(fn, known, attr, f, buf, sizeInBytes);
}
cublasStatus_t cublasLtMatmulPreferenceGetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr, void* buf,
                                                    size_t sizeInBytes, size_t* sizeWritten) {
  const char* fn = "cublasLtMatmulPreferenceGetAttribute";
  if (!pref) return invalid(fn, "pref is NULL");
  Field f{};
  const bool known = pref_field(pref, attr, &f);
  return get_field(fn, known, attr, f, buf, sizeInBytes, sizeWritten);
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t operationDesc,
                                              cublasLtMatrixLayout_t Adesc, cublasLtMatrixLayout_t Bdesc,
                                              cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
                                              cublasLtMatmulPreference_t preference, int requestedAlgoCount,
                                              cublasLtMatmulHeuristicResult_t heuristicResultsArray[],
                                              int* returnAlgoCount) {
  const char* fn = "cublasLtMatmulAlgoGetHeuristic";
  if (!valid_handle(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (requestedAlgoCount <= 0) return invalid(fn, "requestedAlgoCount is %d", requestedAlgoCount);
  if (!heuristicResultsArray || !returnAlgoCount) return invalid(fn, "result array or count pointer is NULL");
  *returnAlgoCount = 0;
  Problem p;
  const cublasStatus_t st = resolve(fn, operationDesc, Adesc, Bdesc, Cdesc, Ddesc, &p);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  const cublasLtMatmulPreferenceOpaque_t defaults;
  const cublasLtMatmulPreferenceOpaque_t& pref = preference ? *preference : defaults;
  cublasLtMatmulHeuristicResult_t r;
  std::memset(&r, 0, sizeof r);
  if (!choose_algo(p, operationDesc, pref, &r.algo)) {
    not_supported(fn, "the alignment preferences/pointers are not element-aligned: no algorithm");
    return CUBLAS_STATUS_SUCCESS;  // zero results
  }
  r.workspaceSize = 0;
  r.state = CUBLAS_STATUS_SUCCESS;
  r.wavesCount = 1.0f;
  heuristicResultsArray[0] = r;
  *returnAlgoCount = 1;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t computeDesc, const void* alpha,
                              const void* A, cublasLtMatrixLayout_t Adesc, const void* B, cublasLtMatrixLayout_t Bdesc,
                              const void* beta, const void* C, cublasLtMatrixLayout_t Cdesc, void* D,
                              cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t* algo, void* workspace,
                              size_t workspaceSizeInBytes, cudaStream_t stream) {
  const char* fn = "cublasLtMatmul";
  if (!valid_handle(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!alpha || !beta) return invalid(fn, "alpha or beta is NULL");
  Problem p;
  cublasStatus_t st = resolve(fn, computeDesc, Adesc, Bdesc, Cdesc, Ddesc, &p);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  const cublasLtMatmulDescOpaque_t* d = computeDesc;

  // alpha and beta: host scalars are read now, when the call is made; device scalars when the
  // matmul runs (its stream's earlier work may still be writing them).
  const bool device_scalars = d->pointer_mode == CUBLASLT_POINTER_MODE_DEVICE;
  if (device_scalars) {
    if (!simt::is_device_range(alpha, sizeof(float))) return invalid(fn, "alpha is not in device memory");
    if (!simt::is_device_range(beta, sizeof(float))) return invalid(fn, "beta is not in device memory");
  }
  Scalars scalars{device_scalars, static_cast<const float*>(alpha), static_cast<const float*>(beta), 0.0f, 0.0f};
  if (!device_scalars) {
    std::memcpy(&scalars.alpha, alpha, sizeof scalars.alpha);
    std::memcpy(&scalars.beta, beta, sizeof scalars.beta);
  }

  if (p.m == 0 || p.n == 0) return CUBLAS_STATUS_SUCCESS;
  // C is read when beta != 0; with a device beta, not known before the matmul runs, whenever C is given.
  const bool reads_c = device_scalars ? C != nullptr : scalars.beta != 0.0f;
  if (!D) return invalid(fn, "D is NULL");
  if (p.k > 0 && (!A || !B)) return invalid(fn, "A or B is NULL");
  if (reads_c && !C) return invalid(fn, "C is NULL with beta != 0");
  const cublasLtMatrixLayoutOpaque_t* cdesc = Cdesc ? Cdesc : Ddesc;
  if (C == D && cdesc != Ddesc && cdesc->ld != Ddesc->ld)
    return invalid(fn, "in-place matmul (C == D) with ld(C) %lld != ld(D) %lld", (long long)cdesc->ld,
                   (long long)Ddesc->ld);

  // The algorithm, and the alignments it assumed.
  cublasLtMatmulAlgo_t implicit;
  if (!algo) {
    const cublasLtMatmulPreferenceOpaque_t defaults;
    if (!choose_algo(p, d, defaults, &implicit)) return not_supported(fn, "implicit heuristic found no algorithm");
    algo = &implicit;
  } else if (algo->data[0] != kAlgoMagic) {
    return invalid(fn, "algo was not produced by cublasLtMatmulAlgoGetHeuristic");
  }
  const void* ptrs[kOperands] = {A,
                                 B,
                                 reads_c ? C : nullptr,
                                 D,
                                 p.bias != Bias::None ? d->bias : nullptr,
                                 (p.aux_in || p.aux_out) ? d->aux : nullptr};
  for (int i = 0; i < kOperands; ++i) {
    if (!ptrs[i]) continue;
    const uint32_t need = algo_alignment(*algo, i);
    if (need == 0 || pointer_alignment(ptrs[i]) < need)
      return invalid(fn, "%s pointer %p is %u-byte aligned, but the algorithm was chosen for %u-byte alignment",
                     kOperandName[i], ptrs[i], pointer_alignment(ptrs[i]), need);
  }

  // Workspace: the emulated algorithm needs none, but what is passed must be valid.
  if (workspaceSizeInBytes > 0) {
    if (!workspace) return invalid(fn, "workspace is NULL with workspaceSizeInBytes %zu", workspaceSizeInBytes);
    if (reinterpret_cast<uintptr_t>(workspace) % kWorkspaceAlignment != 0)
      return invalid(fn, "workspace %p is not 256-byte aligned", workspace);
    if (!simt::is_device_range(workspace, workspaceSizeInBytes))
      return invalid(fn, "workspace [%p, +%zu bytes) is not inside one device allocation", workspace,
                     workspaceSizeInBytes);
  }

  // Every span the layouts imply must be device memory.
  struct Span {
    const char* name;
    const void* ptr;
    size_t bytes;
  };
  const Span spans[] = {
      {"A", A, matrix_bytes(Adesc->rows, Adesc->cols, p.lda, p.ab_size)},
      {"B", B, matrix_bytes(Bdesc->rows, Bdesc->cols, p.ldb, p.ab_size)},
      {"C", reads_c ? C : nullptr,
       p.ldc == 0 ? static_cast<size_t>(p.m) * p.cd_size : matrix_bytes(p.m, p.n, p.ldc, p.cd_size)},
      {"D", D, matrix_bytes(p.m, p.n, p.ldd, p.cd_size)},
      {"bias", ptrs[kBias], static_cast<size_t>(p.bias_len) * type_size(p.bias_type)},
      {"aux", ptrs[kAux], matrix_bytes(p.m, p.n, p.aux_ld, type_size(p.aux_type))},
  };
  for (const Span& s : spans) {
    if (!s.ptr || s.bytes == 0) continue;
    if (!simt::is_device_range(s.ptr, s.bytes))
      return invalid(fn, "operand %s [%p, +%zu bytes) is not inside one device allocation", s.name, s.ptr, s.bytes);
  }

  // The matmul runs when its stream's queue reaches it; the descriptor's bias and aux pointers are
  // taken now.
  const cudaError_t queued = simt::enqueue(stream, [=, bias = d->bias, aux = d->aux] {
    const float alpha_value = scalars.device ? *scalars.alpha_ptr : scalars.alpha;
    const float beta_value = scalars.device ? *scalars.beta_ptr : scalars.beta;
    if (beta_value != 0.0f && !C) {  // only a device beta can get here
      std::fprintf(stderr, "cublasLtMatmul (SIMT layer): beta in device memory is %g but C is NULL\n", beta_value);
      simt::set_error(cudaErrorIllegalAddress, true);
      return;
    }
    run(p, alpha_value, beta_value, A, B, C, D, bias, aux);
  });
  if (queued != cudaSuccess) {
    std::fprintf(stderr, "cublasLtMatmul (SIMT layer): the matmul could not be queued: %s\n",
                 cudaGetErrorString(queued));
    return CUBLAS_STATUS_EXECUTION_FAILED;
  }
  return CUBLAS_STATUS_SUCCESS;
}
