// tokenize: GPT-2 BPE from the command line.
//   tokenize encode FILE      ids of FILE's bytes, one per line ("-" reads stdin)
//   tokenize decode FILE      ids (whitespace-separated) back to text, written raw to stdout
//   tokenize export-bin OUT   write the llm.c tokenizer .bin
// Exit codes: 0 ok, 1 error, 2 bad command line.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include "engine/cli/flag_checks.h"
#include "engine/cli/tool_main.h"
#include "engine/data/tokenizer.h"
#include "engine/util/errors.h"
#include "engine/util/file_io.h"

namespace {

std::string read_input(const std::string& path) {
  if (path != "-") return gpt2::read_file(path);
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

gpt2::Tokenizer load(const std::string& dir, const std::string& bin) {
  if (!bin.empty()) return gpt2::Tokenizer::from_llmc_bin(bin);
  return gpt2::Tokenizer::from_dir(dir.empty() ? gpt2::default_tokenizer_dir() : dir);
}

// Whitespace-separated decimal ids; a FileError names the byte offset of a bad one.
std::vector<int32_t> parse_ids(const std::string& path, const std::string& text, int vocab) {
  try {
    return gpt2::parse_token_ids(text, vocab);
  } catch (const gpt2::TokenIdError& e) {
    throw gpt2::FileError(path, e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tokenize: GPT-2 byte-level BPE encode/decode (ids identical to OpenAI's GPT-2).", "tokenize"};
  app.require_subcommand(1);
  std::string dir, bin, file, out;
  bool eot = false;
  auto* enc = app.add_subcommand("encode", "Print the token ids of FILE's bytes, one per line");
  enc->add_option("FILE", file, "Text file ('-' = stdin)")->required();
  enc->add_flag("--eot", eot, "Start with <|endoftext|> (50256), as prepro does per document");
  auto* dec = app.add_subcommand("decode", "Read whitespace-separated ids from FILE, print the text");
  dec->add_option("FILE", file, "File of ids ('-' = stdin)")->required();
  dec->add_option("--tokenizer-bin", bin, "Decode with an llm.c tokenizer .bin instead");
  auto* exp = app.add_subcommand("export-bin", "Write the llm.c tokenizer .bin (gpt2_tokenizer.bin)");
  exp->add_option("OUT", out, "Output path")->required();
  for (auto* sub : {enc, dec, exp}) {
    sub->add_option("--tokenizer-dir", dir,
                    "Directory with encoder.json and vocab.bpe (default: $GPT2_TOKENIZER_DIR or "
                    "data/tokenizer; made by data/fetch_tokenizer.sh)");
    gpt2::last_value_wins(*sub);  // a flag given more than once takes its last value
  }
  const int parsed = gpt2::parse_tool_command_line(app, argc, argv);
  if (parsed >= 0) return parsed;
  return gpt2::run_tool("tokenize", [&] {
    if (*enc) {
      const gpt2::Tokenizer tk = load(dir, "");
      const std::string text = read_input(file);
      gpt2::BpeCache cache;
      std::vector<int32_t> ids;
      if (eot) ids.push_back(tk.eot_token());
      tk.encode(text, ids, cache);
      std::string buf;
      buf.reserve(ids.size() * 6);
      for (int32_t id : ids) {
        buf += std::to_string(id);
        buf += '\n';
      }
      std::fwrite(buf.data(), 1, buf.size(), stdout);
    } else if (*dec) {
      const gpt2::Tokenizer tk = load(dir, bin);
      const std::string text = read_input(file);
      const std::string bytes = tk.decode(parse_ids(file, text, tk.vocab_size()));
      std::fwrite(bytes.data(), 1, bytes.size(), stdout);
    } else if (*exp) {
      const gpt2::Tokenizer tk = load(dir, "");
      tk.save_llmc_bin(out);
      std::cerr << "tokenize: wrote " << out << " (" << tk.vocab_size() << " tokens, EOT " << tk.eot_token() << ")\n";
    }
    return 0;
  });
}
