// Small file helpers shared by every layer: memory maps, whole-file reads, and the one durable
// writer (AtomicFile). Every failure is a FileError naming the path and the system's reason.
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

// The one durable writer: writes to a temporary file in the target's directory, then fsync,
// rename over `path`, fsync the directory. A crash at any moment leaves either the old file or the
// new one, never a torn one. The temporary's name, `path`.PID-N.tmp, is unique to this process
// and this writer, and it is created with O_CREAT|O_EXCL|O_NOFOLLOW: an existing file or link at
// that name is an error naming it, never followed or overwritten. A path that exists and is not
// a regular file (a symbolic link, device, FIFO, directory) is refused (FileError) before anything
// is written: the rename would replace it.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();  // without commit(): the temporary file is removed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(const void* data, size_t bytes);
  void commit();
  const std::string& temp_path() const { return tmp_; }
  int64_t bytes_written() const { return written_; }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  int64_t written_ = 0;
};
void fsync_directory(const std::string& dir);

// Writes `bytes` to `path` through an AtomicFile. Throws FileError.
void write_file_atomic(const std::string& path, std::string_view bytes);

// The directory part of a path ("." when there is none).
std::string dir_of(const std::string& path);

// True when `s` ends with `suffix` (a file name's extension: ".safetensors", ".tmp").
inline bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The suffix AtomicFile gives the temporary files of this process: ".PID-" (then N.tmp).
std::string temp_file_marker();

// Output checks, run before any work, create nothing that stays behind. check_output_dir: `dir`
// is a directory that takes a probe file, or where it does not exist yet, its nearest existing
// ancestor is a directory that does (so that create_output_dir can make it). check_output_file
// also needs the file itself, when it exists, to be a regular file that opens for appending.
// A file written whole through AtomicFile (`replaced`) must not be a symbolic link, which the
// rename would replace. create_output_dir makes the directory (mkdir -p) once every check has
// passed, and probes it. Failure: ConfigError naming `flag` and the path with the system's reason.
void check_output_dir(const std::string& dir, const std::string& flag);
void create_output_dir(const std::string& dir, const std::string& flag);
void check_output_file(const std::string& path, const std::string& flag, bool replaced = false);

// True when both paths name the same existing file (same device and inode: links, "./x", "x").
bool same_file(const std::string& a, const std::string& b);

// Flushes std::cout and C stdout and checks that every write to them reached the file (a full
// disk, a closed pipe): throws FileError("standard output", ...) when one failed. Tools call it
// at each flush and before they exit 0.
void flush_stdout_checked();

// 64-bit FNV-1a, for checksums.
uint64_t fnv1a64(const void* data, size_t bytes, uint64_t h = 0xcbf29ce484222325ull);

}  // namespace gpt2
