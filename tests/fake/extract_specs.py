#!/usr/bin/env python3
"""Facts the fake servers check requests against, drawn from the protocol
definitions in ../shared/specs (beside the repository, when it is there).

The fakes check every request faqbot sends against the Telegram Bot API
(telegram/api.json) and the Matrix Client-Server API (matrix/*.yaml).  Those
files live outside this repository, so a lone clone commits the facts the
checks use, and nothing else, under tests/fake/specs/:

  telegram.json  every method: its parameters (name, types, required); every
                 type those parameters reach: its fields (name, types,
                 required).  No descriptions.
  matrix.json    every operation: method, path, query parameters (name,
                 required), the top-level request body fields (names,
                 required, whether others are allowed); the required fields
                 of an m.notice content.

When ../shared/specs is present the fakes derive the same facts from it
directly (telegram_facts / matrix_facts below), so the checks follow the
definitions; otherwise they read the committed extract.

  python3 tests/fake/extract_specs.py           rewrite tests/fake/specs/*.json
  python3 tests/fake/extract_specs.py --check   exit 1 if they are stale,
                                                77 without ../shared/specs
"""
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "specs")
EXTRACT = os.path.join(HERE, "specs")

TELEGRAM_ORIGIN = ("Telegram Bot API, from api.json of github.com/PaulSonOfLars/"
                   "telegram-bot-api-spec (MIT licence, Copyright (c) 2020 Paul Larsen)")
MATRIX_ORIGIN = ("Matrix Client-Server API, from github.com/matrix-org/matrix-spec "
                 "(Apache-2.0 licence, Copyright The Matrix.org Foundation C.I.C.)")
NOTICE = os.path.join("event-schemas", "schema", "m.room.message$m.notice.yaml")
BASIC = {"Integer", "Float", "String", "Boolean"}


def _type_names(types):
    """The named types in a field's type list ("Array of X" -> X)."""
    for t in types:
        while t.startswith("Array of "):
            t = t[len("Array of "):]
        if t not in BASIC:
            yield t


def _fields(fields):
    return [{"name": f["name"], "types": list(f["types"]), "required": bool(f.get("required"))}
            for f in fields]


def telegram_facts(specs=SHARED):
    """Method parameters and the types they reach, from telegram/api.json."""
    with open(os.path.join(specs, "telegram", "api.json"), encoding="utf-8") as f:
        d = json.load(f)
    methods = {name: {"fields": _fields(m.get("fields", []))}
               for name, m in sorted(d["methods"].items())}
    todo = [t for m in methods.values() for f in m["fields"] for t in _type_names(f["types"])]
    types = {}
    while todo:
        t = todo.pop()
        if t in types or t not in d["types"]:
            continue
        src = d["types"][t]
        types[t] = {"fields": _fields(src["fields"])} if "fields" in src else {}
        todo += [x for f in types[t].get("fields", []) for x in _type_names(f["types"])]
    return {"origin": TELEGRAM_ORIGIN, "version": d.get("version", ""),
            "methods": methods, "types": dict(sorted(types.items()))}


def _load_yaml(path):
    import yaml  # Debian's python3-yaml; only needed beside ../shared/specs
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _resolve(schema, base):
    """Top-level properties, required names and additionalProperties of a
    request body schema, following $ref and allOf."""
    while isinstance(schema, dict) and "$ref" in schema:
        path = os.path.normpath(os.path.join(os.path.dirname(base), schema["$ref"]))
        schema, base = _load_yaml(path), path
    props, required = dict(schema.get("properties") or {}), list(schema.get("required") or [])
    for sub in schema.get("allOf") or []:
        p, r, _ = _resolve(sub, base)
        props.update(p)
        required += r
    return props, required, schema.get("additionalProperties", True)


def matrix_facts(specs=SHARED):
    """Operations of api/client-server/*.yaml and the m.notice content."""
    base = os.path.join(specs, "matrix", "api", "client-server")
    ops = []
    for name in sorted(os.listdir(base)):
        if not name.endswith(".yaml"):
            continue
        path = os.path.join(base, name)
        d = _load_yaml(path)
        for p, methods in (d.get("paths") or {}).items():
            for meth, op in methods.items():
                query = {q["name"]: bool(q.get("required"))
                         for q in op.get("parameters") or [] if q.get("in") == "query"}
                rb = ((op.get("requestBody") or {}).get("content", {})
                      .get("application/json", {}).get("schema"))
                body = None
                if rb:
                    props, required, addl = _resolve(rb, path)
                    body = {"fields": sorted(props), "required": required,
                            "others_allowed": addl is not False}
                ops.append({"method": meth.upper(), "path": p, "file": name,
                            "query": query, "body": body})
    notice = _load_yaml(os.path.join(specs, "matrix", NOTICE))
    return {"origin": MATRIX_ORIGIN, "operations": ops,
            "notice_required": list(notice["properties"]["content"].get("required") or [])}


def path_regex(path):
    """An OpenAPI path ("/rooms/{roomId}/join") as an anchored regex."""
    return re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")


_loaded = {}


def load(name):
    """The facts for name ("telegram" or "matrix"): derived from
    ../shared/specs when it is there, else the committed extract.  Says which,
    once per process, on stderr (it shows in the test output).  Read once per
    process; callers must not change the result."""
    if name in _loaded:
        return _loaded[name]
    live = os.path.isdir(os.path.join(SHARED, name))
    if live:
        facts = telegram_facts() if name == "telegram" else matrix_facts()
        where = os.path.join(os.path.relpath(SHARED, ROOT), name)
    else:
        with open(os.path.join(EXTRACT, name + ".json"), encoding="utf-8") as f:
            facts = json.load(f)
        where = os.path.relpath(os.path.join(EXTRACT, name + ".json"), ROOT) + \
            " (committed extract; ../shared/specs is not beside this clone)"
    print(f"spec check: {name} requests against {where}", file=sys.stderr)
    _loaded[name] = facts
    return facts


def _render(facts):
    """JSON with one method, type or operation a line (diffs stay readable)."""
    def one(v):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))

    out = []
    for k, v in facts.items():
        if isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()):
            rows = [f"  {one(n)}: {one(x)}" for n, x in v.items()]
            out.append(f" {one(k)}: {{\n" + ",\n".join(rows) + "\n }")
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            out.append(f" {one(k)}: [\n" + ",\n".join("  " + one(x) for x in v) + "\n ]")
        else:
            out.append(f" {one(k)}: {one(v)}")
    return "{\n" + ",\n".join(out) + "\n}\n"


def main(argv):
    if not os.path.isdir(SHARED):
        print(f"extract_specs: {SHARED} is not there; the committed extract stays as it is",
              file=sys.stderr)
        return 77
    stale = []
    for name, build in (("telegram", telegram_facts), ("matrix", matrix_facts)):
        text = _render(build())
        path = os.path.join(EXTRACT, name + ".json")
        try:
            with open(path, encoding="utf-8") as f:
                same = f.read() == text
        except FileNotFoundError:
            same = False
        if same:
            continue
        if "--check" in argv:
            stale.append(os.path.relpath(path, ROOT))
        else:
            os.makedirs(EXTRACT, exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"extract_specs: wrote {os.path.relpath(path, ROOT)}")
    if stale:
        print("extract_specs: out of date with ../shared/specs: " + ", ".join(stale) +
              " (run python3 tests/fake/extract_specs.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
