#include "engine/train/checkpoint.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "engine/data/dataloader.h"
#include "engine/model/model_io.h"
#include "engine/plan/config_json.h"
#include "engine/train/lr_schedule.h"
#include "engine/util/errors.h"
#include "engine/util/file_io.h"

namespace gpt2 {

namespace {

// The settings key of the resolved --train-data files (not a flag: compared as --train-data).
constexpr const char* kTrainFilesKey = "train_data_files";

std::string step_name(int64_t step) {
  char b[32];
  std::snprintf(b, sizeof b, "%08lld", static_cast<long long>(step));
  return b;
}

void ensure_dir(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw FileError(dir, "--checkpoint-dir exists but is not a directory");
    return;
  }
  // mkdir -p
  std::string part;
  for (size_t i = 0; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      if (!part.empty() && ::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST)
        throw FileError(dir, "cannot create the checkpoint directory: " + std::string(std::strerror(errno)));
    }
    if (i < dir.size()) part.push_back(dir[i]);
  }
}

// A whole file's FNV-1a-64, and its size in *size.
uint64_t file_fnv(const std::string& path, uint64_t* size) {
  MappedFile m(path);
  *size = m.size();
  return fnv1a64(m.data(), m.size());
}

std::string dump_value(const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

}  // namespace

nlohmann::json checkpoint_settings(const MemoryPlan& plan, const TrainOptions& t, const std::string& train_data) {
  nlohmann::json s = config_flags_json(plan);
  s["--lr"] = t.lr.lr;
  s["--warmup"] = t.lr.warmup;
  s["--lr-schedule"] = to_string(t.lr.kind);
  s["--final-lr-frac"] = t.lr.final_lr_frac;
  s["--weight-decay"] = t.weight_decay;
  s["--grad-clip"] = t.grad_clip;
  s["--seed"] = t.seed;
  s["--train-data"] = train_data;
  // What the text names: the real path of every matched shard, so the same files named another
  // way (an absolute glob, a link) resume, and the text is kept for the messages.
  if (train_data != "synthetic") {
    nlohmann::json files = nlohmann::json::array();
    for (const std::string& f : expand_data_glob(train_data)) {
      char* real = ::realpath(f.c_str(), nullptr);
      files.push_back(real ? std::string(real) : f);
      std::free(real);
    }
    s[kTrainFilesKey] = files;
  }
  return s;
}

std::string checkpoint_model_path(const std::string& dir, int64_t step) {
  return dir + "/model_" + step_name(step) + ".bin";
}

std::string checkpoint_state_path(const std::string& dir, int64_t step, int rank, int world) {
  return dir + "/state_" + step_name(step) + (world > 1 ? "_rank" + std::to_string(rank) : "") + ".bin";
}

int64_t latest_checkpoint_step(const std::string& dir) {
  const std::string path = dir + "/latest";
  std::ifstream f(path);
  if (!f) return -1;
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos)
    throw FileError(path, "the latest-checkpoint marker should hold a step number, found '" + text.substr(0, 40) + "'");
  return std::stoll(text);
}

namespace {

// The JSON header of the state file of `step` (its layout: checkpoint_state_file.h).
nlohmann::json state_file_header(const MemoryPlan& plan, const Trainer& trainer, const nlohmann::json& settings,
                                 uint64_t seed, const std::string& lineage, int64_t step, const std::string& model_path,
                                 uint64_t model_bytes, uint64_t model_hash) {
  return {{"step", step},
          {"updates", trainer.updates()},
          {"seed", seed},
          {"lineage", lineage},
          {"plan_hash", hex64(plan.hash())},
          {"offload", to_string(plan.run.offload)},
          {"model_file", model_path.substr(model_path.find_last_of('/') + 1)},
          {"model_bytes", model_bytes},
          {"model_fnv1a64", hex64(model_hash)},
          {"rank", plan.run.rank},
          {"world_size", plan.run.world_size},
          {"shard_elems", plan.shard_elems},
          {"settings", settings}};
}

// The step `latest` names; -1 when there is none or it cannot be read.
int64_t latest_step_or_none(const std::string& dir) {
  try {
    return latest_checkpoint_step(dir);
  } catch (const std::exception&) {
    return -1;
  }
}

// The steps of DIR's model files, newest first.
std::vector<int64_t> checkpoint_steps(const std::string& dir) {
  std::vector<int64_t> steps;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name.rfind("model_", 0) == 0 && name.size() == 6 + 8 + 4 && name.compare(14, 4, ".bin") == 0) {
        const std::string num = name.substr(6, 8);
        if (num.find_first_not_of("0123456789") == std::string::npos) steps.push_back(std::stoll(num));
      }
    }
    ::closedir(d);
  }
  std::sort(steps.rbegin(), steps.rend());
  return steps;
}

