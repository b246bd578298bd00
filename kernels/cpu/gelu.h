/*
 * GELU, GPT-2's tanh approximation, fp32, elementwise over N = B*T*4C values.
 *
 *   gelu(x) = 0.5 x (1 + tanh(u)),   u = sqrt(2/pi) (x + 0.044715 x^3)
 *   gelu'(x) = 0.5 (1 + tanh(u)) + 0.5 x (1 - tanh(u)^2) sqrt(2/pi) (1 + 3*0.044715 x^2)
 *
 * Gradient rule: dinp = dout * gelu'(inp) is written (=). dinp may alias dout (in place).
 */
#pragma once
#include <cstddef>

namespace gpt2::cpu {

void gelu_forward(float* out, const float* inp, size_t N);

void gelu_backward(float* dinp, const float* inp, const float* dout, size_t N);

}  // namespace gpt2::cpu
