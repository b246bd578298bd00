// Tokenizer encode throughput, in MB of input text per second.
//
//   bench_tokenizer [--tokenizer-dir DIR] [--repeats N] [FILE|DIR ...]
//
// Default input: data/brown/text/ (made by data/fetch_corpus.sh), run from the repository root.
// Rows (median of N repeats):
//   pre-tokenizer only    the PCRE2 regex pass alone, one core
//   encode, cold cache    one core, a fresh BPE cache each repeat (the first pass over a corpus)
//   encode, warm cache    one core, the cache kept from a previous pass
//   encode, no cache      one core, every word merged from scratch
//   encode, all cores     OpenMP over documents, one cache per thread (what prepro does)
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/data/bpe.h"
#include "engine/data/pretokenizer.h"
#include "engine/data/tokenizer.h"
#include "engine/util/file_io.h"

namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <class F>
double median_seconds(int repeats, F&& run) {
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    t.push_back(seconds_since(t0));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

int usage(int rc) {
  std::fprintf(rc ? stderr : stdout,
               "usage: bench_tokenizer [--tokenizer-dir DIR] [--repeats N] [FILE|DIR ...]\n"
               "Measures GPT-2 BPE encode MB/s. Default input: data/brown/text/ (run "
               "data/fetch_corpus.sh).\n");
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  std::string tok_dir = gpt2::default_tokenizer_dir();
  int repeats = 5;
  std::vector<std::string> inputs;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") return usage(0);
    if (a == "--tokenizer-dir" && i + 1 < argc) {
      tok_dir = argv[++i];
    } else if (a == "--repeats" && i + 1 < argc) {
      repeats = std::max(1, std::atoi(argv[++i]));
    } else if (!a.empty() && a[0] == '-') {
      return usage(2);
    } else {
      inputs.push_back(a);
    }
  }
  if (inputs.empty()) inputs.push_back("data/brown/text");
  try {
    std::vector<std::string> docs;
    size_t bytes = 0;
    for (const std::string& in : inputs) {
      std::vector<std::string> files;
      if (fs::is_directory(in)) {
        for (const auto& e : fs::directory_iterator(in)) {
          if (e.is_regular_file()) files.push_back(e.path().string());
        }
        std::sort(files.begin(), files.end());
      } else {
        files.push_back(in);
      }
      for (const auto& f : files) {
        docs.push_back(gpt2::read_file(f, "run data/fetch_corpus.sh for the default input"));
        bytes += docs.back().size();
      }
    }
    if (bytes == 0) {
      std::fprintf(stderr, "bench_tokenizer: no input text\n");
      return 1;
    }
    const auto tl = std::chrono::steady_clock::now();
    const gpt2::Tokenizer tk = gpt2::Tokenizer::from_dir(tok_dir);
    const double load_s = seconds_since(tl);
    const double mb = double(bytes) / 1e6;

    std::printf("bench_tokenizer: %zu documents, %.2f MB, median of %d repeats\n", docs.size(), mb, repeats);
    std::printf("  tokenizer load (encoder.json + vocab.bpe): %.0f ms\n", load_s * 1e3);
    std::printf("  %-26s %10s %12s\n", "", "MB/s", "Mtok/s");

    size_t n_tokens = 0;
    auto row = [&](const char* name, double s, size_t toks) {
      std::printf("  %-26s %10.2f %12.3f\n", name, mb / s, toks ? double(toks) / 1e6 / s : 0.0);
    };

    // Pre-tokenizer alone.
    gpt2::Pretokenizer pre;
    size_t words = 0;
    const double pre_s = median_seconds(repeats, [&] {
      words = 0;
      for (const auto& d : docs) {
        gpt2::Pretokenizer::Cursor c(pre, d);
        gpt2::PreToken pt;
        while (c.next(pt)) ++words;
      }
    });
    row("pre-tokenizer only", pre_s, 0);

    std::vector<int32_t> out;
    out.reserve(bytes / 3);
    const double cold_s = median_seconds(repeats, [&] {
      gpt2::BpeCache cache;
      out.clear();
      for (const auto& d : docs) tk.encode(d, out, cache);
    });
    n_tokens = out.size();
    row("encode, cold cache, 1 core", cold_s, n_tokens);

    gpt2::BpeCache warm;
    for (const auto& d : docs) tk.encode(d, out, warm);
    const double warm_s = median_seconds(repeats, [&] {
      out.clear();
      for (const auto& d : docs) tk.encode(d, out, warm);
    });
    row("encode, warm cache, 1 core", warm_s, n_tokens);

    const double nocache_s = median_seconds(std::min(repeats, 3), [&] {
      gpt2::BpeCache none(16);  // cleared every 16 words: effectively no cache
      out.clear();
      for (const auto& d : docs) tk.encode(d, out, none);
    });
    row("encode, no cache, 1 core", nocache_s, n_tokens);

    const int threads = omp_get_max_threads();
    std::vector<std::vector<int32_t>> outs(docs.size());
    const double par_s = median_seconds(repeats, [&] {
      std::vector<gpt2::BpeCache> caches(static_cast<size_t>(threads));
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
      for (size_t i = 0; i < docs.size(); ++i) {
        outs[i].clear();
        tk.encode(docs[i], outs[i], caches[size_t(omp_get_thread_num())]);
      }
    });
    char name[64];
    std::snprintf(name, sizeof name, "encode, cold cache, %d cores", threads);
    row(name, par_s, n_tokens);
    std::printf("  %zu pre-tokens, %zu tokens (%.2f bytes/token)\n", words, n_tokens, double(bytes) / double(n_tokens));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_tokenizer: error: %s\n", e.what());
    return 1;
  }
}
