#!/usr/bin/env python3
"""Compiles a hunspell dictionary (.dic + .aff) into faqbot's lexicon table.

Every word form the dictionary accepts is expanded from its root with the
.aff suffix rules (prefixes are left out: French ones are elisions, which
faqbot's tokeniser splits anyway, and English ones make other words).  The
table maps each form, folded the way text.c folds (lower case, accents and
ligatures removed), to its root, the lemma, kept with its accents so that
Snowball can stem it properly.  When one folded form has several roots, a
root equal to the form itself wins (so "finance" stays the noun, not the
verb "financer"), then the root met first in the dictionary.

Output (all integers little-endian u32), mapped read-only by faqbot:
    magic "FQLEX002"
    nslots (a power of two), nforms, pool_size
    slots[nslots]: { check, lemma_off }  (lemma_off 0 = empty slot)
    pool: NUL-terminated UTF-8 lemmas (offset 0 is an empty string)
A form's 64-bit FNV-1a hash h gives its first slot (h & (nslots - 1),
then linear probing) and its check (h >> 32).  Forms themselves are not
stored: a word that is not in the table matches a slot only when its
64-bit hash agrees in position and check, about once in 10,000 look-ups,
and the table stays small (a kernel may map a whole file on the first
touch, so its size is its resident cost).
"""
import argparse
import os
import re
import struct
import sys
import unicodedata

SPECIAL = {"œ": "oe", "æ": "ae", "ø": "o", "đ": "d", "ł": "l", "ß": "ss"}


def fold(s):
    out = []
    for ch in unicodedata.normalize("NFKD", s.casefold()):
        if unicodedata.category(ch) == "Mn":
            continue
        out.append(SPECIAL.get(ch, ch))
    return "".join(out)


def lower(s):
    return unicodedata.normalize("NFC", s.casefold())


WORD = re.compile(r"^\w+$")


def parse_flags(s, mode):
    if not s:
        return []
    if mode == "long":
        return [s[i:i + 2] for i in range(0, len(s) - 1, 2)]
    if mode == "num":
        return s.split(",")
    return list(s)


def read_aff(path):
    mode = "char"
    sfx = {}
    needaffix = None
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    i = 0
    while i < len(lines):
        parts = lines[i].split()
        i += 1
        if not parts:
            continue
        if parts[0] == "FLAG" and len(parts) > 1:
            mode = {"long": "long", "num": "num"}.get(parts[1], "char")
        elif parts[0] == "NEEDAFFIX" and len(parts) > 1:
            needaffix = parts[1]
        elif parts[0] == "SFX" and len(parts) >= 4 and parts[2] in "YN" and parts[3].isdigit():
            flag, count = parts[1], int(parts[3])
            rules = []
            for _ in range(count):
                p = lines[i].split()
                i += 1
                if len(p) < 4 or p[0] != "SFX":
                    continue
                strip = "" if p[2] == "0" else p[2]
                add, _, cont = p[3].partition("/")
                add = "" if add == "0" else add
                cond = p[4] if len(p) > 4 else "."
                rx = None if cond == "." else re.compile("(?:" + cond + ")$")
                rules.append((strip, add, parse_flags(cont, mode), rx))
            sfx.setdefault(flag, []).extend(rules)
    return mode, sfx, needaffix


def expand(root, flags, sfx, depth=0):
    """Yields the forms the suffix rules make from root (one level of
    continuation suffixes, as hunspell allows)."""
    for fl in flags:
        for strip, add, cont, rx in sfx.get(fl, ()):
            if strip and not root.endswith(strip):
                continue
            if rx is not None and not rx.search(root):
                continue
            form = (root[:len(root) - len(strip)] if strip else root) + add
            yield form
            if depth == 0:
                sub = [c for c in cont if c in sfx]
                if sub:
                    yield from expand(form, sub, sfx, 1)


# Derivational suffixes whose word is taken for a form of its base when
# the base (folded) is itself a root: "composteur" -> "compost",
# "budgétaire" -> "budget", "ramassage" -> "ramasser".  Endings the base
# may take are tried in order.  Bases shorter than 4 letters never count.
DERIVATIONS = {
    "french": [("eur", ("", "e", "er", "ir", "re")), ("euse", ("", "e", "er", "ir", "re")),
               ("aire", ("", "e")), ("age", ("er",))],
}


