// libFuzzer target: the token-file and tokenizer-file readers on arbitrary bytes. Every input
// must either parse or raise FileError; anything else (a crash, a sanitizer report, another
// exception type) is a bug. The first byte picks the reader.
#include <cstdint>
#include <string>

#include "engine/data/data_shard.h"
#include "engine/data/tokenizer.h"
#include "engine/util/errors.h"
#include "tests/fuzz/fuzz_scratch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t selector = data[0] % 4;
  const std::string path = gpt2::fuzz::write_scratch(gpt2::fuzz::scratch_dir("shard"), "shard.bin", data + 1, size - 1);
  if (path.empty()) return 0;
  try {
    switch (selector) {
      case 0: gpt2::read_shard(path, gpt2::DataFormat::kAuto, 50257); break;
      case 1: gpt2::read_shard(path, gpt2::DataFormat::kLlmc, 50257); break;
      case 2: gpt2::read_shard(path, gpt2::DataFormat::kNanoGpt, 1000); break;
      default: {
        const gpt2::Tokenizer tk = gpt2::Tokenizer::from_llmc_bin(path);
        // Decoding every id of a file that parsed must work.
        for (int id = 0; id < tk.vocab_size() && id < 4096; ++id) (void)tk.token_bytes(id);
        break;
      }
    }
  } catch (const gpt2::FileError&) {
    // The expected outcome for malformed input.
  }
  return 0;
}
