#!/usr/bin/env bash
# Runs a command that must fail, and fail for the stated reason: it passes when the command exits
# with status 1 and its output (stdout and stderr) matches every PATTERN (grep -E). Exit status
# 77 (skipped: no device) is passed through. The command's output is printed either way.
#   expect_failure.sh PATTERN [PATTERN...] -- COMMAND [ARG...]
set -u
patterns=()
while (($#)) && [[ $1 != -- ]]; do
  patterns+=("$1")
  shift
done
if (($# < 2)) || ((${#patterns[@]} == 0)); then
  echo "usage: expect_failure.sh PATTERN [PATTERN...] -- COMMAND [ARG...]" >&2
  exit 2
fi
shift
out=$("$@" 2>&1)
status=$?
printf '%s\n' "$out"
if ((status == 77)); then
  exit 77
fi
ok=1
if ((status != 1)); then
  echo "expect_failure: exit status $status, expected 1"
  ok=0
fi
for p in "${patterns[@]}"; do
  if ! grep -Eq -- "$p" <<<"$out"; then
    echo "expect_failure: no line matches '$p'"
    ok=0
  fi
done
if ((ok)); then
  echo "expect_failure: failed as expected (status 1; ${#patterns[@]} patterns matched)"
  exit 0
fi
exit 1
