// Text -> token files; see prepro.h.
#include "engine/data/prepro.h"

#include <omp.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine/data/documents.h"
#include "engine/data/tokenizer.h"
#include "engine/util/errors.h"
#include "engine/util/file_io.h"
#include "engine/util/units.h"

namespace gpt2 {
namespace fs = std::filesystem;
namespace {

constexpr size_t kBatchBytes = 32u << 20;  // text read per parallel batch
constexpr size_t kBatchDocs = 16384;
constexpr size_t kPieceBytes = 256u << 10;  // long documents are cut into pieces this size

// train_000123.bin, val.bin, and their .tmp leftovers.
bool is_output_name(const std::string& name) {
  std::string n = name;
  if (n.size() > 4 && n.compare(n.size() - 4, 4, ".tmp") == 0) n.resize(n.size() - 4);
  for (const char* split : {"train", "val"}) {
    const std::string s = split;
    if (n == s + ".bin") return true;
    if (n.size() == s.size() + 11 && n.compare(0, s.size() + 1, s + "_") == 0 &&
        n.compare(n.size() - 4, 4, ".bin") == 0) {
      bool digits = true;
      for (size_t i = s.size() + 1; i < n.size() - 4; ++i) digits = digits && std::isdigit(uint8_t(n[i]));
      if (digits) return true;
    }
  }
  return false;
}

// The files a run writes besides the token files.
bool is_manifest_name(const std::string& name) { return name == "prepro.json" || name == "gpt2_tokenizer.bin"; }

// The absolute path with symlinks and "..", resolved as far as the path exists.
fs::path resolved(const std::string& p) {
  std::error_code ec;
  fs::path r = fs::weakly_canonical(fs::absolute(p, ec), ec);
  if (ec) r = fs::path(p).lexically_normal();
  if (r.filename().empty()) r = r.parent_path();  // "dir/" names dir
  return r;
}

// True when `inner` is `outer` or lies below it.
bool is_within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i)
    if (i == inner.end() || *i != *o) return false;
  return true;
}

// The output directory must be apart from the inputs: not an input itself, not inside an input
// directory (its token files would be read as text), and no input may be one of its output files.
void check_inputs_apart(const PreproOptions& opt) {
  const fs::path out = resolved(opt.out_dir);
  for (const std::string& in : opt.inputs) {
    const fs::path p = resolved(in);
    std::error_code ec;
    const bool is_dir = fs::is_directory(p, ec);
    if (p == out)
      throw ConfigError("--out-dir",
                        opt.out_dir + " is also the input " + in + "; write the token files to another directory");
    if (is_dir && is_within(out, p))
      throw ConfigError("--out-dir", opt.out_dir + " is inside the input directory " + in +
                                         ", which would read its token files as text; write them elsewhere");
    const std::string name = p.filename().string();
    if (!is_dir && p.parent_path() == out && (is_output_name(name) || is_manifest_name(name)))
      throw ConfigError("--input", in + " is one of the files prepro writes in --out-dir " + opt.out_dir +
                                       "; write the token files to another directory");
  }
}

// Creates out_dir and returns the token files already in it (train_*.bin, val.bin, their .tmp
// leftovers). Refuses a directory that holds some without --overwrite.
std::vector<fs::path> existing_outputs(const PreproOptions& opt) {
  std::error_code ec;
  fs::create_directories(opt.out_dir, ec);
  if (ec) throw FileError(opt.out_dir, "cannot create directory: " + ec.message());
  std::vector<fs::path> existing;
  for (const auto& e : fs::directory_iterator(opt.out_dir, ec)) {
    if (e.is_regular_file() && is_output_name(e.path().filename().string())) existing.push_back(e.path());
  }
  if (ec) throw FileError(opt.out_dir, "cannot list directory: " + ec.message());
  if (!existing.empty() && !opt.overwrite) {
    throw ConfigError("--overwrite", opt.out_dir + " already holds token files (" +
                                         existing.front().filename().string() +
                                         ", ...); pass --overwrite to replace them");
  }
  return existing;
}

