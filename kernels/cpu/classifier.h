/*
 * Fused softmax + cross-entropy over a chunk of N tokens, fp32, writing dlogits in place.
 *
 * Shapes: logits (N,Vp) of which only columns [0,V) are real (columns [V,Vp) are the padding
 * of wte and are excluded from the softmax); targets (N) int32 in [0,V); losses (N).
 *
 *   m_i = max_{v<V} logits[i,v]
 *   lse_i = m_i + log sum_{v<V} exp(logits[i,v] - m_i)
 *   losses[i] = lse_i - logits[i, targets[i]]
 *   if compute_grad: logits[i,v] <- dloss_scale * (softmax_i[v] - [v == targets[i]])  for v < V
 *                    logits[i,v] <- 0                                                   for v >= V
 * dloss_scale is d(total loss)/d(losses[i]), e.g. 1 / (tokens of the whole step, all
 * micro-batches), so the chunk never needs to know about the rest of the step.
 * Gradient rule: dlogits is written (=), overwriting the logits.
 *
 * Bad targets: all N targets are validated before anything is written. If one is outside
 * [0,V) nothing is modified and the function returns its row index (the first bad one);
 * otherwise it returns -1. The engine turns the index into an error naming the position.
 */
#pragma once
#include <cstdint>

namespace gpt2::cpu {

// Returns -1 on success, or the index of the first target outside [0, V) (nothing written).
// compute_grad = false (evaluation) leaves the logits untouched and only writes losses.
int64_t classifier_forward_backward(float* losses, float* logits, const int32_t* targets, int N, int V, int Vp,
                                    float dloss_scale, bool compute_grad);

}  // namespace gpt2::cpu
