// The warps' memory accesses, grouped into requests and counted (see simt/access_trace.h).
#include "simt/access_trace.h"

#include <link.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "internal.h"
#include "simt/device.h"

namespace simt::trace {
namespace {

bool g_on = false;
bool g_in_launch = false;

// A planted fault in the counting itself, for the audit's self-test to show it catches a broken
// counter (GPT2_SIMT_AUDIT_PLANT): `per-lane-sectors` counts every lane's sectors apart (no
// coalescing), `no-bank-conflicts` gives every phase one wavefront, `one-phase` serves 8- and
// 16-byte shared accesses in a single phase.
enum class Plant { None, PerLaneSectors, NoBankConflicts, OnePhase };
Plant plant_from_env() {
  const char* e = std::getenv("GPT2_SIMT_AUDIT_PLANT");
  if (!e || !*e) return Plant::None;
  if (std::strcmp(e, "per-lane-sectors") == 0) return Plant::PerLaneSectors;
  if (std::strcmp(e, "no-bank-conflicts") == 0) return Plant::NoBankConflicts;
  if (std::strcmp(e, "one-phase") == 0) return Plant::OnePhase;
  std::fprintf(stderr, "simt: GPT2_SIMT_AUDIT_PLANT must be per-lane-sectors, no-bank-conflicts or one-phase, not '%s'\n",
               e);
  std::exit(2);
}
Plant plant() {
  static const Plant p = plant_from_env();
  return p;
}

struct Access {
  uintptr_t addr;
  uint32_t size;
};
struct Request {
  uint32_t mask = 0;
  Access lane[32];
};

enum Kind : uint8_t { kGlobalLoad, kGlobalStore, kSharedLoad, kSharedStore };

// One instruction of one warp: pc for instrumented code, file:line for the layer's PTX.
struct SiteKey {
  uintptr_t pc;
  const char* file;
  int line;
  uint32_t warp;
  uint8_t kind;
  bool operator==(const SiteKey& o) const {
    return pc == o.pc && file == o.file && line == o.line && warp == o.warp && kind == o.kind;
  }
};
struct SiteKeyHash {
  size_t operator()(const SiteKey& k) const {
    uint64_t h = k.pc * 0x9E3779B97F4A7C15ull ^ reinterpret_cast<uintptr_t>(k.file) * 0xC2B2AE3D27D4EB4Full;
    h ^= (static_cast<uint64_t>(k.line) << 20) ^ (static_cast<uint64_t>(k.warp) << 4) ^ k.kind;
    return static_cast<size_t>(h ^ (h >> 29));
  }
};
// The requests of one site not yet counted. count[l] is how many times lane l ran the instruction;
// request k (k ≥ base) is reqs[k - base].
struct Pending {
  uint32_t count[32] = {};
  uint32_t base = 0;
  std::vector<Request> reqs;
};
std::unordered_map<SiteKey, Pending, SiteKeyHash> g_pending;
// A direct-mapped cache in front of g_pending (its elements never move), cleared with it.
struct CacheSlot {
  SiteKey key{};
  Pending* pending = nullptr;
};
CacheSlot g_cache[1024];
void clear_pending() {
  g_pending.clear();
  for (CacheSlot& c : g_cache) c.pending = nullptr;
}
Pending& pending_of(const SiteKey& key) {
  CacheSlot& c = g_cache[SiteKeyHash{}(key) % 1024];
  if (c.pending && c.key == key) return *c.pending;
  c.key = key;
  c.pending = &g_pending[key];
  return *c.pending;
}

LaunchCounts g_launch;
std::unordered_set<uint64_t> g_load_sectors, g_store_sectors;
std::map<std::tuple<uintptr_t, const char*, int, uint8_t>, SiteCounts> g_sites;
std::vector<LaunchCounts> g_done;

// ---- Address classes -----------------------------------------------------------------------------
// The executable's static TLS block, where the kernels' __shared__ (thread_local) variables live.
// x86-64 (TLS variant II): the main program's block ends at the thread pointer.
struct TlsRange {
  uintptr_t lo = 0, hi = 0;
};
int find_main_tls(dl_phdr_info* info, size_t, void* data) {
  auto* r = static_cast<std::pair<size_t, size_t>*>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i)
    if (info->dlpi_phdr[i].p_type == PT_TLS) {
      r->first = info->dlpi_phdr[i].p_memsz;
      r->second = info->dlpi_phdr[i].p_align ? info->dlpi_phdr[i].p_align : 1;
    }
  return 1;  // the first object is the main program
}
TlsRange main_tls_range() {
  TlsRange t;
#if defined(__x86_64__)
  std::pair<size_t, size_t> mem_align{0, 1};
  dl_iterate_phdr(find_main_tls, &mem_align);
  uintptr_t tp = 0;
  asm volatile("mov %%fs:0, %0" : "=r"(tp));
  const size_t a = mem_align.second, span = (mem_align.first + a - 1) / a * a;
  t.lo = tp - span;
  t.hi = tp;
#endif
  return t;
}
thread_local TlsRange tl_tls;

bool is_static_shared(uintptr_t a, size_t n) {
  if (tl_tls.hi == 0) tl_tls = main_tls_range();
  if (a < tl_tls.lo || a + n > tl_tls.hi) return false;
  // The layer's own thread_locals that device code reads through threadIdx and friends.
  const uintptr_t t = reinterpret_cast<uintptr_t>(&tl_thread), b = reinterpret_cast<uintptr_t>(&tl_block);
  if ((a >= t && a < t + sizeof tl_thread) || (a >= b && a < b + sizeof tl_block)) return false;
  return true;
}

// ---- Recording -----------------------------------------------------------------------------------
void record(const void* p, unsigned size, bool store, uintptr_t pc, const char* file, int line) {
  const ThreadCtx* th = tl_thread;
  const BlockCtx* bl = tl_block;
  if (!th || !bl) return;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  bool shared = false;
  const uintptr_t dyn = reinterpret_cast<uintptr_t>(bl->dyn_smem);
  if (dyn && a >= dyn && a < dyn + bl->dyn_smem_bytes)
    shared = true;
  else if (is_static_shared(a, size))
    shared = true;
  else if (!is_device_range(p, size))
    return;  // registers on the fiber stack, parameters, host data
  const uint8_t kind = shared ? (store ? kSharedStore : kSharedLoad) : (store ? kGlobalStore : kGlobalLoad);
  Pending& s = pending_of(SiteKey{pc, file, line, th->warp, kind});
  const unsigned lane = th->lane;
  const uint32_t k = s.count[lane]++ - s.base;
  if (k >= s.reqs.size()) s.reqs.resize(k + 1);
  Request& r = s.reqs[k];
  r.mask |= 1u << lane;
  r.lane[lane] = Access{a, size};
}

// Distinct bytes covered by the request's lanes.
uint64_t distinct_bytes(const Request& r) {
  Access v[32];
  int n = 0;
  for (unsigned l = 0; l < 32; ++l)
    if (r.mask & (1u << l)) v[n++] = r.lane[l];
  std::sort(v, v + n, [](const Access& x, const Access& y) { return x.addr < y.addr; });
  uint64_t total = 0;
  uintptr_t end = 0;
  for (int i = 0; i < n; ++i) {
    const uintptr_t lo = std::max(v[i].addr, end), hi = v[i].addr + v[i].size;
    if (hi > lo) total += hi - lo;
    end = std::max(end, hi);
  }
  return total;
}

void count_global(const Request& r, bool store, SiteCounts& site) {
  uint64_t sec[64];
  int n = 0;
  uint64_t bytes = 0;
  for (unsigned l = 0; l < 32; ++l) {
    if (!(r.mask & (1u << l))) continue;
    const Access& x = r.lane[l];
    bytes += x.size;
    for (uint64_t s = x.addr >> 5; s <= (x.addr + x.size - 1) >> 5; ++s) sec[n++] = s;
  }
  std::sort(sec, sec + n);
  if (plant() != Plant::PerLaneSectors) n = static_cast<int>(std::unique(sec, sec + n) - sec);
  auto& uniq = store ? g_store_sectors : g_load_sectors;
  for (int i = 0; i < n; ++i) uniq.insert(sec[i]);
  bytes = std::min<uint64_t>(bytes, 32ull * static_cast<uint64_t>(n));
  GlobalCounts& g = g_launch.global;
  if (store) {
    ++g.store_requests;
    g.store_sectors += static_cast<uint64_t>(n);
    g.store_bytes += bytes;
  } else {
    ++g.load_requests;
    g.load_sectors += static_cast<uint64_t>(n);
    g.load_bytes += bytes;
  }
  ++site.requests;
  site.sectors += static_cast<uint64_t>(n);
  site.bytes += bytes;
}

void count_shared(const Request& r, bool store, SiteCounts& site) {
  unsigned size = 0;
  for (unsigned l = 0; l < 32; ++l)
    if (r.mask & (1u << l)) size = std::max(size, r.lane[l].size);
  const unsigned per_phase = size <= 4 || plant() == Plant::OnePhase ? 32 : size <= 8 ? 16 : 8;
  uint64_t wavefronts = 0;
  for (unsigned p0 = 0; p0 < 32; p0 += per_phase) {
    uint64_t words[32 * 4];
    int n = 0;
    for (unsigned l = p0; l < p0 + per_phase; ++l) {
      if (!(r.mask & (1u << l))) continue;
      const Access& x = r.lane[l];
      for (uint64_t w = x.addr >> 2; w <= (x.addr + x.size - 1) >> 2; ++w) words[n++] = w;
    }
    if (n == 0) continue;
    std::sort(words, words + n);
    n = static_cast<int>(std::unique(words, words + n) - words);
    unsigned per_bank[32] = {};
    unsigned worst = 0;
    for (int i = 0; i < n; ++i) worst = std::max(worst, ++per_bank[words[i] & 31]);
    wavefronts += plant() == Plant::NoBankConflicts ? 1 : worst;
  }
  const uint64_t ideal = std::max<uint64_t>(1, (distinct_bytes(r) + 127) / 128);
  SharedCounts& s = g_launch.shared;
  ++(store ? s.store_requests : s.load_requests);
  s.wavefronts += wavefronts;
  s.ideal_wavefronts += ideal;
  ++site.requests;
  site.wavefronts += wavefronts;
  site.ideal_wavefronts += ideal;
}

}  // namespace

