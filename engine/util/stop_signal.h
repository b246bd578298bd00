// A graceful stop on SIGINT / SIGTERM: while a StopSignals object lives, the first of these
// signals only records itself (the run stops at its next step boundary, see train_main); the
// handler then restores the default action, so a second signal ends the process at once. A
// signal the process was started ignoring stays ignored.
#pragma once

namespace gpt2 {

class StopSignals {
 public:
  StopSignals();   // installs the handlers
  ~StopSignals();  // restores the previous handlers
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // The signal received so far (SIGINT or SIGTERM), or 0.
  static int received();
};

// "SIGINT", "SIGTERM", or "a signal" for any other.
const char* stop_signal_name(int signo);

}  // namespace gpt2
