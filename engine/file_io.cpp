// File helpers: mmap, whole-file reads, atomic writes. See file_io.h.
#include "engine/file_io.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "engine/errors.h"

namespace gpt2 {
namespace {

std::string sys_reason() { return std::strerror(errno); }

// Opens `path` read-only and stats it; the caller closes the descriptor.
int open_regular(const std::string& path, const std::string& hint, uint64_t* size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const bool missing = errno == ENOENT;
    throw FileError(path, "cannot open: " + sys_reason(), missing ? hint : "");
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    std::string why = sys_reason();
    ::close(fd);
    throw FileError(path, "cannot stat: " + why);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw FileError(path, S_ISDIR(st.st_mode) ? "is a directory, expected a file"
                                              : "is not a regular file");
  }
  *size = uint64_t(st.st_size);
  return fd;
}

}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
  uint64_t size = 0;
  int fd = open_regular(path, "", &size);
  size_ = size_t(size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      std::string why = sys_reason();
      ::close(fd);
      throw FileError(path, "cannot memory-map " + std::to_string(size_) + " bytes: " + why);
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping keeps the file alive
}

MappedFile::~MappedFile() { release(); }

void MappedFile::release() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
  path_.clear();
}

MappedFile::MappedFile(MappedFile&& o) noexcept
    : path_(std::move(o.path_)), data_(o.data_), size_(o.size_) {
  o.data_ = nullptr;
  o.size_ = 0;
  o.path_.clear();
}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    release();
    path_ = std::move(o.path_);
    data_ = o.data_;
    size_ = o.size_;
    o.data_ = nullptr;
    o.size_ = 0;
    o.path_.clear();
  }
  return *this;
}

void MappedFile::advise_sequential() const {
  if (data_) ::madvise(const_cast<uint8_t*>(data_), size_, MADV_SEQUENTIAL);
}

std::string read_file(const std::string& path, const std::string& hint) {
  uint64_t size = 0;
  int fd = open_regular(path, hint, &size);
  std::string out;
  out.resize(size_t(size));
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(fd, &out[got], out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string why = n < 0 ? sys_reason() : "file shrank while reading";
      ::close(fd);
      throw FileError(path, "read failed at byte offset " + std::to_string(got) + ": " + why);
    }
    got += size_t(n);
  }
  ::close(fd);
  return out;
}

uint64_t file_size(const std::string& path, const std::string& hint) {
  uint64_t size = 0;
  ::close(open_regular(path, hint, &size));
  return size;
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw FileError(path, "cannot create " + tmp + ": " + sys_reason());
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) {
    std::remove(tmp.c_str());
    throw FileError(path, "write failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = sys_reason();
    std::remove(tmp.c_str());
    throw FileError(path, "cannot rename " + tmp + " into place: " + why);
  }
}

}  // namespace gpt2
