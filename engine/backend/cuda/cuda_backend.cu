// The CUDA backend: kernels/cuda over one device arena allocated from the memory plan.
//
// Start-up order (make_cuda_backend, then create_arena):
//   1. select the device, create the stream and the cuBLASLt handle (the context appears here);
//   2. measure free memory: everything the process (or anyone else) holds outside the arena is
//      the reserve, and the plan is made with it;
//   3. one cudaMalloc of plan.arena_bytes through device_arena_alloc() (engine/cuda/device_arena),
//      the only allocation function, which counts its calls; the drop in free memory across it is reported;
//   4. every pointer, including the cuBLASLt workspace and kernel scratch, is carved from the
//      plan. Nothing is allocated after that.
#include <cuda_runtime.h>

#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/backend/adamw_step.h"
#include "engine/backend/cuda/device_arena.cuh"
#include "engine/backend/cuda_backend_factory.h"
#include "engine/plan/gpu_catalog.h"
#include "engine/util/errors.h"
#include "engine/util/units.h"
#include "kernels/cuda/adamw.cuh"
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attention_decode.cuh"
#include "kernels/cuda/classifier.cuh"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/encoder.cuh"
#include "kernels/cuda/gelu.cuh"
#include "kernels/cuda/global_norm.cuh"
#include "kernels/cuda/layernorm.cuh"
#include "kernels/cuda/matmul.cuh"
#include "kernels/cuda/residual.cuh"

namespace gpt2 {

namespace {

using cuda::bf16;

bool is_bf16(TensorRef t) { return t.dtype == DType::BF16; }
template <typename T>
T* p(TensorRef t) {
  return t.as<T>();
}

// The profile's timer: a pair of events on the backend's stream around each call; collect()
// waits once for the last one. Events come from a pool that grows during the first profiled step
// and is reused after it (events hold no device memory of the arena's kind).
class EventTimer final : public OpTimer {
 public:
  explicit EventTimer(cudaStream_t stream) : stream_(stream) {}
  ~EventTimer() override {
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
  }
  void start() override { record(); }
  void stop() override { record(); }
  std::vector<double> collect() override {
    std::vector<double> out;
    if (used_ == 0) return out;
    CUDA_CHECK(cudaEventSynchronize(events_[used_ - 1]));
    out.reserve(used_ / 2);
    for (size_t i = 0; i + 1 < used_; i += 2) {
      float ms = 0;
      CUDA_CHECK(cudaEventElapsedTime(&ms, events_[i], events_[i + 1]));
      out.push_back(ms / 1e3);
    }
    used_ = 0;
    return out;
  }

