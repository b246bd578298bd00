// The SIMT layer's execution engine: blocks, fibers, barriers, warp collectives and the PTX
// instructions the kernels use. See simt/device.h for the model.
#include <omp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/context/detail/fcontext.hpp>
#include <boost/context/stack_context.hpp>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "engine/plan/kernel_resources.h"
#include "internal.h"
#include "simt/access_trace.h"
#include "simt/device.h"
#include "simt/launch.h"
#include "simt/ptx.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define SIMT_ASAN 1
#define SIMT_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define SIMT_ASAN 0
#define SIMT_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace simt {

thread_local ThreadCtx* tl_thread = nullptr;
thread_local BlockCtx* tl_block = nullptr;

namespace {

namespace bctx = boost::context;
namespace fctx = boost::context::detail;

enum class State : uint8_t { Runnable, AtBarrier, AtWarp, Done };

struct CopyOp {
  void* dst;
  const void* src;
  int cp_size, src_size;
};

struct Thread {
  ThreadCtx pub{};
  State state = State::Runnable;
  const char* wait_what = nullptr;
  const char* wait_file = nullptr;
  int wait_line = 0;
  fctx::fcontext_t ctx = nullptr;    // this thread, while the scheduler runs
  fctx::fcontext_t sched = nullptr;  // the scheduler, while this thread runs
  bctx::stack_context stack{};
  void* fake_stack = nullptr;  // AddressSanitizer's per-fiber bookkeeping
  const KernelBody* body = nullptr;
  // cp.async: issued copies in order; group_ends[i] is the end of committed group i in `copies`.
  std::vector<CopyOp> copies;
  std::vector<size_t> group_ends;
  size_t copies_done = 0;  // copies [0, copies_done) have landed
  void reset() {
    state = State::Runnable;
    wait_what = wait_file = nullptr;
    wait_line = 0;
    ctx = sched = nullptr;
    fake_stack = nullptr;
    copies.clear();
    group_ends.clear();
    copies_done = 0;
  }
};

struct Group {
  unsigned mask = 0, arrived = 0;
  const char* what = nullptr;
  const char* file = nullptr;
  int line = 0;
};
struct Warp {
  LaneSlot slots[32];
  std::vector<Group> open;  // collectives some lanes wait in (disjoint masks)
};

struct Fault {};  // unwinds a faulting CUDA thread to its fiber's entry

struct Block {
  BlockCtx pub{};
  std::vector<Thread> threads;
  std::vector<Warp> warps;
  Thread* current = nullptr;
  bool faulted = false;
};
thread_local Block* tl_blk = nullptr;

// ---- Schedules --------------------------------------------------------------------------------
Schedule schedule_from_env() {
  Schedule s;
  const char* e = std::getenv("GPT2_SIMT_SCHEDULE");
  if (!e || !*e || std::strcmp(e, "ascending") == 0) return s;
  if (std::strcmp(e, "descending") == 0) {
    s.order = Order::Descending;
    return s;
  }
  if (std::strncmp(e, "random:", 7) == 0) {
    char* end = nullptr;
    s.seed = std::strtoull(e + 7, &end, 10);
    if (end != e + 7 && *end == '\0') {
      s.order = Order::Random;
      return s;
    }
  }
  std::fprintf(stderr, "simt: GPT2_SIMT_SCHEDULE must be ascending, descending or random:SEED, not '%s'\n", e);
  std::exit(1);
}

// ---- Faults -----------------------------------------------------------------------------------
std::mutex g_fault_mu;
std::atomic<bool> g_launch_faulted{false};
cudaError_t g_fault_code = cudaErrorLaunchFailure;
const char* g_signature = "";

void vrecord_fault(cudaError_t code, const char* file, int line, const char* fmt, va_list ap) {
  char msg[1024];
  std::vsnprintf(msg, sizeof msg, fmt, ap);
  Block* b = tl_blk;
  if (b) b->faulted = true;
  std::lock_guard<std::mutex> lock(g_fault_mu);
  if (g_launch_faulted.exchange(true)) return;  // report the first fault of a launch only
  g_fault_code = code;
  std::fprintf(stderr, "simt: kernel fault: %s\n  at %s:%d\n", msg, file ? file : "?", line);
  if (b) {
    const uint3 bi = b->pub.block_idx;
    std::fprintf(stderr, "  block (%u,%u,%u)", bi.x, bi.y, bi.z);
    if (b->current) {
      const uint3 t = b->current->pub.tid;
      std::fprintf(stderr, ", thread (%u,%u,%u)", t.x, t.y, t.z);
    }
    std::fprintf(stderr, "\n");
  }
  std::fprintf(stderr, "  in %s\n", g_signature);
  std::fflush(stderr);
  if (const char* a = std::getenv("GPT2_SIMT_ABORT_ON_FAULT"); a && *a == '1') std::abort();
}
void record_fault(cudaError_t code, const char* file, int line, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vrecord_fault(code, file, line, fmt, ap);
  va_end(ap);
}

// ---- Fiber stacks: a pool per OS thread, each stack with a guard page below it ---------------------
constexpr size_t kStackBytes = 256 * 1024;
class StackPool {
 public:
  ~StackPool() {
    for (auto& sc : free_) munmap(static_cast<char*>(sc.sp) - sc.size - page(), sc.size + page());
  }
  bctx::stack_context allocate() {
    if (!free_.empty()) {
      bctx::stack_context sc = free_.back();
      free_.pop_back();
      return sc;
    }
    const size_t total = kStackBytes + page();
    void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    mprotect(p, page(), PROT_NONE);
    bctx::stack_context sc;
    sc.size = kStackBytes;
    sc.sp = static_cast<char*>(p) + total;
    return sc;
  }
  void deallocate(bctx::stack_context& sc) {
    if (sc.sp) free_.push_back(sc);
    sc = bctx::stack_context{};
  }

