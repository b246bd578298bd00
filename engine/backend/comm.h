// Communication between training processes (one per GPU, or per CPU node), for data parallelism.
//
// Backends:
//   single   one process; every collective is a no-op (or a copy).
//   mpi      the CPU backend: MPI collectives on the host arena (fp32).
//   nccl     the CUDA backend: NCCL collectives on the device arena, on the backend's stream; the
//            NCCL unique id travels from rank 0 through MPI (engine/backend/cuda/nccl_comm.cu).
// Rank, world size and local rank come from MPI when the process was started by a launcher
// (mpirun/mpiexec, srun with PMI), else from RANK/WORLD_SIZE/LOCAL_RANK, else 0/1/0.
//
// Collectives are in place on arena buffers:
//   all_reduce(buf, n)          buf[0..n) ← Σ or mean over ranks
//   reduce_scatter(buf, n)      this rank's shard buf[r·n/W, (r+1)·n/W) ← Σ or mean; n % W == 0
//   all_gather(buf, n)          every shard buf[r·n/W ..] ← rank r's; n % W == 0
//   broadcast(buf, n, root)
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend/backend.h"

namespace gpt2 {

struct ProcessInfo {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string launcher = "single";  // "mpi", "env", or "single"
};

// Detects the launcher from the environment (no MPI call). The MPI environment variables of
// OpenMPI, MPICH/PMI and Slurm are recognised.
ProcessInfo detect_process();

enum class ReduceOp { Sum, Avg };

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string describe() const = 0;
  // False for the single-process communicator: the trainer then skips collectives.
  virtual bool active() const { return true; }

  virtual void all_reduce(TensorRef buf, int64_t n, ReduceOp op) = 0;
  virtual void reduce_scatter(TensorRef buf, int64_t n, ReduceOp op) = 0;
  virtual void all_gather(TensorRef buf, int64_t n) = 0;
  virtual void broadcast(TensorRef buf, int64_t n, int root) = 0;

  // Host values, for agreement checks and logging.
  virtual double all_reduce_scalar(double v, ReduceOp op) = 0;
  virtual std::vector<uint64_t> all_gather_u64(uint64_t v) = 0;
  virtual void barrier() = 0;
  // Ends the whole job (all ranks) with an error code, so no rank waits forever.
  [[noreturn]] virtual void abort(int code) = 0;
};

// The communicator for a process: single when world_size is 1; MPI for the CPU backend; NCCL
// for the CUDA backend (needs a build with NCCL and MPI). GPT2_FORCE_COMMUNICATOR=1 under a
// launcher uses MPI/NCCL even for one process, so a one-GPU machine runs the multi-GPU path. Throws ConfigError naming
// --world-size when the launcher asks for more than one process and this build cannot provide it.
std::unique_ptr<Communicator> make_communicator(const ProcessInfo& info, Backend& backend);

// Whether this build has MPI and NCCL, as the collectives in comm.cpp see it (GPT2_HAVE_MPI and
// GPT2_HAVE_NCCL reach this file from the libraries that provide them; `train_gpt2 --version`
// reports these, and tests/cli/build_info.sh compares them with what CMake found).
bool built_with_mpi();
bool built_with_nccl();

// Initialises MPI when a launcher started this process (idempotent; finalised at exit).
// Returns false when MPI is not part of the build or no launcher is detected.
bool init_mpi_if_launched();

// Checks that every rank agrees on `value` (e.g. the plan's hash); throws ConfigError naming
// `what` with the ranks that disagree.
void check_ranks_agree(Communicator& comm, uint64_t value, const std::string& what);

}  // namespace gpt2
