#!/usr/bin/env bash
# Every flag that `train_gpt2 --help` lists is named in README.md, so the README cannot fall
# behind the command line (a new flag without a word in the README fails here).
set -u
BUILD=$1
SRC=$2
fail() { echo "FAIL: $*"; exit 1; }
help=$("$BUILD/train_gpt2" --help) || fail "--help exited non-zero"
# The option column: lines that start with spaces, then an optional short flag, then --name.
flags=$(grep -oE '^ +(-[a-z],)?--[a-z][a-z0-9-]*' <<<"$help" | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
[ "$(wc -l <<<"$flags")" -ge 40 ] || fail "found only $(wc -l <<<"$flags") flags in --help: $flags"
missing=()
for f in $flags; do
  grep -qE -- "$f([^a-z0-9-]|\$)" "$SRC/README.md" || missing+=("$f")
done
[ ${#missing[@]} -eq 0 ] || fail "README.md does not mention: ${missing[*]}"
echo "PASS: all $(wc -l <<<"$flags") flags of --help are in README.md"
