// llm.c shards and nanoGPT .bin files: inspect, validate, map, read, write. See data_shard.h.
#include "engine/data/data_shard.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <stdexcept>

#include "engine/util/errors.h"

namespace gpt2 {
namespace {

std::string at(uint64_t offset) { return " at byte offset " + std::to_string(offset); }

// Reads up to `n` bytes from the start of a file.
size_t read_prefix(const std::string& path, void* buf, size_t n) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw FileError(path, std::string("cannot open: ") + std::strerror(errno));
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, static_cast<char*>(buf) + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      std::string why = std::strerror(errno);
      ::close(fd);
      throw FileError(path, "read failed" + at(got) + ": " + why);
    }
    if (r == 0) break;
    got += size_t(r);
  }
  ::close(fd);
  return got;
}

ShardInfo inspect_nanogpt(const std::string& path, uint64_t size) {
  if (size % 2 != 0) {
    throw FileError(path, "has an odd size (" + std::to_string(size) +
                              " bytes), so it is not whole uint16 tokens: the last byte" + at(size - 1) +
                              " is cut off");
  }
  return ShardInfo{path, DataFormat::kNanoGpt, size / 2, 0};
}

ShardInfo inspect_llmc(const std::string& path, uint64_t size, const int32_t* header) {
  if (size >= 4 && header[0] != kShardMagic) {
    throw FileError(path, "bad magic " + std::to_string(header[0]) + at(0) + ", expected " +
                              std::to_string(kShardMagic) +
                              " (not an llm.c shard; for a raw nanoGPT .bin use "
                              "--data-format nanogpt)");
  }
  if (size < kShardHeaderBytes) {
    throw FileError(path, "is " + std::to_string(size) +
                              " bytes, shorter than the 1024-byte llm.c shard header (truncated" + at(size) + ")");
  }
  if (header[1] != kShardVersion) {
    throw FileError(path, "unsupported shard version " + std::to_string(header[1]) + at(4) + ", expected " +
                              std::to_string(kShardVersion));
  }
  if (header[2] < 0) {
    throw FileError(path, "negative token count " + std::to_string(header[2]) + at(8));
  }
  const uint64_t n = uint64_t(header[2]);
  const uint64_t expected = kShardHeaderBytes + 2 * n;
  if (size < expected) {
    throw FileError(path, "is shorter than its header says: " + std::to_string(n) + " tokens need " +
                              std::to_string(expected) + " bytes, but the file" + " ends" + at(size) + " (truncated)");
  }
  if (size > expected) {
    throw FileError(path, "has " + std::to_string(size - expected) + " unexpected bytes after its last token" +
                              at(expected) + " (header says " + std::to_string(n) + " tokens)");
  }
  return ShardInfo{path, DataFormat::kLlmc, n, kShardHeaderBytes};
}

}  // namespace

DataFormat parse_data_format(const std::string& text, const std::string& flag) {
  if (text == "auto") return DataFormat::kAuto;
  if (text == "llmc") return DataFormat::kLlmc;
  if (text == "nanogpt") return DataFormat::kNanoGpt;
  throw ConfigError(flag, "unknown data format '" + text + "' (expected auto, llmc or nanogpt)");
}

const char* data_format_name(DataFormat f) {
  switch (f) {
    case DataFormat::kAuto: return "auto";
    case DataFormat::kLlmc: return "llmc";
    case DataFormat::kNanoGpt: return "nanogpt";
  }
  return "?";
}