 private:
  void record() {
    if (used_ == events_.size()) {
      cudaEvent_t e = nullptr;
      CUDA_CHECK(cudaEventCreate(&e));
      events_.push_back(e);
    }
    CUDA_CHECK(cudaEventRecord(events_[used_++], stream_));
  }
  cudaStream_t stream_;
  std::vector<cudaEvent_t> events_;
  size_t used_ = 0;
};

class CudaBackend final : public CudaBackendBase {
 public:
  explicit CudaBackend(int device) {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess || count == 0) {
      cudaGetLastError();
      throw ConfigError("--device", std::string("cuda was asked for, but there is no usable CUDA device (") +
                                        (err != cudaSuccess ? cudaGetErrorString(err) : "device count is 0") +
                                        "); use --device cpu");
    }
    if (device < 0 || device >= count)
      throw ConfigError("--device", "CUDA device " + std::to_string(device) + " does not exist (" +
                                        std::to_string(count) + " present)");
    CUDA_CHECK(cudaSetDevice(device));
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    name_ = prop.name;
    sm_ = prop.major * 10 + prop.minor;
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    // The cuBLASLt handle now, so its memory is part of the measured reserve; the workspace and
    // bias scratch come from the arena later.
    cuda::matmul_context_init(mm_, nullptr, 0, nullptr, 0);
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    report_.total_bytes = static_cast<int64_t>(total_b);
    report_.free_before_arena = static_cast<int64_t>(free_b);
    report_.reserve_bytes = report_.total_bytes - report_.free_before_arena;
  }
  ~CudaBackend() override {
    if (stream_) cudaStreamSynchronize(stream_);
    if (copy_stream_) cudaStreamSynchronize(copy_stream_);
    cuda::matmul_context_destroy(mm_);
    device_arena_free(arena_);
    if (host_arena_) cudaFreeHost(host_arena_);
    if (copy_ready_) cudaEventDestroy(copy_ready_);
    if (copy_stream_) cudaStreamDestroy(copy_stream_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  Device device() const override { return Device::CUDA; }
  std::string describe() const override {
    return "cuda (" + name_ + ", sm_" + std::to_string(sm_) + ", cuBLASLt" +
           (emulated() ? "; emulated on the CPU by the SIMT layer, so no speed or MFU is measured" : "") + ")";
  }
  bool emulated() const override {
#ifdef GPT2_SIMT
    return true;
#else
    return false;
#endif
  }
  std::string device_name() const override { return name_; }
  double peak_bf16_tflops() const override {
    const GpuSpec* g = emulated() ? nullptr : match_gpu_by_device_name(name_);
    return g ? g->bf16_tflops : 0.0;
  }
  CudaMemoryReport memory_report() const override { return report_; }
  void* native_stream() const override { return stream_; }

  // Every buffer a kernel needs from its caller must be as large as the kernel's own size function
  // (kernels/cuda/scratch_sizes.h) says; a plan that disagrees is a bug, reported before allocating.
  static void check_kernel_scratch(const MemoryPlan& plan) {
    const int B = plan.run.micro_batch, T = plan.run.seq_len, C = plan.model.channels;
    const int NH = plan.model.num_heads;
    auto need = [&](const char* name, size_t bytes) {
      const Buffer& b = plan.find(name);
      if (b.bytes < static_cast<int64_t>(bytes))
        throw std::logic_error(std::string("memory plan: ") + name + " has " + std::to_string(b.bytes) +
                               " bytes, the CUDA kernels need " + std::to_string(bytes));
    };
    need("scratch.att", cuda::attention_scratch_floats(B, T, NH) * sizeof(float));
    need("workspace.cublaslt", cuda::kMatmulWorkspaceBytes);
    need("workspace.matmul_bias", cuda::matmul_bias_scratch_bytes(4 * C));
    need("workspace.norm_partials", cuda::kGlobalNormPartialsFloats * sizeof(float));
    if (plan.run.training) {  // an inference plan runs no backward pass
      need("scratch.encoder_bwd", cuda::encoder_backward_scratch_ints(B, T) * sizeof(int32_t));
      need("scratch.layernorm_bwd", cuda::layernorm_backward_scratch_floats(B * T, C) * sizeof(float));
    }
  }

  std::byte* create_arena(const MemoryPlan& plan) override {
    if (arena_) throw std::logic_error("CUDA backend: the arena already exists");
    plan_ = plan;
    check_kernel_scratch(plan);
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    report_.free_before_arena = static_cast<int64_t>(free_b);
    arena_ = static_cast<std::byte*>(device_arena_alloc(static_cast<size_t>(plan.arena_bytes)));
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    report_.free_after_arena = static_cast<int64_t>(free_b);
    CUDA_CHECK(cudaMemsetAsync(arena_, 0, static_cast<size_t>(plan.arena_bytes), stream_));
    const Buffer& ws = plan.find("workspace.cublaslt");
    const Buffer& bias = plan.find("workspace.matmul_bias");
    mm_.workspace = arena_ + ws.offset;
    mm_.workspace_bytes = static_cast<size_t>(ws.bytes);
    mm_.bias_scratch = arena_ + bias.offset;
    mm_.bias_scratch_bytes = static_cast<size_t>(bias.bytes);
    mm_.cache.clear();
    if (plan.run.training) {
      encoder_scratch_ = reinterpret_cast<int32_t*>(arena_ + plan.find("scratch.encoder_bwd").offset);
      ln_scratch_ = reinterpret_cast<float*>(arena_ + plan.find("scratch.layernorm_bwd").offset);
    }
    norm_result_ = reinterpret_cast<float*>(arena_ + plan.find("workspace.norm_result").offset);
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    return arena_;
  }
  int64_t allocation_count() const override { return device_arena_allocations(); }

  // The host arena is pinned, so the copies below run asynchronously on the copy stream, beside
  // the compute stream's work.
  std::byte* create_host_arena(const MemoryPlan& plan) override {
    if (host_arena_) throw std::logic_error("CUDA backend: the host arena already exists");
    const size_t bytes = static_cast<size_t>(plan.host_arena_bytes);
    void* p = nullptr;
    if (cudaMallocHost(&p, bytes) != cudaSuccess) {
      cudaGetLastError();
      throw ConfigError("--host-mem", "cannot allocate " + format_bytes(static_cast<int64_t>(bytes)) +
                                          " of pinned host memory for the offloaded optimizer");
    }
    host_arena_ = static_cast<std::byte*>(p);
    report_.host_arena_bytes = static_cast<int64_t>(bytes);
    std::memset(host_arena_, 0, bytes);
    CUDA_CHECK(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
    CUDA_CHECK(cudaEventCreateWithFlags(&copy_ready_, cudaEventDisableTiming));
    return host_arena_;
  }
  void copy_to_host_async(void* host_dst, const void* arena_src, size_t bytes) override {
    if (!copy_stream_) throw std::logic_error("CUDA backend: copy_to_host_async before create_host_arena");
    CUDA_CHECK(cudaEventRecord(copy_ready_, stream_));
    CUDA_CHECK(cudaStreamWaitEvent(copy_stream_, copy_ready_, 0));
    CUDA_CHECK(cudaMemcpyAsync(host_dst, arena_src, bytes, cudaMemcpyDeviceToHost, copy_stream_));
  }
  void synchronize() override { CUDA_CHECK(cudaStreamSynchronize(stream_)); }
  std::unique_ptr<OpTimer> make_op_timer() override { return std::make_unique<EventTimer>(stream_); }

 private:
  void do_wait_host_copies() override {
    if (copy_stream_) CUDA_CHECK(cudaStreamSynchronize(copy_stream_));
  }

  void do_upload(void* dst, const void* src, size_t bytes) override {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));  // the host buffer may be reused right after
  }
  void do_download(void* dst, const void* src, size_t bytes) override {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void do_zero(void* dst, size_t bytes) override { CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, stream_)); }