def derive(table, language):
    """Rewrites the lemma of derived words to their base's lemma."""
    rules = DERIVATIONS.get(language, [])
    if not rules:
        return
    roots = {}
    for key, (pri, lemma) in table.items():
        if pri == 0:
            roots.setdefault(fold(lemma), lemma)
    remap = {}
    for lemma in {l for _, l in table.values()}:
        fl = fold(lemma)
        for suf, ends in rules:
            if not fl.endswith(suf) or len(fl) - len(suf) < 4:
                continue
            base = fl[:len(fl) - len(suf)]
            for e in ends:
                if base + e in roots and base + e != fl:
                    remap[lemma] = roots[base + e]
                    break
            if lemma in remap:
                break
    for key, (pri, lemma) in list(table.items()):
        if lemma in remap:
            table[key] = (pri, remap[lemma])


def fnv1a(b):
    h = 1469598103934665603
    for c in b:
        h = ((h ^ c) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def write_table(path, magic, table):
    """table: key -> value string; values are stored once each."""
    n = len(table)
    nslots = 1
    while nslots * 0.85 < n + 1:
        nslots *= 2
    slots = [(0, 0)] * nslots
    pool = bytearray(b"\0")
    value_off = {}
    for key in sorted(table):
        v = table[key]
        if v not in value_off:
            value_off[v] = len(pool)
            pool += v.encode() + b"\0"
        h = fnv1a(key.encode())
        i = h & (nslots - 1)
        while slots[i][1]:
            i = (i + 1) & (nslots - 1)
        slots[i] = (h >> 32, value_off[v])
    with open(path + ".tmp", "wb") as f:
        f.write(magic)
        f.write(struct.pack("<III", nslots, n, len(pool)))
        f.write(b"".join(struct.pack("<II", k, v) for k, v in slots))
        f.write(pool)
    os.replace(path + ".tmp", path)
    return 20 + 8 * nslots + len(pool), len(value_off)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dic")
    ap.add_argument("aff")
    ap.add_argument("out")
    ap.add_argument("--language", default="")
    ap.add_argument("--exceptions", action="append", default=[],
                    help="WordNet exception list (verb.exc, noun.exc: 'form lemma...'): "
                         "irregular forms hunspell does not link to their lemma")
    a = ap.parse_args()
    mode, sfx, needaffix = read_aff(a.aff)
    table = {}   # folded form -> (priority, lemma)
    with open(a.dic, encoding="utf-8", errors="replace") as f:
        first = True
        for line in f:
            if first:
                first = False
                if line.strip().isdigit():
                    continue
            word = line.split("\t")[0].split(" ")[0].strip()
            if not word:
                continue
            # "root/flags"; a slash escaped as "\/" never occurs in a word we keep
            root, _, fl = word.partition("/")
            if not WORD.match(root) or root.isdigit():
                continue
            flags = parse_flags(fl, mode)
            lemma = lower(root)
            forms = set(expand(root, flags, sfx))
            if needaffix is None or needaffix not in flags:
                forms.add(root)
            for form in forms:
                if not WORD.match(form):
                    continue
                key = fold(form)
                pri = 0 if lower(form) == lemma else 1
                old = table.get(key)
                if old is None or pri < old[0]:
                    table[key] = (pri, lemma)
    for path in a.exceptions:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 2 or not WORD.match(parts[0]) or not WORD.match(parts[1]):
                    continue
                # hunspell lists "forgot", "took" as roots of their own:
                # the exception list wins (both sides of a match agree)
                table[fold(parts[0])] = (1, lower(parts[1]))
    derive(table, a.language)
    size, nlemmas = write_table(a.out, b"FQLEX002", {k: v[1] for k, v in table.items()})
    print(f"lexicon: {a.out}: {len(table)} forms, {nlemmas} lemmas, {size / 1e6:.1f} MB",
          file=sys.stderr)


if __name__ == "__main__":
    main()