ShardInfo inspect_shard(const std::string& path, DataFormat format) {
  const uint64_t size = file_size(path);
  if (size == 0) {
    throw FileError(path, "is empty (0 bytes): no header and no tokens" + at(0),
                    "re-create it with prepro or data/fetch_corpus.sh");
  }
  int32_t header[kShardHeaderInts] = {};
  const size_t got = read_prefix(path, header, sizeof header);
  if (format == DataFormat::kNanoGpt) {
    // Read as raw tokens, an llm.c shard's header would be trained on as if it were text.
    if (got >= 8 && header[0] == kShardMagic && header[1] == kShardVersion)
      throw FileError(path, "starts with the llm.c shard header (magic " + std::to_string(kShardMagic) +
                                "), not raw nanoGPT tokens: use --data-format llmc or auto");
    return inspect_nanogpt(path, size);
  }
  if (format == DataFormat::kAuto) {
    bool llmc_like = got >= 4 && header[0] == kShardMagic;
    if (!llmc_like && got == sizeof header) {
      // A header's padding is all zeros; 506 leading '!' tokens would be a very odd nanoGPT file.
      bool zero_pad = true;
      for (size_t i = 3; i < kShardHeaderInts && zero_pad; ++i) zero_pad = header[i] == 0;
      llmc_like = zero_pad;
    }
    if (!llmc_like) return inspect_nanogpt(path, size);
  }
  return inspect_llmc(path, size, header);
}

void check_token_range(const ShardInfo& info, const uint16_t* tokens, uint64_t first, uint64_t n, int vocab_size) {
  if (vocab_size <= 0 || vocab_size > 65535) return;  // no limit, or every uint16 is valid
  const uint16_t limit = uint16_t(vocab_size);
  // Branch-free scan first: the common case is a clean file.
  uint16_t worst = 0;
  for (uint64_t i = 0; i < n; ++i) worst = tokens[i] > worst ? tokens[i] : worst;
  if (worst < limit) return;
  for (uint64_t i = 0; i < n; ++i) {
    if (tokens[i] >= limit) {
      throw FileError(info.path,
                      "token " + std::to_string(tokens[i]) + at(info.offset_of(first + i)) + " (token index " +
                          std::to_string(first + i) + ") is not below the vocab size " + std::to_string(vocab_size),
                      "the file is damaged or was made with another tokenizer: re-create it with prepro, or "
                      "for another tokenizer give train_gpt2 a --vocab above its largest token id");
    }
  }
}

void check_shard_tokens(const ShardInfo& info, int vocab_size) {
  if (vocab_size <= 0 || vocab_size > 65535 || info.num_tokens == 0) return;
  const ShardView view(info);
  view.advise_sequential();
  check_token_range(info, view.tokens(), 0, view.size(), vocab_size);
}

ShardView::ShardView(const ShardInfo& info) : info_(info), file_(info.path) {
  // The file may have changed since it was inspected.
  if (file_.size() != info.data_offset + 2 * info.num_tokens) {
    throw FileError(info.path, "changed size since it was opened (now " + std::to_string(file_.size()) + " bytes)");
  }
}

std::vector<uint16_t> read_shard(const std::string& path, DataFormat format, int vocab_size, ShardInfo* info_out) {
  ShardInfo info = inspect_shard(path, format);
  ShardView view(info);
  std::vector<uint16_t> tokens(view.tokens(), view.tokens() + view.size());
  check_token_range(info, tokens.data(), 0, tokens.size(), vocab_size);
  if (info_out) *info_out = info;
  return tokens;
}

void write_shard(const std::string& path, DataFormat format, const uint16_t* tokens, size_t n) {
  std::string bytes;
  if (format == DataFormat::kLlmc) {
    if (n > size_t(INT32_MAX)) {
      throw FileError(path, "cannot hold " + std::to_string(n) + " tokens: an llm.c shard's count is an int32");
    }
    int32_t header[kShardHeaderInts] = {};
    header[0] = kShardMagic;
    header[1] = kShardVersion;
    header[2] = int32_t(n);
    bytes.assign(reinterpret_cast<const char*>(header), sizeof header);
  } else if (format != DataFormat::kNanoGpt) {
    throw std::invalid_argument("write_shard: the format must be llmc or nanogpt");
  }
  bytes.append(reinterpret_cast<const char*>(tokens), n * sizeof(uint16_t));
  write_file_atomic(path, bytes);
}

// ---- ShardWriter ----------------------------------------------------------------------------

