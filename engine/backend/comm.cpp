#include "engine/backend/comm.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "engine/backend/cuda_backend_factory.h"
#include "engine/util/errors.h"

#if defined(GPT2_HAVE_MPI)
#include <mpi.h>
#endif

namespace gpt2 {

namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  return (end && *end == '\0') ? static_cast<int>(x) : fallback;
}

bool launched_by_mpi() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE") || std::getenv("PMIX_RANK") ||
         std::getenv("MPI_LOCALNRANKS");
}

class SingleCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::string describe() const override { return "single process"; }
  bool active() const override { return false; }
  void all_reduce(TensorRef, int64_t, ReduceOp) override {}
  void reduce_scatter(TensorRef, int64_t, ReduceOp) override {}
  void all_gather(TensorRef, int64_t) override {}
  void broadcast(TensorRef, int64_t, int) override {}
  double all_reduce_scalar(double v, ReduceOp) override { return v; }
  std::vector<uint64_t> all_gather_u64(uint64_t v) override { return {v}; }
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::exit(code); }
};

#if defined(GPT2_HAVE_MPI)
void mpi_check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw std::runtime_error(std::string(what) + " failed: " + std::string(msg, len));
  }
}

// The CPU backend's collectives: fp32 host buffers.
class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world_);
  }
  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  std::string describe() const override {
    return "MPI, rank " + std::to_string(rank_) + " of " + std::to_string(world_);
  }
  void all_reduce(TensorRef buf, int64_t n, ReduceOp op) override {
    float* p = f32(buf);
    mpi_check(MPI_Allreduce(MPI_IN_PLACE, p, static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
    if (op == ReduceOp::Avg) scale(p, n);
  }
  void reduce_scatter(TensorRef buf, int64_t n, ReduceOp op) override {
    float* p = f32(buf);
    const int64_t shard = n / world_;
    // In place, MPI leaves this rank's block at the start of the buffer; move it to its offset.
    mpi_check(MPI_Reduce_scatter_block(MPI_IN_PLACE, p, static_cast<int>(shard), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
              "MPI_Reduce_scatter_block");
    if (rank_ != 0) std::memmove(p + rank_ * shard, p, static_cast<size_t>(shard) * sizeof(float));
    if (op == ReduceOp::Avg) scale(p + rank_ * shard, shard);
  }
  void all_gather(TensorRef buf, int64_t n) override {
    float* p = f32(buf);
    mpi_check(
        MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, p, static_cast<int>(n / world_), MPI_FLOAT, MPI_COMM_WORLD),
        "MPI_Allgather");
  }
  void broadcast(TensorRef buf, int64_t n, int root) override {
    mpi_check(MPI_Bcast(buf.ptr, static_cast<int>(n * dtype_size(buf.dtype)), MPI_BYTE, root, MPI_COMM_WORLD),
              "MPI_Bcast");
  }
  double all_reduce_scalar(double v, ReduceOp op) override {
    double out = 0;
    mpi_check(MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
    return op == ReduceOp::Avg ? out / world_ : out;
  }
  std::vector<uint64_t> all_gather_u64(uint64_t v) override {
    std::vector<uint64_t> out(world_);
    mpi_check(MPI_Allgather(&v, 1, MPI_UINT64_T, out.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD), "MPI_Allgather");
    return out;
  }
  void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::exit(code);
  }

 private:
  static float* f32(TensorRef t) {
    if (t.dtype != DType::FP32) throw std::logic_error("MPI communicator: CPU buffers are fp32");
    return t.as<float>();
  }
  void scale(float* p, int64_t n) const {
    const float inv = 1.0f / static_cast<float>(world_);
    for (int64_t i = 0; i < n; ++i) p[i] *= inv;
  }
  int rank_ = 0, world_ = 1;
};

void finalize_mpi() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}
#endif

}  // namespace

ProcessInfo detect_process() {
  ProcessInfo p;
  if (launched_by_mpi()) {
    p.launcher = "mpi";
    p.rank = env_int("OMPI_COMM_WORLD_RANK", env_int("PMI_RANK", env_int("PMIX_RANK", 0)));
    p.world_size = env_int("OMPI_COMM_WORLD_SIZE", env_int("PMI_SIZE", 1));
    p.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", env_int("MPI_LOCALRANKID", env_int("SLURM_LOCALID", 0)));
  } else if (std::getenv("SLURM_NTASKS") && env_int("SLURM_NTASKS", 1) > 1 && std::getenv("SLURM_PROCID")) {
    p.launcher = "mpi";  // srun with PMI: MPI_Init picks it up
    p.rank = env_int("SLURM_PROCID", 0);
    p.world_size = env_int("SLURM_NTASKS", 1);
    p.local_rank = env_int("SLURM_LOCALID", 0);
  } else if (std::getenv("WORLD_SIZE")) {
    p.launcher = "env";
    p.rank = env_int("RANK", 0);
    p.world_size = env_int("WORLD_SIZE", 1);
    p.local_rank = env_int("LOCAL_RANK", 0);
  }
  return p;
}

bool built_with_mpi() {
#if defined(GPT2_HAVE_MPI)
  return true;
#else
  return false;
#endif
}

bool built_with_nccl() {
#if defined(GPT2_HAVE_NCCL)
  return true;
#else
  return false;
#endif
}

bool init_mpi_if_launched() {
#if defined(GPT2_HAVE_MPI)
  if (detect_process().launcher != "mpi") return false;
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    MPI_Init(nullptr, nullptr);
    std::atexit(finalize_mpi);
  }
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Communicator> make_communicator(const ProcessInfo& info, Backend& backend) {
  const char* force = std::getenv("GPT2_FORCE_COMMUNICATOR");
  const bool forced = force && *force && std::string(force) != "0" && info.launcher == "mpi";
  if (info.world_size <= 1 && !forced) return std::make_unique<SingleCommunicator>();
  if (info.launcher != "mpi")
    throw ConfigError("--world-size", "multi-process runs are launched with mpirun or srun (" +
                                          std::to_string(info.world_size) + " processes were asked for through " +
                                          "WORLD_SIZE, which this engine does not use for collectives)");
#if defined(GPT2_HAVE_MPI)
  init_mpi_if_launched();
  if (backend.device() == Device::CPU) return std::make_unique<MpiCommunicator>();
#if defined(GPT2_HAVE_NCCL)
  return make_nccl_communicator(backend);
#else
  throw ConfigError("--device", "multi-GPU runs need NCCL, and this build has none");
#endif
#else
  (void)backend;
  throw ConfigError("--world-size", "this build has no MPI; install OpenMPI (scripts/install_deps.sh) and rebuild");
#endif
}

void check_ranks_agree(Communicator& comm, uint64_t value, const std::string& what) {
  const std::vector<uint64_t> all = comm.all_gather_u64(value);
  std::string bad;
  for (size_t r = 0; r < all.size(); ++r)
    if (all[r] != all[0]) bad += (bad.empty() ? "" : ", ") + std::to_string(r);
  if (!bad.empty())
    throw ConfigError("--world-size", "ranks disagree on " + what + ": rank(s) " + bad + " differ from rank 0");
}

}  // namespace gpt2
