// Streams and events of the SIMT layer. Work issued to a stream (a kernel launch, an async copy
// or memset, a cuBLASLt matmul, an event record, a wait for an event) is queued and runs later,
// at a synchronisation point: in issue order within a stream, and between streams in the order
// GPT2_SIMT_SCHEDULE names. The rules are those of the CUDA Runtime API reference ("Stream
// synchronization behavior", the cudaStream* and cudaEvent* functions); README.md ("Streams")
// lists them with the choices the layer makes where the reference leaves one open.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "internal.h"
#include "simt/runtime.h"

namespace simt {

// The moment a stream has executed its first `count` operations.
struct StreamPoint {
  uint64_t stream = 0;  // the stream's id
  uint64_t count = 0;
  bool operator==(const StreamPoint& o) const { return stream == o.stream && count == o.count; }
};

// One queued operation. It may run once its stream has executed every operation issued before
// it and every point in `after` has been reached; `work` is empty for a wait or a marker.
struct QueuedOperation {
  std::function<void()> work;
  std::vector<StreamPoint> after;
  CUevent_st* stamps = nullptr;  // cudaEventRecord: the event whose completion time it takes
  uint64_t stamps_id = 0;        // that event's id (the handle may be destroyed and reused by then)
};

}  // namespace simt

struct CUstream_st {
  uint64_t id;                                // creation order: 0 is the legacy default stream
  unsigned flags;                             // cudaStreamDefault or cudaStreamNonBlocking
  std::deque<simt::QueuedOperation> queue{};  // issued, not yet executed, oldest first
  uint64_t issued = 0;                        // operations issued so far
  uint64_t executed = 0;                      // of which executed (issued - queue.size())
  // A blocking stream synchronises with the legacy default stream; a non-blocking one does not.
  bool blocking() const { return (flags & cudaStreamNonBlocking) == 0; }
};

struct CUevent_st {
  uint64_t id;
  unsigned flags;
  bool recorded = false;       // cudaEventRecord has been called
  simt::StreamPoint record{};  // the latest record's place: the event completes when it is reached
  bool stamped = false;        // the latest record has executed and `when` is its time
  std::chrono::steady_clock::time_point when{};
};

