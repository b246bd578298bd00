// Text -> token files: the work behind the `prepro` tool.
//
// Every document (see documents.h) is encoded with the GPT-2 tokenizer and written preceded by
// EOT (50256), as llm.c does. Documents go to train or val: document i (0-based, in input
// order) is a val document when floor((i+1)*F) > floor(i*F), which spreads the val documents
// evenly through the input (every 20th for F = 0.05) and is the same on every run. When that
// rule can pick no document and the input is plain files (one file, or fewer than 1/F), the
// tail of the input becomes val instead: the input is tokenized as usual, and the tokens from
// the first one that starts at or after the first line start in the last F of the input bytes
// go to val, after an EOT of their own. This works for text in any script and any line
// structure (indented lines, one long line: then the cut is the first token boundary in the
// last F). train + val (less that EOT) are exactly the tokens of the whole input. When even
// that holds no token (a tiny input), no val file is written and the summary says why.
//
// Output in --out-dir:
//   llmc:    train_000000.bin, train_000001.bin, ..., val_000000.bin, ... (at most
//            shard_tokens tokens each);
//   nanogpt: train.bin and val.bin;
//   always:  gpt2_tokenizer.bin (llm.c tokenizer file, for decoding) and prepro.json (what was
//            written: files, token and document counts, options).
// All of them are first written to a hidden staging directory inside --out-dir and moved in only
// when every file is complete; then the old token files that no new file replaced are removed. A
// run that fails leaves --out-dir as it was. The output directory must not be an input, lie inside
// an input directory, or hold an input among the files written there.
//
// Parallelism and memory: documents are read in batches of about 32 MB (long files are streamed
// in pieces); each batch is cut into 256 kB jobs at safe boundaries (Tokenizer::split_points),
// encoded by OpenMP threads, each with its own BPE cache, and written in input order. Output
// order and content do not depend on the thread count, and memory does not grow with the input.
#pragma once
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "engine/data/data_shard.h"
#include "engine/util/progress.h"

namespace gpt2 {

struct PreproOptions {
  std::vector<std::string> inputs;  // files, directories, .jsonl files
  std::string out_dir;
  double val_fraction = 0.05;           // in [0, 1)
  uint64_t shard_tokens = 100'000'000;  // llmc only
  DataFormat format = DataFormat::kLlmc;
  std::string tokenizer_dir;  // empty: default_tokenizer_dir()
  int threads = 0;            // 0: OpenMP's default
  bool overwrite = false;     // replace the token files already in out_dir
  ProgressBar::Mode progress = ProgressBar::Mode::kAuto;
};

struct PreproSplit {
  uint64_t documents = 0;
  uint64_t tokens = 0;  // including the EOTs
  std::vector<std::string> files;
};

struct PreproResult {
  PreproSplit train, val;
  uint64_t input_bytes = 0;
  double seconds = 0;
  int threads = 1;
};

// Validates the options (ConfigError naming the flag), then runs. Writes a summary to `log`.
PreproResult run_prepro(const PreproOptions& options, std::ostream& log);

// The val rule above, exposed for tests.
bool is_val_document(uint64_t index, double val_fraction);

}  // namespace gpt2
