/*
 * Single-query causal attention for incremental decoding (sampling with a KV cache), fp32.
 *
 * The cache is the layer's qkv activation for one sequence: qkv (T, 3C) viewed as
 * (T, 3, NH, HS) = [q | k | v]; rows 0..pos hold the keys and values of the positions so far,
 * and row pos also holds the new query. y is the output row of position pos: (C) viewed as
 * (NH, HS). HS = C/NH, scale = 1/sqrt(HS).
 *
 *   s[j] = scale * q_pos · k_j   for j <= pos
 *   y    = sum_j softmax(s)[j] v_j
 *
 * This is row `pos` of attention_forward with the same order of operations (dot products, the
 * max, the fast exp, the sum), so it agrees with the full forward to rounding of the dot
 * products. scratch: NH * (pos + 1) floats, caller-owned. Cost O(pos · C) per call.
 */
#pragma once

namespace gpt2::cpu {

void attention_decode(float* y, float* scratch, const float* qkv, int pos, int C, int NH);

}  // namespace gpt2::cpu
