// Errors that reach the user. Every bad input (flag, file, config, NaN) becomes one of these,
// carrying what it is about (a flag name, a file path or a step). The rule for the whole tree:
// errors are exceptions, never exit() or abort(); each tool's main catches std::exception, prints
// it as "<tool>: error: ..." and exits 1 (train_gpt2's exit codes are in engine/cli/dry_run.h).
// A failed CUDA, cuBLAS or NCCL call throws gpt2::cuda::CudaError (kernels/cuda/common.cuh), a
// std::runtime_error, and takes the same path. The one deliberate exit is Communicator::abort,
// which ends every rank of a multi-process job.
#pragma once
#include <stdexcept>
#include <string>

namespace gpt2 {

// A bad run or model configuration. `flag` names the command-line flag (e.g. "--heads") or the
// config key the user should change.
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string flag, const std::string& message)
      : std::runtime_error(flag.empty() ? message : flag + ": " + message), flag_(std::move(flag)) {}
  const std::string& flag() const { return flag_; }

 private:
  std::string flag_;
};

// A bad or missing file. `hint` names the script that makes the file, when there is one.
class FileError : public std::runtime_error {
 public:
  FileError(std::string path, const std::string& message, std::string hint = "")
      : std::runtime_error(path + ": " + message + (hint.empty() ? "" : "\n  HINT: " + hint)),
        path_(std::move(path)),
        hint_(std::move(hint)) {}
  const std::string& path() const { return path_; }
  const std::string& hint() const { return hint_; }

 private:
  std::string path_;
  std::string hint_;
};

// A failure during training (a NaN loss, a diverged gradient), naming the step.
class TrainingError : public std::runtime_error {
 public:
  TrainingError(long step, const std::string& message)
      : std::runtime_error("step " + std::to_string(step) + ": " + message), step_(step) {}
  long step() const { return step_; }

 private:
  long step_;
};

}  // namespace gpt2