bool enabled() { return g_on; }

bool available() {
#if defined(GPT2_KERNEL_AUDIT) && defined(__x86_64__)
  return true;
#else
  return false;
#endif
}

void enable(bool on) {
  if (on && !available()) {
    std::fprintf(stderr,
                 "simt: memory access recording needs the kernels built with access tracing (cmake --preset audit, "
                 "x86-64)\n");
    std::exit(2);
  }
  complete_all_work();  // queued launches run under the setting they were issued with
  g_on = on;
}

std::vector<LaunchCounts> take() {
  complete_all_work();  // the launches issued so far are recorded before they are taken
  std::vector<LaunchCounts> out;
  out.swap(g_done);
  return out;
}

void begin_launch(const void* func, const char* name, dim3 grid, dim3 block, size_t dynamic_smem) {
  g_launch = LaunchCounts{};
  g_launch.func = func;
  g_launch.kernel = name ? name : "?";
  g_launch.grid = grid;
  g_launch.block = block;
  g_launch.dynamic_smem = dynamic_smem;
  clear_pending();
  g_load_sectors.clear();
  g_store_sectors.clear();
  g_sites.clear();
  g_in_launch = true;
}

void end_phase() {
  if (!g_in_launch) return;
  for (auto& [key, s] : g_pending) {
    if (s.reqs.empty()) continue;
    const bool shared = key.kind == kSharedLoad || key.kind == kSharedStore;
    const bool store = key.kind == kGlobalStore || key.kind == kSharedStore;
    SiteCounts& site = g_sites[{key.pc, key.file, key.line, key.kind}];
    site.pc = key.pc;
    site.file = key.file;
    site.line = key.line;
    site.shared = shared;
    site.store = store;
    for (const Request& r : s.reqs) {
      if (!r.mask) continue;
      if (shared)
        count_shared(r, store, site);
      else
        count_global(r, store, site);
    }
    // Lanes realign at the barrier: the next execution by any lane starts a new request.
    s.base += static_cast<uint32_t>(s.reqs.size());
    for (uint32_t& c : s.count) c = s.base;
    s.reqs.clear();
  }
}

