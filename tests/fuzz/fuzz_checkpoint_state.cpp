// libFuzzer target: the checkpoint state-file reader (read_state_file, engine/train/checkpoint.h)
// on arbitrary bytes. Every input must either load or raise FileError naming the file; anything
// else (a crash, a sanitizer report, an out-of-memory, another exception type) is a bug.
//
// The first byte picks the mode (byte % 2):
//   0  the bytes are the whole file;
//   1  the bytes are the payload, wrapped in a valid header, checksum and end marker, so that
//      mutations get past the FNV-1a check to the JSON header and the array sizes.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "engine/train/checkpoint.h"
#include "engine/util/errors.h"
#include "engine/util/file_io.h"
#include "tests/fuzz/fuzz_scratch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int selector = data[0] % 2;
  const uint8_t* body = data + 1;
  const size_t n = size - 1;
  std::vector<uint8_t> wrapped;
  if (selector == 1) {
    const uint32_t ver[2] = {1, 0};
    const uint64_t payload = n, hash = gpt2::fnv1a64(body, n);
    auto put = [&](const void* p, size_t k) {
      const uint8_t* b = static_cast<const uint8_t*>(p);
      wrapped.insert(wrapped.end(), b, b + k);
    };
    put("GPT2CKPT", 8);
    put(ver, 8);
    put(&payload, 8);
    put(body, n);
    put(&hash, 8);
    put("CKPTEND", 8);  // with its terminating NUL
    body = wrapped.data();
  }
  const std::string& dir = gpt2::fuzz::scratch_dir("state");
  const std::string path =
      gpt2::fuzz::write_scratch(dir, "state_00000001.bin", body, selector == 1 ? wrapped.size() : n);
  if (path.empty()) return 0;
  try {
    (void)gpt2::read_state_file(path);
  } catch (const gpt2::FileError& e) {
    gpt2::fuzz::check_names_file(e, dir);  // the expected outcome for malformed input
  }
  return 0;
}
