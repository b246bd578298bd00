/*
 * LayerNorm over the last dimension, fp32, eps = 1e-5 (GPT-2's value).
 *
 *   mean[i] = (1/C) sum_c x[i,c]
 *   rstd[i] = 1 / sqrt((1/C) sum_c (x[i,c] - mean[i])^2 + eps)       (biased variance)
 *   out[i,c] = (x[i,c] - mean[i]) * rstd[i] * weight[c] + bias[c]
 *
 * Shapes: inp, out, dinp, dout (B,T,C); weight, bias, dweight, dbias (C); mean, rstd (B*T).
 *
 * Backward, with xhat = (x - mean) * rstd and g = dout * weight:
 *   dinp[i,c]  += rstd[i] * (g[i,c] - mean_c(g[i,:]) - xhat[i,c] * mean_c(g[i,:] * xhat[i,:]))
 *   dweight[c] += sum_i dout[i,c] * xhat[i,c]
 *   dbias[c]   += sum_i dout[i,c]
 *
 * Gradient rule: parameters +=, and — the one deliberate exception to "activation gradients
 * are written" — dinp is ADDED to as well. A layernorm's input is always the residual stream,
 * whose gradient already holds the gradient arriving through the skip connection; adding here
 * fuses the residual gradient add (as llm.c does). Callers that want "=" zero dinp first.
 *
 * dweight/dbias sums run over rows in ascending order per channel, so they are deterministic
 * and independent of the thread count.
 */
#pragma once

namespace gpt2::cpu {

constexpr float kLayerNormEps = 1e-5f;

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight, const float* bias,
                       int B, int T, int C);

// Recomputes `out` from the saved mean/rstd (recompute policies). Bitwise identical to the
// output of layernorm_forward for the same inputs: the forward calls the same routine.
void layernorm_recompute(float* out, const float* inp, const float* mean, const float* rstd, const float* weight,
                         const float* bias, int B, int T, int C);

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int B, int T, int C);

}  // namespace gpt2::cpu
