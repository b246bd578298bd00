// Checks for command-line values, shared by train_gpt2, sample and prepro. Each validator runs
// on the text the user gave (on the command line or in a --config file), so its message quotes
// that text, not a converted value, and states the range in plain numbers.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace gpt2 {

// A finite number in [lo, hi] (hi may be infinity: "at least lo"). NaN and inf are refused.
CLI::Validator finite_in(double lo, double hi);
// A finite number above zero.
CLI::Validator finite_positive();
// A whole number of at least `lo` (1: "must be positive"). "-1" for an unsigned flag is refused
// here, before CLI11 would wrap it around.
CLI::Validator whole_at_least(int64_t lo);
// A whole number from 0 to 18446744073709551615 (a uint64_t, e.g. --seed); "-1" and larger
// numbers are refused instead of wrapping or saturating.
CLI::Validator whole_unsigned64();

// The rule for a flag given more than once: the last value wins, for every single-value option
// of `app` (as with a --config file, whose values the command line overrides). Options that take
// a list (prepro --input) keep every value; positional arguments are left alone. Call after all
// options are added (and once per subcommand).
void last_value_wins(CLI::App& app);

// A warning line ("PROGRAM: warning: OMP_NUM_THREADS=1000 asks for ...") when `threads` exceeds
// the hardware threads (std::thread::hardware_concurrency), or "" when it does not or the
// hardware count is unknown. `threads` is what will run; `asked_by` names what asked for them
// ("--threads 64"); empty: OMP_NUM_THREADS (or OpenMP's default when it is unset).
std::string thread_oversubscription_warning(const std::string& program, int threads, const std::string& asked_by = "");

// Checks a --config file before CLI11 reads it: every line must be blank, a comment (# or ;) or
// `key = value` with a key among `known` (flag names without "--"; '_' and '-' are the same).
// Throws FileError naming the file and line otherwise.
void check_config_file(const std::string& path, const std::vector<std::string>& known);

// The --config file named in argv ("--config F" or "--config=F"), or "" when there is none.
std::string config_file_in_argv(int argc, const char* const* argv);

// The long names of an app's options ("lr", "micro-batch", ...), for check_config_file.
std::vector<std::string> option_names(const CLI::App& app);

}  // namespace gpt2
