# Sourced by the CLI tests (tests/cli/*.sh, run as `bash tests/cli/NAME.sh BUILD_DIR SOURCE_DIR`):
#   BUILD, SRC       the build and source folders (the script's arguments)
#   BIN              $BUILD/train_gpt2
#   TMP              a scratch folder, removed at exit
#   BG_PID           a background run the script started; killed at exit when still set
#   TINY             flags of a model that trains a step in milliseconds on the CPU
#   fail MESSAGE     prints FAIL: MESSAGE and exits 1
#   wait_for PATTERN FILE [SECONDS]
#                    waits until FILE has a line matching PATTERN (default 30 s); fails when the
#                    background run BG_PID ends first
#   stop_background  kills BG_PID and waits for it
#   expect RC TEXT CMD...
#                    runs CMD: exit code RC and one short error (at most 2 lines, under 400
#                    characters) that contains TEXT (a grep pattern, e.g. the flag's name)
#   TOK              GPT-2's tokenizer folder (data/tokenizer of the source folder)
#   require_tokenizer skip|fail
#                    without the tokenizer files, skips the test (exit 77) or fails it
# It lives outside tests/cli/*.sh so CMake's glob does not take it for a test.
set -u
BUILD=$1
SRC=${2:-}
BIN="$BUILD/train_gpt2"
fail() { echo "FAIL: $*"; exit 1; }
TMP=$(mktemp -d)
BG_PID=""
trap '[ -n "$BG_PID" ] && kill -9 "$BG_PID" 2>/dev/null; rm -rf "$TMP"' EXIT
TINY=(--device cpu --layers 2 --heads 4 --width 64 --vocab 256 --max-seq-len 32 --seq-len 32
      --micro-batch 2 --total-batch-tokens 128)

wait_for() {
  local pattern=$1 file=$2 seconds=${3:-30} i
  for ((i = 0; i < seconds * 10; ++i)); do
    grep -q -- "$pattern" "$file" 2>/dev/null && return 0
    if [ -n "$BG_PID" ] && ! kill -0 "$BG_PID" 2>/dev/null; then
      grep -q -- "$pattern" "$file" 2>/dev/null && return 0
      fail "the background run ended before '$pattern': $(tail -5 "$file")"
    fi
    sleep 0.1
  done
  fail "no '$pattern' in $file after $seconds s: $(tail -3 "$file")"
}

stop_background() {
  kill -9 "$BG_PID" 2>/dev/null
  wait "$BG_PID" 2>/dev/null
  BG_PID=""
}

expect() {
  local want=$1 text=$2
  shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null)
  rc=$?
  [ "$rc" -eq "$want" ] || fail "$* should exit $want, got $rc: $err"
  grep -q -- "$text" <<<"$err" || fail "$* should say '$text': $err"
  [ "$(grep -c . <<<"$err")" -le 2 ] || fail "$* gave more than one error line: $err"
  [ "${#err}" -lt 400 ] || fail "$* gave an overlong message: $err"
}

TOK="$SRC/data/tokenizer"
require_tokenizer() {
  [ -f "$TOK/encoder.json" ] && return 0
  [ "$1" = skip ] && { echo "SKIP: tokenizer files missing: run data/fetch_tokenizer.sh"; exit 77; }
  fail "tokenizer files missing: run data/fetch_tokenizer.sh"
}
