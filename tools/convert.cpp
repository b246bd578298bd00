// convert: model files between llm.c's .bin (fp32 v3 / bf16 v5) and HF GPT-2 .safetensors.
//   convert --in gpt2_124M.bin --out model.safetensors
//   convert --in model.safetensors --out gpt2_124M_bf16.bin --dtype bf16
// The output format follows the --out extension (.safetensors, else llm.c .bin); the dtype
// defaults to the input's. A checkpoint directory's model file is an llm.c .bin, so it
// converts too. Exit codes: 0 ok, 1 error (bad file), 2 bad command line.
#include <CLI/CLI.hpp>
#include <iostream>

#include "engine/cli/flag_checks.h"
#include "engine/cli/tool_main.h"
#include "engine/model/model_io.h"
#include "engine/util/errors.h"
#include "engine/util/file_io.h"

int main(int argc, char** argv) {
  std::string in, out, dtype = "auto";
  int heads = 0;
  CLI::App app{"convert: GPT-2 weights between llm.c .bin and HF .safetensors", "convert"};
  app.add_option("--in", in, "Input model: llm.c .bin or .safetensors")->required();
  app.add_option("--out", out, "Output model: .safetensors, or anything else for llm.c .bin")->required();
  app.add_option("--dtype", dtype, "auto | fp32 | bf16 (auto: as the input)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "fp32", "bf16"}));
  app.add_option("--heads", heads, "Head count for a .safetensors without config.json (default: GPT-2's for the width)")
      ->check(gpt2::whole_at_least(1));
  app.footer("A flag given more than once takes its last value.");
  const int parsed = gpt2::parse_tool_command_line(app, argc, argv);
  if (parsed >= 0) return parsed;
  return gpt2::run_tool("convert", [&] {
    if (gpt2::same_file(in, out))
      throw gpt2::FileError(in, "--out names the same file as --in; convert never writes over its input");
    const gpt2::ModelWeights w = gpt2::load_model_file(in, heads);
    const gpt2::WeightDType dt = dtype == "auto"   ? w.source_dtype
                                 : dtype == "bf16" ? gpt2::WeightDType::BF16
                                                   : gpt2::WeightDType::FP32;
    gpt2::save_model_file(out, w, dt);
    std::cout << "convert: " << in << " -> " << out << " (" << w.config.describe() << ", "
              << (dt == gpt2::WeightDType::BF16 ? "bf16" : "fp32") << ")\n";
    return 0;
  });
}
