#include "engine/train/sampling.h"

#include <ostream>

#include "engine/model/inference.h"
#include "engine/model/sampler.h"
#include "engine/util/errors.h"
#include "engine/util/rng.h"

namespace gpt2 {

LazyTokenizer::LazyTokenizer(std::string dir) : dir_(dir.empty() ? default_tokenizer_dir() : std::move(dir)) {}

const Tokenizer& LazyTokenizer::get() {
  if (!tok_) tok_ = std::make_unique<Tokenizer>(Tokenizer::from_dir(dir_));
  return *tok_;
}

Sampling::Sampling(const SamplingOptions& o, Model& model, LazyTokenizer& tok) : o_(o), model_(model), tok_(tok) {
  if (!o_.enabled) return;
  if (!model.can_decode())
    throw ConfigError("--sample-every",
                      "sampling keeps its KV cache in the stored activations; use a --recompute "
                      "policy other than block/budget");
  const Tokenizer& t = tok.get();
  prompt_ = o_.prompt.empty() ? std::vector<int32_t>{t.eot_token()} : t.encode(o_.prompt);
  check_prompt_in_vocabulary(prompt_, model.config().vocab_size, "--sample-prompt");
}

void Sampling::print(int64_t step, std::ostream& out) {
  SampleOptions so;
  so.max_tokens = o_.tokens;
  so.temperature = o_.temperature;
  so.top_k = o_.top_k;
  so.seed = derive_seed(o_.seed, static_cast<uint64_t>(step));
  out << "sample  (step " << step << ") " << o_.prompt << std::flush;
  const Tokenizer& tok = tok_.get();
  generate(model_, prompt_, so, [&](int32_t id) { out << tok.decode(&id, 1) << std::flush; });
  out << "\n" << std::flush;
}

}  // namespace gpt2