namespace simt {
namespace {

constexpr uint64_t kLegacyStreamId = 0;

// Every live stream and event, and the lock that serialises issuing work and running it.
struct Streams {
  std::mutex mu;
  CUstream_st legacy{kLegacyStreamId, cudaStreamDefault};
  std::map<uint64_t, CUstream_st*> by_id{{kLegacyStreamId, &legacy}};  // ascending id = creation order
  std::set<const CUevent_st*> events;
  uint64_t next_stream_id = kLegacyStreamId + 1, next_event_id = 1;
  std::mt19937_64 random_choice{schedule().seed ^ 0x5354524541u};  // the random schedule's picks
};
void run_queued_work_at_exit();

// Never destroyed: work still queued when the program exits runs then (run_queued_work_at_exit).
Streams& streams() {
  static Streams* s = [] {
    planted("sync-streams");  // reads GPT2_SIMT_PLANT now: a bad value ends the process before any lock is held
    std::atexit(run_queued_work_at_exit);
    return new Streams();
  }();
  return *s;
}

cudaError_t invalid_handle(const char* what) {
  std::fprintf(stderr, "simt: %s: %s\n", what, cudaGetErrorString(cudaErrorInvalidResourceHandle));
  return set_error(cudaErrorInvalidResourceHandle, false);
}

// The stream a handle names (nullptr: the legacy default stream), or nullptr when it names none.
CUstream_st* find_stream(Streams& t, cudaStream_t handle) {
  if (!handle) return &t.legacy;
  for (auto& entry : t.by_id)
    if (entry.second == handle) return handle;
  return nullptr;
}
bool event_exists(const Streams& t, const CUevent_st* e) { return e && t.events.count(e) != 0; }

StreamPoint end_of(const CUstream_st& s) { return {s.id, s.issued}; }
bool has_pending_work(const CUstream_st& s) { return s.executed < s.issued; }

// A destroyed stream had run everything it was given, so its points are all reached.
bool reached(const Streams& t, const StreamPoint& p) {
  auto it = t.by_id.find(p.stream);
  return it == t.by_id.end() || it->second->executed >= p.count;
}
bool all_reached(const Streams& t, const std::vector<StreamPoint>& points) {
  for (const StreamPoint& p : points)
    if (!reached(t, p)) return false;
  return true;
}

// What an operation issued to `s` waits for by the legacy default stream's rules: one in the
// legacy stream waits for every blocking stream's earlier work, one in a blocking stream waits
// for the legacy stream's earlier work; a non-blocking stream waits for neither.
std::vector<StreamPoint> legacy_stream_waits(const Streams& t, const CUstream_st& s) {
  std::vector<StreamPoint> waits;
  if (s.id == kLegacyStreamId) {
    for (const auto& entry : t.by_id) {
      const CUstream_st& other = *entry.second;
      if (other.id != kLegacyStreamId && other.blocking() && has_pending_work(other)) waits.push_back(end_of(other));
    }
  } else if (s.blocking() && has_pending_work(t.legacy)) {
    waits.push_back(end_of(t.legacy));
  }
  return waits;
}

// What cudaStreamSynchronize(s) waits for: everything issued to s, and for the legacy stream
// also everything issued to the blocking streams (a synchronisation is an action in it).
std::vector<StreamPoint> completion_of(const Streams& t, const CUstream_st& s) {
  std::vector<StreamPoint> points = s.id == kLegacyStreamId ? legacy_stream_waits(t, s) : std::vector<StreamPoint>{};
  points.push_back(end_of(s));
  return points;
}

bool can_run_next(const Streams& t, const CUstream_st& s) {
  return !s.queue.empty() && all_reached(t, s.queue.front().after);
}

// The stream whose next operation runs now, among those whose next operation can run: the
// oldest (ascending schedule), the newest (descending) or a seeded random one; nullptr if none.
CUstream_st* choose_stream(Streams& t) {
  std::vector<CUstream_st*> candidates;
  for (auto& entry : t.by_id)
    if (can_run_next(t, *entry.second)) candidates.push_back(entry.second);
  if (candidates.empty()) return nullptr;
  switch (schedule().order) {
    case Order::Ascending: return candidates.front();
    case Order::Descending: return candidates.back();
    case Order::Random: return candidates[t.random_choice() % candidates.size()];
  }
  return candidates.front();
}

// An event record takes its time when it executes, if it is still the event's latest record.
void stamp_event(const Streams& t, const QueuedOperation& op, const StreamPoint& where) {
  if (!event_exists(t, op.stamps) || op.stamps->id != op.stamps_id || !(op.stamps->record == where)) return;
  op.stamps->stamped = true;
  op.stamps->when = std::chrono::steady_clock::now();
}

// Runs the next operation of `s`. After a kernel fault the device runs nothing more: the rest of
// the queued work is dropped, as a GPU drops it, and the fault is what synchronisation reports.
void run_next(Streams& t, CUstream_st& s) {
  QueuedOperation op = std::move(s.queue.front());
  s.queue.pop_front();
  if (!sticky_error()) {
    if (op.work) op.work();
    if (op.stamps) stamp_event(t, op, StreamPoint{s.id, s.executed + 1});
  }
  ++s.executed;
}

// Runs one queued operation; false when nothing is queued.
bool run_one(Streams& t) {
  CUstream_st* s = choose_stream(t);
  if (s) {
    run_next(t, *s);
    return true;
  }
  for (const auto& entry : t.by_id)
    if (!entry.second->queue.empty()) {
      // Waits only name points issued earlier, so some stream can always proceed.
      std::fprintf(stderr, "simt: internal error: queued stream work waits in a cycle\n");
      std::abort();
    }
  return false;
}

void run_until(Streams& t, const std::vector<StreamPoint>& points) {
  while (!all_reached(t, points) && run_one(t)) {
  }
}
void run_all(Streams& t) {
  while (run_one(t)) {
  }
}

// Program exit is a synchronisation point: what is still queued runs, and a fault in it is
// reported on stderr. It runs on a thread of its own, because the exiting thread's thread-local
// storage (its fibers' stacks and block state) is already destroyed when exit handlers run. When
// the process exits while it holds the streams' lock (from inside queued work), nothing runs.
void run_queued_work_at_exit() {
  std::thread([] {
    Streams& t = streams();
    std::unique_lock<std::mutex> lock(t.mu, std::try_to_lock);
    if (lock.owns_lock()) run_all(t);
  }).join();
}

// Queues `op` on `s` and returns the point it completes. With GPT2_SIMT_PLANT=sync-streams (the
// planted fault of test_layer_streams) it runs at once instead, as the layer once did.
StreamPoint issue(Streams& t, CUstream_st& s, QueuedOperation op) {
  for (const StreamPoint& p : legacy_stream_waits(t, s)) op.after.push_back(p);
  s.queue.push_back(std::move(op));
  ++s.issued;
  const StreamPoint done = end_of(s);
  if (planted("sync-streams")) run_until(t, {done});
  return done;
}

}  // namespace

namespace {
// enqueue and enqueue_and_wait: queues `work`, and with `wait` runs queued work until it has run.
cudaError_t queue_work(cudaStream_t stream, std::function<void()> work, bool wait) {
  Streams& t = streams();
  std::lock_guard<std::mutex> lock(t.mu);
  CUstream_st* s = find_stream(t, stream);
  if (!s) return invalid_handle("work issued to a stream that does not exist");
  if (cudaError_t e = sticky_error()) return e;
  QueuedOperation op;
  op.work = std::move(work);
  const StreamPoint done = issue(t, *s, std::move(op));
  if (wait) run_until(t, {done});
  return sticky_error();  // cudaSuccess, unless the work ran (waited for, or planted) and faulted
}
}  // namespace

cudaError_t enqueue(cudaStream_t stream, std::function<void()> work) {
  return queue_work(stream, std::move(work), false);
}
cudaError_t enqueue_and_wait(cudaStream_t stream, std::function<void()> work) {
  return queue_work(stream, std::move(work), true);
}

cudaError_t complete_earlier_work(cudaStream_t stream) { return enqueue_and_wait(stream, nullptr); }

void complete_all_work() {
  Streams& t = streams();
  std::lock_guard<std::mutex> lock(t.mu);
  run_all(t);
}

}  // namespace simt

