#include "engine/train/checkpoint_state_file.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <stdexcept>

#include "engine/util/errors.h"
#include "engine/util/file_io.h"

namespace gpt2 {

namespace {

constexpr char kStateMagic[8] = {'G', 'P', 'T', '2', 'C', 'K', 'P', 'T'};
constexpr char kStateEnd[8] = {'C', 'K', 'P', 'T', 'E', 'N', 'D', '\0'};
constexpr uint32_t kStateVersion = 1;
constexpr uint64_t kStateHeaderBytes = 8 + 4 + 4 + 8;
constexpr uint64_t kStateTrailerBytes = 8 + 8;

// Writes the payload through an AtomicFile while hashing it.
class HashedWriter {
 public:
  explicit HashedWriter(AtomicFile& f) : f_(f) {}
  void write(const void* p, size_t n) {
    f_.write(p, n);
    h_ = fnv1a64(p, n, h_);
    bytes_ += n;
  }
  void u64(uint64_t v) { write(&v, 8); }
  uint64_t hash() const { return h_; }
  uint64_t bytes() const { return bytes_; }

 private:
  AtomicFile& f_;
  uint64_t h_ = 0xcbf29ce484222325ull;
  uint64_t bytes_ = 0;
};

// The step whose state-file write stops halfway (the crash tests' hook); -1 when the hook is off.
int64_t pause_step() {
  const char* hooks = std::getenv(kTestHooksEnv);
  if (!hooks || std::string(hooks) != "1") return -1;
  const char* e = std::getenv(kCheckpointPauseEnv);
  if (!e || !*e) return -1;
  return std::atoll(e);
}

// Reads the payload front to back, keeping the file offset for messages; every read checks the
// bytes left first.
struct Reader {
  const uint8_t* p;
  uint64_t left;
  const std::string& path;
  const char* what = "";
  uint64_t offset = kStateHeaderBytes;  // of p in the file
  void need(uint64_t n) {
    if (n > left) throw FileError(path, std::string("state file ends inside the ") + what + " (corrupt)");
  }
  uint64_t u64() {
    need(8);
    uint64_t v;
    std::memcpy(&v, p, 8);
    p += 8;
    left -= 8;
    offset += 8;
    return v;
  }
  // A u64 count of `elem`-byte values, checked against the bytes left before anything is
  // allocated for them (a corrupt count must not ask for terabytes).
  uint64_t count(uint64_t elem) {
    const uint64_t at = offset;
    const uint64_t n = u64();
    if (n > left / elem)
      throw FileError(path, std::string("the length of the ") + what + " at byte offset " + std::to_string(at) + ", " +
                                std::to_string(n) +
                                (elem == 1 ? " bytes" : " values of " + std::to_string(elem) + " bytes") +
                                ", exceeds the " + std::to_string(left) + " bytes left in the payload (corrupt)");
    return n;
  }
  void bytes(void* dst, uint64_t n) {
    need(n);
    if (n) std::memcpy(dst, p, n);  // an empty vector's data() may be null
    p += n;
    left -= n;
    offset += n;
  }
};

}  // namespace

std::string hex64(uint64_t v) {
  char b[32];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

void write_state_file(const std::string& path, const nlohmann::json& meta, const std::vector<uint8_t>& pos,
                      const Model::OptimizerState& opt, int64_t step) {
  const std::string js = meta.dump();
  uint64_t payload = 8 + js.size() + 8 + pos.size() + 3 * 8 + 4 * (opt.master.size() + opt.m.size() + opt.v.size());
  AtomicFile f(path);
  f.write(kStateMagic, 8);
  const uint32_t ver[2] = {kStateVersion, 0};
  f.write(ver, 8);
  f.write(&payload, 8);
  HashedWriter w(f);
  w.u64(js.size());
  w.write(js.data(), js.size());
  w.u64(pos.size());
  w.write(pos.data(), pos.size());
  const int64_t pause = pause_step();
  auto floats = [&](const std::vector<float>& v, bool maybe_pause) {
    w.u64(v.size());
    size_t half = v.size() / 2;
    if (maybe_pause && pause == step) {
      w.write(v.data(), half * 4);
      ::fsync(STDERR_FILENO);
      std::cerr << "checkpoint: paused mid-write of " << f.temp_path() << "\n" << std::flush;
      for (;;) ::sleep(1);  // the crash test kills us here
    }
    w.write(v.data(), v.size() * 4);
  };
  floats(opt.master, false);
  floats(opt.m, true);
  floats(opt.v, false);
  if (w.bytes() != payload) throw std::logic_error("checkpoint: payload size mismatch");
  const uint64_t h = w.hash();
  f.write(&h, 8);
  f.write(kStateEnd, 8);
  f.commit();
}

std::optional<std::string> read_state_file_lineage(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char header[kStateHeaderBytes];
  uint64_t json_bytes = 0;
  if (!f.read(header, sizeof header) || std::memcmp(header, kStateMagic, 8) != 0 ||
      !f.read(reinterpret_cast<char*>(&json_bytes), 8) || json_bytes > (64u << 20))
    return std::nullopt;
  std::string js(json_bytes, '\0');
  if (!f.read(js.data(), static_cast<std::streamsize>(js.size()))) return std::nullopt;
  const nlohmann::json meta = nlohmann::json::parse(js, nullptr, false);
  if (meta.is_discarded() || !meta.is_object() || !meta.contains("lineage") || !meta["lineage"].is_string())
    return std::nullopt;
  return meta["lineage"].get<std::string>();
}

CheckpointData read_state_file(const std::string& path) {
  MappedFile map(path);
  const uint64_t size = map.size();
  if (size < kStateHeaderBytes + kStateTrailerBytes)
    throw FileError(path, "state file is " + std::to_string(size) + " bytes, too short for a checkpoint (truncated)");
  if (std::memcmp(map.data(), kStateMagic, 8) != 0)
    throw FileError(path, "bad magic at byte offset 0 (expected GPT2CKPT, a checkpoint state file)");
  uint32_t ver;
  std::memcpy(&ver, map.data() + 8, 4);
  if (ver != kStateVersion)
    throw FileError(path, "unsupported state file version " + std::to_string(ver) + " (expected 1)");
  uint64_t payload;
  std::memcpy(&payload, map.data() + 16, 8);
  if (payload != size - kStateHeaderBytes - kStateTrailerBytes)
    throw FileError(
        path, "state file is " + std::to_string(size) + " bytes but its header promises " +
                  std::to_string(payload + kStateHeaderBytes + kStateTrailerBytes) +
                  (payload + kStateHeaderBytes + kStateTrailerBytes > size ? " (truncated)" : " (trailing bytes)"));
  const uint8_t* body = map.data() + kStateHeaderBytes;
  uint64_t want_hash;
  std::memcpy(&want_hash, body + payload, 8);
  if (std::memcmp(body + payload + 8, kStateEnd, 8) != 0)
    throw FileError(path, "the end marker is missing (truncated or corrupt)");
  if (fnv1a64(body, payload) != want_hash)
    throw FileError(path, "checksum mismatch: the state file is corrupt (FNV-1a " + hex64(fnv1a64(body, payload)) +
                              ", recorded " + hex64(want_hash) + ")");
  Reader r{body, payload, path};
  CheckpointData d;
  r.what = "JSON header";
  std::string js(r.count(1), '\0');
  r.bytes(js.data(), js.size());
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(js);
    for (const char* key : {"step", "updates", "seed"})  // get<int64_t>() of a float is undefined behaviour
      if (!meta.at(key).is_number_integer())
        throw FileError(path, std::string("the state file's JSON header is bad: ") + key + " is not a whole number");
    d.step = meta.at("step").get<int64_t>();
    d.updates = meta.at("updates").get<int64_t>();
    d.seed = meta.at("seed").get<uint64_t>();
    d.settings = meta;
  } catch (const nlohmann::json::exception& e) {
    throw FileError(path, std::string("the state file's JSON header is bad: ") + e.what());
  }
  r.what = "data position";
  d.data_position.resize(r.count(1));
  r.bytes(d.data_position.data(), d.data_position.size());
  auto floats = [&](std::vector<float>& v, const char* what) {
    r.what = what;
    const uint64_t n = r.count(4);
    v.resize(n);
    r.bytes(v.data(), n * 4);
  };
  floats(d.optimizer.master, "master weights");
  floats(d.optimizer.m, "AdamW m");
  floats(d.optimizer.v, "AdamW v");
  if (r.left != 0) throw FileError(path, "unexpected bytes after the AdamW v array (corrupt)");
  return d;
}

}  // namespace gpt2