// A hidden directory inside out_dir (same file system, so a rename moves a file in at once; the
// leading '.' keeps it out of a directory input) where a run writes all its files. It is removed
// with whatever is left in it, so a failed run leaves out_dir as it was.
class StagingDir {
 public:
  explicit StagingDir(const std::string& out_dir)
      : path_(out_dir + "/" + kPrefix + std::to_string(static_cast<long long>(::getpid()))) {
    std::error_code ec;
    // Staging directories of runs that were killed: their process is gone.
    for (const auto& e : fs::directory_iterator(out_dir, ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind(kPrefix, 0) != 0) continue;
      const long long pid = std::atoll(name.c_str() + std::strlen(kPrefix));
      if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) fs::remove_all(e.path(), ec);
    }
    fs::remove_all(path_, ec);
    fs::create_directory(path_, ec);
    if (ec) throw FileError(path_, "cannot create directory: " + ec.message());
  }
  ~StagingDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  static constexpr const char* kPrefix = ".prepro-new-";
  std::string path_;
};

// Moves the complete new files from the staging directory into out_dir (token files first,
// prepro.json last), then removes the old token files that no new file replaced. Returns the
// new token files' paths in out_dir, in the order given.
std::vector<std::string> swap_in(const std::string& out_dir, const std::vector<std::string>& staged,
                                 const std::vector<fs::path>& old_files) {
  std::vector<std::string> moved;
  for (const std::string& from : staged) {
    const std::string to = out_dir + "/" + fs::path(from).filename().string();
    std::error_code ec;
    fs::rename(from, to, ec);
    if (ec) throw FileError(to, "cannot move the new file in from " + from + ": " + ec.message());
    moved.push_back(to);
  }
  for (const fs::path& old : old_files) {
    const std::string name = old.filename().string();
    const bool replaced = std::any_of(moved.begin(), moved.end(),
                                      [&](const std::string& m) { return fs::path(m).filename().string() == name; });
    std::error_code ec;
    if (!replaced) fs::remove(old, ec);
    if (ec) throw FileError(old.string(), "cannot remove the old token file: " + ec.message());
  }
  return moved;
}

void validate(const PreproOptions& opt) {
  if (opt.inputs.empty()) throw ConfigError("--input", "give at least one file or directory");
  if (opt.out_dir.empty()) throw ConfigError("--out-dir", "is required");
  if (!(opt.val_fraction >= 0.0 && opt.val_fraction < 1.0)) {
    throw ConfigError("--val-fraction", "must be in [0, 1), got " + std::to_string(opt.val_fraction));
  }
  if (opt.format != DataFormat::kLlmc && opt.format != DataFormat::kNanoGpt) {
    throw ConfigError("--format", "must be llmc or nanogpt");
  }
  if (opt.shard_tokens == 0) throw ConfigError("--shard-tokens", "must be positive");
  if (opt.threads < 0) throw ConfigError("--threads", "must be 0 (all cores) or positive");
  check_inputs_apart(opt);
}

std::vector<std::string> base_names(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const std::string& p : paths) out.push_back(fs::path(p).filename().string());
  return out;
}

}  // namespace

bool is_val_document(uint64_t index, double val_fraction) {
  if (val_fraction <= 0.0) return false;
  return std::floor(double(index + 1) * val_fraction) > std::floor(double(index) * val_fraction);
}

