// Small file helpers shared by the tokenizer, shard and loader code. Every failure is a
// FileError naming the path and the system's reason.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gpt2 {

// A read-only memory map of a whole file. An empty file maps to data() == nullptr, size() == 0.
class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path);  // throws FileError
  ~MappedFile();
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  bool is_open() const { return !path_.empty(); }
  // Tells the kernel the file will be read front to back (a hint; errors are ignored).
  void advise_sequential() const;

 private:
  void release();
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Reads a whole file into a string. `hint` goes into the FileError when the file is missing.
std::string read_file(const std::string& path, const std::string& hint = "");

// The size of a file in bytes; throws FileError when it cannot be stat'ed or is not a file.
uint64_t file_size(const std::string& path, const std::string& hint = "");

// Writes `bytes` to `path` through a temporary file and a rename, so readers never see a
// half-written file. Throws FileError.
void write_file_atomic(const std::string& path, std::string_view bytes);

}  // namespace gpt2
