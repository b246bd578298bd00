// sample: generate text from a model file or a checkpoint, with a KV cache (engine/model/sampler.h).
//   sample --model ckpt/ --prompt "The meaning of life is" --tokens 64 --temperature 0.8 --top-k 40
//   sample --model gpt2_124M.bin --prompt-ids 50256 --ids
// --model takes an llm.c .bin, an HF .safetensors, or a --checkpoint-dir (its latest model).
// Runs on the CPU backend (fp32) or, with --device cuda, the CUDA backend (bf16). The same model,
// prompt, options, device and --seed give the same text.
// Exit codes: 0 ok, 1 error, 2 bad command line.
#include <CLI/CLI.hpp>
#include <iostream>
#include <limits>

#include "engine/cli/flag_checks.h"
#include "engine/cli/tool_main.h"
#include "engine/data/tokenizer.h"
#include "engine/model/inference.h"
#include "engine/model/model_io.h"
#include "engine/model/sampler.h"
#include "engine/util/errors.h"
#include "engine/util/file_io.h"

int main(int argc, char** argv) {
  std::string model_path, prompt, prompt_ids, tokenizer_dir;
  gpt2::InferenceOptions inference;
  int tokens = 64, top_k = 40, heads = 0;
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
  app.add_option("--context", inference.context, "Context window T (default: the model's maxT, at most 1024)")
      ->check(gpt2::whole_at_least(1));
  app.add_option("--tokenizer-dir", tokenizer_dir, "encoder.json + vocab.bpe (default data/tokenizer)");
  app.add_option("--device", inference.device, "cpu | cuda | auto")->capture_default_str();
  app.add_flag("--ids", print_ids, "Print token ids, one line, instead of text");
  app.add_flag("--stop-at-eot", stop_at_eot, "Stop after <|endoftext|>");
  app.footer("A flag given more than once takes its last value.");
  const int parsed = gpt2::parse_tool_command_line(app, argc, argv);
  if (parsed >= 0) return parsed;
  return gpt2::run_tool("sample", [&] {
    if (app.count("--prompt-ids") && prompt_ids.empty())
      throw gpt2::ConfigError("--prompt-ids", "is empty; give comma-separated token ids, e.g. 50256");
    const gpt2::ModelWeights w = gpt2::load_model_file(gpt2::model_file_or_latest_checkpoint(model_path), heads);
    const gpt2::SamplePrompt p = gpt2::sample_prompt(prompt, prompt_ids, tokenizer_dir, print_ids, w.config.vocab_size);
    const gpt2::InferenceModel m = gpt2::open_for_inference(w, inference);
    gpt2::SampleOptions so;
    so.max_tokens = tokens;
    so.temperature = temperature;
    so.top_k = top_k;
    so.seed = seed;
    if (stop_at_eot) so.stop_token = gpt2::kGpt2EotToken;
    if (print_ids) {
      const std::vector<int32_t> out = gpt2::generate(*m.model, p.ids, so);
      for (size_t i = 0; i < out.size(); ++i) std::cout << (i ? " " : "") << out[i];
      std::cout << "\n";
      return 0;
    }
    std::cout << prompt;
    gpt2::flush_stdout_checked();
    gpt2::generate(*m.model, p.ids, so, [&](int32_t t) {
      if (t < p.tokenizer->vocab_size()) std::cout << p.tokenizer->token_bytes(t);
      gpt2::flush_stdout_checked();
    });
    std::cout << "\n";
    return 0;
  });
}