// Retention: keeps the newest `keep` checkpoints of `lineage` (`step`, just written, among them)
// and deletes the older ones of that lineage. A step whose state file records another lineage,
// or none, was written by another chain of runs and is never touched.
void prune_lineage(const std::string& dir, int64_t step, int keep, const std::string& lineage, int world) {
  int kept = 0;
  for (const int64_t s : checkpoint_steps(dir)) {
    const std::string state = checkpoint_state_path(dir, s, 0, world);
    if (s != step && read_state_file_lineage(state) != lineage) continue;
    if (s == step || kept < keep) {
      ++kept;
      continue;
    }
    ::unlink(checkpoint_model_path(dir, s).c_str());
    for (int r = 0; r < world; ++r) ::unlink(checkpoint_state_path(dir, s, r, world).c_str());
  }
}

}  // namespace

void save_checkpoint(const std::string& dir, Model& model, const Trainer& trainer, const BatchSource& train,
                     const nlohmann::json& settings, uint64_t seed, int keep,
                     const std::function<bool(bool)>& all_succeeded, const std::string& lineage) {
  ensure_dir(dir);
  const MemoryPlan& plan = model.plan();
  const int64_t step = trainer.step();
  const bool writer = plan.run.rank == 0;
  const std::string model_path = checkpoint_model_path(dir, step);
  const std::string state_path = checkpoint_state_path(dir, step, plan.run.rank, plan.run.world_size);
  const WeightDType dt = plan.run.precision == Precision::BF16 ? WeightDType::BF16 : WeightDType::FP32;

  // 1. The model file, in the run's dtype: exactly the parameters the next step starts from. It is
  // never written from NaN/inf weights (e.g. a run that skipped non-finite updates while its
  // weights went bad): every rank holds the same parameters, so every rank stops here together.
  const std::vector<float> params = model.stored_parameters();
  const int64_t bad = std::count_if(params.begin(), params.end(), [](float v) { return !std::isfinite(v); });
  if (bad > 0)
    throw std::runtime_error("step " + std::to_string(step) + ": " + std::to_string(bad) + " of " +
                             std::to_string(params.size()) +
                             " parameters are NaN or infinite; no checkpoint written (check --lr and the data)");
  // Each stage ends with every rank learning whether every rank succeeded, so a failure on one
  // rank (a full disk) stops all of them with an error instead of leaving the others waiting.
  auto stage = [&](const char* what, const std::function<void()>& work, const std::function<void()>& undo) {
    std::exception_ptr failure;
    try {
      work();
    } catch (...) {
      failure = std::current_exception();
    }
    const bool all_ok = all_succeeded ? all_succeeded(!failure) : !failure;
    if (all_ok) return;
    if (undo) undo();
    if (failure) std::rethrow_exception(failure);
    throw std::runtime_error("step " + std::to_string(step) + ": another rank failed to write " + what +
                             "; no checkpoint written");
  };
  // The model file is complete before any rank hashes it.
  stage(
      "the model file",
      [&] {
        if (writer) save_llmc_model(model_path, from_flat(plan, params), dt);
      },
      nullptr);
  uint64_t model_bytes = 0;
  const uint64_t model_hash = file_fnv(model_path, &model_bytes);

  // 2. The state files. When one cannot be written, this step's model file and the state files
  // that were written go too: an orphan model file would be taken for a checkpoint, and `latest`
  // keeps naming the last complete one. Every rank's state file is in place before `latest`.
  bool state_written = false;
  stage(
      "its state file",
      [&] {
        write_state_file(
            state_path,
            state_file_header(plan, trainer, settings, seed, lineage, step, model_path, model_bytes, model_hash),
            train.save_position(), model.optimizer_state(), step);
        state_written = true;
      },
      [&] {
        if (state_written) ::unlink(state_path.c_str());
        if (writer && latest_step_or_none(dir) != step) ::unlink(model_path.c_str());
      });

  // 3. The marker, last.
  if (!writer) return;
  {
    AtomicFile m(dir + "/latest");
    const std::string text = std::to_string(step) + "\n";
    m.write(text.data(), text.size());
    m.commit();
  }

  // 4. Retention, within this run's lineage only.
  if (keep > 0) prune_lineage(dir, step, keep, lineage, plan.run.world_size);
  fsync_directory(dir);
}

