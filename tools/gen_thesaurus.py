#!/usr/bin/env python3
"""Compiles a MyThes thesaurus (.dat) into faqbot's thesaurus table.

For each head word (folded the way text.c folds), keeps its first
single-word neighbours: at most MAX_SENSES senses and MAX_NEIGHBOURS words
in all, in the thesaurus's order (closest first), antonyms dropped.  The
thesaurus is noisy, so the matcher only uses a neighbour that the FAQ
itself uses, and weighs it below exact and lemma matches.

Output: the lexicon file layout (see gen_lexicon.py) with magic
"FQTHS001"; a slot's value is the offset of the neighbours, one string
separated by tabs.
"""
import argparse
import os
import re
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_lexicon import fold, fnv1a  # noqa: E402

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
    n = len(table)
    nslots = 1
    while nslots < 2 * n + 2:
        nslots *= 2
    slots = [(0, 0)] * nslots
    pool = bytearray(b"\0")
    for key in sorted(table):
        kb = key.encode()
        koff = len(pool)
        pool += kb + b"\0"
        voff = len(pool)
        pool += "\t".join(table[key]).encode() + b"\0"
        h = fnv1a(kb) & (nslots - 1)
        while slots[h][0]:
            h = (h + 1) & (nslots - 1)
        slots[h] = (koff, voff)
    with open(a.out + ".tmp", "wb") as f:
        f.write(b"FQTHS001")
        f.write(struct.pack("<III", nslots, n, len(pool)))
        f.write(b"".join(struct.pack("<II", k, v) for k, v in slots))
        f.write(pool)
    os.replace(a.out + ".tmp", a.out)
    print(f"thesaurus: {a.out}: {n} head words, {(20 + 8 * nslots + len(pool)) / 1e6:.1f} MB",
          file=sys.stderr)


if __name__ == "__main__":
    main()
