# Sourced by scripts/install_deps.sh and scripts/quickstart.sh.
# quiet_phase SCRIPT LOG TAIL_LINES WHAT CMD...: prints "SCRIPT: WHAT", runs CMD with its output
# appended to LOG, and on failure prints the last TAIL_LINES lines of LOG and exits 1.
quiet_phase() {
  local script=$1 log=$2 tail_lines=$3 what=$4
  shift 4
  echo "$script: $what"
  if ! "$@" >>"$log" 2>&1; then
    echo "$script: failed: $what; the last lines of $log:" >&2
    tail -n "$tail_lines" "$log" >&2
    exit 1
  fi
}
