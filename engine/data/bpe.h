// Byte-level BPE merging for one pre-token, and the per-pre-token cache.
//
// Rule (OpenAI's encoder.py): start from one symbol per byte; repeatedly find the adjacent pair
// with the lowest merge rank and merge every non-overlapping occurrence of it, left to right;
// stop when no adjacent pair has a rank. In GPT-2 every merge result is itself a vocabulary
// token, so symbols are token ids throughout and a merge is a lookup (left id, right id) ->
// (rank, merged id).
//
// Two implementations give identical results:
//   - bpe_merge_naive: the rule as written, O(n^2) per word; fastest for the short words that
//     make up nearly all text;
//   - bpe_merge_heap: a linked list of symbols plus a min-heap of (rank, position), O(n log n),
//     used for long words (a 1 MB run of letters has no quadratic blow-up).
// Popping by (rank, position) matches the rule because a merge can only create pairs whose rank
// is higher than its own: no token is used by a merge ranked before the last merge that makes
// it. GPT-2's list is built that way; the loader checks it and sets BpeMerges::heap_safe.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gpt2 {

class BpeMerges {
 public:
  struct Merge {
    int32_t rank = -1;    // position in vocab.bpe (lower merges first); -1 = no merge
    int32_t merged = -1;  // token id of the concatenation
  };
  // Registers merge number `rank` (ranks must be added in increasing order). Throws
  // std::invalid_argument for a duplicate pair.
  void add(int32_t left, int32_t right, int32_t rank, int32_t merged);
  Merge find(int32_t left, int32_t right) const {
    if (slots_.empty()) return {};
    const uint64_t key = pack(left, right);
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) return s.merge;
      if (s.key == kEmpty) return {};
    }
  }
  size_t size() const { return count_; }
  // Whether bpe_merge may use the heap version (set by the loader after checking the order).
  void set_heap_safe(bool safe) { heap_safe_ = safe; }
  bool heap_safe() const { return heap_safe_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  struct Slot {
    uint64_t key = kEmpty;
    Merge merge;
  };
  static uint64_t pack(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  static size_t hash(uint64_t k) {
    k ^= k >> 31;
    k *= 0x9E3779B97F4A7C15ull;
    return size_t(k ^ (k >> 29));
  }
  void rehash(size_t capacity);
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t count_ = 0;
  bool heap_safe_ = false;
};

// Both append the merged ids of `symbols` (one initial token id per byte) to `out`.
void bpe_merge_naive(const BpeMerges& merges, const int32_t* symbols, size_t n, std::vector<int32_t>& out);
void bpe_merge_heap(const BpeMerges& merges, const int32_t* symbols, size_t n, std::vector<int32_t>& out);
// Picks one of the two by length (always naive unless merges.heap_safe()).
void bpe_merge(const BpeMerges& merges, const int32_t* symbols, size_t n, std::vector<int32_t>& out);

// Pre-token bytes -> token ids, so each distinct word is merged once. Not thread-safe: use one
// per thread. Entries longer than kMaxKeyBytes are not cached; when the cache holds more than
// `max_entries` words it is cleared and refilled, which bounds memory on huge corpora.
class BpeCache {
 public:
  static constexpr size_t kMaxKeyBytes = 64;
  explicit BpeCache(size_t max_entries = size_t{1} << 20);
  // Appends the cached ids for `key` to `out` and returns true, or returns false.
  bool lookup(std::string_view key, std::vector<int32_t>& out) const;
  void insert(std::string_view key, const int32_t* ids, size_t n);
  size_t size() const { return count_; }
  void clear();

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t key_off = 0, val_off = 0;
    uint16_t key_len = 0, val_len = 0;
    bool used = false;
  };
  static uint64_t hash_bytes(std::string_view s);
  void grow();
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t count_ = 0;
  size_t max_entries_;
  std::string keys_;
  std::vector<int32_t> vals_;
};

}  // namespace gpt2