 private:
  static size_t page() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }
  std::vector<bctx::stack_context> free_;
};
thread_local StackPool tl_stacks;

// ---- Context switches: Boost.Context's fcontext, announced to AddressSanitizer ------------------
// The OS thread's own stack, learnt when a fiber first starts (AddressSanitizer reports it).
thread_local const void* tl_sched_bottom = nullptr;
thread_local size_t tl_sched_size = 0;

inline void* stack_bottom(const bctx::stack_context& sc) { return static_cast<char*>(sc.sp) - sc.size; }

void land_copies(Thread& t, size_t end);
void record_fault(cudaError_t code, const char* file, int line, const char* fmt, ...);

// The first function on a CUDA thread's stack.
void thread_entry(fctx::transfer_t from) {
  Thread* t = static_cast<Thread*>(from.data);
#if SIMT_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &tl_sched_bottom, &tl_sched_size);
#endif
  t->sched = from.fctx;
  tl_thread = &t->pub;
  try {
    t->body->invoke(t->body->closure.get());
    land_copies(*t, t->copies.size());  // copies still in flight at exit complete, as on the device
  } catch (const Fault&) {
  } catch (const std::exception& e) {
    record_fault(cudaErrorLaunchFailure, nullptr, 0, "exception in device code: %s", e.what());
  }
  t->state = State::Done;
#if SIMT_ASAN
  __sanitizer_start_switch_fiber(nullptr, tl_sched_bottom, tl_sched_size);  // this fiber ends
#endif
  fctx::jump_fcontext(t->sched, nullptr);
  std::abort();  // never resumed
}

// Scheduler → CUDA thread; returns when the thread suspends or exits.
void resume(Thread& t) {
#if SIMT_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, stack_bottom(t.stack), t.stack.size);
#endif
  const fctx::transfer_t r = fctx::jump_fcontext(t.ctx, &t);
#if SIMT_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  t.ctx = r.fctx;
}

