// prepro: text -> GPT-2 token files (llm.c shards or nanoGPT .bin). Thin: the work is in
// engine/data/prepro.cpp. Exit codes: 0 ok, 1 error (bad file, bad option), 2 bad command line.
#include <omp.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "engine/cli/flag_checks.h"
#include "engine/cli/tool_main.h"
#include "engine/data/prepro.h"
#include "engine/data/tokenizer.h"

int main(int argc, char** argv) {
  gpt2::PreproOptions opt;
  std::string format = "llmc";
  bool quiet = false, force_progress = false;
  CLI::App app{
      "prepro: tokenize text with GPT-2's BPE and write train/val token files.\n"
      "Each input file, or each line of a .jsonl file (field \"text\"), is one document;\n"
      "directories are read recursively. Every document is preceded by <|endoftext|> (50256).\n"
      "Writes train_NNNNNN.bin / val_NNNNNN.bin (llm.c shards) or train.bin / val.bin (nanoGPT),\n"
      "plus gpt2_tokenizer.bin (llm.c tokenizer, for decoding) and prepro.json (a summary).\n",
      "prepro"};
  app.get_formatter()->column_width(30);
  app.add_option("--input,-i", opt.inputs, "Text files, directories, or .jsonl files")->required()->expected(1, -1);
  app.add_option("--out-dir,-o", opt.out_dir, "Output directory (created if missing)")->required();
  app.add_option("--val-fraction", opt.val_fraction,
                 "Fraction of documents for validation, spread evenly through the input; when that picks "
                 "none and the input is plain text files (one file, or fewer than 1/fraction), the last "
                 "fraction of the input's bytes, from a line start")
      ->capture_default_str();
  app.add_option("--shard-tokens", opt.shard_tokens, "Tokens per llm.c shard")
      ->capture_default_str()
      ->check(gpt2::whole_at_least(1));
  app.add_option("--format", format, "Output format")->check(CLI::IsMember({"llmc", "nanogpt"}))->capture_default_str();
  app.add_option("--tokenizer-dir", opt.tokenizer_dir,
                 "Directory with encoder.json and vocab.bpe (default: $GPT2_TOKENIZER_DIR or "
                 "data/tokenizer; made by data/fetch_tokenizer.sh)");
  app.add_option("--threads", opt.threads, "Encoding threads (0 = all cores)")
      ->capture_default_str()
      ->check(gpt2::whole_at_least(0));
  app.add_flag("--overwrite", opt.overwrite, "Replace token files already in --out-dir");
  app.add_flag("--progress", force_progress, "Always show the progress bar (default: on long inputs)");
  app.add_flag("--quiet,-q", quiet, "No progress bar");
  app.footer(
      "--input takes several values, and repeating it adds more; any other flag given more than once\n"
      "takes its last value.");
  const int parsed = gpt2::parse_tool_command_line(app, argc, argv);
  if (parsed >= 0) return parsed;
  opt.format = gpt2::parse_data_format(format, "--format");
  opt.progress = quiet            ? gpt2::ProgressBar::Mode::kNever
                 : force_progress ? gpt2::ProgressBar::Mode::kAlways
                                  : gpt2::ProgressBar::Mode::kAuto;
  const int threads = opt.threads > 0 ? opt.threads : omp_get_max_threads();
  const std::string warning = gpt2::thread_oversubscription_warning(
      "prepro", threads, opt.threads > 0 ? "--threads " + std::to_string(opt.threads) : "");
  if (!warning.empty()) std::cerr << warning << "\n";
  return gpt2::run_tool("prepro", [&] {
    gpt2::run_prepro(opt, std::cout);
    return 0;
  });
}
