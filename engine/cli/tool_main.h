// What the mains in tools/ share: their command line parsed under the common rule, their errors
// reported as "TOOL: error: ..." with exit code 1, token ids written as text (tokenize decode,
// sample --prompt-ids), and the sample tool's inputs (its --model and its prompt).
#pragma once
#include <CLI/CLI.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/data/tokenizer.h"

namespace gpt2 {

// Parses a tool's command line, where a flag given more than once takes its last value
// (last_value_wins; a tool with subcommands calls that for each of them too). Returns -1 when
// the tool should go on, else its exit code: 0 after --help, 2 after a parse error (CLI11's
// message on stderr).
int parse_tool_command_line(CLI::App& app, int argc, const char* const* argv);

// Runs a tool's work and checks that its standard output was written. Returns the work's exit
// code, or 1 after writing "TOOL: error: WHAT" to stderr when it throws.
int run_tool(const std::string& tool, const std::function<int()>& work);

// A list of token ids that does not parse: what() is "byte offset N: 'ITEM' is not a token id"
// or "byte offset N: token id ITEM is not below the vocab size V".
class TokenIdError : public std::runtime_error {
 public:
  TokenIdError(size_t offset, std::string item, bool too_large, const std::string& what)
      : std::runtime_error(what), offset(offset), item(std::move(item)), too_large(too_large) {}
  size_t offset;     // where the item starts in the text
  std::string item;  // the item (its first 20 bytes when it is not a number)
  bool too_large;    // a whole number, but not below the limit
};

// Token ids written as decimal numbers: separated by whitespace, or, with a `separator`, by that
// character alone (whitespace around it is allowed; an empty item or list is not). Every id must
// be below `limit` (the vocabulary size). Throws TokenIdError at the first item that is not.
std::vector<int32_t> parse_token_ids(const std::string& text, int limit, char separator = '\0');

// sample --model: a model file as it is, or a checkpoint directory's latest model file (FileError
// when the directory has no checkpoint).
std::string model_file_or_latest_checkpoint(const std::string& path);

// The sample tool's prompt as token ids, and the tokenizer that prints the generated text: the
// comma-separated `ids` (--prompt-ids; no tokenizer needed), else the `text` (--prompt), else
// <|endoftext|>. The tokenizer (from `tokenizer_dir`, empty: default_tokenizer_dir()) is needed
// to encode text and to print text (`print_ids` false); otherwise it is loaded only when its files
// are there. Throws ConfigError naming --prompt or --prompt-ids for a prompt outside the model's
// vocabulary of `vocab_size`.
struct SamplePrompt {
  std::unique_ptr<Tokenizer> tokenizer;  // nullptr when it is not needed and its files are missing
  std::vector<int32_t> ids;
};
SamplePrompt sample_prompt(const std::string& text, const std::string& ids, const std::string& tokenizer_dir,
                           bool print_ids, int vocab_size);

}  // namespace gpt2
