// NCCL over MPI for the SIMT layer: see tests/simt/include/nccl.h for the scope and the
// emulation's rules. Collective semantics follow the NCCL API documentation:
//   AllReduce      recvbuff[i] = op over ranks of sendbuff[i], count elements on every rank.
//   Reduce         as AllReduce, written on the root only.
//   ReduceScatter  recvbuff[i] on rank r = op over ranks of sendbuff[r * recvcount + i].
//   AllGather      recvbuff[r * sendcount + i] = sendbuff[i] of rank r.
//   Broadcast      recvbuff[i] = sendbuff[i] of the root.
// ncclAvg divides the sum by the number of ranks. Data moves in chunks (bounded host memory).
#include <nccl.h>

#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <type_traits>
#include <vector>

#include "cuda_bf16.h"
#include "internal.h"

struct ncclComm {
  uint64_t magic;
  MPI_Comm mpi;
  int rank;
  int nranks;
};

namespace {

constexpr uint64_t kCommMagic = 0x4E43434C434F4D4DULL;  // "NCCLCOMM"
constexpr uint64_t kIdMagic = 0x53494D544E43494EULL;    // "SIMTNCIN": first 8 bytes of our unique ids
constexpr size_t kChunkElems = size_t{1} << 20;         // elements moved per MPI call

void say(const char* fn, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void say(const char* fn, const char* fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  int world = -1, inited = 0, finalized = 0;
  MPI_Initialized(&inited);
  MPI_Finalized(&finalized);
  if (inited && !finalized) MPI_Comm_rank(MPI_COMM_WORLD, &world);
  std::fprintf(stderr, "NCCL (SIMT layer) world rank %d: %s: %s\n", world, fn, msg);
}

bool mpi_usable() {
  int inited = 0, finalized = 0;
  MPI_Initialized(&inited);
  MPI_Finalized(&finalized);
  return inited && !finalized;
}

bool valid_comm(const ncclComm* c) { return c && c->magic == kCommMagic; }

size_t type_size(int t) {
  switch (t) {
    case ncclInt8:
    case ncclUint8: return 1;
    case ncclInt32:
    case ncclUint32:
    case ncclFloat32: return 4;
    case ncclInt64:
    case ncclUint64:
    case ncclFloat64: return 8;
    case ncclBfloat16: return 2;
  }
  return 0;  // fp16 and unknown values: not emulated
}

// ---- Arithmetic ----------------------------------------------------------------------------------------
template <typename T>
struct Plain {
  using Acc = T;
  static constexpr size_t kSize = sizeof(T);
  static Acc load(const void* p, size_t i) { return static_cast<const T*>(p)[i]; }
  static void store(void* p, size_t i, Acc v) { static_cast<T*>(p)[i] = v; }
};
struct Bf16 {
  using Acc = float;
  static constexpr size_t kSize = 2;
  static Acc load(const void* p, size_t i) { return simt::bf16_to_f32(static_cast<const uint16_t*>(p)[i]); }
  static void store(void* p, size_t i, Acc v) { static_cast<uint16_t*>(p)[i] = simt::f32_to_bf16_rn(v); }
};

// Integer + and * wrap (done in the unsigned type), as on the device.
template <typename A>
A add(A a, A b) {
  if constexpr (std::is_integral_v<A>) {
    using U = std::make_unsigned_t<A>;
    return static_cast<A>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
  } else {
    return a + b;
  }
}
template <typename A>
A mul(A a, A b) {
  if constexpr (std::is_integral_v<A>) {
    using U = std::make_unsigned_t<A>;
    return static_cast<A>(static_cast<U>(static_cast<U>(a) * static_cast<U>(b)));
  } else {
    return a * b;
  }
}

// parts: nranks contiguous blocks of `len` elements (rank order). out[i] = op(parts[0][i], ...).
template <typename K>
void reduce_parts(const char* parts, size_t len, int nranks, ncclRedOp_t op, void* out, size_t out_offset) {
  using A = typename K::Acc;
  const size_t stride_bytes = len * K::kSize;  // one rank's block
  for (size_t i = 0; i < len; ++i) {
    A acc = K::load(parts, i);
    for (int r = 1; r < nranks; ++r) {
      const A v = K::load(parts + static_cast<size_t>(r) * stride_bytes, i);
      switch (op) {
        case ncclSum:
        case ncclAvg: acc = add(acc, v); break;
        case ncclProd: acc = mul(acc, v); break;
        case ncclMax: acc = v > acc ? v : acc; break;
        case ncclMin: acc = v < acc ? v : acc; break;
        default: break;
      }
    }
    if (op == ncclAvg) acc = static_cast<A>(acc / static_cast<A>(nranks));
    K::store(out, out_offset + i, acc);
  }
}

void reduce_dispatch(int type, const char* parts, size_t len, int nranks, ncclRedOp_t op, void* out,
                     size_t out_offset) {
  switch (type) {
    case ncclInt8: reduce_parts<Plain<int8_t>>(parts, len, nranks, op, out, out_offset); break;
    case ncclUint8: reduce_parts<Plain<uint8_t>>(parts, len, nranks, op, out, out_offset); break;
    case ncclInt32: reduce_parts<Plain<int32_t>>(parts, len, nranks, op, out, out_offset); break;
    case ncclUint32: reduce_parts<Plain<uint32_t>>(parts, len, nranks, op, out, out_offset); break;
    case ncclInt64: reduce_parts<Plain<int64_t>>(parts, len, nranks, op, out, out_offset); break;
    case ncclUint64: reduce_parts<Plain<uint64_t>>(parts, len, nranks, op, out, out_offset); break;
    case ncclFloat32: reduce_parts<Plain<float>>(parts, len, nranks, op, out, out_offset); break;
    case ncclFloat64: reduce_parts<Plain<double>>(parts, len, nranks, op, out, out_offset); break;
    case ncclBfloat16: reduce_parts<Bf16>(parts, len, nranks, op, out, out_offset); break;
  }
}

// ---- Argument agreement --------------------------------------------------------------------------------
enum Kind : int64_t { kAllReduce = 1, kReduce, kReduceScatter, kAllGather, kBroadcast };
const char* kind_name(int64_t k) {
  switch (k) {
    case kAllReduce: return "ncclAllReduce";
    case kReduce: return "ncclReduce";
    case kReduceScatter: return "ncclReduceScatter";
    case kAllGather: return "ncclAllGather";
    case kBroadcast: return "ncclBroadcast";
  }
  return "collective";
}

// Local checks, then one MPI_Allreduce(MAX) over {local error, kind, count, type, op, root and
// their negations}: every rank learns whether any rank failed or disagreed, and all return the
// same result.
ncclResult_t agree(ncclComm* c, Kind kind, ncclResult_t local, size_t count, int type, int op, int root) {
  const int64_t cnt = static_cast<int64_t>(count);
  int64_t v[11] = {local, kind, -kind, cnt, -cnt, type, -type, op, -op, root, -root};
  int64_t mx[11];
  MPI_Allreduce(v, mx, 11, MPI_INT64_T, MPI_MAX, c->mpi);
  if (mx[0] != ncclSuccess) {
    if (local == ncclSuccess) say(kind_name(kind), "another rank passed invalid arguments");
    return static_cast<ncclResult_t>(mx[0]);
  }
  if (mx[1] != -mx[2]) {
    say(kind_name(kind), "ranks called different collectives at the same time");
    return ncclInvalidUsage;
  }
  if (mx[3] != -mx[4] || mx[5] != -mx[6] || mx[7] != -mx[8] || mx[9] != -mx[10]) {
    say(kind_name(kind), "ranks disagree on count/datatype/op/root (count here %lld)", static_cast<long long>(cnt));
    return ncclInvalidUsage;
  }
  return ncclSuccess;
}

// Errors that make MPI unusable for this call: returned at once, on the calling rank only.
ncclResult_t check_comm(const char* fn, ncclComm* c) {
  if (!valid_comm(c)) {
    say(fn, "invalid communicator");
    return ncclInvalidArgument;
  }
  if (!mpi_usable()) {
    say(fn, "MPI is not initialised (or already finalised)");
    return ncclInvalidUsage;
  }
  return ncclSuccess;
}

// Argument errors: reported to every rank through agree().
ncclResult_t check_args(const char* fn, int type, bool has_op, int op) {
  if (type_size(type) == 0) {
    say(fn, "datatype %d is not supported by the emulation", type);
    return ncclInvalidArgument;
  }
  if (has_op && (op < ncclSum || op > ncclAvg)) {
    say(fn, "reduction op %d is not supported", op);
    return ncclInvalidArgument;
  }
  return ncclSuccess;
}

ncclResult_t check_buffer(const char* fn, const char* which, const void* p, size_t bytes) {
  if (bytes == 0) return ncclSuccess;
  if (!p || !simt::is_device_range(p, bytes)) {
    say(fn, "%s [%p, +%zu bytes) is not inside one device allocation", which, p, bytes);
    return ncclInvalidArgument;
  }
  return ncclSuccess;
}

// A collective runs on the calling thread when it is issued, as the next operation of `stream`:
// the stream's queued work, and what it depends on, runs first (tests/simt/src/streams.cpp).
// Collectives are not deferred: ranks run their queues in their own orders, and a collective
// queued on one rank while the other waits in a host MPI call could never meet its partner.
ncclResult_t run_earlier_stream_work(const char* fn, cudaStream_t stream) {
  const cudaError_t e = simt::complete_earlier_work(stream);
  if (e == cudaSuccess) return ncclSuccess;
  say(fn, "the stream's earlier work failed: %s", cudaGetErrorString(e));
  return ncclUnhandledCudaError;
}

// Element counts per MPI call: bounded so byte counts fit an int.
size_t chunk_of(size_t remaining) { return remaining < kChunkElems ? remaining : kChunkElems; }

}  // namespace

// ---- API ------------------------------------------------------------------------------------------------
const char* ncclGetErrorString(ncclResult_t r) {
  switch (r) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code";
  }
}
const char* ncclGetLastError(ncclComm_t) { return ""; }

