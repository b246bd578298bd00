/*
 * Token + position embedding (GPT-2's encoder). CPU twin: kernels/cpu/encoder.h.
 *
 *   out[b,t,:] = wte[tokens[b,t], :] + wpe[t, :]
 *
 * Shapes: tokens (B,T) int32 in [0,V); wte (Vp,C); wpe (maxT,C), T <= maxT; out (B,T,C).
 * Storage bf16 or fp32, maths fp32.
 *
 * Backward (parameters +=):
 *   dwpe[t,:]         += sum_b dout[b,t,:]                 (b ascending)
 *   dwte[tokens[p],:] += sum_{p : tokens[p]=v} dout[p,:]   (p = b*T+t ascending)
 *
 * Determinism, no float atomics: the positions are grouped by token id with a stable counting
 * sort on the HOST (the batch is on the host anyway: the dataloader fills it there), giving for
 * every distinct token a segment of positions in ascending order. The segments are copied to a
 * device scratch buffer, and one thread block per segment sums its rows in that fixed order and
 * adds the sum into its own wte row: no two blocks touch the same row, every sum has one fixed
 * order, so results are bitwise reproducible. dwpe is a plain reduction over b, one thread per
 * (t, channel vector). Segments are launched largest first so a very frequent token starts early.
 *
 * Two calls: encoder_backward_prepare (host sort + an async copy into the scratch, enqueued on
 * the stream) and encoder_backward (the kernels). A caller may run prepare when it uploads the
 * batch, so the host sort overlaps the forward pass; the scratch copy is ordered before the
 * backward on the same stream. The copy source is pageable: cudaMemcpyAsync stages it before
 * returning, so nothing must be kept alive. The one-call overload does both; the CUDA backend
 * (engine/backend/cuda/cuda_backend.cu) uses it, so its sort overlaps the backward kernels still queued.
 *
 * Scratch: encoder_backward_scratch_ints(B,T) int32 on the device (4·B·T), passed in by the caller.
 * Preconditions: pointers 16-byte aligned; the 16-byte path needs C % (16/sizeof(T)) == 0,
 * otherwise a scalar path is used.
 */
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/scratch_sizes.h"

namespace gpt2::cuda {

// The backward's scratch: encoder_backward_scratch_ints(B, T) (scratch_sizes.h).

void encoder_forward(bf16* out, const int32_t* tokens, const bf16* wte, const bf16* wpe, int B, int T, int C,
                     cudaStream_t stream);
void encoder_forward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int B, int T, int C,
                     cudaStream_t stream);

// Sorts the positions by token on the host and enqueues their copy into scratch (device,
// encoder_backward_scratch_ints(B,T) ints). tokens_host: (B,T), all in [0, V) (checked).
// Returns the number of segments (distinct tokens), to pass to encoder_backward.
int encoder_backward_prepare(int32_t* scratch, const int32_t* tokens_host, int B, int T, int V, cudaStream_t stream);

// The kernels: dwte and dwpe += from dout, using a scratch filled by encoder_backward_prepare.
void encoder_backward(bf16* dwte, bf16* dwpe, const int32_t* scratch, int num_segments, const bf16* dout, int B, int T,
                      int C, cudaStream_t stream);
void encoder_backward(float* dwte, float* dwpe, const int32_t* scratch, int num_segments, const float* dout, int B,
                      int T, int C, cudaStream_t stream);

// prepare + kernels in one call.
void encoder_backward(bf16* dwte, bf16* dwpe, int32_t* scratch, const bf16* dout, const int32_t* tokens_host, int B,
                      int T, int C, int V, cudaStream_t stream);
void encoder_backward(float* dwte, float* dwpe, int32_t* scratch, const float* dout, const int32_t* tokens_host, int B,
                      int T, int C, int V, cudaStream_t stream);

}  // namespace gpt2::cuda