ShardWriter::ShardWriter(std::string dir, std::string split, DataFormat format, uint64_t shard_tokens)
    : dir_(std::move(dir)), split_(std::move(split)), format_(format), shard_tokens_(shard_tokens) {
  if (format_ == DataFormat::kAuto) throw std::invalid_argument("ShardWriter needs llmc or nanogpt");
  if (format_ == DataFormat::kLlmc && (shard_tokens_ == 0 || shard_tokens_ > uint64_t(INT32_MAX))) {
    throw ConfigError("--shard-tokens",
                      "must be between 1 and 2147483647 (an llm.c shard's "
                      "token count is an int32), got " +
                          std::to_string(shard_tokens_));
  }
  buf_.reserve(1 << 16);
}

ShardWriter::~ShardWriter() {
  if (file_) {
    std::fclose(file_);
    std::remove((current_path_ + ".tmp").c_str());
  }
}

void ShardWriter::open_next() {
  if (format_ == DataFormat::kLlmc) {
    char name[64];
    std::snprintf(name, sizeof name, "_%06zu.bin", written_.size());
    current_path_ = dir_ + "/" + split_ + name;
  } else {
    current_path_ = dir_ + "/" + split_ + ".bin";
  }
  const std::string tmp = current_path_ + ".tmp";
  // Never through a link planted at the temporary name.
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  file_ = fd >= 0 ? ::fdopen(fd, "wb") : nullptr;
  if (!file_) {
    const std::string why = errno == ELOOP ? "it is a symbolic link; refusing to follow it" : std::strerror(errno);
    if (fd >= 0) ::close(fd);
    throw FileError(tmp, "cannot create: " + why);
  }
  in_current_ = 0;
  if (format_ == DataFormat::kLlmc) {
    // The count is filled in when the shard is closed.
    int32_t header[kShardHeaderInts] = {};
    if (std::fwrite(header, sizeof header, 1, file_) != 1) {
      throw FileError(tmp, "write failed (disk full?)");
    }
  }
}

void ShardWriter::close_current() {
  if (!file_) return;
  const std::string tmp = current_path_ + ".tmp";
  bool ok = true;
  if (format_ == DataFormat::kLlmc) {
    int32_t header[kShardHeaderInts] = {};
    header[0] = kShardMagic;
    header[1] = kShardVersion;
    header[2] = int32_t(in_current_);
    ok = std::fseek(file_, 0, SEEK_SET) == 0 && std::fwrite(header, sizeof header, 1, file_) == 1;
  }
  ok = (std::fclose(file_) == 0) && ok;
  file_ = nullptr;
  if (!ok) throw FileError(tmp, "write failed (disk full?)");
  if (std::rename(tmp.c_str(), current_path_.c_str()) != 0) {
    throw FileError(current_path_, std::string("cannot rename from .tmp: ") + std::strerror(errno));
  }
  written_.push_back(current_path_);
}

void ShardWriter::append(const int32_t* ids, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (!file_) open_next();
    uint64_t room = format_ == DataFormat::kLlmc ? shard_tokens_ - in_current_ : n - i;
    const size_t take = size_t(std::min<uint64_t>(room, n - i));
    buf_.resize(take);
    for (size_t k = 0; k < take; ++k) {
      const int32_t id = ids[i + k];
      if (id < 0 || id > 65535) {
        throw std::out_of_range("token id " + std::to_string(id) + " does not fit the uint16 token files");
      }
      buf_[k] = uint16_t(id);
    }
    if (std::fwrite(buf_.data(), sizeof(uint16_t), take, file_) != take) {
      throw FileError(current_path_ + ".tmp", "write failed (disk full?)");
    }
    in_current_ += take;
    total_ += take;
    i += take;
    if (format_ == DataFormat::kLlmc && in_current_ == shard_tokens_) close_current();
  }
}

std::vector<std::string> ShardWriter::finish() {
  close_current();
  return written_;
}

}  // namespace gpt2
