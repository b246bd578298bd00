// Single-query causal attention over a KV cache: see attention_decode.h.
#include "kernels/cpu/attention_decode.h"

#include <cmath>

#include "kernels/cpu/vec_math.h"

namespace gpt2::cpu {

void attention_decode(float* y, float* scratch, const float* qkv, int pos, int C, int NH) {
  const int HS = C / NH;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  const size_t C3 = static_cast<size_t>(3) * C;
  const int n = pos + 1;
#pragma omp parallel for schedule(static)
  for (int h = 0; h < NH; h++) {
    float* s = scratch + static_cast<size_t>(h) * n;
    const float* q = qkv + pos * C3 + h * HS;
    float mx = -INFINITY;
    for (int j = 0; j < n; j++) {
      const float* k = qkv + j * C3 + C + h * HS;
      float d = 0.0f;
      for (int i = 0; i < HS; i++) d += q[i] * k[i];
      s[j] = d * scale;
      mx = s[j] > mx ? s[j] : mx;
    }
    float sum = 0.0f;
    for (int j = 0; j < n; j++) {
      s[j] = exp_fast(s[j] - mx);
      sum += s[j];
    }
    const float inv = 1.0f / sum;
    float* yo = y + h * HS;
    for (int d = 0; d < HS; d++) yo[d] = 0.0f;
    for (int j = 0; j < n; j++) {
      const float p = s[j] * inv;
      const float* v = qkv + j * C3 + 2 * C + h * HS;
      for (int d = 0; d < HS; d++) yo[d] += p * v[d];
    }
  }
}

}  // namespace gpt2::cpu
