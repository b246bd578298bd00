// sample: generate text from a model file or a checkpoint, with a KV cache (engine/model/sampler.h).
//   sample --model ckpt/ --prompt "The meaning of life is" --tokens 64 --temperature 0.8 --top-k 40
//   sample --model gpt2_124M.bin --prompt-ids 50256 --ids
// --model takes an llm.c .bin, an HF .safetensors, or a --checkpoint-dir (its latest model).
// Runs on the CPU backend (fp32) or, with --device cuda, the CUDA backend (bf16). The same model,
// prompt, options, device and --seed give the same text.
// Exit codes: 0 ok, 1 error, 2 bad command line.
#include <sys/stat.h>
#include <CLI/CLI.hpp>
#include <iostream>
#include <limits>
#include <sstream>

#include "engine/backend/cpu_backend.h"
#include "engine/backend/cuda_backend_factory.h"
#include "engine/backend/device_info.h"
#include "engine/cli/flag_checks.h"
#include "engine/data/tokenizer.h"
#include "engine/model/model_io.h"
#include "engine/model/sampler.h"
#include "engine/train/checkpoint.h"
#include "engine/util/errors.h"
#include "engine/util/file_io.h"

namespace {
bool is_dir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
}  // namespace

int main(int argc, char** argv) {
  std::string model_path, prompt, prompt_ids, tokenizer_dir, device = "cpu";
  int tokens = 64, top_k = 40, heads = 0, context = 0;
  double temperature = 1.0;
  uint64_t seed = 1337;
  bool print_ids = false, stop_at_eot = false;
  CLI::App app{"sample: generate text from a GPT-2 model file or checkpoint (KV cache)", "sample"};
  app.add_option("--model", model_path, "llm.c .bin, .safetensors, or a checkpoint directory")->required();
  CLI::Option* prompt_flag = app.add_option("--prompt", prompt, "Prompt text (default: start from <|endoftext|>)");
  app.add_option("--prompt-ids", prompt_ids, "Prompt as comma-separated token ids (no tokenizer needed)")
      ->excludes(prompt_flag);
  app.add_option("--tokens,-n", tokens, "Tokens to generate")->capture_default_str()->check(gpt2::whole_at_least(1));
  app.add_option("--temperature", temperature, "0 = greedy")
      ->capture_default_str()
      ->check(gpt2::finite_in(0.0, std::numeric_limits<double>::infinity()));
  app.add_option("--top-k", top_k, "Sample from the k most likely tokens (0 = all)")
      ->capture_default_str()
      ->check(gpt2::whole_at_least(0));
  app.add_option("--seed", seed, "Sampling seed (0 to 2^64-1)")->capture_default_str()->check(gpt2::whole_unsigned64());
  app.add_option("--heads", heads, "Head count for a .safetensors without config.json")->check(gpt2::whole_at_least(1));
  app.add_option("--context", context, "Context window T (default: the model's maxT, at most 1024)")
      ->check(gpt2::whole_at_least(1));
  app.add_option("--tokenizer-dir", tokenizer_dir, "encoder.json + vocab.bpe (default data/tokenizer)");
  app.add_option("--device", device, "cpu | cuda | auto")->capture_default_str();
  app.add_flag("--ids", print_ids, "Print token ids, one line, instead of text");
  app.add_flag("--stop-at-eot", stop_at_eot, "Stop after <|endoftext|>");
  app.footer("A flag given more than once takes its last value.");
  gpt2::last_value_wins(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  try {
    if (app.count("--prompt-ids") && prompt_ids.empty())
      throw gpt2::ConfigError("--prompt-ids", "is empty; give comma-separated token ids, e.g. 50256");
    std::string file = model_path;
    if (is_dir(model_path)) {
      const int64_t step = gpt2::latest_checkpoint_step(model_path);
      if (step < 0) throw gpt2::FileError(model_path + "/latest", "no checkpoint in this directory");
      file = gpt2::checkpoint_model_path(model_path, step);
    }
    const gpt2::ModelWeights w = gpt2::load_model_file(file, heads);
    std::unique_ptr<gpt2::Tokenizer> tok;
    const bool need_tok = !print_ids || (!prompt.empty());
    if (need_tok || prompt_ids.empty()) {
      try {
        tok = std::make_unique<gpt2::Tokenizer>(
            gpt2::Tokenizer::from_dir(tokenizer_dir.empty() ? gpt2::default_tokenizer_dir() : tokenizer_dir));
      } catch (const gpt2::FileError&) {
        if (need_tok) throw;
      }
    }
    std::vector<int32_t> ids;
    if (!prompt_ids.empty()) {
      std::stringstream ss(prompt_ids);
      std::string item;
      while (std::getline(ss, item, ',')) {
        try {
          const size_t first = item.find_first_not_of(' '), last = item.find_last_not_of(' ');
          const std::string digits = first == std::string::npos ? "" : item.substr(first, last - first + 1);
          size_t used = 0;
          const int id = std::stoi(digits, &used);
          if (used != digits.size()) throw std::invalid_argument(item);
          ids.push_back(id);
        } catch (const std::exception&) {
          throw gpt2::ConfigError("--prompt-ids", "'" + item + "' is not a token id");
        }
      }
    } else if (!prompt.empty()) {
      ids = tok->encode(prompt);
    } else {
      ids.push_back(tok ? tok->eot_token() : gpt2::kGpt2EotToken);
    }
    for (int32_t id : ids)
      if (id < 0 || id >= w.config.vocab_size) {
        const std::string range = " is outside the model's vocabulary of " + std::to_string(w.config.vocab_size);
        if (prompt_ids.empty() && prompt.empty())
          throw gpt2::ConfigError("--prompt-ids", "the default start, <|endoftext|> (" + std::to_string(id) + ")," +
                                                      range + "; give --prompt-ids with ids below " +
                                                      std::to_string(w.config.vocab_size));
        throw gpt2::ConfigError(prompt_ids.empty() ? "--prompt" : "--prompt-ids",
                                "token " + std::to_string(id) + range);
      }

    const gpt2::Device dev = device == "auto"
                                 ? (gpt2::query_cuda_device().present ? gpt2::Device::CUDA : gpt2::Device::CPU)
                                 : gpt2::parse_device(device);
    gpt2::RunConfig run;
    run.device = dev;
    run.precision = dev == gpt2::Device::CPU ? gpt2::Precision::FP32 : gpt2::Precision::BF16;
    run.micro_batch = 1;
    if (context > w.config.max_seq_len)
      throw gpt2::ConfigError("--context", std::to_string(context) + " is beyond the model's context of " +
                                               std::to_string(w.config.max_seq_len) + " tokens");
    run.seq_len = context > 0 ? context : std::min(1024, w.config.max_seq_len);
    run.recompute = gpt2::parse_recompute("none");
    run.training = false;  // parameters, KV cache and logits only
    const gpt2::MemoryPlan plan = gpt2::make_memory_plan(w.config, run);
    std::unique_ptr<gpt2::Backend> backend;
    if (dev == gpt2::Device::CPU)
      backend = std::make_unique<gpt2::CpuBackend>();
    else
      backend = gpt2::make_cuda_backend(0);
    gpt2::Model model(plan, *backend);
    model.set_parameters(gpt2::to_flat(plan, w));

    gpt2::SampleOptions so;
    so.max_tokens = tokens;
    so.temperature = temperature;
    so.top_k = top_k;
    so.seed = seed;
    if (stop_at_eot) so.stop_token = gpt2::kGpt2EotToken;
    if (print_ids) {
      const std::vector<int32_t> out = gpt2::generate(model, ids, so);
      for (size_t i = 0; i < out.size(); ++i) std::cout << (i ? " " : "") << out[i];
      std::cout << "\n";
      gpt2::flush_stdout_checked();
    } else {
      std::cout << prompt;
      gpt2::flush_stdout_checked();
      gpt2::generate(model, ids, so, [&](int32_t t) {
        if (t < tok->vocab_size()) std::cout << tok->token_bytes(t);
        gpt2::flush_stdout_checked();
      });
      std::cout << "\n";
      gpt2::flush_stdout_checked();
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "sample: error: " << e.what() << "\n";
    return 1;
  }
}
