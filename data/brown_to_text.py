#!/usr/bin/env python3
"""Turns the POS-tagged Brown corpus (form C, files ca01 .. cr09) back into plain text.

    brown_to_text.py SRC_DIR OUT_DIR

Writes OUT_DIR/<name>.txt for each of the 500 corpus files: one document per file, one
paragraph per line pair ("\\n\\n" between paragraphs).

The tagged form is `word/tag word/tag ...`, one sentence per line; a line that starts with a
tab opens a paragraph, headlines carry tags ending in -hl. The rules used here:
  - the tag is everything after the last '/' (words such as 1-1/2 keep their own slashes);
  - `` and '' (Brown's opening and closing double quotes) become '"';
  - no space before , . ; : ? ! ) ] and a closing quote; none after ( [ and an opening quote;
  - a lone ' closes an open single quote, else attaches to a preceding plural ending in s
    (the farmers' crops), else opens a quote;
  - a '.' after an abbreviation's own '.' (Jr. .) and a doubled ';' are dropped;
  - headlines are paragraphs of their own.
"""
import os
import re
import sys

NO_SPACE_BEFORE = {",", ".", ";", ":", "?", "!", ")", "]", "}", "''"}
NO_SPACE_AFTER = {"(", "[", "{", "``"}
CORPUS_FILE = re.compile(r"^c[a-r]\d\d$")


def split_token(tok):
    slash = tok.rfind("/")
    if slash <= 0:
        return tok, ""
    return tok[:slash], tok[slash + 1:]


def detokenize(words):
    out = []
    glue_next = False  # the previous word forbids a space after it
    single_open = False
    for i, w in enumerate(words):
        prev_word = words[i - 1] if i > 0 else ""
        # "Jr./np ./." and ";/. ;/.": the tagging split one mark into two.
        if w in (".", ";") and (prev_word == w or (w == "." and prev_word.endswith("."))):
            continue
        attach = glue_next or not out
        glue_next = False
        if w == "'":
            if single_open:
                attach, single_open = True, False
            elif prev_word[-1:] in ("s", "S") and prev_word.isalpha():
                attach = True
            else:
                single_open = True
                glue_next = True
        elif w in NO_SPACE_BEFORE:
            attach = True
        if w in NO_SPACE_AFTER:
            glue_next = True
        text = '"' if w in ("``", "''") else w
        out.append(text if attach else " " + text)
    return "".join(out)


def convert(path):
    paragraphs = []
    current = []
    after_headline = False
    with open(path, encoding="ascii", errors="strict") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not line.strip():
                continue
            tokens = [split_token(t) for t in line.split()]
            words = [w for w, _ in tokens]
            tags = [t for _, t in tokens]
            headline = bool(tags) and all(t.endswith("-hl") for t in tags)
            starts = line.startswith("\t") or headline or after_headline
            if starts and current:
                paragraphs.append(" ".join(current))
                current = []
            current.append(detokenize(words))
            if headline:
                paragraphs.append(" ".join(current))
                current = []
            after_headline = headline
    if current:
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs) + "\n"


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(argv) == 2 else 2
    src, dst = argv[1], argv[2]
    names = sorted(n for n in os.listdir(src) if CORPUS_FILE.match(n))
    if not names:
        print(f"brown_to_text: no corpus files (ca01 .. cr09) in {src}", file=sys.stderr)
        return 1
    os.makedirs(dst, exist_ok=True)
    total = 0
    for n in names:
        text = convert(os.path.join(src, n))
        total += len(text)
        tmp = os.path.join(dst, n + ".txt.tmp")
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, os.path.join(dst, n + ".txt"))
    print(f"brown_to_text: {len(names)} documents, {total:,} bytes of text in {dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
