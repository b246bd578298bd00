// Device memory the CUDA kernels need from their caller beyond inputs and outputs: one size
// function per buffer, in plain C++ (no CUDA headers), so the memory plan (engine/plan) sizes its
// buffers with the kernels' own formulas and the CUDA backend checks every one at start-up; and
// the shape limits the plan checks for the CUDA backend.
#pragma once
#include <cstddef>
#include <cstdint>

namespace gpt2::cuda {

// encoder_backward: positions sorted by token plus up to B·T segments of (token, start, count), int32.
inline size_t encoder_backward_scratch_ints(int B, int T) { return 4 * static_cast<size_t>(B) * T; }

// layernorm_backward: dweight/dbias partials of each of its (at most 1024) blocks, fp32.
constexpr int kLayerNormBackwardMaxBlocks = 1024;
inline size_t layernorm_backward_scratch_floats(int N, int C) {
  const int g = N < kLayerNormBackwardMaxBlocks ? N : kLayerNormBackwardMaxBlocks;
  return static_cast<size_t>(g) * 2 * static_cast<size_t>(C);
}

// attention_backward: the row dots D (B·NH·T fp32); attention_decode uses the same buffer for
// its scores (NH·(pos+1) ≤ NH·T floats).
inline size_t attention_scratch_floats(int B, int T, int NH) {
  return static_cast<size_t>(B) * static_cast<size_t>(NH) * static_cast<size_t>(T);
}

// attention: the largest head size the kernels take (the flash kernels run head sizes 64 and 128,
// the simple kernels every other size up to this one). The memory plan refuses a larger one for
// the CUDA backend before anything is allocated.
constexpr int kMaxAttentionHeadSize = 256;

// global_norm_squared: fp64 block partials (at most 512 blocks), viewed as floats.
constexpr int kGlobalNormMaxBlocks = 512;
constexpr size_t kGlobalNormPartialsFloats = 2 * kGlobalNormMaxBlocks;

// matmul: cuBLASLt's workspace (enough for Hopper's kernels) and the BGRADB bias-gradient
// staging: OC elements of the storage type, rounded up to 256 bytes; the model's largest OC with a
// bias is 4C, so 4C·sizeof(float) bytes covers both storage types.
constexpr size_t kMatmulWorkspaceBytes = size_t{32} << 20;
inline size_t matmul_bias_scratch_bytes(int max_oc) { return (static_cast<size_t>(max_oc) * 4 + 255) / 256 * 256; }

}  // namespace gpt2::cuda
