// Self-test of the SIMT layer's NCCL over MPI (tests/simt/src/nccl.cpp). Run under
//   mpirun -np 2 --oversubscribe [--allow-run-as-root] test_nccl
// (any number of ranks works). Every rank computes the expected values of every rank itself, so
// results are checked exactly (same fp32 operations in rank order), and results that must be the
// same everywhere are compared across ranks by hash. Plain main(): PASSED/FAILED lines (rank 0
// prints the collective verdicts), exit status 0 when every rank passed everything.
#include <mpi.h>
#include <nccl.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cuda_bf16.h"

namespace {

int g_rank = 0, g_world = 1, g_failed = 0, g_passed = 0;

// A check that every rank evaluates: passes when it passed on all ranks.
void report(bool ok_here, const std::string& name, const std::string& detail = "") {
  int ok = ok_here ? 1 : 0, all = 0;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!ok_here)
    std::printf("rank %d: FAILED %s%s%s\n", g_rank, name.c_str(), detail.empty() ? "" : ": ", detail.c_str());
  if (g_rank == 0) std::printf("%s %s (all %d ranks)\n", all ? "PASSED" : "FAILED", name.c_str(), g_world);
  (all ? g_passed : g_failed)++;
  std::fflush(stdout);
}

uint64_t hash_bytes(const void* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<const unsigned char*>(p)[i]) * 1099511628211ull;
  return h;
}
bool same_on_all_ranks(const void* p, size_t n) {
  const uint64_t h = hash_bytes(p, n);
  std::vector<uint64_t> all(static_cast<size_t>(g_world));
  MPI_Allgather(&h, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD);
  for (uint64_t x : all)
    if (x != h) return false;
  return true;
}

// Rank r's contribution at index i (fp32, and bf16-representable values for bf16 tests).
float fval(int r, size_t i) {
  return static_cast<float>(static_cast<int>((r * 7919 + i * 104729) % 2001) - 1000) * 0.00123f + 0.1f * r;
}
uint16_t bval(int r, size_t i) { return simt::f32_to_bf16_rn(fval(r, i) * 3.7f); }

