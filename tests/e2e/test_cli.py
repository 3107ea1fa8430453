#!/usr/bin/env python3
"""End-to-end tests of the faqbot command line (no network).

FAQBOT names the binary under test (default build/faqbot); run from the
repository root.  Also checks that faq/faq.schema.json and `faqbot check`
agree on every fixture under tests/data/faq/.
"""
import json
import os
import pty
import select
import subprocess
import sys
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAQBOT = os.path.abspath(os.environ.get("FAQBOT", os.path.join(ROOT, "build", "faqbot")))
FIXTURES = os.path.join(ROOT, "tests", "data", "faq")


def run(*args, stdin=None, env=None, cwd=ROOT):
    e = dict(os.environ)
    e.pop("FAQBOT_FAQ", None)
    if env:
        e.update(env)
    p = subprocess.run([FAQBOT, *args], input=stdin, capture_output=True, cwd=cwd, env=e,
                       timeout=60)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8")


def expect_lines(path):
    with open(path, encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f if l.strip()]


def console_on_terminal(faq, locale_env, typed):
    """Runs `faqbot console` on a pseudo-terminal with only locale_env for
    locale variables, types each line of typed as a person would (CR ends a
    line) and returns everything the terminal showed, decoded as UTF-8."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LC_", "LANG", "FAQBOT_"))}
    env.update(locale_env, TERM="xterm")
    master, slave = pty.openpty()
    p = subprocess.Popen([FAQBOT, "console", "--faq", faq], stdin=slave, stdout=slave,
                         stderr=slave, env=env, cwd=ROOT, close_fds=True)
    os.close(slave)
    shown = b""

    def read_until(pred, timeout=10):
        nonlocal shown
        end = time.time() + timeout
        while not pred(shown) and time.time() < end:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
        return pred(shown)

    try:
        read_until(lambda s: b"vous> " in s)
        for line in typed:
            seen = shown.count(b"bot> ")
            os.write(master, line.encode("utf-8") + b"\r")
            read_until(lambda s, n=seen: s.count(b"bot> ") > n and s.rstrip().endswith(b"vous>"))
        os.write(master, b"/quit\r")
        read_until(lambda s: p.poll() is not None)
        p.wait(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    return shown.decode("utf-8", "replace")


class Basics(unittest.TestCase):
    def test_version_and_help(self):
        rc, out, _ = run("--version")
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^faqbot \d+\.\d+\.\d+\n$")
        rc, out, _ = run("--help")
        self.assertEqual(rc, 0)
        for cmd in ("check", "ask", "console", "run"):
            self.assertIn(cmd, out)
            rc, sub, _ = run(cmd, "--help")
            self.assertEqual(rc, 0, cmd)
            self.assertIn("usage: faqbot " + cmd, sub)

    def test_bad_usage(self):
        rc, _, err = run("frobnicate")
        self.assertEqual(rc, 2)
        self.assertIn("unknown command 'frobnicate'", err)
        rc, _, err = run("ask", "--nope", "x")
        self.assertEqual(rc, 2)
        self.assertIn("unknown option '--nope'", err)
        rc, _, err = run("ask")
        self.assertEqual(rc, 2)
        rc, _, err = run("ask", "--threshold", "7", "x")
        self.assertEqual(rc, 2)
        for cmd in ("console", "config", "report", "health", "run"):   # no operands
            rc, _, err = run(cmd, "extra")
            self.assertEqual(rc, 2, cmd)
            self.assertIn(f"usage: faqbot {cmd}", err)
        rc, _, err = run("check", "a.json", "b.json")
        self.assertEqual(rc, 2)

    def test_ask_fails_when_its_answer_cannot_be_written(self):
        if not os.path.exists("/dev/full"):
            self.skipTest("no /dev/full")
        with open("/dev/full", "w") as full:
            p = subprocess.run([FAQBOT, "ask", "--faq", os.path.join(ROOT, "faq", "faq.json"),
                                "combien ça coûte"], stdout=full, stderr=subprocess.PIPE,
                               text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("cannot write the answers", p.stderr)


class Check(unittest.TestCase):
    def test_shipped_faq_is_clean(self):
        rc, out, err = run("check", "faq/faq.json")
        self.assertEqual((rc, out, err), (0, "", ""))

    def test_bad_fixtures(self):
        names = sorted(n for n in os.listdir(os.path.join(FIXTURES, "bad")) if n.endswith(".json"))
        self.assertGreaterEqual(len(names), 15)
        for name in names:
            rc, out, _ = run("check", "bad/" + name, cwd=FIXTURES)
            self.assertEqual(rc, 1, name)
            for line in expect_lines(os.path.join(FIXTURES, "bad", name[:-5] + ".expect")):
                if not line.startswith("#"):
                    self.assertIn(line, out, name)

    def test_warnings_do_not_fail(self):
        rc, out, _ = run("check", "good/unknown_keys.json", cwd=FIXTURES)
        self.assertEqual(rc, 0)
        self.assertIn('warning: top level: unknown key "colour" is ignored', out)

    def test_markup_problems_are_warnings_with_line_and_column(self):
        faq = {"language": "english",
               "fallback": {"text": "See **here.", "url": "https://example.org/", "label": "More"},
               "entries": [{"id": "a", "questions": ["price"],
                            "answer": "Ten.\nSee [prices](ftp://example.org/p), [x](https://e.org\n"
                                      "3 * 4, snake_case and **bold** are fine"}]}
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(faq, f)
        try:
            rc, out, _ = run("check", f.name)
        finally:
            os.unlink(f.name)
        self.assertEqual(rc, 0)
        lines = out.splitlines()
        self.assertEqual(len(lines), 3, out)
        self.assertIn('warning: fallback: "text", line 1, column 5: "**" starts bold text', lines[0])
        self.assertIn('warning: entries[0] (id "a"): "answer", line 2, column 5: the link "[prices]" '
                      'goes to "ftp://example.org/p", which is not a web address', lines[1])
        self.assertIn('"answer", line 2, column 36: the link "[x]" has no closing ")"', lines[2])

    def test_self_test_names_both_entries(self):
        faq = {"language": "french",
               "fallback": {"text": "x", "url": "https://example.org/"},
               "entries": [
                   {"id": "prix", "questions": ["Combien coûte l'abonnement ?"], "answer": "Dix."},
                   {"id": "horaires", "questions": ["Quels sont les horaires ?",
                                                    "Combien coûte l'abonnement ?"],
                    "answer": "9h-17h."}]}
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(faq, f)
        try:
            rc, out, _ = run("check", f.name)
        finally:
            os.unlink(f.name)
        self.assertEqual(rc, 0)
        self.assertIn('entries[1] (id "horaires"): questions[1] "Combien coûte l\'abonnement ?" '
                      'is matched to entry "prix" instead', out)

    def test_missing_file(self):
        rc, out, _ = run("check", "/nonexistent.json")
        self.assertEqual(rc, 1)
        self.assertIn("/nonexistent.json: cannot open the FAQ file", out)

    def test_env_selects_faq(self):
        rc, out, _ = run("check", env={"FAQBOT_FAQ": os.path.join(FIXTURES, "bad", "bad_url.json")})
        self.assertEqual(rc, 1)
        self.assertIn("is not a web address", out)


class Ask(unittest.TestCase):
    def test_answer_and_fallback(self):
        rc, out, _ = run("ask", "combien", "ça", "coûte", "?")
        self.assertEqual(rc, 0)
        self.assertIn("ticket d'entrée", out)
        rc, out, _ = run("ask", "comment renouveler mon passeport")
        self.assertEqual(rc, 0)
        self.assertIn("https://example.org/etude-habitat-numerique/souscrire", out)

    def test_explain(self):
        rc, out, _ = run("ask", "--explain", "etude en souscirption")
        self.assertEqual(rc, 0)
        self.assertIn("candidates", out)
        self.assertIn("typo -> souscript", out)
        self.assertIn('threshold 0.35: answer "etude-souscription"', out)

    def test_json_stream_keeps_order_and_survives_bad_input(self):
        lines = [b"combien ca coute", b"", b"bonjour", b"caf\xe9 \xff\xfe souscription",
                 b"x" * 100_000, b"PLH 2.0 ?", "numérique".encode()]
        rc, out, err = run("ask", "--stdin", "--json", stdin=b"\n".join(lines) + b"\n")
        self.assertEqual(rc, 0, err)
        rows = [json.loads(l) for l in out.splitlines()]
        self.assertEqual(len(rows), len(lines))
        for src, row in zip(lines, rows):
            self.assertEqual(set(row), {"question", "match", "confidence", "suggestions"})
            self.assertEqual(row["question"], src.decode("utf-8", "replace"))
            self.assertTrue(0.0 <= row["confidence"] <= 1.0)
            self.assertLessEqual(len(row["suggestions"]), 3)
        self.assertEqual(rows[0]["match"], "cout-souscription")
        self.assertIsNone(rows[1]["match"])
        self.assertIsNone(rows[2]["match"])
        self.assertEqual(rows[5]["match"], "plh-2-0")

    def test_answers_stream_line_by_line(self):
        # a coprocess asks, waits for the answer, then asks again
        p = subprocess.Popen([FAQBOT, "ask", "--stdin", "--json"], cwd=ROOT,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            for q, want in ((b"combien ca coute\n", "cout-souscription"),
                            (b"PLH 2.0 ?\n", "plh-2-0")):
                p.stdin.write(q)
                p.stdin.flush()
                self.assertEqual(json.loads(p.stdout.readline())["match"], want)
        finally:
            p.stdin.close()
            p.stdout.close()
            self.assertEqual(p.wait(timeout=10), 0)

    def test_invalid_faq_is_refused(self):
        rc, out, err = run("ask", "--faq", os.path.join(FIXTURES, "bad", "duplicate_id.json"), "x")
        self.assertEqual(rc, 1)
        self.assertIn("is already used by entries[0]", err)
        self.assertIn("faqbot check", err)

    def test_other_languages(self):
        rc, out, _ = run("ask", "--faq", os.path.join(FIXTURES, "good", "english.json"),
                         "how much is the fee?")
        self.assertEqual(rc, 0)
        self.assertIn("ten euros", out)
        rc, out, _ = run("ask", "--faq", os.path.join(FIXTURES, "good", "german.json"), "Häuser")
        self.assertIn("Drei Häuser", out)


class Console(unittest.TestCase):
    def test_piped_session(self):
        rc, out, _ = run("console", stdin="/aide\n/faq\n2\n\ncombien ca coute\n/quit\nignored\n".encode())
        self.assertEqual(rc, 0)
        self.assertIn("/souscrire", out)                      # help
        self.assertIn("1. Comment faire un PLH 2.0", out)     # list
        self.assertIn("Le numérique s'installe", out)         # "2" -> interet-etude
        self.assertIn("ticket d'entrée", out)
        self.assertNotIn("ignored", out)

    def test_run_without_credentials_nor_terminal_fails_loudly(self):
        # In a container stdin is /dev/null: the console would read nothing
        # and exit 0, a silent restart loop under a restart policy.
        env = {"FAQBOT_TELEGRAM_TOKEN": "", "FAQBOT_MATRIX_HOMESERVER": ""}
        for stdin in (subprocess.DEVNULL, b"combien ca coute\n"):
            e = dict(os.environ)
            e.pop("FAQBOT_FAQ", None)
            e.update(env)
            p = subprocess.run([FAQBOT, "run"], stdin=stdin if stdin is subprocess.DEVNULL else None,
                               input=None if stdin is subprocess.DEVNULL else stdin,
                               capture_output=True, cwd=ROOT, env=e, timeout=60)
            err = p.stderr.decode()
            self.assertEqual(p.returncode, 1, err)
            self.assertEqual(p.stdout, b"")
            self.assertIn("no chat credentials, and no terminal", err)
            self.assertIn("set FAQBOT_TELEGRAM_TOKEN", err)
            self.assertIn("FAQBOT_MATRIX_HOMESERVER", err)
            self.assertIn("run `faqbot console`", err)

    def test_run_without_credentials_on_a_terminal_is_the_console(self):
        import pty
        pid, fd = pty.fork()
        if pid == 0:
            os.environ["FAQBOT_TELEGRAM_TOKEN"] = ""
            os.environ["FAQBOT_MATRIX_HOMESERVER"] = ""
            os.environ.pop("FAQBOT_FAQ", None)
            try:
                os.chdir(ROOT)
                os.execv(FAQBOT, [FAQBOT, "run"])
            finally:
                os._exit(127)
        out = b""
        try:
            os.write(fd, b"combien ca coute\n/quit\n")
            while True:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:                     # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
        finally:
            _, status = os.waitpid(pid, 0)
            os.close(fd)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, out)
        self.assertIn("faqbot : console", out.decode("utf-8", "replace"))
        self.assertIn("ticket d'entr", out.decode("utf-8", "replace"))

    def test_terminal_keeps_accents(self):
        # Typed on a terminal, "coûte" became "cote" when libedit read in the C
        # locale; the two entries tell which word reached the bot.
        faq = {"language": "french", "threshold": 0.35,
               "fallback": {"text": "Pas de réponse.", "url": "https://example.org/"},
               "entries": [
                   {"id": "prix", "questions": ["Combien ça coûte ?"], "answer": "PRIX-ACCENTS"},
                   {"id": "cote", "questions": ["Quelle est la cote ?"], "answer": "COTE-SANS"}]}
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False,
                                         encoding="utf-8") as f:
            json.dump(faq, f, ensure_ascii=False)
        try:
            for name, loc in (("UTF-8 locale", {"LANG": "C.UTF-8"}),
                              ("no locale set, as in a container", {}),
                              ("LC_ALL=POSIX", {"LC_ALL": "POSIX"})):
                with self.subTest(name):
                    shown = console_on_terminal(f.name, loc, ["combien ça coûte"])
                    self.assertIn("vous> combien ça coûte", shown)  # the echo
                    self.assertNotIn("combien a cote", shown)
                    self.assertIn("PRIX-ACCENTS", shown)
                    self.assertNotIn("COTE-SANS", shown)
        finally:
            os.unlink(f.name)


class RunSettings(unittest.TestCase):
    def test_missing_credentials_and_bad_values_stop_at_start(self):
        rc, _, err = run("run", env={"FAQBOT_MATRIX_HOMESERVER": "https://matrix.example.org"})
        self.assertEqual(rc, 1)
        self.assertIn("matrix_homeserver is set but there is no way to log in", err)
        rc, _, err = run("run", env={"FAQBOT_TELEGRAM_COOLDOWN": "soon"})
        self.assertEqual(rc, 1)
        self.assertIn('FAQBOT_TELEGRAM_COOLDOWN: telegram_cooldown: "soon" is not a whole number', err)
        rc, _, err = run("run", env={"FAQBOT_TELEGRAM_TOKEN": "1:x",
                                     "FAQBOT_TELEGRAM_API_URL": "http://example.org"})
        self.assertEqual(rc, 1)
        self.assertIn("plain http:// is only allowed to this machine", err)
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("faq = faq/faq.json\ntelegram_tokn = 1:x\n")
        try:
            rc, _, err = run("config", "--config", f.name)
        finally:
            os.unlink(f.name)
        self.assertEqual(rc, 1)
        self.assertIn(f'{f.name}:2: unknown key "telegram_tokn"', err)

    def test_config_masks_secrets(self):
        rc, out, _ = run("config", env={"FAQBOT_TELEGRAM_TOKEN": "1:supersecretvalue"})
        self.assertEqual(rc, 0)
        self.assertIn("telegram_token = ********", out)
        self.assertNotIn("supersecretvalue", out)


class SchemaAgreement(unittest.TestCase):
    """faq.schema.json and `faqbot check` must agree on every fixture."""

    def test_fixtures(self):
        try:
            import jsonschema
        except ImportError:
            self.fail("python3-jsonschema is missing: run make deps")
        with open(os.path.join(ROOT, "faq", "faq.schema.json"), encoding="utf-8") as f:
            schema = json.load(f)
        jsonschema.Draft7Validator.check_schema(schema)
        validator = jsonschema.Draft7Validator(schema)
        with open(os.path.join(ROOT, "faq", "faq.json"), encoding="utf-8") as f:
            self.assertEqual(list(validator.iter_errors(json.load(f))), [])
        checked = 0
        for kind in ("bad", "good"):
            for name in sorted(os.listdir(os.path.join(FIXTURES, kind))):
                if not name.endswith(".json"):
                    continue
                notes = [l for l in expect_lines(os.path.join(FIXTURES, kind, name[:-5] + ".expect"))
                         if l.startswith("#schema:")]
                if "#schema: not-json" in notes:
                    continue
                with open(os.path.join(FIXTURES, kind, name), encoding="utf-8") as f:
                    doc = json.load(f)
                schema_ok = not list(validator.iter_errors(doc))
                rc, _, _ = run("check", os.path.join(FIXTURES, kind, name))
                if "#schema: valid" in notes:   # a rule JSON Schema cannot express
                    self.assertTrue(schema_ok, name)
                    continue
                self.assertEqual(schema_ok, rc == 0, f"{kind}/{name}: schema and check disagree")
                checked += 1
        self.assertGreaterEqual(checked, 12)


class Lexicon(unittest.TestCase):
    def test_lemmas_with_the_lexicon_and_snowball_without(self):
        q = "une étude financée ?"
        rc, out, err = run("ask", "--explain", q)
        self.assertEqual(rc, 0)
        self.assertNotIn("event=lexicon", err)
        rc, out2, err2 = run("ask", "--explain", q, env={"FAQBOT_LEXICON_DIR": "/nonexistent"})
        self.assertEqual(rc, 0)
        self.assertIn("level=warn event=lexicon", err2)
        self.assertIn("Snowball", err2)
        # "financée" meets "financer" only through the lexicon's lemma
        self.assertRegex(out, r"financee\s+stem financ ")
        self.assertRegex(out2, r"financee\s+stem finance ")

    def test_check_advice(self):
        rc, out, _ = run("check", "faq/faq.json")
        self.assertEqual((rc, out), (0, ""))
        rc, out, _ = run("check", "--advice", "faq/faq.json")
        self.assertEqual(rc, 0)
        self.assertIn("advice: entry", out)
        self.assertIn("its answer uses words no question has", out)


if __name__ == "__main__":
    unittest.main(verbosity=1)
