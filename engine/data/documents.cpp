// Document reading for prepro; see documents.h.
#include "engine/data/documents.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string_view>

#include "engine/data/tokenizer.h"
#include "engine/util/errors.h"
#include "engine/util/file_io.h"

namespace gpt2 {
namespace fs = std::filesystem;

bool DocumentReader::is_jsonl(const std::string& path) {
  const std::string ext = fs::path(path).extension().string();
  return ext == ".jsonl" || ext == ".JSONL";
}

DocumentReader::DocumentReader(const std::vector<std::string>& inputs, size_t piece_bytes)
    : piece_bytes_(piece_bytes < 4096 ? 4096 : piece_bytes) {
  if (inputs.empty()) throw ConfigError("--input", "no input paths given");
  for (const std::string& in : inputs) {
    std::error_code ec;
    const fs::file_status st = fs::status(in, ec);
    if (ec || !fs::exists(st)) throw FileError(in, "does not exist");
    if (fs::is_directory(st)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(in, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (!name.empty() && name[0] == '.') {
          if (it->is_directory()) it.disable_recursion_pending();
          continue;
        }
        if (it->is_regular_file()) found.push_back(it->path().string());
      }
      if (ec) throw FileError(in, "cannot list directory: " + ec.message());
      if (found.empty()) throw FileError(in, "is a directory with no files in it");
      std::sort(found.begin(), found.end());
      files_.insert(files_.end(), found.begin(), found.end());
    } else {
      files_.push_back(in);
    }
  }
  for (const std::string& f : files_) total_bytes_ += file_size(f);
}

bool DocumentReader::plain_files_only() const {
  return std::none_of(files_.begin(), files_.end(), [](const std::string& f) { return is_jsonl(f); });
}

bool DocumentReader::next(std::string& text, bool& starts_document) {
  while (file_index_ < files_.size()) {
    if (!is_jsonl(files_[file_index_])) return next_plain(text, starts_document);
    if (next_jsonl(text)) {
      starts_document = true;
      return true;
    }
  }
  return false;
}

bool DocumentReader::next_plain(std::string& text, bool& starts_document) {
  const std::string& path = files_[file_index_];
  if (!plain_.is_open()) {
    plain_.open(path, std::ios::binary);
    if (!plain_) throw FileError(path, "cannot open");
    plain_size_ = file_size(path);
    plain_pos_ = 0;
    carry_.clear();
    at_doc_start_ = true;
  }
  std::string buf;
  buf.swap(carry_);
  for (;;) {
    const uint64_t want = std::min<uint64_t>(piece_bytes_, plain_size_ - plain_pos_);
    if (want > 0) {
      const size_t old = buf.size();
      buf.resize(old + size_t(want));
      plain_.read(&buf[old], std::streamsize(want));
      const auto got = uint64_t(plain_.gcount());
      if (got != want) {
        throw FileError(
            path, "read failed at byte offset " + std::to_string(plain_pos_ + got) + " (file changed while reading?)");
      }
      plain_pos_ += got;
    }
    if (plain_pos_ >= plain_size_) break;  // the end of the file
    // Hand out everything up to the last safe cut; keep the rest for the next piece. Without a
    // cut in the buffer, read more.
    size_t p = buf.size() >= 2 ? buf.rfind('\n', buf.size() - 2) : std::string::npos;
    while (p != std::string::npos && p > 0 && !Tokenizer::is_safe_cut(buf, p)) {
      p = buf.rfind('\n', p - 1);
    }
    if (p != std::string::npos && p > 0) {
      carry_.assign(buf, p, std::string::npos);
      buf.resize(p);
      break;
    }
  }
  starts_document = at_doc_start_;
  at_doc_start_ = false;
  if (plain_pos_ >= plain_size_ && carry_.empty()) {
    plain_.close();
    plain_.clear();
    ++file_index_;
  }
  bytes_read_ += buf.size();
  text.swap(buf);
  return true;
}

bool DocumentReader::next_jsonl(std::string& text) {
  const std::string& path = files_[file_index_];
  if (!jsonl_.is_open()) {
    jsonl_.open(path, std::ios::binary);
    if (!jsonl_) throw FileError(path, "cannot open");
    jsonl_line_ = 0;
    jsonl_offset_ = 0;
  }
  std::string line;
  while (std::getline(jsonl_, line)) {
    const uint64_t offset = jsonl_offset_;
    ++jsonl_line_;
    jsonl_offset_ += line.size() + 1;
    bytes_read_ += line.size() + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = "line " + std::to_string(jsonl_line_) + " (byte offset " + std::to_string(offset) + ")";
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw FileError(path, where + " is not valid JSON: " + e.what());
    }
    auto it = j.is_object() ? j.find("text") : j.end();
    if (!j.is_object() || it == j.end() || !it->is_string()) {
      throw FileError(path, where + " has no string field \"text\"");
    }
    text = it->get<std::string>();
    return true;
  }
  if (jsonl_.bad()) {
    throw FileError(path, "read failed at byte offset " + std::to_string(jsonl_offset_));
  }
  jsonl_.close();
  jsonl_.clear();
  ++file_index_;
  return false;
}

uint64_t next_line_start(const std::vector<std::string>& files, uint64_t from) {
  uint64_t file_start = 0;
  for (size_t k = 0; k < files.size(); ++k) {
    const uint64_t size = file_size(files[k]);
    const uint64_t file_end = file_start + size;
    if (from >= file_end) {
      file_start = file_end;
      continue;
    }
    if (from == file_start) return from;
    // The '\n' that ends the line holding byte from - 1.
    std::ifstream f(files[k], std::ios::binary);
    if (!f) throw FileError(files[k], "cannot open");
    f.seekg(std::streamoff(from - 1 - file_start));
    std::string buf(size_t{1} << 20, '\0');
    uint64_t pos = from - 1;
    while (f) {
      f.read(&buf[0], std::streamsize(buf.size()));
      const size_t got = size_t(f.gcount());
      const size_t nl = std::string_view(buf.data(), got).find('\n');
      if (nl != std::string_view::npos) {
        pos += nl + 1;
        break;
      }
      pos += got;
    }
    // pos is the line start, or the end of this file (the start of the next one).
    uint64_t total = file_end;
    for (size_t r = k + 1; r < files.size(); ++r) total += file_size(files[r]);
    return pos < total ? pos : from;
  }
  return from;
}

}  // namespace gpt2