ncclResult_t ncclGetVersion(int* version) {
  if (!version) return ncclInvalidArgument;
  *version = NCCL_VERSION_CODE;
  return ncclSuccess;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  if (!id) {
    say("ncclGetUniqueId", "uniqueId is NULL");
    return ncclInvalidArgument;
  }
  std::memset(id->internal, 0, sizeof id->internal);
  std::random_device rd;
  const uint64_t words[4] = {kIdMagic, (static_cast<uint64_t>(rd()) << 32) ^ rd(),
                             static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()),
                             static_cast<uint64_t>(getpid())};
  std::memcpy(id->internal, words, sizeof words);
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank) {
  const char* fn = "ncclCommInitRank";
  if (!comm) {
    say(fn, "comm is NULL");
    return ncclInvalidArgument;
  }
  *comm = nullptr;
  if (!mpi_usable()) {
    std::fprintf(stderr,
                 "NCCL (SIMT layer): ncclCommInitRank: MPI is not initialised; the emulated NCCL runs over MPI, so "
                 "the application must call MPI_Init first\n");
    return ncclInvalidUsage;
  }
  if (nranks < 1 || rank < 0 || rank >= nranks) {
    say(fn, "rank %d / nranks %d out of range", rank, nranks);
    return ncclInvalidArgument;
  }
  uint64_t magic = 0;
  std::memcpy(&magic, commId.internal, sizeof magic);
  if (magic != kIdMagic) {
    say(fn, "the unique id was not made by ncclGetUniqueId");
    return ncclInvalidArgument;
  }
  // Colour: a 31-bit FNV-1a hash of the id. Collective over MPI_COMM_WORLD.
  uint32_t h = 2166136261u;
  for (char ch : commId.internal) h = (h ^ static_cast<unsigned char>(ch)) * 16777619u;
  const int colour = static_cast<int>(h & 0x7fffffffu);
  MPI_Comm split = MPI_COMM_NULL;
  if (MPI_Comm_split(MPI_COMM_WORLD, colour, rank, &split) != MPI_SUCCESS) {
    say(fn, "MPI_Comm_split failed");
    return ncclSystemError;
  }
  int size = 0, my = -1;
  MPI_Comm_size(split, &size);
  MPI_Comm_rank(split, &my);
  // Same id, consistent nranks and distinct ranks on every member (colour collisions, misuse).
  std::vector<char> ids(static_cast<size_t>(size) * NCCL_UNIQUE_ID_BYTES);
  MPI_Allgather(commId.internal, NCCL_UNIQUE_ID_BYTES, MPI_BYTE, ids.data(), NCCL_UNIQUE_ID_BYTES, MPI_BYTE, split);
  std::vector<int> info(static_cast<size_t>(size) * 2);
  const int mine[2] = {rank, nranks};
  MPI_Allgather(mine, 2, MPI_INT, info.data(), 2, MPI_INT, split);
  ncclResult_t res = ncclSuccess;
  for (int r = 0; r < size; ++r) {
    if (std::memcmp(ids.data() + static_cast<size_t>(r) * NCCL_UNIQUE_ID_BYTES, commId.internal,
                    NCCL_UNIQUE_ID_BYTES) != 0)
      res = ncclInternalError;  // two ids with the same colour: not expected to happen
    if (info[2 * r + 1] != nranks || info[2 * r] != r) res = res == ncclSuccess ? ncclInvalidUsage : res;
  }
  if (size != nranks && res == ncclSuccess) res = ncclInvalidUsage;
  if (res != ncclSuccess) {
    say(fn, "%d ranks joined this id (nranks %d, rank %d): every rank 0..nranks-1 must join exactly once", size, nranks,
        rank);
    MPI_Comm_free(&split);
    return res;
  }
  *comm = new ncclComm{kCommMagic, split, rank, nranks};
  return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (!comm) return ncclSuccess;
  if (!valid_comm(comm)) {
    say("ncclCommDestroy", "invalid communicator");
    return ncclInvalidArgument;
  }
  if (mpi_usable() && comm->mpi != MPI_COMM_NULL) MPI_Comm_free(&comm->mpi);
  comm->magic = 0;
  delete comm;
  return ncclSuccess;
}

