// Reads documents for prepro from the paths a user gives:
//   - a plain file: the whole file is one document (raw bytes, any encoding);
//   - a .jsonl file: one JSON object per line, each with a string field "text" (one document
//     per line; blank lines are skipped);
//   - a directory: every regular file below it, recursively, in sorted path order, each read as
//     above (names starting with '.' are skipped).
//
// Large plain files are streamed: a document is handed out in pieces of about `piece_bytes`,
// cut only where the tokenizer allows (Tokenizer::is_safe_cut), so encoding the pieces one after
// another gives exactly the ids of the whole document, and memory stays bounded.
//
// Errors are FileErrors naming the file and, for JSONL, the line and byte offset.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace gpt2 {

class DocumentReader {
 public:
  // Expands the inputs up front (so the total size is known for the progress bar). Throws
  // FileError for a missing path or a directory with no files.
  explicit DocumentReader(const std::vector<std::string>& inputs, size_t piece_bytes = size_t{64} << 20);

  // Reads the next piece of text. `starts_document` is true for the first piece of each
  // document. Returns false after the last piece.
  bool next(std::string& text, bool& starts_document);

  uint64_t total_bytes() const { return total_bytes_; }
  uint64_t bytes_read() const { return bytes_read_; }
  const std::vector<std::string>& files() const { return files_; }
  // True when every input is a plain file (then each file is exactly one document).
  bool plain_files_only() const;
  static bool is_jsonl(const std::string& path);

 private:
  bool next_plain(std::string& text, bool& starts_document);
  bool next_jsonl(std::string& text);

  std::vector<std::string> files_;
  size_t piece_bytes_;
  uint64_t total_bytes_ = 0;
  uint64_t bytes_read_ = 0;
  size_t file_index_ = 0;
  // Plain-file state.
  std::ifstream plain_;
  uint64_t plain_size_ = 0;
  uint64_t plain_pos_ = 0;  // bytes read from the file so far (including carry_)
  std::string carry_;       // read but not yet handed out (after the last safe cut)
  bool at_doc_start_ = true;
  // JSONL state.
  std::ifstream jsonl_;
  uint64_t jsonl_line_ = 0;
  uint64_t jsonl_offset_ = 0;
};

// Offsets count through `files` as one stream of bytes (file k starts where file k - 1 ends).
// Returns the first line start at or after `from`: the start of a file, or the byte after a
// '\n'. Without one below the end of the stream, returns `from`. Reads from `from` to the next
// '\n' (or the end of that file).
uint64_t next_line_start(const std::vector<std::string>& files, uint64_t from);

}  // namespace gpt2
