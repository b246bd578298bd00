// Backend::make_op_timer's default: the host's steady clock around each call.
#include <chrono>

#include "engine/backend/backend.h"

namespace gpt2 {

namespace {

class HostClockTimer final : public OpTimer {
 public:
  void start() override { t0_ = Clock::now(); }
  void stop() override { seconds_.push_back(std::chrono::duration<double>(Clock::now() - t0_).count()); }
  std::vector<double> collect() override {
    std::vector<double> out;
    out.swap(seconds_);
    return out;
  }

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point t0_;
  std::vector<double> seconds_;
};

}  // namespace

std::unique_ptr<OpTimer> Backend::make_op_timer() { return std::make_unique<HostClockTimer>(); }

}  // namespace gpt2