std::string new_checkpoint_lineage() {
  const uint64_t now = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  const uint64_t pid = static_cast<uint64_t>(::getpid());
  return hex64(fnv1a64(&pid, sizeof pid, fnv1a64(&now, sizeof now)));
}

CheckpointDirLock::CheckpointDirLock(const std::string& dir) {
  const std::string path = dir + "/lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw ConfigError("--checkpoint-dir", path + ": cannot open the directory's lock file: " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const std::string why = std::strerror(errno);
    const bool busy = errno == EWOULDBLOCK;
    char buf[32] = {};
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    ::close(fd_);
    fd_ = -1;
    std::string owner = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "?";
    while (!owner.empty() && (owner.back() == '\n' || owner.back() == ' ')) owner.pop_back();
    if (busy)
      throw ConfigError("--checkpoint-dir", dir + " is in use by process " + owner + " (it holds " + path +
                                                "); wait for that run to end, or give another --checkpoint-dir");
    throw ConfigError("--checkpoint-dir", path + ": cannot lock the directory: " + why);
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    const std::string why = std::strerror(errno);
    ::close(fd_);
    fd_ = -1;
    throw ConfigError("--checkpoint-dir", path + ": cannot write the lock file: " + why);
  }
}

CheckpointDirLock::~CheckpointDirLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock; the file stays (removing it would race)
}

std::vector<std::string> remove_dead_writers_temporaries(const std::string& dir) {
  std::vector<std::string> removed;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return removed;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    // AtomicFile's names: TARGET.PID-N.tmp, the target a checkpoint file.
    if (name.size() < 5 || !ends_with(name, ".tmp")) continue;
    if (name.rfind("model_", 0) != 0 && name.rfind("state_", 0) != 0 && name.rfind("latest.", 0) != 0) continue;
    const size_t dash = name.rfind('-');
    const size_t dot = dash == std::string::npos ? std::string::npos : name.rfind('.', dash);
    if (dot == std::string::npos || dash - dot < 2) continue;
    const std::string pid = name.substr(dot + 1, dash - dot - 1);
    const std::string counter = name.substr(dash + 1, name.size() - 4 - dash - 1);
    if (pid.find_first_not_of("0123456789") != std::string::npos || counter.empty() ||
        counter.find_first_not_of("0123456789") != std::string::npos || pid.size() > 9)
      continue;
    if (::kill(static_cast<pid_t>(std::stol(pid)), 0) == 0 || errno != ESRCH) continue;  // its writer may run
    struct stat st;
    const std::string path = dir + "/" + name;
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (::unlink(path.c_str()) == 0) removed.push_back(name);
  }
  ::closedir(d);
  return removed;
}