// CUDA thread → scheduler; returns when the scheduler resumes this thread.
void suspend(Thread& t) {
#if SIMT_ASAN
  __sanitizer_start_switch_fiber(&t.fake_stack, tl_sched_bottom, tl_sched_size);
#endif
  const fctx::transfer_t r = fctx::jump_fcontext(t.sched, nullptr);
#if SIMT_ASAN
  __sanitizer_finish_switch_fiber(t.fake_stack, &tl_sched_bottom, &tl_sched_size);
#endif
  t.sched = r.fctx;
  tl_thread = &t.pub;
}

// Performs the thread's copies up to `end` (exclusive) that have not landed yet.
void land_copies(Thread& t, size_t end) {
  for (; t.copies_done < end; ++t.copies_done) {
    const CopyOp& op = t.copies[t.copies_done];
    if (op.src_size > 0) std::memcpy(op.dst, op.src, static_cast<size_t>(op.src_size));
    if (op.cp_size > op.src_size)
      std::memset(static_cast<char*>(op.dst) + op.src_size, 0, static_cast<size_t>(op.cp_size - op.src_size));
  }
}

const char* state_text(const Thread& t, char* buf, size_t n) {
  switch (t.state) {
    case State::Done: return "has exited";
    case State::Runnable: return "is running";
    case State::AtBarrier:
      std::snprintf(buf, n, "waits at __syncthreads at %s:%d", t.wait_file, t.wait_line);
      return buf;
    case State::AtWarp:
      std::snprintf(buf, n, "waits in %s at %s:%d", t.wait_what, t.wait_file, t.wait_line);
      return buf;
  }
  return "?";
}

// Nothing can run: explains which thread the block waits for.
void diagnose_deadlock(Block& b) {
  char buf[512];
  for (size_t w = 0; w < b.warps.size(); ++w) {
    for (const Group& g : b.warps[w].open) {
      const unsigned missing = g.mask & ~g.arrived;
      const int lane = __builtin_ctz(missing);
      const Thread& t = b.threads[w * 32 + static_cast<size_t>(lane)];
      b.current = nullptr;
      record_fault(cudaErrorLaunchFailure, g.file, g.line,
                   "%s with mask 0x%08x in warp %zu: lane %d (thread (%u,%u,%u)) never arrives: it %s", g.what, g.mask,
                   w, lane, t.pub.tid.x, t.pub.tid.y, t.pub.tid.z, state_text(t, buf, sizeof buf));
      return;
    }
  }
  record_fault(cudaErrorLaunchFailure, nullptr, 0, "block deadlocked");
}

// One launch, as issued: the kernel, its configuration and its arguments.
struct LaunchInfo {
  const void* func;
  const char* signature;
  dim3 grid, block;
  size_t smem;
  KernelBody body;
};

// Per-OS-thread block storage, reused from block to block.
thread_local Block tl_block_storage;