template <typename T>
struct DevBuf {
  T* p = nullptr;
  size_t n = 0;
  explicit DevBuf(size_t count) : n(count) { cudaMalloc(reinterpret_cast<void**>(&p), count * sizeof(T)); }
  ~DevBuf() { cudaFree(p); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
};

float expected_f32(size_t i, ncclRedOp_t op) {
  float acc = fval(0, i);
  for (int r = 1; r < g_world; ++r) acc = acc + fval(r, i);
  return op == ncclAvg ? acc / static_cast<float>(g_world) : acc;
}
uint16_t expected_bf16(size_t i, ncclRedOp_t op) {
  float acc = simt::bf16_to_f32(bval(0, i));
  for (int r = 1; r < g_world; ++r) acc = acc + simt::bf16_to_f32(bval(r, i));
  if (op == ncclAvg) acc = acc / static_cast<float>(g_world);
  return simt::f32_to_bf16_rn(acc);
}

ncclComm_t g_comm = nullptr;

void test_allreduce(size_t n) {
  for (ncclRedOp_t op : {ncclSum, ncclAvg}) {
    const char* opn = op == ncclSum ? "sum" : "avg";
    for (int in_place = 0; in_place < 2; ++in_place) {
      DevBuf<float> send(n), recv(n);
      for (size_t i = 0; i < n; ++i) send.p[i] = fval(g_rank, i);
      float* dst = in_place ? send.p : recv.p;
      const ncclResult_t st = ncclAllReduce(send.p, dst, n, ncclFloat32, op, g_comm, nullptr);
      size_t bad = 0;
      for (size_t i = 0; i < n; ++i) {
        const float e = expected_f32(i, op);
        bad += std::memcmp(&dst[i], &e, 4) != 0;
      }
      report(
          st == ncclSuccess && bad == 0 && same_on_all_ranks(dst, n * 4),
          std::string("AllReduce fp32 ") + opn + (in_place ? " in place" : " out of place") + " n=" + std::to_string(n),
          "status " + std::to_string(st) + ", " + std::to_string(bad) + " wrong");
    }
    DevBuf<uint16_t> b(n);
    for (size_t i = 0; i < n; ++i) b.p[i] = bval(g_rank, i);
    const ncclResult_t st = ncclAllReduce(b.p, b.p, n, ncclBfloat16, op, g_comm, nullptr);
    size_t bad = 0;
    for (size_t i = 0; i < n; ++i) bad += b.p[i] != expected_bf16(i, op);
    report(st == ncclSuccess && bad == 0 && same_on_all_ranks(b.p, n * 2),
           std::string("AllReduce bf16 ") + opn + " in place (fp32 reduction in rank order, one rounding)",
           std::to_string(bad) + " wrong");
  }
  {  // integer max and int64 sum
    DevBuf<int32_t> a(n);
    DevBuf<int64_t> s(n);
    for (size_t i = 0; i < n; ++i) a.p[i] = static_cast<int32_t>((g_rank * 31 + i * 17) % 101), s.p[i] = g_rank + 1;
    ncclResult_t st = ncclAllReduce(a.p, a.p, n, ncclInt32, ncclMax, g_comm, nullptr);
    const ncclResult_t st2 = ncclAllReduce(s.p, s.p, n, ncclInt64, ncclSum, g_comm, nullptr);
    size_t bad = 0;
    for (size_t i = 0; i < n; ++i) {
      int32_t mx = 0;
      for (int r = 0; r < g_world; ++r) mx = std::max(mx, static_cast<int32_t>((r * 31 + i * 17) % 101));
      bad += a.p[i] != mx;
      bad += s.p[i] != static_cast<int64_t>(g_world) * (g_world + 1) / 2;
    }
    report(st == ncclSuccess && st2 == ncclSuccess && bad == 0, "AllReduce int32 max and int64 sum",
           std::to_string(bad) + " wrong");
  }
}

void test_reduce_scatter(size_t per_rank) {
  const size_t total = per_rank * static_cast<size_t>(g_world);
  for (int in_place = 0; in_place < 2; ++in_place) {
    DevBuf<float> send(total), recv(per_rank);
    for (size_t i = 0; i < total; ++i) send.p[i] = fval(g_rank, i);
    float* dst = in_place ? send.p + static_cast<size_t>(g_rank) * per_rank : recv.p;
    const ncclResult_t st = ncclReduceScatter(send.p, dst, per_rank, ncclFloat32, ncclSum, g_comm, nullptr);
    size_t bad = 0;
    for (size_t i = 0; i < per_rank; ++i) {
      const float e = expected_f32(static_cast<size_t>(g_rank) * per_rank + i, ncclSum);
      bad += std::memcmp(&dst[i], &e, 4) != 0;
    }
    report(st == ncclSuccess && bad == 0,
           std::string("ReduceScatter fp32 sum ") + (in_place ? "in place" : "out of place") +
               " recvcount=" + std::to_string(per_rank),
           std::to_string(bad) + " wrong");
  }
  DevBuf<uint16_t> b(total);
  for (size_t i = 0; i < total; ++i) b.p[i] = bval(g_rank, i);
  uint16_t* dst = b.p + static_cast<size_t>(g_rank) * per_rank;
  const ncclResult_t st = ncclReduceScatter(b.p, dst, per_rank, ncclBfloat16, ncclAvg, g_comm, nullptr);
  size_t bad = 0;
  for (size_t i = 0; i < per_rank; ++i)
    bad += dst[i] != expected_bf16(static_cast<size_t>(g_rank) * per_rank + i, ncclAvg);
  report(st == ncclSuccess && bad == 0, "ReduceScatter bf16 avg in place", std::to_string(bad) + " wrong");
}

void test_allgather(size_t per_rank) {
  const size_t total = per_rank * static_cast<size_t>(g_world);
  for (int in_place = 0; in_place < 2; ++in_place) {
    DevBuf<float> send(per_rank), recv(total);
    float* src = in_place ? recv.p + static_cast<size_t>(g_rank) * per_rank : send.p;
    for (size_t i = 0; i < per_rank; ++i) src[i] = fval(g_rank, i);
    const ncclResult_t st = ncclAllGather(src, recv.p, per_rank, ncclFloat32, g_comm, nullptr);
    size_t bad = 0;
    for (int r = 0; r < g_world; ++r)
      for (size_t i = 0; i < per_rank; ++i) {
        const float e = fval(r, i);
        bad += std::memcmp(&recv.p[static_cast<size_t>(r) * per_rank + i], &e, 4) != 0;
      }
    report(st == ncclSuccess && bad == 0 && same_on_all_ranks(recv.p, total * 4),
           std::string("AllGather fp32 ") + (in_place ? "in place" : "out of place") +
               " sendcount=" + std::to_string(per_rank),
           std::to_string(bad) + " wrong");
  }
}

void test_broadcast(size_t n) {
  const int root = g_world - 1;
  for (int in_place = 0; in_place < 2; ++in_place) {
    DevBuf<uint16_t> send(n), recv(n);
    for (size_t i = 0; i < n; ++i) send.p[i] = bval(g_rank, i), recv.p[i] = 0;
    uint16_t* dst = in_place ? send.p : recv.p;
    const ncclResult_t st = ncclBroadcast(send.p, dst, n, ncclBfloat16, root, g_comm, nullptr);
    size_t bad = 0;
    for (size_t i = 0; i < n; ++i) bad += dst[i] != bval(root, i);
    report(st == ncclSuccess && bad == 0 && same_on_all_ranks(dst, n * 2),
           std::string("Broadcast bf16 from rank ") + std::to_string(root) + (in_place ? " in place" : " out of place"),
           std::to_string(bad) + " wrong");
  }
}

void test_errors() {
  DevBuf<float> buf(64);
  std::vector<float> host(64);
  // Only rank 0 passes host memory: every rank must get the error (no hang).
  float* p = g_rank == 0 ? host.data() : buf.p;
  ncclResult_t st = ncclAllReduce(p, p, 64, ncclFloat32, ncclSum, g_comm, nullptr);
  report(st == ncclInvalidArgument, "AllReduce with a host buffer on rank 0 fails on every rank",
         "status " + std::to_string(st));
  // A buffer too short for the count.
  st = ncclAllGather(buf.p, buf.p, 64, ncclFloat32, g_comm, nullptr);
  report(g_world == 1 || st == ncclInvalidArgument, "AllGather whose recvbuff is too short",
         "status " + std::to_string(st));
  // Ranks disagree on the count.
  st = ncclAllReduce(buf.p, buf.p, g_rank == 0 ? 32 : 16, ncclFloat32, ncclSum, g_comm, nullptr);
  report(g_world == 1 || st == ncclInvalidUsage, "AllReduce with different counts on different ranks",
         "status " + std::to_string(st));
  // Only the last rank asks for fp16 (not emulated): the error reaches every rank.
  st = ncclAllReduce(buf.p, buf.p, 16, g_rank == g_world - 1 ? ncclFloat16 : ncclFloat32, ncclSum, g_comm, nullptr);
  report(st == ncclInvalidArgument, "fp16 on one rank is reported on every rank", "status " + std::to_string(st));
  ncclResult_t async = ncclInternalError;
  st = ncclCommGetAsyncError(g_comm, &async);
  report(st == ncclSuccess && async == ncclSuccess, "ncclCommGetAsyncError reports no error");
  report(std::string(ncclGetErrorString(ncclInvalidUsage)).find("invalid usage") == 0, "ncclGetErrorString");
}

}  // namespace

