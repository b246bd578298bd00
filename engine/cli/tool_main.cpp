#include "engine/cli/tool_main.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <iostream>

#include "engine/cli/flag_checks.h"
#include "engine/model/inference.h"
#include "engine/train/checkpoint.h"
#include "engine/util/errors.h"
#include "engine/util/file_io.h"

namespace gpt2 {

int parse_tool_command_line(CLI::App& app, int argc, const char* const* argv) {
  last_value_wins(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return -1;
}

int run_tool(const std::string& tool, const std::function<int()>& work) {
  try {
    const int code = work();
    flush_stdout_checked();
    return code;
  } catch (const std::exception& e) {
    std::cerr << tool << ": error: " << e.what() << "\n";
    return 1;
  }
}

std::vector<int32_t> parse_token_ids(const std::string& text, int limit, char separator) {
  const auto space = [&](size_t i) { return std::isspace(static_cast<unsigned char>(text[i])) != 0; };
  const std::string item_ends = separator ? std::string(" \t\r\n") + separator : std::string(" \t\r\n");
  const auto not_an_id = [&](size_t start) {
    const size_t end = std::min(text.find_first_of(item_ends, start), text.size());
    const std::string item = text.substr(start, std::min<size_t>(end - start, 20));
    return TokenIdError(start, item, false,
                        "byte offset " + std::to_string(start) + ": '" + item + "' is not a token id");
  };
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < text.size() && space(i)) ++i;
  bool item_due = separator || i < text.size();  // a list with separators has at least one item
  while (item_due) {
    const size_t start = i;
    int64_t v = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) && v <= limit)
      v = v * 10 + (text[i++] - '0');
    const bool ended = i == text.size() || space(i) || (separator && text[i] == separator);
    if (i == start || !ended) throw not_an_id(start);
    if (v >= limit) {
      const std::string item = text.substr(start, i - start);
      throw TokenIdError(start, item, true,
                         "byte offset " + std::to_string(start) + ": token id " + item +
                             " is not below the vocab size " + std::to_string(limit));
    }
    ids.push_back(static_cast<int32_t>(v));
    while (i < text.size() && space(i)) ++i;
    item_due = i < text.size();
    if (separator && item_due) {  // then an item must follow the separator: "1," and "1,,2" are refused
      if (text[i] != separator) throw not_an_id(i);
      ++i;
      while (i < text.size() && space(i)) ++i;
    }
  }
  return ids;
}

std::string model_file_or_latest_checkpoint(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return path;
  const int64_t step = latest_checkpoint_step(path);
  if (step < 0) throw FileError(path + "/latest", "no checkpoint in this directory");
  return checkpoint_model_path(path, step);
}

SamplePrompt sample_prompt(const std::string& text, const std::string& ids, const std::string& tokenizer_dir,
                           bool print_ids, int vocab_size) {
  SamplePrompt p;
  const bool need_tok = !print_ids || !text.empty();
  if (need_tok || ids.empty()) {
    try {
      p.tokenizer = std::make_unique<Tokenizer>(
          Tokenizer::from_dir(tokenizer_dir.empty() ? default_tokenizer_dir() : tokenizer_dir));
    } catch (const FileError&) {
      if (need_tok) throw;
    }
  }
  if (!ids.empty()) {
    try {
      p.ids = parse_token_ids(ids, vocab_size, ',');
    } catch (const TokenIdError& e) {
      throw ConfigError("--prompt-ids", e.too_large ? "token " + e.item + " is outside the model's vocabulary of " +
                                                          std::to_string(vocab_size)
                                                    : "'" + e.item + "' is not a token id");
    }
  } else if (!text.empty()) {
    p.ids = p.tokenizer->encode(text);
  } else {
    p.ids.push_back(p.tokenizer ? p.tokenizer->eot_token() : kGpt2EotToken);
    if (p.ids[0] >= vocab_size)
      throw ConfigError("--prompt-ids", "the default start, <|endoftext|> (" + std::to_string(p.ids[0]) +
                                            "), is outside the model's vocabulary of " + std::to_string(vocab_size) +
                                            "; give --prompt-ids with ids below " + std::to_string(vocab_size));
  }
  check_prompt_in_vocabulary(p.ids, vocab_size, ids.empty() ? "--prompt" : "--prompt-ids");
  return p;
}

}  // namespace gpt2