void run_block(const LaunchInfo& L, uint3 bidx) {
  Block& b = tl_block_storage;
  const unsigned n = L.block.x * L.block.y * L.block.z;
  if (b.threads.size() != n) {
    for (Thread& t : b.threads) tl_stacks.deallocate(t.stack);
    b.threads.resize(n);
  }
  b.warps.resize((n + 31) / 32);
  for (auto& w : b.warps) w.open.clear();
  b.faulted = false;
  b.current = nullptr;
  // Dynamic shared memory: its own allocation of exactly the launch's size (AddressSanitizer reports
  // an access past it), filled with 0xFF so an uninitialised read gives NaN.
  std::unique_ptr<unsigned char[]> dyn(L.smem ? new unsigned char[L.smem] : nullptr);
  if (L.smem) std::memset(dyn.get(), 0xFF, L.smem);
  b.pub = BlockCtx{bidx, L.block, L.grid, dyn.get(), L.smem};
  tl_blk = &b;
  tl_block = &b.pub;
  for (unsigned i = 0; i < n; ++i) {
    Thread& t = b.threads[i];
    t.reset();
    t.pub.tid = uint3{i % L.block.x, (i / L.block.x) % L.block.y, i / (L.block.x * L.block.y)};
    t.pub.linear = i;
    t.pub.lane = i % 32;
    t.pub.warp = i / 32;
    t.body = &L.body;
    if (!t.stack.sp) t.stack = tl_stacks.allocate();  // a thread keeps its stack from block to block
    t.ctx = fctx::make_fcontext(t.stack.sp, t.stack.size, thread_entry);
  }

  const Schedule& sch = schedule();
  std::vector<unsigned> order(n);
  for (unsigned i = 0; i < n; ++i) order[i] = sch.order == Order::Descending ? n - 1 - i : i;
  std::mt19937_64 rng(sch.seed * 0x9E3779B97F4A7C15ull + (static_cast<uint64_t>(bidx.z) << 42) +
                      (static_cast<uint64_t>(bidx.y) << 21) + bidx.x);

  while (!b.faulted) {
    if (sch.order == Order::Random) std::shuffle(order.begin(), order.end(), rng);
    bool ran = false;
    for (unsigned i : order) {
      Thread& t = b.threads[i];
      if (t.state != State::Runnable) continue;
      b.current = &t;
      tl_thread = &t.pub;
      resume(t);
      ran = true;
      if (b.faulted) break;
    }
    if (b.faulted) break;
    if (ran) continue;
    unsigned done = 0, at_barrier = 0, at_warp = 0;
    const Thread* barrier_thread = nullptr;
    const Thread* exited = nullptr;
    for (const Thread& t : b.threads) {
      if (t.state == State::Done) {
        ++done;
        if (!exited) exited = &t;
      } else if (t.state == State::AtBarrier) {
        ++at_barrier;
        if (!barrier_thread) barrier_thread = &t;
      } else if (t.state == State::AtWarp) {
        ++at_warp;
      }
    }
    if (done == n) break;
    if (at_warp == 0 && at_barrier > 0) {
      if (done > 0) {
        b.current = nullptr;
        record_fault(cudaErrorLaunchFailure, barrier_thread->wait_file, barrier_thread->wait_line,
                     "__syncthreads: thread (%u,%u,%u) exited while %u threads of the block wait at this barrier; "
                     "every thread of the block must reach it",
                     exited->pub.tid.x, exited->pub.tid.y, exited->pub.tid.z, at_barrier);
        break;
      }
      trace::end_phase();
      for (Thread& t : b.threads) t.state = State::Runnable;
      continue;
    }
    diagnose_deadlock(b);
    break;
  }
  // A faulted block's suspended threads are abandoned; their frames' shadow is cleared so the stacks
  // can be reused.
  trace::end_phase();
  if (b.faulted)
    for (Thread& t : b.threads)
      if (t.state != State::Done) SIMT_UNPOISON(stack_bottom(t.stack), t.stack.size);
  tl_blk = nullptr;
  tl_block = nullptr;
  tl_thread = nullptr;
}

Thread& current_thread(const char* what) {
  if (!tl_blk || !tl_blk->current) {
    std::fprintf(stderr, "simt: %s called outside a kernel\n", what);
    std::abort();
  }
  return *tl_blk->current;
}

}  // namespace

const Schedule& schedule() {
  static const Schedule s = schedule_from_env();
  return s;
}

namespace {
// Unwinds the faulting CUDA thread to its fiber's entry (outside a kernel there is nothing to unwind).
[[noreturn]] void unwind_fault() {
  if (!tl_blk) std::abort();
  throw Fault{};
}
}  // namespace

[[noreturn]] void fault(const char* file, int line, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vrecord_fault(cudaErrorLaunchFailure, file, line, fmt, ap);
  va_end(ap);
  unwind_fault();
}

[[noreturn]] void fault_code(cudaError_t code, const char* file, int line, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vrecord_fault(code, file, line, fmt, ap);
  va_end(ap);
  unwind_fault();
}

void* dynamic_shared() { return tl_block ? tl_block->dyn_smem : nullptr; }

