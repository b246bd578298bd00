// Shared by the loader fuzz targets: the input goes to a scratch file in a directory of its own
// (per process, so parallel fuzzing jobs do not collide, and so nothing beside the file, such as
// a config.json, is picked up by accident), and a FileError must name that file. The directory
// is in /dev/shm where there is one: every input is written and read back, and on a disk-backed
// /tmp that costs milliseconds, far more than the loaders.
#pragma once
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "engine/util/errors.h"

namespace gpt2::fuzz {

// <base>/gpt2_fuzz_<tag>_<pid>, created once and removed with its files at a normal exit (a
// crashing input is saved by libFuzzer anyway); base is /dev/shm when writable, else /tmp.
inline const std::string& scratch_dir(const char* tag) {
  static char at_exit[512];  // plain storage: still valid when the atexit handler runs
  static const std::string d = [tag] {
    const std::string base = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    std::string p = base + "/gpt2_fuzz_" + tag + "_" + std::to_string(::getpid());
    ::mkdir(p.c_str(), 0755);
    std::snprintf(at_exit, sizeof at_exit, "%s", p.c_str());
    std::atexit([] {
      if (DIR* dir = ::opendir(at_exit)) {
        while (const dirent* e = ::readdir(dir))
          if (e->d_name[0] != '.') ::unlink((std::string(at_exit) + "/" + e->d_name).c_str());
        ::closedir(dir);
      }
      ::rmdir(at_exit);
    });
    return p;
  }();
  return d;
}

// Writes bytes to dir/name and returns the path ("" when it cannot be written).
inline std::string write_scratch(const std::string& dir, const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = dir + "/" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return "";
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
  return path;
}

// A loader's FileError must say which file it is about: its path starts with the scratch
// directory (the file itself, "file:line", or a file beside it).
inline void check_names_file(const FileError& e, const std::string& dir) {
  if (e.path().rfind(dir, 0) != 0) {
    std::fprintf(stderr, "FileError does not name the file under %s: %s\n", dir.c_str(), e.what());
    std::abort();
  }
}

}  // namespace gpt2::fuzz
