#!/usr/bin/env python3
"""Compiles a MyThes thesaurus (.dat) into faqbot's thesaurus table.

For each head word (folded the way text.c folds), keeps its first
single-word neighbours: at most MAX_SENSES senses and MAX_NEIGHBOURS words
in all, in the thesaurus's order (closest first), antonyms dropped.  The
thesaurus is noisy, so the matcher only uses a neighbour that the FAQ
itself uses, and weighs it below exact and lemma matches.

Output: the lexicon file layout (see gen_lexicon.py) with magic
"FQTHS002"; a slot's value is the offset of the neighbours, one string
separated by tabs.
"""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_lexicon import fold, write_table  # noqa: E402

MAX_SENSES = 2
MAX_NEIGHBOURS = 8
WORD = re.compile(r"^\w+$")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dat")
    ap.add_argument("out")
    a = ap.parse_args()
    table = {}
    with open(a.dat, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    i = 1
    while i < len(lines):
        head, _, n = lines[i].partition("|")
        i += 1
        try:
            n = int(n)
        except ValueError:
            continue
        senses = lines[i:i + n]
        i += n
        key = fold(head)
        if not WORD.match(key) or key in table:
            continue
        out = []
        for sense in senses[:MAX_SENSES]:
            for syn in sense.split("|")[1:]:
                if "antonym" in syn:
                    continue
                syn = re.sub(r"\s*\(.*\)$", "", syn).strip().lower()
                if WORD.match(syn) and fold(syn) != key and syn not in out:
                    out.append(syn)
        if out:
            table[key] = out[:MAX_NEIGHBOURS]
    size, _ = write_table(a.out, b"FQTHS002", {k: "\t".join(v) for k, v in table.items()})
    print(f"thesaurus: {a.out}: {len(table)} head words, {size / 1e6:.1f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
