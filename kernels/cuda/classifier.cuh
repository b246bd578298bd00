/*
 * Fused softmax + cross-entropy over a chunk of N tokens, writing dlogits in place. CPU twin:
 * kernels/cpu/classifier.h.
 *
 * Shapes: logits (N,Vp), only columns [0,V) real (the rest is wte's padding); targets (N) int32
 * in [0,V); losses (N) fp32.
 *
 *   lse_i     = log sum_{v<V} exp(logits[i,v])            (max-shifted, fp32)
 *   losses[i] = lse_i - logits[i, targets[i]]
 *   if compute_grad:  logits[i,v] <- dloss_scale * (softmax_i[v] - [v == targets[i]])   v < V
 *                     logits[i,v] <- 0                                                  v >= V
 * dloss_scale = d(total loss)/d(losses[i]), e.g. 1/(tokens of the whole step).
 * Gradient rule: dlogits written (=) over the logits. Storage bf16 or fp32, maths fp32.
 *
 * One thread block per row, two passes over the row and no probability buffer:
 *   pass 1 reads the row once with 16-byte loads, keeping a per-thread online (max, sum of exp);
 *          the pairs are merged across the block in a fixed order (deterministic);
 *   pass 2 re-reads the row (mostly from L2: a row is Vp·2 bytes, ~100 KB) and writes dlogits.
 * The target logit is read before the block's first barrier, so before any thread overwrites it.
 *
 * Targets are validated by the caller (the engine checks each batch on the host). A target
 * outside [0,V) is never dereferenced: its loss is NaN (so it cannot go unnoticed) and its
 * gradient row is the plain softmax.
 * Preconditions: Vp % (16/sizeof(T)) == 0 (the plan pads Vp to 128), V <= Vp, logits 16-byte aligned.
 */
#pragma once
#include <cstdint>

#include "kernels/cuda/common.cuh"

namespace gpt2::cuda {

void classifier_forward_backward(float* losses, bf16* logits, const int32_t* targets, int N, int V, int Vp,
                                 float dloss_scale, bool compute_grad, cudaStream_t stream);
void classifier_forward_backward(float* losses, float* logits, const int32_t* targets, int N, int V, int Vp,
                                 float dloss_scale, bool compute_grad, cudaStream_t stream);

}  // namespace gpt2::cuda