using simt::set_error;

// ---- Device-wide synchronisation -----------------------------------------------------------------
cudaError_t cudaDeviceSynchronize() {
  simt::complete_all_work();
  return simt::sticky_error();
}
// Runs what is queued, then forgets the sticky error (the layer keeps its allocations).
cudaError_t cudaDeviceReset() {
  simt::complete_all_work();
  simt::clear_sticky_error();
  return cudaSuccess;
}

// ---- Streams -------------------------------------------------------------------------------------
cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, cudaStreamDefault); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags) {
  if (!s || (flags & ~cudaStreamNonBlocking) != 0) return set_error(cudaErrorInvalidValue, false);
  simt::Streams& t = simt::streams();
  std::lock_guard<std::mutex> lock(t.mu);
  const uint64_t id = t.next_stream_id++;
  *s = new CUstream_st{id, flags};
  t.by_id[id] = *s;
  return simt::sticky_error();
}
// Runs the stream's queue to its end first (a GPU finishes it after the call returns).
cudaError_t cudaStreamDestroy(cudaStream_t handle) {
  if (!handle) return simt::sticky_error();
  simt::Streams& t = simt::streams();
  std::lock_guard<std::mutex> lock(t.mu);
  CUstream_st* s = simt::find_stream(t, handle);
  if (!s) return simt::invalid_handle("cudaStreamDestroy");
  simt::run_until(t, {simt::end_of(*s)});
  t.by_id.erase(s->id);
  delete s;
  return simt::sticky_error();
}
cudaError_t cudaStreamSynchronize(cudaStream_t handle) {
  simt::Streams& t = simt::streams();
  std::lock_guard<std::mutex> lock(t.mu);
  CUstream_st* s = simt::find_stream(t, handle);
  if (!s) return simt::invalid_handle("cudaStreamSynchronize");
  simt::run_until(t, simt::completion_of(t, *s));
  return simt::sticky_error();
}
// Complete: cudaSuccess. Not complete: the device advances by one queued operation (the one the
// schedule picks) and the answer is cudaErrorNotReady, so a polling loop always ends.
cudaError_t cudaStreamQuery(cudaStream_t handle) {
  simt::Streams& t = simt::streams();
  std::lock_guard<std::mutex> lock(t.mu);
  CUstream_st* s = simt::find_stream(t, handle);
  if (!s) return simt::invalid_handle("cudaStreamQuery");
  if (cudaError_t e = simt::sticky_error()) return e;
  if (simt::all_reached(t, simt::completion_of(t, *s))) return cudaSuccess;
  simt::run_one(t);
  return cudaErrorNotReady;
}
// Later work of the stream waits for the event's latest record (a no-op if it has none).
cudaError_t cudaStreamWaitEvent(cudaStream_t handle, cudaEvent_t e, unsigned flags) {
  simt::Streams& t = simt::streams();
  std::lock_guard<std::mutex> lock(t.mu);
  CUstream_st* s = simt::find_stream(t, handle);
  if (!s || !simt::event_exists(t, e)) return simt::invalid_handle("cudaStreamWaitEvent");
  if (flags != 0) return set_error(cudaErrorInvalidValue, false);
  if (cudaError_t err = simt::sticky_error()) return err;
  if (!e->recorded) return cudaSuccess;
  simt::QueuedOperation wait;
  wait.after.push_back(e->record);
  simt::issue(t, *s, std::move(wait));
  return cudaSuccess;
}