  // ---- ops: dispatch on the storage dtype --------------------------------------------------------
  void do_encoder_forward(TensorRef out, const int32_t* tokens, TensorRef wte, TensorRef wpe, int B, int T,
                          int C) override {
    if (is_bf16(out))
      cuda::encoder_forward(p<bf16>(out), tokens, p<bf16>(wte), p<bf16>(wpe), B, T, C, stream_);
    else
      cuda::encoder_forward(p<float>(out), tokens, p<float>(wte), p<float>(wpe), B, T, C, stream_);
  }
  void do_encoder_backward(TensorRef dwte, TensorRef dwpe, TensorRef dout, const int32_t* /*tokens*/,
                           const int32_t* tokens_host, int B, int T, int C, int V) override {
    if (is_bf16(dout))
      cuda::encoder_backward(p<bf16>(dwte), p<bf16>(dwpe), encoder_scratch_, p<bf16>(dout), tokens_host, B, T, C, V,
                             stream_);
    else
      cuda::encoder_backward(p<float>(dwte), p<float>(dwpe), encoder_scratch_, p<float>(dout), tokens_host, B, T, C, V,
                             stream_);
  }
  void do_layernorm_forward(TensorRef out, float* mean, float* rstd, TensorRef inp, TensorRef w, TensorRef b, int N,
                            int C) override {
    if (is_bf16(out))
      cuda::layernorm_forward(p<bf16>(out), mean, rstd, p<bf16>(inp), p<bf16>(w), p<bf16>(b), N, C, stream_);
    else
      cuda::layernorm_forward(p<float>(out), mean, rstd, p<float>(inp), p<float>(w), p<float>(b), N, C, stream_);
  }
  void do_residual_layernorm_forward(TensorRef residual, TensorRef out, float* mean, float* rstd, TensorRef a, TensorRef b,
                                     TensorRef w, TensorRef bias, int N, int C) override {
    if (is_bf16(out))
      cuda::residual_layernorm_forward(p<bf16>(residual), p<bf16>(out), mean, rstd, p<bf16>(a), p<bf16>(b), p<bf16>(w),
                                       p<bf16>(bias), N, C, stream_);
    else
      cuda::residual_layernorm_forward(p<float>(residual), p<float>(out), mean, rstd, p<float>(a), p<float>(b),
                                       p<float>(w), p<float>(bias), N, C, stream_);
  }
  void do_layernorm_recompute(TensorRef out, TensorRef inp, const float* mean, const float* rstd, TensorRef w, TensorRef b,
                              int N, int C) override {
    if (is_bf16(out))
      cuda::layernorm_recompute(p<bf16>(out), p<bf16>(inp), mean, rstd, p<bf16>(w), p<bf16>(b), N, C, stream_);
    else
      cuda::layernorm_recompute(p<float>(out), p<float>(inp), mean, rstd, p<float>(w), p<float>(b), N, C, stream_);
  }
  void do_layernorm_backward(TensorRef dinp, TensorRef dw, TensorRef db, TensorRef dout, TensorRef inp, TensorRef w,
                             const float* mean, const float* rstd, int N, int C) override {
    if (is_bf16(dinp))
      cuda::layernorm_backward(p<bf16>(dinp), p<bf16>(dw), p<bf16>(db), ln_scratch_, p<bf16>(dout), p<bf16>(inp),
                               p<bf16>(w), mean, rstd, N, C, stream_);
    else
      cuda::layernorm_backward(p<float>(dinp), p<float>(dw), p<float>(db), ln_scratch_, p<float>(dout), p<float>(inp),
                               p<float>(w), mean, rstd, N, C, stream_);
  }
  void do_matmul_forward(TensorRef out, TensorRef inp, TensorRef w, TensorRef bias, int N, int C, int OC) override {
    if (is_bf16(out))
      cuda::matmul_forward(mm_, p<bf16>(out), nullptr, p<bf16>(inp), p<bf16>(w), p<bf16>(bias), N, C, OC, stream_);
    else
      cuda::matmul_forward(mm_, p<float>(out), nullptr, p<float>(inp), p<float>(w), p<float>(bias), N, C, OC, stream_);
  }
  void do_matmul_forward_gelu(TensorRef pre, TensorRef out, TensorRef inp, TensorRef w, TensorRef bias, int N, int C,
                              int OC) override {
    // The matmul writes the GELU input (bias fused); GELU is our own kernel on that stored input,
    // the same call the gelu/norm recompute policies make in the backward pass, so every policy
    // gives bitwise-identical results. (cuBLASLt's GELU_AUX epilogue would apply GELU to the fp32
    // accumulator before rounding, which a recompute from the stored input cannot reproduce.)
    do_matmul_forward(pre, inp, w, bias, N, C, OC);
    do_gelu_forward(out, pre, static_cast<int64_t>(N) * OC);
  }
  void do_matmul_backward(TensorRef dinp, TensorRef dw, TensorRef db, TensorRef dout, TensorRef inp, TensorRef w, int N,
                          int C, int OC) override {
    if (is_bf16(dout))
      cuda::matmul_backward(mm_, p<bf16>(dinp), p<bf16>(dw), p<bf16>(db), p<bf16>(dout), p<bf16>(inp), p<bf16>(w),
                            nullptr, N, C, OC, stream_);
    else
      cuda::matmul_backward(mm_, p<float>(dinp), p<float>(dw), p<float>(db), p<float>(dout), p<float>(inp), p<float>(w),
                            nullptr, N, C, OC, stream_);
  }
  void do_matmul_backward_gelu(TensorRef dinp, TensorRef dw, TensorRef db, TensorRef dout, TensorRef inp, TensorRef w,
                               TensorRef pre_gelu, int N, int C, int OC) override {
    // cuBLASLt's DGELU epilogue where it accepts the problem, else matmul + our gelu_backward.
    if (is_bf16(dout))
      cuda::matmul_backward(mm_, p<bf16>(dinp), p<bf16>(dw), p<bf16>(db), p<bf16>(dout), p<bf16>(inp), p<bf16>(w),
                            p<bf16>(pre_gelu), N, C, OC, stream_);
    else
      cuda::matmul_backward(mm_, p<float>(dinp), p<float>(dw), p<float>(db), p<float>(dout), p<float>(inp), p<float>(w),
                            p<float>(pre_gelu), N, C, OC, stream_);
  }
  void do_gelu_forward(TensorRef out, TensorRef inp, int64_t n) override {
    if (is_bf16(out))
      cuda::gelu_forward(p<bf16>(out), p<bf16>(inp), static_cast<size_t>(n), stream_);
    else
      cuda::gelu_forward(p<float>(out), p<float>(inp), static_cast<size_t>(n), stream_);
  }
  void do_gelu_backward(TensorRef dinp, TensorRef inp, TensorRef dout, int64_t n) override {
    if (is_bf16(dinp))
      cuda::gelu_backward(p<bf16>(dinp), p<bf16>(inp), p<bf16>(dout), static_cast<size_t>(n), stream_);
    else
      cuda::gelu_backward(p<float>(dinp), p<float>(inp), p<float>(dout), static_cast<size_t>(n), stream_);
  }
  void do_residual_forward(TensorRef out, TensorRef a, TensorRef b, int64_t n) override {
    if (is_bf16(out))
      cuda::residual_forward(p<bf16>(out), p<bf16>(a), p<bf16>(b), static_cast<size_t>(n), stream_);
    else
      cuda::residual_forward(p<float>(out), p<float>(a), p<float>(b), static_cast<size_t>(n), stream_);
  }
  void do_attention_forward(TensorRef y, float* lse, float* /*scratch*/, TensorRef qkv, int B, int T, int C,
                            int NH) override {
    if (is_bf16(y))
      cuda::attention_forward(p<bf16>(y), lse, p<bf16>(qkv), B, T, NH, C / NH, stream_);
    else
      cuda::attention_forward(p<float>(y), lse, p<float>(qkv), B, T, NH, C / NH, stream_);
  }
  void do_attention_backward(TensorRef dqkv, float* scratch, TensorRef dy, TensorRef qkv, TensorRef y, const float* lse,
                             int B, int T, int C, int NH) override {
    if (is_bf16(dqkv))
      cuda::attention_backward(p<bf16>(dqkv), scratch, p<bf16>(dy), p<bf16>(qkv), p<bf16>(y), lse, B, T, NH, C / NH,
                               stream_);
    else
      cuda::attention_backward(p<float>(dqkv), scratch, p<float>(dy), p<float>(qkv), p<float>(y), lse, B, T, NH, C / NH,
                               stream_);
  }
  void do_attention_decode(TensorRef y, float* scratch, TensorRef qkv, int pos, int C, int NH) override {
    if (is_bf16(y))
      cuda::attention_decode(p<bf16>(y), scratch, p<bf16>(qkv), pos, C, NH, stream_);
    else
      cuda::attention_decode(p<float>(y), scratch, p<float>(qkv), pos, C, NH, stream_);
  }
  void do_classifier(float* losses, TensorRef logits, const int32_t* targets, int N, int V, int Vp, float dloss_scale,
                     bool compute_grad) override {
    if (is_bf16(logits))
      cuda::classifier_forward_backward(losses, p<bf16>(logits), targets, N, V, Vp, dloss_scale, compute_grad, stream_);
    else
      cuda::classifier_forward_backward(losses, p<float>(logits), targets, N, V, Vp, dloss_scale, compute_grad,
                                        stream_);
  }
  double do_global_norm_squared(TensorRef x, int64_t n, float* partials) override {
    if (is_bf16(x))
      cuda::global_norm_squared(norm_result_, partials, p<bf16>(x), static_cast<size_t>(n), stream_);
    else
      cuda::global_norm_squared(norm_result_, partials, p<float>(x), static_cast<size_t>(n), stream_);
    float host = 0;
    do_download(&host, norm_result_, sizeof host);
    return host;
  }
  void do_adamw(TensorRef params, float* master, TensorRef grads, float* m, float* v, const AdamWStep& s) override {
    const std::vector<cuda::AdamWRange> ranges = adamw_kernel_ranges(s);
    // Clipping was computed on the host from global_norm_squared: it arrives as grad_scale.
    const cuda::AdamWParams hp = adamw_kernel_params(s);
    const uint32_t seed = adamw_rounding_seed(s);
    if (is_bf16(params))
      cuda::adamw_update(p<bf16>(params), master, p<bf16>(grads), m, v, ranges.data(), static_cast<int>(ranges.size()),
                         hp, seed, static_cast<size_t>(s.index_base), nullptr, 0.0f, stream_);
    else
      cuda::adamw_update(p<float>(params), master, p<float>(grads), m, v, ranges.data(),
                         static_cast<int>(ranges.size()), hp, seed, static_cast<size_t>(s.index_base), nullptr, 0.0f,
                         stream_);
  }

  std::string name_;
  int sm_ = 0;
  cudaStream_t stream_ = nullptr;
  CudaMemoryReport report_;
  MemoryPlan plan_;
  std::byte* arena_ = nullptr;
  std::byte* host_arena_ = nullptr;       // pinned; the offloaded optimizer's state
  cudaStream_t copy_stream_ = nullptr;    // device-to-host gradient copies
  cudaEvent_t copy_ready_ = nullptr;      // the compute stream's point a copy waits for
  cuda::MatmulContext mm_;
  int32_t* encoder_scratch_ = nullptr;
  float* ln_scratch_ = nullptr;
  float* norm_result_ = nullptr;
};

}  // namespace

std::unique_ptr<CudaBackendBase> make_cuda_backend(int device) { return std::make_unique<CudaBackend>(device); }

}  // namespace gpt2