PreproResult run_prepro(const PreproOptions& opt, std::ostream& log) {
  validate(opt);
  const auto t0 = std::chrono::steady_clock::now();
  const Tokenizer tk = Tokenizer::from_dir(opt.tokenizer_dir.empty() ? default_tokenizer_dir() : opt.tokenizer_dir);
  const int32_t eot = tk.eot_token();
  DocumentReader reader(opt.inputs, size_t{16} << 20);
  // An empty input would become a shard holding one EOT token: refused, nothing written.
  if (reader.total_bytes() == 0)
    throw FileError(opt.inputs.size() == 1 ? opt.inputs.front() : reader.files().front(),
                    "is empty: no text to tokenize, so no shard is written");
  const std::vector<fs::path> old_outputs = existing_outputs(opt);
  const StagingDir staging(opt.out_dir);

  PreproResult res;
  res.input_bytes = reader.total_bytes();
  res.threads = opt.threads > 0 ? opt.threads : omp_get_max_threads();
  std::vector<BpeCache> caches(size_t(res.threads));
  ShardWriter train(staging.path(), "train", opt.format, opt.shard_tokens);
  ShardWriter val(staging.path(), "val", opt.format, opt.shard_tokens);
  ProgressBar bar("prepro", reader.total_bytes(), opt.progress);

  // When the document rule can pick no val document (one plain file, or fewer plain files than
  // it needs), the tail of the input is val: the tokens from the first token that starts at or
  // after `tail_cut` on, after an EOT of their own.
  const uint64_t n_files = reader.files().size();
  const bool tail_split =
      opt.val_fraction > 0 && reader.plain_files_only() && std::floor(double(n_files) * opt.val_fraction) == 0;
  uint64_t tail_cut = UINT64_MAX;
  if (tail_split) {
    const uint64_t size = reader.total_bytes();
    const auto from = uint64_t(std::ceil(double(size) * (1.0 - opt.val_fraction)));
    tail_cut = from >= size ? size : next_line_start(reader.files(), from);
  }
  uint64_t input_pos = 0;  // with tail_split: input bytes whose tokens are written
  bool in_tail = false;    // with tail_split: writing to val

  // One batch: pieces of text (whole documents, or parts of long ones), cut again into
  // sub-pieces for the threads.
  struct Piece {
    std::string text;
    bool starts_document;
  };
  struct Job {
    size_t piece, begin, end;
  };
  std::vector<Piece> pieces;
  std::vector<Job> jobs;
  std::vector<std::vector<int32_t>> job_ids;
  uint64_t doc_index = 0;  // documents started so far
  bool more = true;
  while (more) {
    pieces.clear();
    size_t batch_bytes = 0;
    while (batch_bytes < kBatchBytes && pieces.size() < kBatchDocs) {
      Piece p;
      if (!reader.next(p.text, p.starts_document)) {
        more = false;
        break;
      }
      batch_bytes += p.text.size();
      pieces.push_back(std::move(p));
    }
    if (pieces.empty()) break;

    jobs.clear();
    for (size_t d = 0; d < pieces.size(); ++d) {
      size_t begin = 0;
      for (size_t cut : Tokenizer::split_points(pieces[d].text, kPieceBytes)) {
        jobs.push_back(Job{d, begin, cut});
        begin = cut;
      }
      jobs.push_back(Job{d, begin, pieces[d].text.size()});
    }
    job_ids.resize(jobs.size());
    std::exception_ptr failure;
#pragma omp parallel for schedule(dynamic, 1) num_threads(res.threads)
    for (size_t i = 0; i < jobs.size(); ++i) {
      try {
        const Job& jb = jobs[i];
        job_ids[i].clear();
        tk.encode(std::string_view(pieces[jb.piece].text).substr(jb.begin, jb.end - jb.begin), job_ids[i],
                  caches[size_t(omp_get_thread_num())]);
      } catch (...) {
#pragma omp critical
        if (!failure) failure = std::current_exception();
      }
    }
    if (failure) std::rethrow_exception(failure);

    // Write in input order; each document starts with EOT.
    size_t i = 0;
    for (size_t d = 0; d < pieces.size(); ++d) {
      if (pieces[d].starts_document) ++doc_index;
      if (doc_index == 0) ++doc_index;  // defensive: a stream always starts a document
      if (tail_split && pieces[d].starts_document && input_pos >= tail_cut) in_tail = true;
      const bool to_val = tail_split ? in_tail : is_val_document(doc_index - 1, opt.val_fraction);
      ShardWriter& w = to_val ? val : train;
      PreproSplit& split = to_val ? res.val : res.train;
      if (pieces[d].starts_document) {
        w.append(&eot, 1);
        split.documents += 1;
        split.tokens += 1;
      }
      for (; i < jobs.size() && jobs[i].piece == d; ++i) {
        const std::vector<int32_t>& ids = job_ids[i];
        const uint64_t job_bytes = jobs[i].end - jobs[i].begin;
        size_t k = 0;  // ids[0, k) go to w, the rest to val after an EOT
        if (tail_split && !in_tail && input_pos + job_bytes > tail_cut) {
          for (uint64_t at = input_pos; k < ids.size() && at < tail_cut; ++k) at += tk.token_bytes(ids[k]).size();
        } else {
          k = ids.size();
        }
        w.append(ids.data(), k);
        split.tokens += k;
        if (k < ids.size()) {
          in_tail = true;
          val.append(&eot, 1);
          val.append(ids.data() + k, ids.size() - k);
          res.val.documents += 1;
          res.val.tokens += 1 + (ids.size() - k);
        }
        input_pos += job_bytes;
      }
    }
    bar.update(reader.bytes_read(), res.train.tokens + res.val.tokens);
  }
  if (doc_index == 0) throw FileError(opt.inputs.front(), "holds no documents");
  bar.finish();
  res.train.files = train.finish();
  res.val.files = val.finish();
  tk.save_llmc_bin(staging.path() + "/gpt2_tokenizer.bin");
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  nlohmann::json manifest = {
      {"format", data_format_name(opt.format)},
      {"vocab_size", tk.vocab_size()},
      {"eot_token", eot},
      {"val_fraction", opt.val_fraction},
      {"shard_tokens", opt.shard_tokens},
      {"input_bytes", res.input_bytes},
      {"tokenizer", "gpt2_tokenizer.bin"},
      {"train",
       {{"documents", res.train.documents}, {"tokens", res.train.tokens}, {"files", base_names(res.train.files)}}},
      {"val", {{"documents", res.val.documents}, {"tokens", res.val.tokens}, {"files", base_names(res.val.files)}}},
  };
  write_file_atomic(staging.path() + "/prepro.json", manifest.dump(2) + "\n");

  // Every new file is complete: move them in, then drop the old token files left over.
  std::vector<std::string> staged = res.train.files;
  staged.insert(staged.end(), res.val.files.begin(), res.val.files.end());
  staged.push_back(staging.path() + "/gpt2_tokenizer.bin");
  staged.push_back(staging.path() + "/prepro.json");
  const std::vector<std::string> moved = swap_in(opt.out_dir, staged, old_outputs);
  res.train.files.assign(moved.begin(), moved.begin() + res.train.files.size());
  res.val.files.assign(moved.begin() + res.train.files.size(), moved.end() - 2);

  char speed[64];
  std::snprintf(speed, sizeof speed, "%.2f s, %.1f MB/s, %d thread%s", res.seconds,
                double(res.input_bytes) / 1e6 / (res.seconds > 0 ? res.seconds : 1e-9), res.threads,
                res.threads == 1 ? "" : "s");
  const uint64_t docs = doc_index;
  log << "prepro: " << format_count(int64_t(docs)) << " document" << (docs == 1 ? "" : "s") << " ("
      << format_count(int64_t(res.input_bytes)) << " bytes) -> "
      << format_count(int64_t(res.train.tokens + res.val.tokens)) << " tokens (" << speed << ")\n";
  auto line = [&](const char* name, const PreproSplit& s, const std::string& what) {
    log << "  " << name << ": " << what << ", " << format_count(int64_t(s.tokens)) << " tokens -> ";
    if (s.files.empty()) {
      log << "(none)\n";
    } else {
      log << s.files.front();
      if (s.files.size() > 1) log << " ... " << fs::path(s.files.back()).filename().string();
      log << " (" << s.files.size() << " file" << (s.files.size() == 1 ? "" : "s") << ")\n";
    }
  };
  auto count = [](uint64_t n) { return format_count(int64_t(n)) + (n == 1 ? " document" : " documents"); };
  line("train", res.train, count(res.train.documents));
  char tail[96];
  std::snprintf(tail, sizeof tail, "the last %g%% of the input bytes", opt.val_fraction * 100);
  line("val", res.val, tail_split ? std::string(tail) : count(res.val.documents));
  if (opt.val_fraction > 0 && res.val.tokens == 0) {
    if (tail_split) {
      log << "  warning: no val file: the last --val-fraction " << opt.val_fraction << " of "
          << format_count(int64_t(res.input_bytes)) << " input bytes (" << format_count(int64_t(res.train.tokens))
          << " tokens) holds no whole token; give more text or a larger --val-fraction\n";
    } else {
      log << "  warning: no val file: --val-fraction " << opt.val_fraction << " picks a val document only among "
          << std::ceil(1.0 / opt.val_fraction) << " or more, and the input holds " << docs
          << "; give more documents, a larger --val-fraction, or the text as plain files\n";
    }
  }
  return res;
}

}  // namespace gpt2
