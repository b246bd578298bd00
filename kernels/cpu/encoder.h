/*
 * Token + position embedding (GPT-2's encoder), fp32.
 *
 *   out[b,t,:] = wte[tokens[b,t], :] + wpe[t, :]
 *
 * Shapes: tokens (B,T) int32 in [0, V); wte (Vp,C); wpe (maxT,C) with T <= maxT; out (B,T,C).
 *
 * Gradient rule (project-wide: parameters +=, activations =):
 *   dwte[tokens[b,t], :] += dout[b,t,:]      dwpe[t, :] += dout[b,t,:]
 * The backward is deterministic and independent of the thread count: threads split the
 * channels, and every thread walks the (b,t) positions in the same ascending order.
 *
 * Token ids are NOT range-checked here (hot path); the caller validates a batch once with
 * encoder_check_tokens() and turns a bad position into an error message.
 */
#pragma once
#include <cstdint>

namespace gpt2::cpu {

// Returns the flat index (b*T + t) of the first token outside [0, V), or -1 if all are valid.
int64_t encoder_check_tokens(const int32_t* tokens, int64_t n, int V);

void encoder_forward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int B, int T, int C);

void encoder_backward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int B, int T, int C);

}  // namespace gpt2::cpu
