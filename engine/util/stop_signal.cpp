// SIGINT / SIGTERM recorded for a stop at the next step boundary. See stop_signal.h.
#include "engine/util/stop_signal.h"

#include <csignal>

namespace gpt2 {
namespace {

volatile std::sig_atomic_t g_received = 0;
struct sigaction g_previous_int, g_previous_term;

// SA_RESETHAND has restored the default action before this runs: the next signal kills.
void record_signal(int signo) { g_received = signo; }

// Installs the handler for `signo`, unless the signal is ignored (a command started in the
// background by a script, or under nohup, keeps ignoring it). `previous` gets the old action.
void install(int signo, struct sigaction* previous) {
  sigaction(signo, nullptr, previous);
  if (previous->sa_handler == SIG_IGN) return;
  struct sigaction sa {};
  sa.sa_handler = record_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND | SA_RESTART;
  sigaction(signo, &sa, nullptr);
}

}  // namespace

StopSignals::StopSignals() {
  g_received = 0;
  install(SIGINT, &g_previous_int);
  install(SIGTERM, &g_previous_term);
}

StopSignals::~StopSignals() {
  sigaction(SIGINT, &g_previous_int, nullptr);
  sigaction(SIGTERM, &g_previous_term, nullptr);
}

int StopSignals::received() { return g_received; }

const char* stop_signal_name(int signo) {
  switch (signo) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    default: return "a signal";
  }
}

}  // namespace gpt2