int main(int argc, char** argv) {
  // Before MPI_Init the emulation must refuse.
  ncclUniqueId early;
  ncclGetUniqueId(&early);
  ncclComm_t none = nullptr;
  const ncclResult_t before = ncclCommInitRank(&none, 1, early, 0);

  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_world);
  report(before == ncclInvalidUsage && none == nullptr, "ncclCommInitRank before MPI_Init returns ncclInvalidUsage");

  ncclUniqueId id;
  if (g_rank == 0) ncclGetUniqueId(&id);
  MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
  const ncclResult_t init = ncclCommInitRank(&g_comm, g_world, id, g_rank);
  int count = 0, me = -1;
  ncclCommCount(g_comm, &count);
  ncclCommUserRank(g_comm, &me);
  report(init == ncclSuccess && count == g_world && me == g_rank, "ncclCommInitRank over all ranks");
  if (init != ncclSuccess) {
    MPI_Finalize();
    return 1;
  }

  test_allreduce(1000);
  test_allreduce((size_t{1} << 20) + 37);  // more than one internal chunk
  test_reduce_scatter(777);
  test_allgather(513);
  test_broadcast(1029);
  test_errors();

  report(ncclCommDestroy(g_comm) == ncclSuccess, "ncclCommDestroy");
  if (g_rank == 0) std::printf("%s: %d passed, %d failed\n", g_failed ? "FAILED" : "PASSED", g_passed, g_failed);
  MPI_Finalize();
  return g_failed ? 1 : 0;
}
