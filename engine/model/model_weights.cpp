#include "engine/model/model_weights.h"

#include <algorithm>

#include "engine/util/bf16.h"
#include "engine/util/errors.h"

namespace gpt2 {

int64_t ModelWeights::offset(int i) const {
  const auto specs = param_tensor_specs(config);
  int64_t o = 0;
  for (int k = 0; k < i; ++k) o += specs[k].numel();
  return o;
}

void check_model_file_config(const std::string& path, const ModelConfig& c) {
  try {
    validate(c);
  } catch (const ConfigError& e) {
    throw FileError(path, std::string("the model shape in this file is invalid: ") + e.what());
  }
}

void write_weight_values(AtomicFile& f, const float* v, int64_t n, WeightDType dtype) {
  if (dtype == WeightDType::FP32) {
    f.write(v, static_cast<size_t>(n) * 4);
    return;
  }
  std::vector<uint16_t> bits(static_cast<size_t>(std::min<int64_t>(n, 1 << 20)));
  for (int64_t s = 0; s < n; s += static_cast<int64_t>(bits.size())) {
    const int64_t k = std::min<int64_t>(static_cast<int64_t>(bits.size()), n - s);
    for (int64_t i = 0; i < k; ++i) bits[i] = float_to_bf16_bits(v[s + i]);
    f.write(bits.data(), static_cast<size_t>(k) * 2);
  }
}

}  // namespace gpt2