// Abort must not wait for other ranks (they may be dead): the MPI communicator is left alone.
ncclResult_t ncclCommAbort(ncclComm_t comm) {
  if (!comm) return ncclSuccess;
  if (!valid_comm(comm)) return ncclInvalidArgument;
  comm->magic = 0;
  delete comm;
  return ncclSuccess;
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* asyncError) {
  if (!valid_comm(comm) || !asyncError) return ncclInvalidArgument;
  *asyncError = ncclSuccess;  // synchronous: errors are returned by the calls themselves
  return ncclSuccess;
}
ncclResult_t ncclCommCount(const ncclComm_t comm, int* count) {
  if (!valid_comm(comm) || !count) return ncclInvalidArgument;
  *count = comm->nranks;
  return ncclSuccess;
}
ncclResult_t ncclCommUserRank(const ncclComm_t comm, int* rank) {
  if (!valid_comm(comm) || !rank) return ncclInvalidArgument;
  *rank = comm->rank;
  return ncclSuccess;
}
ncclResult_t ncclCommCuDevice(const ncclComm_t comm, int* device) {
  if (!valid_comm(comm) || !device) return ncclInvalidArgument;
  *device = 0;
  return ncclSuccess;
}

namespace {

// AllReduce and Reduce: gather every rank's chunk, reduce in rank order; `root` < 0: all ranks write.
ncclResult_t reduce_common(Kind kind, const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t type,
                           ncclRedOp_t op, int root, ncclComm_t c, cudaStream_t stream) {
  const char* fn = kind_name(kind);
  ncclResult_t st = check_comm(fn, c);
  if (st != ncclSuccess) return st;
  st = check_args(fn, type, true, op);
  if (st == ncclSuccess) st = run_earlier_stream_work(fn, stream);  // reported to every rank by agree()
  const size_t es = type_size(type);
  if (st == ncclSuccess && root >= c->nranks) {
    say(fn, "root %d out of range", root);
    st = ncclInvalidArgument;
  }
  if (st == ncclSuccess) st = check_buffer(fn, "sendbuff", sendbuff, count * es);
  if (st == ncclSuccess && (root < 0 || root == c->rank)) st = check_buffer(fn, "recvbuff", recvbuff, count * es);
  st = agree(c, kind, st, count, type, op, root < 0 ? -1 : root);
  if (st != ncclSuccess) return st;
  std::vector<char> parts;
  for (size_t off = 0; off < count;) {
    const size_t len = chunk_of(count - off);
    parts.resize(len * es * static_cast<size_t>(c->nranks));
    MPI_Allgather(static_cast<const char*>(sendbuff) + off * es, static_cast<int>(len * es), MPI_BYTE, parts.data(),
                  static_cast<int>(len * es), MPI_BYTE, c->mpi);
    if (root < 0 || root == c->rank) reduce_dispatch(type, parts.data(), len, c->nranks, op, recvbuff, off);
    off += len;
  }
  return ncclSuccess;
}

}  // namespace

ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
  return reduce_common(kAllReduce, sendbuff, recvbuff, count, datatype, op, -1, comm, stream);
}