void syncthreads(const char* file, int line) {
  Thread& t = current_thread("__syncthreads");
  t.state = State::AtBarrier;
  t.wait_file = file;
  t.wait_line = line;
  suspend(t);
}

const unsigned char* warp_collective(unsigned mask, const char* what, const void* in, size_t n, CollectiveFn fn,
                                     const char* file, int line) {
  Thread& t = current_thread(what);
  Block& b = *tl_blk;
  const unsigned lane = t.pub.lane, bit = 1u << lane;
  if (!(mask & bit)) fault(file, line, "%s: the calling lane %u is not in its mask 0x%08x", what, lane, mask);
  const size_t base = static_cast<size_t>(t.pub.warp) * 32;
  const size_t present = std::min<size_t>(32, b.threads.size() - base);
  const unsigned exists = present == 32 ? 0xffffffffu : ((1u << present) - 1);
  if (mask & ~exists)
    fault(file, line, "%s: mask 0x%08x names lanes that do not exist (this warp has lanes 0x%08x)", what, mask, exists);
  Warp& w = b.warps[t.pub.warp];
  Group* g = nullptr;
  for (Group& c : w.open)
    if (c.mask & mask) {
      if (c.mask != mask || std::strcmp(c.what, what) != 0)
        fault(file, line, "%s with mask 0x%08x meets %s with mask 0x%08x (at %s:%d) in the same warp", what, mask,
              c.what, c.mask, c.file, c.line);
      g = &c;
      break;
    }
  if (!g) {
    w.open.push_back(Group{mask, 0, what, file, line});
    g = &w.open.back();
  }
  if (n) std::memcpy(w.slots[lane].in, in, n);
  g->arrived |= bit;
  if (g->arrived == mask) {
    const size_t gi = static_cast<size_t>(g - w.open.data());
    w.open.erase(w.open.begin() + static_cast<std::ptrdiff_t>(gi));
    fn(w.slots, mask, file, line);
    for (unsigned l = 0; l < 32; ++l)
      if ((mask & (1u << l)) && l != lane) b.threads[base + l].state = State::Runnable;
    return w.slots[lane].out;
  }
  t.state = State::AtWarp;
  t.wait_what = what;
  t.wait_file = file;
  t.wait_line = line;
  suspend(t);
  return w.slots[lane].out;
}

void shfl_combine(LaneSlot* slots, unsigned mask, const char* file, int line) {
  for (unsigned l = 0; l < 32; ++l) {
    if (!(mask & (1u << l))) continue;
    ShflIn in;
    std::memcpy(&in, slots[l].in, sizeof in);
    if (in.src < 0 || in.src > 31 || !(mask & (1u << in.src)))
      fault(file, line, "shuffle: lane %u reads lane %d, which is not in the mask 0x%08x", l, in.src, mask);
    ShflIn src;
    std::memcpy(&src, slots[in.src].in, sizeof src);
    std::memcpy(slots[l].out, &src.value, sizeof src.value);
  }
}

// ---- Launch -----------------------------------------------------------------------------------
namespace {
// Runs every block of a queued launch. A fault is reported on stderr and becomes the device's
// sticky error, which the next synchronisation returns.
void run_launch(const LaunchInfo& L) {
  g_launch_faulted = false;
  g_signature = L.signature;
  const long long nblocks = 1ll * L.grid.x * L.grid.y * L.grid.z;
  std::atomic<bool> failed{false};
  // Recording memory accesses (simt/access_trace.h) runs the blocks one after another.
  const bool tracing = trace::enabled();
  if (tracing) trace::begin_launch(L.func, L.signature, L.grid, L.block, L.smem);
#pragma omp parallel for schedule(dynamic, 1) if (!tracing)
  for (long long i = 0; i < nblocks; ++i) {
    if (failed.load(std::memory_order_relaxed)) continue;
    const uint3 bidx{static_cast<unsigned>(i % L.grid.x), static_cast<unsigned>((i / L.grid.x) % L.grid.y),
                     static_cast<unsigned>(i / (1ll * L.grid.x * L.grid.y))};
    run_block(L, bidx);
    if (g_launch_faulted.load()) failed = true;
  }
  if (tracing) trace::end_launch();
  if (failed || g_launch_faulted) set_error(g_fault_code, true);
}
}  // namespace

