// The SIMT layer's nccl.h: NCCL's communicator and collective API (the subset the project uses,
// plus a few cheap companions), executed over MPI on the host (tests/simt/src/nccl.cpp). Names,
// numeric values and the in-place rules follow NVIDIA's NCCL API documentation.
//
// Emulation notes:
//  * The application initialises MPI. ncclCommInitRank splits MPI_COMM_WORLD by a colour derived
//    from the unique id (MPI_Comm_split is collective over the world), so EVERY world rank must
//    call ncclCommInitRank at the same time, each with the id of the communicator it joins — which
//    is how the project uses it (one communicator over all ranks). Without MPI, ncclInvalidUsage.
//  * Collectives run synchronously on the calling thread, in stream order: the work queued on
//    `stream` before them (and what it depends on) runs first (tests/simt/src/streams.cpp).
//  * Every collective first checks, across the communicator, that all ranks passed the same
//    count, datatype, operation and root and that every rank's buffers lie in device memory
//    (simt::is_device_range); a violation on any rank makes the call return an error on all ranks
//    (ncclInvalidArgument / ncclInvalidUsage) with a line on stderr, instead of hanging.
//  * Reductions gather all ranks' contributions and reduce them in rank order 0..n-1 (fp32 for
//    float and bf16, rounded to nearest even once for bf16; ncclAvg = sum / nranks), so every rank
//    gets bitwise the same result on every run.
//  * ncclFloat16 (and the fp8 types) are not emulated: ncclInvalidArgument.
#pragma once

#include <cstddef>

#include "simt/runtime.h"

#define NCCL_MAJOR 2
#define NCCL_MINOR 18
#define NCCL_PATCH 0
#define NCCL_VERSION_CODE 21800
#define NCCL_UNIQUE_ID_BYTES 128

struct ncclComm;
using ncclComm_t = ncclComm*;
#define NCCL_COMM_NULL nullptr

struct ncclUniqueId {
  char internal[NCCL_UNIQUE_ID_BYTES];
};

enum ncclResult_t {
  ncclSuccess = 0,
  ncclUnhandledCudaError = 1,
  ncclSystemError = 2,
  ncclInternalError = 3,
  ncclInvalidArgument = 4,
  ncclInvalidUsage = 5,
  ncclRemoteError = 6,
  ncclInProgress = 7,
  ncclNumResults = 8,
};

enum ncclDataType_t {
  ncclInt8 = 0,
  ncclChar = 0,
  ncclUint8 = 1,
  ncclInt32 = 2,
  ncclInt = 2,
  ncclUint32 = 3,
  ncclInt64 = 4,
  ncclUint64 = 5,
  ncclFloat16 = 6,
  ncclHalf = 6,
  ncclFloat32 = 7,
  ncclFloat = 7,
  ncclFloat64 = 8,
  ncclDouble = 8,
  ncclBfloat16 = 9,
  ncclNumTypes = 10,
};

enum ncclRedOp_t {
  ncclSum = 0,
  ncclProd = 1,
  ncclMax = 2,
  ncclMin = 3,
  ncclAvg = 4,
  ncclNumOps = 5,
  ncclMaxRedOp = 0x7fffffff,
};

const char* ncclGetErrorString(ncclResult_t result);
const char* ncclGetLastError(ncclComm_t comm);
ncclResult_t ncclGetVersion(int* version);
ncclResult_t ncclGetUniqueId(ncclUniqueId* uniqueId);

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank);
ncclResult_t ncclCommDestroy(ncclComm_t comm);
ncclResult_t ncclCommAbort(ncclComm_t comm);
ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* asyncError);
ncclResult_t ncclCommCount(const ncclComm_t comm, int* count);
ncclResult_t ncclCommUserRank(const ncclComm_t comm, int* rank);
ncclResult_t ncclCommCuDevice(const ncclComm_t comm, int* device);

// recvbuff may equal sendbuff (in place).
ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream);
// Only the root's recvbuff is written; in place when sendbuff == recvbuff.
ncclResult_t ncclReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                        int root, ncclComm_t comm, cudaStream_t stream);
// sendbuff holds nranks * recvcount elements; in place when sendbuff + rank * recvcount == recvbuff.
ncclResult_t ncclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount, ncclDataType_t datatype,
                               ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream);
// recvbuff holds nranks * sendcount elements; in place when sendbuff == recvbuff + rank * sendcount.
ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount, ncclDataType_t datatype,
                           ncclComm_t comm, cudaStream_t stream);
// sendbuff is only read on the root; in place when sendbuff == recvbuff.
ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
                           ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclBcast(void* buff, size_t count, ncclDataType_t datatype, int root, ncclComm_t comm,
                       cudaStream_t stream);

// Collectives are synchronous here, so grouping changes nothing (no ncclSend/ncclRecv).
ncclResult_t ncclGroupStart();
ncclResult_t ncclGroupEnd();
