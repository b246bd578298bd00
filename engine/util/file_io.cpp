// File helpers: mmap, whole-file reads, the durable writer. See file_io.h.
#include "engine/util/file_io.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "engine/util/errors.h"

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
    throw FileError(path, S_ISDIR(st.st_mode) ? "is a directory, expected a file" : "is not a regular file");
  }
  *size = static_cast<uint64_t>(st.st_size);
  return fd;
}

}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
  uint64_t size = 0;
  int fd = open_regular(path, "", &size);
  size_ = static_cast<size_t>(size);
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

MappedFile::MappedFile(MappedFile&& o) noexcept : path_(std::move(o.path_)), data_(o.data_), size_(o.size_) {
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
  out.resize(static_cast<size_t>(size));
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(fd, &out[got], out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string why = n < 0 ? sys_reason() : "file shrank while reading";
      ::close(fd);
      throw FileError(path, "read failed at byte offset " + std::to_string(got) + ": " + why);
    }
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  return out;
}

uint64_t file_size(const std::string& path, const std::string& hint) {
  uint64_t size = 0;
  ::close(open_regular(path, hint, &size));
  return size;
}

std::string dir_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

namespace {

void make_dirs(const std::string& dir, const std::string& flag) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw ConfigError(flag, dir + ": exists but is not a directory");
    return;
  }
  std::string part;
  for (size_t i = 0; i <= dir.size(); ++i) {
    if ((i == dir.size() || dir[i] == '/') && !part.empty() && ::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST)
      throw ConfigError(flag, dir + ": cannot create the directory: " + sys_reason());
    if (i < dir.size()) part.push_back(dir[i]);
  }
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw ConfigError(flag, dir + ": cannot create the directory: " + sys_reason());
}

// Writes and removes a probe file in `dir`. `named` is the path the error names (the output's
// own directory, or one that does not exist yet and would be created in `dir`).
void probe_dir(const std::string& dir, const std::string& flag, const std::string& named) {
  const std::string where = named == dir ? named + ": cannot write into the directory: "
                                         : named + ": cannot create the directory in " + dir + ": ";
  const std::string probe = dir + "/.write_probe." + std::to_string(::getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) throw ConfigError(flag, where + sys_reason());
  const char byte = '\n';
  const bool wrote = ::write(fd, &byte, 1) == 1;
  const std::string reason = wrote ? "" : sys_reason();
  const bool closed = ::close(fd) == 0;
  const std::string close_reason = closed ? "" : sys_reason();
  ::unlink(probe.c_str());
  if (!wrote) throw ConfigError(flag, where + reason);
  if (!closed) throw ConfigError(flag, where + close_reason);
}

}  // namespace

void check_output_dir(const std::string& dir, const std::string& flag) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw ConfigError(flag, dir + ": exists but is not a directory");
    probe_dir(dir, flag, dir);
    return;
  }
  if (errno != ENOENT) throw ConfigError(flag, dir + ": cannot create the directory: " + sys_reason());
  // It does not exist yet: its nearest existing ancestor must be a directory that takes files.
  std::string up = dir;
  while (true) {
    const std::string parent = dir_of(up);
    if (parent == up) break;
    up = parent;
    if (::stat(up.c_str(), &st) == 0) break;
    if (errno != ENOENT) throw ConfigError(flag, dir + ": cannot create the directory: " + sys_reason());
  }
  if (!S_ISDIR(st.st_mode))
    throw ConfigError(flag, dir + ": cannot create the directory: " + up + " is not a directory");
  probe_dir(up, flag, dir);
}

void create_output_dir(const std::string& dir, const std::string& flag) {
  make_dirs(dir, flag);
  probe_dir(dir, flag, dir);
}

void check_output_file(const std::string& path, const std::string& flag, bool replaced) {
  struct stat st;
  if (replaced && ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
    throw ConfigError(flag, path + ": is a symbolic link; name the file it points to, or remove the link");
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) throw ConfigError(flag, path + ": exists but is not a regular file");
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) throw ConfigError(flag, path + ": cannot open for writing: " + sys_reason());
    ::close(fd);
  }
  const std::string dir = dir_of(path);
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw ConfigError(flag, path + ": the directory " + dir + " does not exist");
  probe_dir(dir, flag, dir);
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

std::string temp_file_marker() { return "." + std::to_string(::getpid()) + "-"; }

namespace {

// A name for the next temporary file of this process: `path`.PID-N.tmp.
std::string unique_temp_name(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  return path + temp_file_marker() + std::to_string(counter.fetch_add(1)) + ".tmp";
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), tmp_(unique_temp_name(path_)) {
  // The rename in commit() would replace whatever the path names: never a link (whose target
  // the user may think is written), a device (/dev/full, /dev/null), a FIFO or a directory.
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode))
      throw FileError(path_,
                      "is a symbolic link; refusing to replace it (name the file it points to, or remove the link)");
    if (!S_ISREG(st.st_mode))
      throw FileError(path_,
                      "exists and is not a regular file (a device, FIFO, socket or directory); refusing to "
                      "replace it");
  }
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    const std::string why = sys_reason();
    const bool is_link = ::lstat(tmp_.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
    throw FileError(path_, "cannot create the temporary file " + tmp_ + ": " +
                               (is_link ? std::string("a symbolic link is in its place; refusing to follow it") : why));
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void AtomicFile::write(const void* data, size_t bytes) {
  const auto* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(fd_, p, bytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw FileError(path_, "write to " + tmp_ + " failed: " + sys_reason());
    }
    p += n;
    bytes -= static_cast<size_t>(n);
    written_ += n;
  }
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0) throw FileError(path_, "fsync of " + tmp_ + " failed: " + sys_reason());
  if (::close(fd_) != 0) {
    fd_ = -1;
    ::unlink(tmp_.c_str());
    throw FileError(path_, "close of " + tmp_ + " failed: " + sys_reason());
  }
  fd_ = -1;
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const std::string why = sys_reason();
    ::unlink(tmp_.c_str());
    throw FileError(path_, "cannot rename " + tmp_ + " into place: " + why);
  }
  fsync_directory(dir_of(path_));
}

void fsync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw FileError(dir, "cannot open the directory to fsync it: " + sys_reason());
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0 && errno != EINVAL) throw FileError(dir, "fsync of the directory failed: " + sys_reason());
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  AtomicFile f(path);
  f.write(bytes.data(), bytes.size());
  f.commit();
}

uint64_t fnv1a64(const void* data, size_t bytes, uint64_t h) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < bytes; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

void flush_stdout_checked() {
  std::cout.flush();
  errno = 0;
  const bool c_ok = std::fflush(stdout) == 0 && !std::ferror(stdout);
  const int err = errno;
  if (!std::cout || !c_ok)
    throw FileError("standard output",
                    std::string("cannot write") + (err != 0 ? std::string(": ") + std::strerror(err) : std::string()));
}

}  // namespace gpt2