int64_t resume_from_checkpoint(const std::string& dir, int64_t step, Model& model, Trainer& trainer, BatchSource& train,
                               const nlohmann::json& settings, std::string* lineage) {
  const MemoryPlan& plan = model.plan();
  if (step < 0) {
    step = latest_checkpoint_step(dir);
    if (step < 0)
      throw FileError(dir + "/latest", "no checkpoint to resume from: the 'latest' marker does not exist",
                      "train with --checkpoint-dir " + dir + " --checkpoint-every N first, or drop --resume");
  }
  const std::string state_path = checkpoint_state_path(dir, step, plan.run.rank, plan.run.world_size);
  const std::string model_path = checkpoint_model_path(dir, step);
  if (::access(state_path.c_str(), F_OK) != 0) {
    // Written with another number of ranks? Each rank's optimizer shard is its own file, and
    // resharding is not supported: say so instead of "file not found".
    const bool single = ::access(checkpoint_state_path(dir, step, 0, 1).c_str(), F_OK) == 0;
    const bool sharded = ::access((dir + "/state_" + step_name(step) + "_rank0.bin").c_str(), F_OK) == 0;
    if (single || sharded)
      throw ConfigError("--world-size", "checkpoint step " + std::to_string(step) + " in " + dir + " was written by " +
                                            (single ? std::string("one process") : std::string("several ranks")) +
                                            ", but this run has " + std::to_string(plan.run.world_size) +
                                            "; resume with the same number of processes");
  }
  const CheckpointData d = read_state_file(state_path);
  const nlohmann::json& meta = d.settings;
  if (d.step != step)
    throw FileError(state_path,
                    "holds step " + std::to_string(d.step) + " but its name says step " + std::to_string(step));

  // The run's settings, flag by flag. The device may change (a CUDA checkpoint resumes on the CPU
  // and back): the model file and optimizer state do not depend on it, as long as the precision,
  // master weights and batch are the same, which the other settings check.
  const nlohmann::json& saved = meta.at("settings");
  const bool same_device = saved.value("--device", "") == settings.value("--device", "");
  const bool saved_files = saved.contains(kTrainFilesKey) || saved.value("--train-data", "") == "synthetic";
  for (auto it = saved.begin(); it != saved.end(); ++it) {
    if (it.key() == "--device") continue;
    if (it.key() == "--train-data" && saved_files) {
      // Compared by the files it resolves to (below); synthetic data has no files.
      if ((it.value() == "synthetic") != (settings.value("--train-data", "") == "synthetic"))
        throw ConfigError("--train-data", "the checkpoint " + state_path + " was written with --train-data " +
                                              dump_value(it.value()) + " but this run has " +
                                              settings.value("--train-data", "no value") +
                                              "; resume needs the same data (or drop --resume)");
      continue;
    }
    if (it.key() == kTrainFilesKey) {
      const auto now = settings.find(kTrainFilesKey);
      if (now == settings.end() || *now != it.value())
        throw ConfigError("--train-data", "the checkpoint " + state_path + " was written with --train-data " +
                                              saved.value("--train-data", "?") + " (" +
                                              std::to_string(it.value().size()) + " files) but this run's " +
                                              settings.value("--train-data", "?") +
                                              " resolves to other files; resume needs the same files (or drop "
                                              "--resume)");
      continue;
    }
    const auto now = settings.find(it.key());
    if (now == settings.end() || *now != it.value())
      throw ConfigError(it.key(), "the checkpoint " + state_path + " was written with " + it.key() + " " +
                                      dump_value(it.value()) + " but this run has " +
                                      (now == settings.end() ? std::string("no value") : dump_value(*now)) +
                                      "; resume needs the same value (or drop --resume)");
  }
  // The plan's hash covers device-specific buffers (kernel scratch, workspaces) and where the
  // optimizer lives, so it is compared only when the device and the offload are the same: the
  // saved state (master weights where the run has them, m, v) is the same either way.
  const bool same_offload = meta.value("offload", "none") == std::string(to_string(plan.run.offload));
  if (same_device && same_offload && meta.value("plan_hash", "") != hex64(plan.hash()))
    throw ConfigError("--resume", "the checkpoint " + state_path + " was written under another memory plan (hash " +
                                      meta.value("plan_hash", "?") + ", this run " + hex64(plan.hash()) +
                                      "): use the same --recompute, --logits-chunk and batch flags");

  // The model file: its size and checksum as recorded, then its header and body.
  uint64_t bytes = 0;
  const uint64_t h = file_fnv(model_path, &bytes);
  if (bytes != meta.value("model_bytes", uint64_t(0)))
    throw FileError(model_path, "is " + std::to_string(bytes) + " bytes but the checkpoint recorded " +
                                    std::to_string(meta.value("model_bytes", uint64_t(0))) +
                                    " (truncated or replaced)");
  if (hex64(h) != meta.value("model_fnv1a64", ""))
    throw FileError(model_path, "checksum mismatch with the state file's record: the model file is corrupt");
  const ModelWeights w = load_llmc_model(model_path);
  const std::string diff = model_config_difference(w.config, plan.model);
  if (!diff.empty()) throw ConfigError("--resume", model_path + " has another model shape: " + diff);
  const std::vector<float> flat = to_flat(plan, w);

  // Everything checked; now restore.
  const size_t n = static_cast<size_t>(plan.shard_elems);
  const bool has_master = plan.run.master_weights == 1;
  if (d.optimizer.m.size() != n || d.optimizer.v.size() != n ||
      (has_master ? d.optimizer.master.size() != n : !d.optimizer.master.empty()))
    throw FileError(state_path, "optimizer state holds " + std::to_string(d.optimizer.m.size()) +
                                    " elements per array, the plan needs " + std::to_string(n));
  train.restore_position(d.data_position);
  model.set_parameters(flat);
  model.set_optimizer_state(d.optimizer);
  trainer.set_position(d.step, d.updates);
  if (lineage) {
    const auto it = meta.find("lineage");
    *lineage = it != meta.end() && it->is_string() ? it->get<std::string>() : std::string();
  }
  return d.step;
}

}  // namespace gpt2
