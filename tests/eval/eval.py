#!/usr/bin/env python3
"""Evaluation of faqbot's matching on the labelled set in tests/eval/.

Runs `faqbot ask --stdin --json` once over every question, then prints
top-1 accuracy on answerable questions and the correct-rejection rate on
questions the FAQ must not answer.  With --min, exits 1 when either is
below it (make test uses 0.90).  --verbose lists every miss.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.strip() and not line.startswith("#"):
                yield line


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--faqbot", default="build/faqbot")
    ap.add_argument("--faq", default="faq/faq.json")
    ap.add_argument("--min", type=float, default=None)
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()

    answerable = [l.split("\t", 1) for l in read_lines(os.path.join(HERE, "answerable.tsv"))]
    rejected = list(read_lines(os.path.join(HERE, "unanswerable.txt")))
    questions = [q for _, q in answerable] + rejected
    proc = subprocess.run([a.faqbot, "ask", "--faq", a.faq, "--stdin", "--json"],
                          input="\n".join(questions) + "\n", capture_output=True,
                          text=True, check=True)
    results = [json.loads(l) for l in proc.stdout.splitlines()]
    if len(results) != len(questions):
        sys.exit(f"eval: {len(questions)} questions but {len(results)} answers")
    for q, r in zip(questions, results):
        if r["question"] != q:
            sys.exit(f"eval: answers out of order at {q!r}")

    hits, misses = 0, []
    for (want, q), r in zip(answerable, results):
        if r["match"] == want:
            hits += 1
        else:
            misses.append(f"  miss: {q!r}: want {want}, got {r['match']} ({r['confidence']:.2f})")
    rej, false_answers = 0, []
    for q, r in zip(rejected, results[len(answerable):]):
        if r["match"] is None:
            rej += 1
        else:
            false_answers.append(f"  answered: {q!r}: {r['match']} ({r['confidence']:.2f})")

    held = [l.split("\t", 1) for l in read_lines(os.path.join(HERE, "heldout.tsv"))]
    if held:
        proc = subprocess.run([a.faqbot, "ask", "--faq", a.faq, "--stdin", "--json"],
                              input="\n".join(q for _, q in held) + "\n",
                              capture_output=True, text=True, check=True)
        hres = [json.loads(l) for l in proc.stdout.splitlines()]
        ha = [r["match"] == w for (w, _), r in zip(held, hres) if w]
        hr = [r["match"] is None for (w, _), r in zip(held, hres) if not w]
        print(f"eval: held-out set (not gated): accuracy {sum(ha)}/{len(ha)}, "
              f"rejection {sum(hr)}/{len(hr)}")

    acc = hits / len(answerable)
    rr = rej / len(rejected)
    print(f"eval: top-1 accuracy {acc:.1%} ({hits}/{len(answerable)} answerable questions)")
    print(f"eval: correct rejection {rr:.1%} ({rej}/{len(rejected)} questions the FAQ must not answer)")
    if a.verbose:
        for m in misses + false_answers:
            print(m)
    if a.min is not None and (acc < a.min or rr < a.min):
        print(f"eval: FAILED: below {a.min:.0%}")
        for m in misses + false_answers:
            print(m)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