// Checks the launch against the card when it is issued (a refused launch returns its error at
// once and leaves no sticky error), then queues it on its stream.
cudaError_t launch_kernel(const void* func, const char* signature, dim3 grid, dim3 block, size_t dynamic_smem,
                          cudaStream_t stream, KernelBody body) {
  if (cudaError_t s = sticky_error()) return s;
  const DeviceSpec& spec = device_spec();
  const unsigned long long threads = 1ull * block.x * block.y * block.z;
  auto refuse = [&](cudaError_t e, const char* why) {
    std::fprintf(stderr, "simt: launch of %s fails (%s): %s\n", signature, cudaGetErrorString(e), why);
    return set_error(e, false);
  };
  char why[256];
  if (block.x == 0 || block.y == 0 || block.z == 0 || grid.x == 0 || grid.y == 0 || grid.z == 0)
    return refuse(cudaErrorInvalidConfiguration, "a grid or block dimension is 0");
  if (block.x > 1024 || block.y > 1024 || block.z > 64 || threads > 1024) {
    std::snprintf(why, sizeof why, "block (%u,%u,%u) exceeds 1024 threads or (1024,1024,64)", block.x, block.y,
                  block.z);
    return refuse(cudaErrorInvalidConfiguration, why);
  }
  if (grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535) {
    std::snprintf(why, sizeof why, "grid (%u,%u,%u) exceeds (2^31-1, 65535, 65535)", grid.x, grid.y, grid.z);
    return refuse(cudaErrorInvalidConfiguration, why);
  }
  const size_t allowed = std::min(static_cast<size_t>(max_dynamic_smem(func)), spec.smem_optin);
  if (dynamic_smem > allowed) {
    std::snprintf(why, sizeof why,
                  "%zu bytes of dynamic shared memory exceed the %zu this kernel may use on the %s (sm_%d%d; "
                  "above 48 KiB needs cudaFuncSetAttribute, up to %zu)",
                  dynamic_smem, allowed, spec.name, spec.major, spec.minor, spec.smem_optin);
    return refuse(cudaErrorInvalidValue, why);
  }
  // What ptxas gave the kernel on this architecture (kernel_resources.json): a block whose
  // registers do not fit the register file, or whose static + dynamic shared memory exceeds the
  // opt-in maximum, is refused as a real GPU refuses it.
  if (KernelResources k; kernel_resources(func, &k)) {
    if (const gpt2::SmArchitecture* sm = gpt2::find_sm_architecture(spec.major, spec.minor)) {
      const gpt2::Occupancy o = gpt2::compute_occupancy(
          *sm, k.registers, k.static_smem,
          gpt2::LaunchResources{static_cast<int>(threads), static_cast<int64_t>(dynamic_smem)});
      if (o.refused) {
        const char* name = kernel_name(func);
        const std::string what = std::string(name ? name : "this kernel") + ": " + o.refusal + " (it uses " +
                                 std::to_string(k.registers) +
                                 " registers per thread and " + std::to_string(k.static_smem) +
                                 " bytes of static shared memory)";
        return refuse(cudaErrorLaunchOutOfResources, what.c_str());
      }
    }
  }

  // The blocks run later, when the stream's queue reaches the launch (src/streams.cpp).
  LaunchInfo launch{func, signature, grid, block, dynamic_smem, std::move(body)};
  return enqueue(stream, [launch = std::move(launch)] { run_launch(launch); });
}

}  // namespace simt