void end_launch() {
  if (!g_in_launch) return;
  end_phase();
  g_launch.global.unique_load_sectors = g_load_sectors.size();
  g_launch.global.unique_store_sectors = g_store_sectors.size();
  for (auto& [key, site] : g_sites) g_launch.sites.push_back(site);
  g_done.push_back(std::move(g_launch));
  g_launch = LaunchCounts{};
  clear_pending();
  g_in_launch = false;
}

void layer_access(const void* addr, unsigned size, bool store, const char* file, int line) {
  if (g_on && g_in_launch) record(addr, size, store, 0, file, line);
}

void count_mma() {
  if (g_on && g_in_launch) ++g_launch.mma;
}

void instrumented_access(const void* addr, unsigned size, bool store, uintptr_t pc) {
  if (g_on && g_in_launch) record(addr, size, store, pc, nullptr, 0);
}

}  // namespace simt::trace

#if defined(GPT2_KERNEL_AUDIT)
// The callbacks of clang's -fsanitize-coverage=trace-loads,trace-stores (and the counters of the
// edge mode that option needs, unused here). The return address names the instruction.
#define GPT2_TRACE_CALLBACK(name, type, n, is_store)                                             \
  extern "C" void name(type* p) {                                                                \
    simt::trace::instrumented_access(p, n, is_store,                                             \
                                     reinterpret_cast<uintptr_t>(__builtin_return_address(0))); \
  }
GPT2_TRACE_CALLBACK(__sanitizer_cov_load1, uint8_t, 1, false)
GPT2_TRACE_CALLBACK(__sanitizer_cov_load2, uint16_t, 2, false)
GPT2_TRACE_CALLBACK(__sanitizer_cov_load4, uint32_t, 4, false)
GPT2_TRACE_CALLBACK(__sanitizer_cov_load8, uint64_t, 8, false)
GPT2_TRACE_CALLBACK(__sanitizer_cov_load16, __int128, 16, false)
GPT2_TRACE_CALLBACK(__sanitizer_cov_store1, uint8_t, 1, true)
GPT2_TRACE_CALLBACK(__sanitizer_cov_store2, uint16_t, 2, true)
GPT2_TRACE_CALLBACK(__sanitizer_cov_store4, uint32_t, 4, true)
GPT2_TRACE_CALLBACK(__sanitizer_cov_store8, uint64_t, 8, true)
GPT2_TRACE_CALLBACK(__sanitizer_cov_store16, __int128, 16, true)
#undef GPT2_TRACE_CALLBACK
extern "C" void __sanitizer_cov_8bit_counters_init(char*, char*) {}
#endif
