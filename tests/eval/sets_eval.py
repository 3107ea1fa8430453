#!/usr/bin/env python3
"""faqbot against a plain search engine on FAQs and questions it was not
written for (tests/eval/sets/<name>/).

Each set has faq.json (the shipped FAQ, faq/faq.json, for `shipped`) and
questions split into dev.tsv (tune on it) and test.tsv (report only), one
`<entry id or empty>\\t<question>` a line; an empty id means the FAQ cannot
answer and the bot must fall back.  Scores, per set and half:

  top-1      answerable questions answered directly with the right entry
             (a "did you mean" choice does not count, even with the right
             entry first);
  rejection  unanswerable questions that got the fallback (a choice
             offered counts as not rejected);
  overall    fraction of all questions handled correctly.

Beside faqbot, Xapian (python3-xapian): one document per entry (questions,
keywords and answer), BM25, the same Snowball stemmer and stopword list,
with the threshold on its best match's weight chosen as the best on the
same questions (so Xapian's figure is optimistic).

  --half dev|test|both   which halves (default both)
  --min X                exit 1 when faqbot's overall on any dev half < X
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SETS = os.path.join(HERE, "sets")

try:
    import xapian
except ImportError:  # reported in the table
    xapian = None


def read_tsv(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#") or "\t" not in line:
                continue
            want, q = line.split("\t", 1)
            out.append((want.strip() or None, q.replace("\n", " ")))
    return out


def faq_of(name):
    p = os.path.join(SETS, name, "faq.json")
    return p if os.path.exists(p) else os.path.join(ROOT, "faq", "faq.json")


def run_faqbot(faqbot, faq, qs, threshold=None):
    extra = ["--threshold", str(threshold)] if threshold is not None else []
    proc = subprocess.run([faqbot, "ask", "--faq", faq, "--stdin", "--json"] + extra,
                          input="".join(q + "\n" for _, q in qs), capture_output=True,
                          text=True, check=True)
    res = [json.loads(l) for l in proc.stdout.splitlines()]
    if len(res) != len(qs):
        sys.exit(f"eval: {faq}: {len(qs)} questions but {len(res)} answers")
    # a direct answer: an id and no choice offered
    return [(r["match"] if r["match"] and not r["suggestions"] else None, r) for r in res]


def score(qs, got):
    ans = [(w, g) for (w, _), g in zip(qs, got) if w]
    rej = [g for (w, _), g in zip(qs, got) if not w]
    top1 = sum(1 for w, g in ans if g == w)
    rejected = sum(1 for g in rej if g is None)
    return (top1 / max(1, len(ans)), rejected / max(1, len(rej)),
            (top1 + rejected) / max(1, len(qs)))


def stopwords(language):
    lang = {"fr": "french", "en": "english"}.get(language, language)
    p = os.path.join(ROOT, "faq", "stopwords", lang + ".txt")
    words = []
    if os.path.exists(p):
        with open(p, encoding="utf-8") as f:
            for line in f:
                w = line.split("#", 1)[0].strip()
                if w:
                    words.append(w)
    return lang, words


def xapian_scores(faq, qs):
    """Best overall over every threshold on the top document's weight."""
    with open(faq, encoding="utf-8") as f:
        doc = json.load(f)
    lang, stops = stopwords(doc.get("language", "french"))
    db = xapian.WritableDatabase("", xapian.DB_BACKEND_INMEMORY)
    stem = xapian.Stem(lang)
    stopper = xapian.SimpleStopper()
    for w in stops:
        stopper.add(w)
    tg = xapian.TermGenerator()
    tg.set_stemmer(stem)
    tg.set_stopper(stopper)
    ids = []
    for e in doc["entries"]:
        d = xapian.Document()
        tg.set_document(d)
        tg.index_text(" ".join(e.get("questions", []) + e.get("keywords", []) +
                               [e.get("answer", "")]))
        db.add_document(d)
        ids.append(e["id"])
    enq = xapian.Enquire(db)
    enq.set_weighting_scheme(xapian.BM25Weight())
    qp = xapian.QueryParser()
    qp.set_stemmer(stem)
    qp.set_stopper(stopper)
    qp.set_stemming_strategy(xapian.QueryParser.STEM_SOME)
    qp.set_default_op(xapian.Query.OP_OR)
    top = []
    for _, q in qs:
        try:
            query = qp.parse_query(q, 0)
        except xapian.QueryParserError:
            query = xapian.Query()
        enq.set_query(query)
        m = enq.get_mset(0, 1)
        top.append((ids[m[0].docid - 1], m[0].weight) if m.size() else (None, 0.0))
    best = None
    for th in sorted({w for _, w in top} | {0.0}) + [float("inf")]:
        got = [i if i is not None and w >= th else None for i, w in top]
        s = score(qs, got)
        if best is None or s[2] > best[2]:
            best = s
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--faqbot", default=os.path.join(ROOT, "build", "faqbot"))
    ap.add_argument("--half", default="both", choices=["dev", "test", "both"])
    ap.add_argument("--min", type=float, default=None)
    ap.add_argument("--set", action="append", default=None)
    ap.add_argument("--threshold", type=float, default=None,
                    help="instead of each FAQ's own threshold")
    ap.add_argument("--no-xapian", action="store_true")
    ap.add_argument("--verbose", action="store_true",
                    help="list faqbot's misses (dev halves only: never read test misses)")
    a = ap.parse_args()
    names = a.set or sorted(d for d in os.listdir(SETS) if os.path.isdir(os.path.join(SETS, d)))
    halves = ["dev", "test"] if a.half == "both" else [a.half]
    print(f"{'set':<11}{'half':<6}{'n':>4}  {'top-1':>6}{'reject':>8}{'overall':>8}   "
          f"{'xapian top-1':>12}{'reject':>8}{'overall':>8}")
    failed, overall = [], []
    for name in names:
        faq = faq_of(name)
        for half in halves:
            p = os.path.join(SETS, name, half + ".tsv")
            if not os.path.exists(p):
                continue
            qs = read_tsv(p)
            res = run_faqbot(a.faqbot, faq, qs, a.threshold)
            got = [g for g, _ in res]
            t1, rj, ov = score(qs, got)
            xs = xapian_scores(faq, qs) if xapian and not a.no_xapian else None
            xcol = (f"{xs[0]:>12.2f}{xs[1]:>8.2f}{xs[2]:>8.2f}" if xs else
                    f"{'(xapian not run)':>28}")
            overall.append(ov)
            print(f"{name:<11}{half:<6}{len(qs):>4}  {t1:>6.2f}{rj:>8.2f}{ov:>8.2f}   {xcol}")
            if a.verbose and half == "dev":
                for (w, q), (g, r) in zip(qs, res):
                    if g != w:
                        print(f"    miss: want {w}, got {g} ({r['match']} "
                              f"{r['confidence']:.2f} {r['suggestions']}): {q}")
            if a.min is not None and half == "dev" and ov < a.min:
                failed.append(f"{name} {ov:.2f}")
    print(f"mean overall {sum(overall) / max(1, len(overall)):.3f}")
    if failed:
        print(f"eval: FAILED: overall below {a.min:.2f} on dev: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