// ---- Warp-synchronous intrinsics --------------------------------------------------------------
namespace {
void noop_combine(simt::LaneSlot*, unsigned, const char*, int) {}
void ballot_combine(simt::LaneSlot* slots, unsigned mask, const char*, int) {
  unsigned ballot = 0;
  for (unsigned l = 0; l < 32; ++l)
    if (mask & (1u << l)) {
      int p;
      std::memcpy(&p, slots[l].in, sizeof p);
      if (p) ballot |= 1u << l;
    }
  for (unsigned l = 0; l < 32; ++l)
    if (mask & (1u << l)) std::memcpy(slots[l].out, &ballot, sizeof ballot);
}
}  // namespace

void __syncwarp_impl(unsigned mask, const char* file, int line) {
  simt::warp_collective(mask, "__syncwarp", nullptr, 0, noop_combine, file, line);
}
unsigned __ballot_sync_impl(unsigned mask, int pred, const char* file, int line) {
  unsigned r;
  std::memcpy(&r, simt::warp_collective(mask, "__ballot_sync", &pred, sizeof pred, ballot_combine, file, line),
              sizeof r);
  return r;
}

// ---- PTX ----------------------------------------------------------------------------------------
namespace simt::ptx {
namespace {

inline uint16_t lo16(uint32_t r) { return static_cast<uint16_t>(r & 0xFFFFu); }
inline uint16_t hi16(uint32_t r) { return static_cast<uint16_t>(r >> 16); }
inline float bf(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

template <bool Trans>
void ldmatrix_combine(LaneSlot* slots, unsigned, const char* file, int line) {
  const uint16_t* rows[32];
  for (int l = 0; l < 32; ++l) {
    std::memcpy(&rows[l], slots[l].in, sizeof(void*));
    if (reinterpret_cast<uintptr_t>(rows[l]) % 16 != 0)
      fault_code(cudaErrorMisalignedAddress, file, line, "ldmatrix: lane %d's row address %p is not 16-byte aligned", l,
                 static_cast<const void*>(rows[l]));
  }
  for (int l = 0; l < 32; ++l) {
    uint32_t r[4];
    for (int m = 0; m < 4; ++m) {
      const uint16_t* const* M = rows + 8 * m;  // M[row][col]: row r of matrix m comes from lane 8m + r
      uint16_t a, b;
      if (!Trans) {
        a = M[l / 4][2 * (l % 4)];
        b = M[l / 4][2 * (l % 4) + 1];
      } else {
        a = M[2 * (l % 4)][l / 4];
        b = M[2 * (l % 4) + 1][l / 4];
      }
      r[m] = static_cast<uint32_t>(a) | (static_cast<uint32_t>(b) << 16);
    }
    std::memcpy(slots[l].out, r, sizeof r);
  }
}

struct MmaIn {
  uint32_t a[4];
  uint32_t b[2];
  float c[4];
};

void mma_combine(LaneSlot* slots, unsigned, const char*, int) {
  trace::count_mma();
  float A[16][16], B[16][8], C[16][8];
  for (int l = 0; l < 32; ++l) {
    MmaIn in;
    std::memcpy(&in, slots[l].in, sizeof in);
    const int g = l >> 2, t = l & 3;
    // A (row-major 16×16): a0,a1 (row g) a2,a3 (row g+8) cols 2t,2t+1; a4..a7 the same at cols +8.
    A[g][2 * t] = bf(lo16(in.a[0]));
    A[g][2 * t + 1] = bf(hi16(in.a[0]));
    A[g + 8][2 * t] = bf(lo16(in.a[1]));
    A[g + 8][2 * t + 1] = bf(hi16(in.a[1]));
    A[g][2 * t + 8] = bf(lo16(in.a[2]));
    A[g][2 * t + 9] = bf(hi16(in.a[2]));
    A[g + 8][2 * t + 8] = bf(lo16(in.a[3]));
    A[g + 8][2 * t + 9] = bf(hi16(in.a[3]));
    // B (16×8, k × n): b0,b1 rows k = 2t, 2t+1; b2,b3 rows 2t+8, 2t+9; column n = g.
    B[2 * t][g] = bf(lo16(in.b[0]));
    B[2 * t + 1][g] = bf(hi16(in.b[0]));
    B[2 * t + 8][g] = bf(lo16(in.b[1]));
    B[2 * t + 9][g] = bf(hi16(in.b[1]));
    // C (16×8): c0,c1 row g, c2,c3 row g+8; columns 2t, 2t+1.
    C[g][2 * t] = in.c[0];
    C[g][2 * t + 1] = in.c[1];
    C[g + 8][2 * t] = in.c[2];
    C[g + 8][2 * t + 1] = in.c[3];
  }
  float D[16][8];
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 8; ++n) {
      float acc = C[m][n];
      for (int k = 0; k < 16; ++k) acc += A[m][k] * B[k][n];  // the product of two bf16 is exact
      D[m][n] = acc;
    }
  for (int l = 0; l < 32; ++l) {
    const int g = l >> 2, t = l & 3;
    const float d[4] = {D[g][2 * t], D[g][2 * t + 1], D[g + 8][2 * t], D[g + 8][2 * t + 1]};
    std::memcpy(slots[l].out, d, sizeof d);
  }
}

}  // namespace

void cp_async(void* smem, const void* gmem, int cp_size, int src_size, const char* file, int line) {
  Thread& t = current_thread("cp.async");
  if (cp_size != 4 && cp_size != 8 && cp_size != 16)
    fault(file, line, "cp.async: cp-size %d is not 4, 8 or 16", cp_size);
  if (src_size < 0 || src_size > cp_size)
    fault(file, line, "cp.async: src-size %d is outside 0..cp-size (%d)", src_size, cp_size);
  if (reinterpret_cast<uintptr_t>(smem) % static_cast<uintptr_t>(cp_size) != 0 ||
      (src_size > 0 && reinterpret_cast<uintptr_t>(gmem) % static_cast<uintptr_t>(cp_size) != 0))
    fault_code(cudaErrorMisalignedAddress, file, line,
               "cp.async: shared %p or global %p is not aligned to the cp-size of %d bytes", smem, gmem, cp_size);
  if (trace::enabled()) {
    if (src_size > 0) trace::layer_access(gmem, static_cast<unsigned>(src_size), false, file, line);
    trace::layer_access(smem, static_cast<unsigned>(cp_size), true, file, line);
  }
  t.copies.push_back(CopyOp{smem, gmem, cp_size, src_size});
}

void cp_async_commit_group() {
  Thread& t = current_thread("cp.async.commit_group");
  t.group_ends.push_back(t.copies.size());
}

void cp_async_wait_group(int n, const char* file, int line) {
  Thread& t = current_thread("cp.async.wait_group");
  if (n < 0) fault(file, line, "cp.async.wait_group %d", n);
  // Groups retire oldest first: all but the newest n committed groups must have landed.
  const size_t groups = t.group_ends.size();
  if (groups > static_cast<size_t>(n)) land_copies(t, t.group_ends[groups - 1 - static_cast<size_t>(n)]);
}

void ldmatrix_x4(uint32_t (&r)[4], const void* smem, bool trans, const char* file, int line) {
  if (trace::enabled()) trace::layer_access(smem, 16, false, file, line);  // this lane's row
  const unsigned char* out =
      warp_collective(0xffffffffu, trans ? "ldmatrix.x4.trans" : "ldmatrix.x4", &smem, sizeof smem,
                      trans ? ldmatrix_combine<true> : ldmatrix_combine<false>, file, line);
  std::memcpy(r, out, sizeof r);
}

void mma_m16n8k16_bf16_f32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4],
                           const char* file, int line) {
  MmaIn in;
  std::memcpy(in.a, a, sizeof in.a);
  std::memcpy(in.b, b, sizeof in.b);
  std::memcpy(in.c, c, sizeof in.c);
  const unsigned char* out = warp_collective(0xffffffffu, "mma.m16n8k16", &in, sizeof in, mma_combine, file, line);
  std::memcpy(d, out, sizeof d);
}

}  // namespace simt::ptx
