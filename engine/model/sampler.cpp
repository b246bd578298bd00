#include "engine/model/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

namespace gpt2 {

int32_t sample_token(const std::vector<float>& logits, double temperature, int top_k, Rng& rng) {
  const int V = static_cast<int>(logits.size());
  if (V == 0) throw std::invalid_argument("sample_token: no logits");
  if (temperature <= 0) {
    int best = 0;
    for (int i = 1; i < V; ++i)
      if (logits[i] > logits[best]) best = i;
    return best;
  }
  std::vector<int32_t> idx(V);
  std::iota(idx.begin(), idx.end(), 0);
  const int k = top_k > 0 && top_k < V ? top_k : V;
  auto better = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  if (k < V) {
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), better);
    idx.resize(k);
  }
  double mx = -INFINITY;
  for (int32_t i : idx) mx = std::max(mx, static_cast<double>(logits[i]));
  std::vector<double> p(idx.size());
  double sum = 0;
  for (size_t j = 0; j < idx.size(); ++j) {
    p[j] = std::exp((static_cast<double>(logits[idx[j]]) - mx) / temperature);
    sum += p[j];
  }
  const double u = rng.uniform() * sum;
  double c = 0;
  for (size_t j = 0; j < idx.size(); ++j) {
    c += p[j];
    if (u < c) return idx[j];
  }
  return idx.back();
}

namespace {
// Runs one forward pass over ctx (B = 1) and returns the logits of its last position.
std::vector<float> prefill(Model& model, const std::vector<int32_t>& ctx) {
  const int64_t bad = model.load_batch(ctx.data(), nullptr, 1, static_cast<int>(ctx.size()));
  if (bad >= 0)
    throw std::invalid_argument("token id " + std::to_string(ctx[bad]) + " at prompt position " + std::to_string(bad) +
                                " is outside the model's vocabulary [0, " + std::to_string(model.config().vocab_size) +
                                ")");
  model.forward();
  return model.row_logits(static_cast<int>(ctx.size()) - 1);
}
}  // namespace

std::vector<int32_t> generate(Model& model, const std::vector<int32_t>& prompt, const SampleOptions& o,
                              const std::function<void(int32_t)>& on_token) {
  if (prompt.empty()) throw std::invalid_argument("generate: the prompt is empty (start from <|endoftext|>)");
  if (!model.can_decode())
    throw std::logic_error("sampling needs a plan without block recompute: those layers keep no KV cache");
  const int T = model.plan().run.seq_len;
  const int window = std::max(1, T / 2);
  std::vector<int32_t> ctx = prompt;
  if (static_cast<int>(ctx.size()) >= T) ctx.erase(ctx.begin(), ctx.end() - window);
  Rng rng(o.seed);
  std::vector<float> logits = prefill(model, ctx);
  std::vector<int32_t> out;
  for (int i = 0; i < o.max_tokens; ++i) {
    const int32_t tok = sample_token(logits, o.temperature, o.top_k, rng);
    out.push_back(tok);
    if (on_token) on_token(tok);
    if (tok == o.stop_token || i + 1 == o.max_tokens) break;
    ctx.push_back(tok);
    const int pos = static_cast<int>(ctx.size()) - 1;
    if (pos >= T) {  // the context is full: slide the window
      ctx.erase(ctx.begin(), ctx.end() - window);
      logits = prefill(model, ctx);
    } else {
      logits = model.decode_step(tok, pos);
    }
  }
  return out;
}

}  // namespace gpt2