// ---- Events --------------------------------------------------------------------------------------
cudaError_t cudaEventCreate(cudaEvent_t* e) { return cudaEventCreateWithFlags(e, cudaEventDefault); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned flags) {
  if (!e || (flags & ~(cudaEventBlockingSync | cudaEventDisableTiming)) != 0)
    return set_error(cudaErrorInvalidValue, false);
  simt::Streams& t = simt::streams();
  std::lock_guard<std::mutex> lock(t.mu);
  *e = new CUevent_st{t.next_event_id++, flags};
  t.events.insert(*e);
  return simt::sticky_error();
}
// A record still queued for the event is kept and does nothing when it runs.
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  if (!e) return set_error(cudaErrorInvalidResourceHandle, false);
  simt::Streams& t = simt::streams();
  std::lock_guard<std::mutex> lock(t.mu);
  if (!simt::event_exists(t, e)) return simt::invalid_handle("cudaEventDestroy");
  t.events.erase(e);
  delete e;
  return simt::sticky_error();
}
// The event captures the stream's work issued so far; its time is taken when the record runs.
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t handle) {
  simt::Streams& t = simt::streams();
  std::lock_guard<std::mutex> lock(t.mu);
  CUstream_st* s = simt::find_stream(t, handle);
  if (!s || !simt::event_exists(t, e)) return simt::invalid_handle("cudaEventRecord");
  if (cudaError_t err = simt::sticky_error()) return err;
  e->recorded = true;
  e->stamped = false;
  e->record = simt::StreamPoint{s->id, s->issued + 1};  // the point this record completes
  simt::QueuedOperation record;
  record.stamps = e;
  record.stamps_id = e->id;
  simt::issue(t, *s, std::move(record));
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  simt::Streams& t = simt::streams();
  std::lock_guard<std::mutex> lock(t.mu);
  if (!simt::event_exists(t, e)) return simt::invalid_handle("cudaEventSynchronize");
  if (e->recorded) simt::run_until(t, {e->record});
  return simt::sticky_error();
}
// As cudaStreamQuery: an incomplete event advances the device by one operation and answers
// cudaErrorNotReady. An event never recorded is complete.
cudaError_t cudaEventQuery(cudaEvent_t e) {
  simt::Streams& t = simt::streams();
  std::lock_guard<std::mutex> lock(t.mu);
  if (!simt::event_exists(t, e)) return simt::invalid_handle("cudaEventQuery");
  if (cudaError_t err = simt::sticky_error()) return err;
  if (!e->recorded || simt::reached(t, e->record)) return cudaSuccess;
  simt::run_one(t);
  return cudaErrorNotReady;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  if (!ms) return set_error(cudaErrorInvalidValue, false);
  simt::Streams& t = simt::streams();
  std::lock_guard<std::mutex> lock(t.mu);
  if (!simt::event_exists(t, a) || !simt::event_exists(t, b)) return simt::invalid_handle("cudaEventElapsedTime");
  if ((a->flags | b->flags) & cudaEventDisableTiming) return set_error(cudaErrorInvalidResourceHandle, false);
  if (!a->recorded || !b->recorded) return set_error(cudaErrorInvalidResourceHandle, false);
  if (cudaError_t err = simt::sticky_error()) return err;
  if (!a->stamped || !b->stamped) return cudaErrorNotReady;
  *ms = std::chrono::duration<float, std::milli>(b->when - a->when).count();
  return cudaSuccess;
}