ncclResult_t ncclReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                        int root, ncclComm_t comm, cudaStream_t stream) {
  // A negative root is out of range like one >= nranks (reduce_common uses -1 for "all ranks").
  const int r = root < 0 && valid_comm(comm) ? comm->nranks : root;
  return reduce_common(kReduce, sendbuff, recvbuff, count, datatype, op, r, comm, stream);
}

ncclResult_t ncclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount, ncclDataType_t datatype,
                               ncclRedOp_t op, ncclComm_t c, cudaStream_t stream) {
  const char* fn = "ncclReduceScatter";
  ncclResult_t st = check_comm(fn, c);
  if (st != ncclSuccess) return st;
  st = check_args(fn, datatype, true, op);
  if (st == ncclSuccess) st = run_earlier_stream_work(fn, stream);  // reported to every rank by agree()
  const size_t es = type_size(datatype);
  const size_t n = static_cast<size_t>(c->nranks);
  if (st == ncclSuccess) st = check_buffer(fn, "sendbuff", sendbuff, n * recvcount * es);
  if (st == ncclSuccess) st = check_buffer(fn, "recvbuff", recvbuff, recvcount * es);
  st = agree(c, kReduceScatter, st, recvcount, datatype, op, 0);
  if (st != ncclSuccess) return st;
  std::vector<char> out_parts, in_parts;
  for (size_t off = 0; off < recvcount;) {
    const size_t len = chunk_of(recvcount - off);
    const size_t bytes = len * es;
    out_parts.resize(bytes * n);
    in_parts.resize(bytes * n);
    for (size_t d = 0; d < n; ++d)  // block d's chunk goes to rank d
      std::memcpy(out_parts.data() + d * bytes, static_cast<const char*>(sendbuff) + (d * recvcount + off) * es, bytes);
    MPI_Alltoall(out_parts.data(), static_cast<int>(bytes), MPI_BYTE, in_parts.data(), static_cast<int>(bytes),
                 MPI_BYTE, c->mpi);
    reduce_dispatch(datatype, in_parts.data(), len, c->nranks, op, recvbuff, off);
    off += len;
  }
  return ncclSuccess;
}

ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount, ncclDataType_t datatype,
                           ncclComm_t c, cudaStream_t stream) {
  const char* fn = "ncclAllGather";
  ncclResult_t st = check_comm(fn, c);
  if (st != ncclSuccess) return st;
  st = check_args(fn, datatype, false, 0);
  if (st == ncclSuccess) st = run_earlier_stream_work(fn, stream);  // reported to every rank by agree()
  const size_t es = type_size(datatype);
  const size_t n = static_cast<size_t>(c->nranks);
  if (st == ncclSuccess) st = check_buffer(fn, "sendbuff", sendbuff, sendcount * es);
  if (st == ncclSuccess) st = check_buffer(fn, "recvbuff", recvbuff, n * sendcount * es);
  st = agree(c, kAllGather, st, sendcount, datatype, 0, 0);
  if (st != ncclSuccess) return st;
  std::vector<char> parts;
  for (size_t off = 0; off < sendcount;) {
    const size_t len = chunk_of(sendcount - off);
    const size_t bytes = len * es;
    parts.resize(bytes * n);
    MPI_Allgather(static_cast<const char*>(sendbuff) + off * es, static_cast<int>(bytes), MPI_BYTE, parts.data(),
                  static_cast<int>(bytes), MPI_BYTE, c->mpi);
    for (size_t r = 0; r < n; ++r)
      std::memcpy(static_cast<char*>(recvbuff) + (r * sendcount + off) * es, parts.data() + r * bytes, bytes);
    off += len;
  }
  return ncclSuccess;
}

ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
                           ncclComm_t c, cudaStream_t stream) {
  const char* fn = "ncclBroadcast";
  ncclResult_t st = check_comm(fn, c);
  if (st != ncclSuccess) return st;
  st = check_args(fn, datatype, false, 0);
  if (st == ncclSuccess) st = run_earlier_stream_work(fn, stream);  // reported to every rank by agree()
  const size_t es = type_size(datatype);
  if (st == ncclSuccess && (root < 0 || root >= c->nranks)) {
    say(fn, "root %d out of range", root);
    st = ncclInvalidArgument;
  }
  if (st == ncclSuccess && c->rank == root) st = check_buffer(fn, "sendbuff", sendbuff, count * es);
  if (st == ncclSuccess) st = check_buffer(fn, "recvbuff", recvbuff, count * es);
  st = agree(c, kBroadcast, st, count, datatype, 0, root);
  if (st != ncclSuccess) return st;
  if (c->rank == root && sendbuff != recvbuff && count > 0) std::memmove(recvbuff, sendbuff, count * es);
  for (size_t off = 0; off < count;) {
    const size_t len = chunk_of(count - off);
    MPI_Bcast(static_cast<char*>(recvbuff) + off * es, static_cast<int>(len * es), MPI_BYTE, root, c->mpi);
    off += len;
  }
  return ncclSuccess;
}

ncclResult_t ncclBcast(void* buff, size_t count, ncclDataType_t datatype, int root, ncclComm_t comm,
                       cudaStream_t stream) {
  return ncclBroadcast(buff, buff, count, datatype, root, comm, stream);
}

ncclResult_t ncclGroupStart() { return ncclSuccess; }
ncclResult_t ncclGroupEnd() { return ncclSuccess; }
