// Byte-level BPE merging: see bpe.h for the rule and why the two implementations agree.
#include "engine/data/bpe.h"

#include <cstring>
#include <queue>
#include <stdexcept>
#include <string>

namespace gpt2 {

// ---- BpeMerges ----------------------------------------------------------------------------

void BpeMerges::rehash(size_t capacity) {
  std::vector<Slot> old;
  old.swap(slots_);
  slots_.assign(capacity, Slot{});
  mask_ = capacity - 1;
  for (const Slot& s : old) {
    if (s.key == kEmpty) continue;
    size_t i = hash(s.key) & mask_;
    while (slots_[i].key != kEmpty) i = (i + 1) & mask_;
    slots_[i] = s;
  }
}

void BpeMerges::add(int32_t left, int32_t right, int32_t rank, int32_t merged) {
  if (left < 0 || right < 0) throw std::invalid_argument("BPE merge with a negative token id");
  // Keep the load factor at or below 1/2 so probes stay short.
  if ((count_ + 1) * 2 > slots_.size()) rehash(slots_.empty() ? 1024 : slots_.size() * 2);
  const uint64_t key = pack(left, right);
  size_t i = hash(key) & mask_;
  while (slots_[i].key != kEmpty) {
    if (slots_[i].key == key) {
      throw std::invalid_argument("duplicate BPE merge (" + std::to_string(left) + ", " + std::to_string(right) +
                                  ") at rank " + std::to_string(rank));
    }
    i = (i + 1) & mask_;
  }
  slots_[i].key = key;
  slots_[i].merge = Merge{rank, merged};
  ++count_;
}

// ---- naive: the reference rule, for short words ---------------------------------------------

void bpe_merge_naive(const BpeMerges& merges, const int32_t* symbols, size_t n, std::vector<int32_t>& out) {
  // Short words live on the stack; long ones (callers normally use the heap version) in a vector.
  int32_t small[64];
  std::vector<int32_t> big;
  int32_t* w = small;
  if (n > 64) {
    big.assign(symbols, symbols + n);
    w = big.data();
  } else {
    std::memcpy(small, symbols, n * sizeof(int32_t));
  }
  size_t len = n;
  while (len >= 2) {
    // The lowest-ranked adjacent pair.
    BpeMerges::Merge best;
    int32_t best_left = 0, best_right = 0;
    for (size_t i = 0; i + 1 < len; ++i) {
      BpeMerges::Merge m = merges.find(w[i], w[i + 1]);
      if (m.rank >= 0 && (best.rank < 0 || m.rank < best.rank)) {
        best = m;
        best_left = w[i];
        best_right = w[i + 1];
      }
    }
    if (best.rank < 0) break;
    // Merge every non-overlapping occurrence, left to right, compacting in place.
    size_t o = 0;
    for (size_t i = 0; i < len;) {
      if (i + 1 < len && w[i] == best_left && w[i + 1] == best_right) {
        w[o++] = best.merged;
        i += 2;
      } else {
        w[o++] = w[i++];
      }
    }
    len = o;
  }
  out.insert(out.end(), w, w + len);
}

// ---- heap: O(n log n) for long words ---------------------------------------------------------

void bpe_merge_heap(const BpeMerges& merges, const int32_t* symbols, size_t n, std::vector<int32_t>& out) {
  if (n == 0) return;
  struct Node {
    int32_t id;
    int64_t prev, next;  // -1 at the ends
  };
  struct Candidate {
    int32_t rank;
    int64_t left;  // node index of the pair's left symbol; node indices never move
    int32_t left_id, right_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::vector<Node> nodes(n);
  for (size_t i = 0; i < n; ++i) {
    nodes[i] = Node{symbols[i], int64_t(i) - 1, i + 1 < n ? int64_t(i + 1) : -1};
  }
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto push = [&](int64_t left) {
    if (left < 0) return;
    const int64_t right = nodes[left].next;
    if (right < 0) return;
    BpeMerges::Merge m = merges.find(nodes[left].id, nodes[right].id);
    if (m.rank >= 0) heap.push(Candidate{m.rank, left, nodes[left].id, nodes[right].id});
  };
  for (size_t i = 0; i + 1 < n; ++i) push(int64_t(i));

  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    Node& l = nodes[c.left];
    // Stale entries: the left symbol was merged away or changed, or its neighbour changed.
    // Ids only ever grow longer, so an unchanged id pair means the same two symbols.
    if (l.id != c.left_id || l.next < 0) continue;
    Node& r = nodes[l.next];
    if (r.id != c.right_id) continue;
    l.id = merges.find(c.left_id, c.right_id).merged;
    r.id = -1;  // dead
    l.next = r.next;
    if (r.next >= 0) nodes[r.next].prev = c.left;
    push(l.prev);
    push(c.left);
  }
  for (int64_t i = 0; i >= 0; i = nodes[i].next) out.push_back(nodes[i].id);
}

void bpe_merge(const BpeMerges& merges, const int32_t* symbols, size_t n, std::vector<int32_t>& out) {
  // The naive scan is quadratic but cache-friendly; below ~48 bytes it wins.
  if (n <= 48 || !merges.heap_safe()) {
    bpe_merge_naive(merges, symbols, n, out);
  } else {
    bpe_merge_heap(merges, symbols, n, out);
  }
}

// ---- BpeCache -------------------------------------------------------------------------------

BpeCache::BpeCache(size_t max_entries) : max_entries_(max_entries < 16 ? 16 : max_entries) {}

uint64_t BpeCache::hash_bytes(std::string_view s) {
  // FNV-1a, then a final mix so the low bits used for the slot index are well spread.
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  h ^= h >> 32;
  return h;
}

void BpeCache::clear() {
  slots_.clear();
  mask_ = 0;
  count_ = 0;
  keys_.clear();
  vals_.clear();
}

void BpeCache::grow() {
  std::vector<Slot> old;
  old.swap(slots_);
  const size_t cap = old.empty() ? 4096 : old.size() * 2;
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  for (const Slot& s : old) {
    if (!s.used) continue;
    size_t i = s.hash & mask_;
    while (slots_[i].used) i = (i + 1) & mask_;
    slots_[i] = s;
  }
}

bool BpeCache::lookup(std::string_view key, std::vector<int32_t>& out) const {
  if (slots_.empty() || key.size() > kMaxKeyBytes) return false;
  const uint64_t h = hash_bytes(key);
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (!s.used) return false;
    if (s.hash == h && s.key_len == key.size() && std::memcmp(keys_.data() + s.key_off, key.data(), key.size()) == 0) {
      out.insert(out.end(), vals_.begin() + s.val_off, vals_.begin() + s.val_off + s.val_len);
      return true;
    }
  }
}

void BpeCache::insert(std::string_view key, const int32_t* ids, size_t n) {
  if (key.size() > kMaxKeyBytes) return;
  // Offsets are 32-bit: clear well before the arenas could overflow them.
  if (count_ >= max_entries_ || keys_.size() > (1u << 30) || vals_.size() > (1u << 28)) clear();
  if ((count_ + 1) * 2 > slots_.size()) grow();
  const uint64_t h = hash_bytes(key);
  size_t i = h & mask_;
  while (slots_[i].used) {
    const Slot& s = slots_[i];
    if (s.hash == h && s.key_len == key.size() && std::memcmp(keys_.data() + s.key_off, key.data(), key.size()) == 0) {
      return;  // already present
    }
    i = (i + 1) & mask_;
  }
  Slot& s = slots_[i];
  s.used = true;
  s.hash = h;
  s.key_off = uint32_t(keys_.size());
  s.key_len = uint16_t(key.size());
  s.val_off = uint32_t(vals_.size());
  s.val_len = uint16_t(n);
  keys_.append(key.data(), key.size());
  vals_.insert(vals_.end(), ids, ids + n);
  ++count_;
}

}  // namespace gpt2
