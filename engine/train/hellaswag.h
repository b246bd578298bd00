// HellaSwag evaluation: multiple-choice completion scored by the model's loss.
//
// For each example and each ending, the model reads context + ending (B = 1) and the score of
// the ending is the mean cross-entropy of its tokens (the positions that predict them); the
// prediction is the ending with the lowest mean loss (ties: the lower index). This is llm.c's
// and nanoGPT's "acc_norm". Sequences longer than the plan's T + 1 lose context tokens from
// the left.
//
// Inputs:
//  - llm.c's eval file (dev/data/hellaswag.py, write_evalfile): a 256 × int32 header
//    [0]=20240522, [1]=1, [2]=number of examples, [3]=longest example in bytes; then per
//    example a stream of uint16: 65535 (start), the example's size in bytes (this stream,
//    start marker included), its index, the label, the number of completions, the context
//    length and tokens, then per completion its length and tokens.
//  - the original jsonl (one object per line): "ctx" (or "ctx_a" + " " + "ctx_b"), "endings"
//    (list of strings) and "label" (int or numeric string). Encoded as llm.c does: the context
//    as is, each ending with a leading space. Needs the tokenizer.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/data/tokenizer.h"
#include "engine/model/model.h"

namespace gpt2 {

constexpr int32_t kEvalFileMagic = 20240522;

struct MultipleChoiceExample {
  std::vector<int32_t> context;
  std::vector<std::vector<int32_t>> endings;
  int label = 0;
};

// By content: a file starting with the eval magic is the .bin; anything else is read as jsonl
// (which needs `tokenizer`; FileError with the fetch hint when it is null). FileError naming
// the file, and the example / line, for malformed input.
std::vector<MultipleChoiceExample> load_hellaswag(const std::string& path, const Tokenizer* tokenizer);
// The same, with the tokenizer asked for only when the file is a .jsonl (so the tokenizer files
// are needed only then).
std::vector<MultipleChoiceExample> load_hellaswag(const std::string& path,
                                                  const std::function<const Tokenizer*()>& tokenizer);
std::vector<MultipleChoiceExample> load_eval_bin(const std::string& path);
std::vector<MultipleChoiceExample> load_hellaswag_jsonl(const std::string& path, const Tokenizer& tokenizer);
// Writes llm.c's eval .bin (tokens must be < 65535).
void write_eval_bin(const std::string& path, const std::vector<MultipleChoiceExample>& examples);

struct MultipleChoiceResult {
  int64_t examples = 0, correct = 0;
  double accuracy = 0;
  std::vector<int> predictions;
  std::vector<std::vector<double>> mean_losses;  // per example, per ending
};

// limit > 0 evaluates only the first `limit` examples.
MultipleChoiceResult evaluate_multiple_choice(Model& model, const std::vector<MultipleChoiceExample>& examples,
                                              int64_t limit = 0);

}  // namespace gpt2
