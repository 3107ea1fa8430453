#!/usr/bin/env python3
"""Writes a synthetic FAQ of N entries built from a French word list
(default /usr/share/dict/french, from Debian's wfrench), and a file of
questions to ask it: half are phrasings of random entries with one word
dropped and one letter swapped, half are random words (mostly unknown to
the FAQ).  Deterministic for a given --seed.
"""
import argparse
import json
import random


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dict", default="/usr/share/dict/french")
    ap.add_argument("--entries", type=int, default=10000)
    ap.add_argument("--questions", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--faq-out", required=True)
    ap.add_argument("--questions-out", required=True)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    with open(a.dict, encoding="utf-8") as f:
        words = [w.strip() for w in f if len(w.strip()) > 3 and "'" not in w]
    entries = []
    for i in range(a.entries):
        questions = [" ".join(rnd.choice(words) for _ in range(rnd.randint(4, 8))) + " ?"
                     for _ in range(3)]
        answer = " ".join(rnd.choice(words) for _ in range(rnd.randint(15, 30))) + "."
        entries.append({"id": f"e{i}", "questions": questions, "answer": answer,
                        "keywords": [rnd.choice(words)]})
    faq = {"language": "french", "threshold": 0.35,
           "fallback": {"text": "Pas de réponse.", "url": "https://example.org/souscrire"},
           "entries": entries}
    with open(a.faq_out, "w", encoding="utf-8") as f:
        json.dump(faq, f, ensure_ascii=False)
    with open(a.questions_out, "w", encoding="utf-8") as f:
        for i in range(a.questions):
            if i % 2 == 0:
                q = rnd.choice(rnd.choice(entries)["questions"]).rstrip(" ?").split()
                if len(q) > 3:
                    q.pop(rnd.randrange(len(q)))
                w = rnd.randrange(len(q))
                if len(q[w]) > 5:
                    k = rnd.randrange(1, len(q[w]) - 1)
                    q[w] = q[w][:k] + q[w][k + 1] + q[w][k] + q[w][k + 2:]
                f.write(" ".join(q) + " ?\n")
            else:
                f.write(" ".join(rnd.choice(words) for _ in range(rnd.randint(3, 8))) + "\n")


if __name__ == "__main__":
    main()
