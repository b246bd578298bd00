// Token files: llm.c shards and nanoGPT .bin files. Reading, validating and writing.
//
//   llm.c shard:  a header of 256 x int32 ([0] = 20240520 magic, [1] = 1 version, [2] = token
//                 count, the rest 0), then `count` little-endian uint16 tokens. Documents are
//                 separated by EOT (50256), which precedes each document.
//   nanoGPT .bin: raw little-endian uint16 tokens, no header (train.bin / val.bin).
//
// Every check failure is a FileError naming the file and the byte offset: an empty file, a
// wrong magic or version, a file shorter (or longer) than its header says, an odd size, and a
// token >= the vocab size.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/util/file_io.h"

namespace gpt2 {

constexpr int32_t kShardMagic = 20240520;
constexpr int32_t kShardVersion = 1;
constexpr size_t kShardHeaderInts = 256;
constexpr size_t kShardHeaderBytes = kShardHeaderInts * sizeof(int32_t);

enum class DataFormat { kAuto, kLlmc, kNanoGpt };

// "auto" | "llmc" | "nanogpt" -> DataFormat; throws ConfigError(flag) otherwise.
DataFormat parse_data_format(const std::string& text, const std::string& flag = "--data-format");
const char* data_format_name(DataFormat f);

// What a file holds, from its header and size (no token is read).
struct ShardInfo {
  std::string path;
  DataFormat format = DataFormat::kLlmc;  // never kAuto
  uint64_t num_tokens = 0;
  uint64_t data_offset = 0;  // byte offset of token 0 (1024 for llm.c, 0 for nanoGPT)
  // Byte offset of token i, for error messages.
  uint64_t offset_of(uint64_t i) const { return data_offset + 2 * i; }
};

// Checks the header and the size. With kAuto, a file starting with the llm.c magic is an llm.c
// shard; a file whose first 1024 bytes look like an llm.c header (ints 3..255 all zero) but
// whose magic is wrong is reported as a bad llm.c shard; anything else is read as nanoGPT.
ShardInfo inspect_shard(const std::string& path, DataFormat format = DataFormat::kAuto);

// Throws FileError naming the first token >= vocab_size among tokens [first, first + n) of a
// file, with its byte offset.
void check_token_range(const ShardInfo& info, const uint16_t* tokens, uint64_t first, uint64_t n, int vocab_size);

// Maps the file and checks every token against vocab_size (check_token_range over the whole
// file): one linear pass at memory speed, or disk speed for a file not in the page cache (see
// dataloader.h for the figures).
void check_shard_tokens(const ShardInfo& info, int vocab_size);

// A memory-mapped token file; tokens() points at token 0.
class ShardView {
 public:
  ShardView() = default;
  explicit ShardView(const ShardInfo& info);
  const ShardInfo& info() const { return info_; }
  const uint16_t* tokens() const { return reinterpret_cast<const uint16_t*>(file_.data() + info_.data_offset); }
  uint64_t size() const { return info_.num_tokens; }
  bool is_open() const { return file_.is_open(); }
  void advise_sequential() const { file_.advise_sequential(); }

 private:
  ShardInfo info_;
  MappedFile file_;
};

// Reads and fully validates a file (every token < vocab_size).
std::vector<uint16_t> read_shard(const std::string& path, DataFormat format, int vocab_size,
                                 ShardInfo* info_out = nullptr);

// Writes a whole file at once (atomically). llm.c shards hold at most 2^31 - 1 tokens.
void write_shard(const std::string& path, DataFormat format, const uint16_t* tokens, size_t n);

// Streams tokens into a numbered series of files for prepro:
//   llmc:    DIR/<split>_000000.bin, _000001.bin, ... each with at most `shard_tokens` tokens;
//   nanogpt: DIR/<split>.bin, one file (shard_tokens is ignored).
// Files are written under a .tmp name and renamed when complete.
class ShardWriter {
 public:
  ShardWriter(std::string dir, std::string split, DataFormat format, uint64_t shard_tokens);
  ~ShardWriter();  // removes an unfinished .tmp file
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Appends ids; throws std::out_of_range for an id outside [0, 65535] (uint16 files).
  void append(const int32_t* ids, size_t n);
  // Closes the current file. Returns every file written, in order.
  std::vector<std::string> finish();
  uint64_t tokens_written() const { return total_; }

 private:
  void open_next();
  void close_current();
  std::string dir_, split_;
  DataFormat format_;
  uint64_t shard_tokens_;
  std::FILE* file_ = nullptr;
  std::string current_path_;
  uint64_t in_current_ = 0;
  uint64_t total_ = 0;
  std::vector<std::string> written_;
  std::vector<uint16_t> buf_;
};

}  // namespace gpt2
