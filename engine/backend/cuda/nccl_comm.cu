// The NCCL communicator: collectives on the CUDA backend's stream, in place on the arena. Rank 0
// creates the NCCL unique id and MPI broadcasts it. Every collective is followed by a watchdog
// wait: the stream is polled, NCCL's asynchronous errors are checked, and after
// GPT2_NCCL_TIMEOUT_S seconds (default 600) without progress the communicator is aborted and the
// whole job ends with an error, so a dead rank never leaves the others hanging.
#if defined(GPT2_HAVE_NCCL) && defined(GPT2_HAVE_MPI)
#include <mpi.h>
#include <nccl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <thread>

#include "engine/backend/comm.h"
#include "engine/backend/cuda_backend_factory.h"
#include "kernels/cuda/common.cuh"

namespace gpt2 {

namespace {

ncclDataType_t nccl_type(DType d) {
  switch (d) {
    case DType::BF16: return ncclBfloat16;
    case DType::FP32: return ncclFloat32;
    case DType::INT32: return ncclInt32;
  }
  return ncclFloat32;
}

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(CudaBackendBase& backend) : stream_(static_cast<cudaStream_t>(backend.native_stream())) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world_);
    ncclUniqueId id;
    if (rank_ == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    NCCL_CHECK(ncclCommInitRank(&comm_, world_, id, rank_));
    const char* t = std::getenv("GPT2_NCCL_TIMEOUT_S");
    timeout_s_ = t ? std::atof(t) : 600.0;
  }
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);
  }
  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  std::string describe() const override {
    return "NCCL, rank " + std::to_string(rank_) + " of " + std::to_string(world_);
  }
  void all_reduce(TensorRef buf, int64_t n, ReduceOp op) override {
    NCCL_CHECK(
        ncclAllReduce(buf.ptr, buf.ptr, static_cast<size_t>(n), nccl_type(buf.dtype), nccl_op(op), comm_, stream_));
    wait("all-reduce");
  }
  void reduce_scatter(TensorRef buf, int64_t n, ReduceOp op) override {
    const int64_t shard = n / world_;
    NCCL_CHECK(ncclReduceScatter(buf.ptr, buf.at(rank_ * shard).ptr, static_cast<size_t>(shard), nccl_type(buf.dtype),
                                 nccl_op(op), comm_, stream_));
    wait("reduce-scatter");
  }
  void all_gather(TensorRef buf, int64_t n) override {
    const int64_t shard = n / world_;
    NCCL_CHECK(ncclAllGather(buf.at(rank_ * shard).ptr, buf.ptr, static_cast<size_t>(shard), nccl_type(buf.dtype),
                             comm_, stream_));
    wait("all-gather");
  }
  void broadcast(TensorRef buf, int64_t n, int root) override {
    NCCL_CHECK(ncclBroadcast(buf.ptr, buf.ptr, static_cast<size_t>(n), nccl_type(buf.dtype), root, comm_, stream_));
    wait("broadcast");
  }
  double all_reduce_scalar(double v, ReduceOp op) override {
    double out = 0;
    MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return op == ReduceOp::Avg ? out / world_ : out;
  }
  std::vector<uint64_t> all_gather_u64(uint64_t v) override {
    std::vector<uint64_t> out(world_);
    MPI_Allgather(&v, 1, MPI_UINT64_T, out.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD);
    return out;
  }
  void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }
  [[noreturn]] void abort(int code) override {
    if (comm_) ncclCommAbort(comm_);
    comm_ = nullptr;
    MPI_Abort(MPI_COMM_WORLD, code);
    std::exit(code);
  }

 private:
  static ncclRedOp_t nccl_op(ReduceOp op) { return op == ReduceOp::Avg ? ncclAvg : ncclSum; }

  void wait(const char* what) {
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      const cudaError_t st = cudaStreamQuery(stream_);
      if (st == cudaSuccess) return;
      if (st != cudaErrorNotReady) CUDA_CHECK(st);
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(comm_, &async);
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (async != ncclSuccess || waited > timeout_s_) {
        std::fprintf(stderr, "rank %d: NCCL %s %s; aborting the job\n", rank_, what,
                     async != ncclSuccess ? ncclGetErrorString(async) : "timed out (GPT2_NCCL_TIMEOUT_S)");
        abort(1);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  cudaStream_t stream_;
  ncclComm_t comm_ = nullptr;
  int rank_ = 0, world_ = 1;
  double timeout_s_ = 600;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Backend& backend) {
  CudaBackendBase* cuda = as_cuda_backend(backend);
  if (!cuda) throw std::logic_error("NCCL needs the CUDA backend");
  return std::make_unique<NcclCommunicator>(*cuda);
}

}  // namespace gpt2
#endif
