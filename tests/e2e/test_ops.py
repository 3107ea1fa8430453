#!/usr/bin/env python3
"""End-to-end tests of running faqbot for real: live FAQ edits (in place,
broken, and saved by renaming a new file over the old one), SIGHUP, SIGTERM,
`faqbot report` and `faqbot health`.  Talks to the fake Telegram server on
127.0.0.1.  FAQBOT names the binary under test.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fake"))
from harness import FAQBOT, LOGDIR, Bot  # noqa: E402
from telegram import TOKEN, FakeTelegram  # noqa: E402


def faq(answer, entries=None):
    return {"language": "french",
            "fallback": {"text": "Pas de réponse.", "url": "https://example.org/souscrire"},
            "entries": entries or [{"id": "cout", "questions": ["Combien coûte la souscription ?"],
                                    "answer": answer}]}


class Ops(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="faqbot-ops-")
        self.faq = os.path.join(self.tmp, "faq.json")
        self.write(faq("Dix euros."))
        self.fake = FakeTelegram()
        self.state = os.path.join(self.tmp, "state")
        self.b = Bot(FAQBOT_TELEGRAM_TOKEN=TOKEN, FAQBOT_TELEGRAM_API_URL=self.fake.url,
                     FAQBOT_STATE_DIR=self.state, FAQBOT_FAQ=self.faq,
                     FAQBOT_TELEGRAM_POLL_TIMEOUT=2, FAQBOT_TELEGRAM_RATE_LIMITS="false").start()
        self.chat = 900

    def tearDown(self):
        if self.b.proc.poll() is None:
            self.b.kill()
        self.fake.close()
        self.assertEqual(self.fake.spec_errors, [])
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, obj, path=None):
        with open(path or self.faq, "w", encoding="utf-8") as f:
            f.write(obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False))

    def ask(self, text="combien coûte la souscription ?"):
        n = len(self.fake.sent_to(self.chat))
        self.fake.user_message(self.chat, text)
        self.assertTrue(self.fake.wait(lambda: len(self.fake.sent_to(self.chat)) > n, 15))
        return self.fake.sent_to(self.chat)[-1]["text"]

    def wait_log(self, needle, timeout=5.0):
        end = time.time() + timeout
        while time.time() < end:
            if needle in self.b.logs():
                return True
            time.sleep(0.05)
        return False

    def test_edits_go_live_without_restart(self):
        self.assertEqual(self.ask(), "Dix euros.")
        t0 = time.time()
        self.write(faq("Vingt euros."))                         # edit in place
        self.assertTrue(self.wait_log("event=reloaded"), self.b.logs())
        self.assertLess(time.time() - t0, 2.0)
        self.assertEqual(self.ask(), "Vingt euros.")
        self.write('{"language": "french", "entries": [,]}')    # broken edit
        self.assertTrue(self.wait_log("event=reload_failed"))
        self.assertIn("JSON syntax error", self.b.logs())
        self.assertEqual(self.ask(), "Vingt euros.")             # the old FAQ answers
        tmp = os.path.join(self.tmp, ".faq.json.swp")            # save by rename
        self.write(faq("Trente euros."), tmp)
        n = self.b.logs().count("event=reloaded")
        os.rename(tmp, self.faq)
        self.assertTrue(self.wait_log_count("event=reloaded", n + 1))
        self.assertEqual(self.ask(), "Trente euros.")
        self.assertIn("entries=1", self.b.logs())

    def wait_log_count(self, needle, n, timeout=5.0):
        end = time.time() + timeout
        while time.time() < end:
            if self.b.logs().count(needle) >= n:
                return True
            time.sleep(0.05)
        return False

    def test_sighup_reloads(self):
        self.assertEqual(self.ask(), "Dix euros.")
        n = self.b.logs().count("event=reloaded")
        self.b.proc.send_signal(signal.SIGHUP)
        self.assertTrue(self.wait_log_count("event=reloaded", n + 1))
        self.assertIsNone(self.b.proc.poll())

    def test_sigterm_during_a_reply_exits_0_quickly(self):
        self.ask()
        self.fake.fault("sendMessage", "slow", seconds=1.5)
        self.fake.user_message(self.chat, "combien coûte la souscription ?")
        self.assertTrue(self.fake.wait(lambda: any(m == "sendMessage" for _, m, _ in self.fake.requests[-3:])
                                       and len(self.fake.sent_to(self.chat)) == 1, 10))
        time.sleep(0.3)                                   # the reply is in flight
        t0 = time.time()
        self.assertEqual(self.b.stop(timeout=10), 0)
        self.assertLess(time.time() - t0, 5.0)
        # sent before exiting, or sent again after a restart: never lost
        b2 = Bot(**self.b.env).start()
        try:
            self.assertTrue(self.fake.wait(lambda: len(self.fake.sent_to(self.chat)) >= 2, 15))
        finally:
            b2.stop()

    def run_cli(self, *args):
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAQBOT_")}
        env.update({k: str(v) for k, v in self.b.env.items()})
        p = subprocess.run([FAQBOT, *args], env=env, capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout, p.stderr

    def test_report_groups_unanswered_questions(self):
        for q in ("comment renouveler mon passeport ?", "renouveler passeport comment",
                  "Comment renouveler mon passeport", "quel temps fait-il ?"):
            self.ask(q)
        self.ask()                                  # answered: not in the report
        rc, out, err = self.run_cli("report")
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertIn("4 unanswered question(s) in 2 group(s)", lines[0])
        self.assertRegex(lines[1], r"^\s+3  \[passeport renouvel\]")
        self.assertNotIn("combien", out)
        rc, out, err = self.run_cli("report", "--json")
        drafts = json.loads(out)["add_entries"]
        self.assertEqual(len(drafts), 2)
        self.assertEqual(set(drafts[0]), {"id", "questions", "answer", "keywords"})
        self.assertEqual(len(drafts[0]["questions"]), 3)

    def test_health_follows_the_polls(self):
        self.ask()
        env = dict(FAQBOT_HEALTH_MAX_AGE=5)
        self.b.env.update(env)
        end = time.time() + 10
        while time.time() < end:                    # the heartbeat is rewritten every 2 s
            rc, out, err = self.run_cli("health")
            if rc == 0:
                break
            time.sleep(0.3)
        self.assertEqual(rc, 0, err)
        self.assertIn("telegram: ok", out)
        self.fake.fault("getUpdates", "status", times=10000, status=502)  # polls fail from now on
        end = time.time() + 20
        while time.time() < end:
            rc, out, err = self.run_cli("health")
            if rc:
                break
            time.sleep(0.5)
        self.assertEqual(rc, 1)
        self.assertIn("telegram: the last successful poll was", err)
        self.b.kill()
        rc, out, err = self.run_cli("health")
        self.assertEqual(rc, 1)
        self.assertIn("is not running", err)
        self.assertNotIn("telegram:", out + err)     # a dead process's polls are not news

    def test_health_after_a_graceful_stop(self):
        self.b.env.update(FAQBOT_HEALTH_MAX_AGE="30")
        self.ask()
        end = time.time() + 10
        while time.time() < end:
            rc, out, err = self.run_cli("health")
            if rc == 0:
                break
            time.sleep(0.3)
        self.assertEqual(rc, 0, err)
        self.assertIn("telegram: ok", out)
        self.assertEqual(self.b.stop(), 0)           # SIGTERM: exit 0
        rc, out, err = self.run_cli("health")
        self.assertEqual(rc, 1)
        self.assertIn("faqbot is not running", err)
        self.assertNotIn("telegram:", out + err)

    def restart(self, **env):
        self.b.stop()
        self.b = Bot(**{**self.b.env, **{k: str(v) for k, v in env.items()}}).start()

    def test_metrics_on_loopback(self):
        import socket
        import urllib.request
        with socket.socket() as sk:
            sk.bind(("127.0.0.1", 0))
            port = sk.getsockname()[1]
        self.restart(FAQBOT_METRICS_ADDRESS=f"127.0.0.1:{port}")
        self.ask()
        self.ask("comment renouveler mon passeport")
        end = time.time() + 10
        while True:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
                break
            except OSError:
                if time.time() > end:
                    raise
                time.sleep(0.2)
        self.assertIn('faqbot_questions_total{transport="telegram"} 2', text)
        self.assertIn('faqbot_replies_total{transport="telegram",kind="answer"} 1', text)
        self.assertIn('faqbot_replies_total{transport="telegram",kind="fallback"} 1', text)
        self.assertIn("# TYPE faqbot_polls_total counter", text)
        self.b.stop()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAQBOT_")}
        env.update({k: str(v) for k, v in self.b.env.items()})
        env["FAQBOT_METRICS_ADDRESS"] = "0.0.0.0:9464"
        p = subprocess.run([FAQBOT, "run"], env=env, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("metrics are only served on this machine", p.stderr)

    def metrics_port(self):
        import socket
        with socket.socket() as sk:
            sk.bind(("127.0.0.1", 0))
            return sk.getsockname()[1]

    def test_metrics_clients_never_stall_replies(self):
        import socket
        import urllib.request
        port = self.metrics_port()
        self.restart(FAQBOT_METRICS_ADDRESS=f"127.0.0.1:{port}")
        self.ask()
        idle = []
        for _ in range(40):                          # connect and say nothing
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            idle.append(s)
        slow = socket.create_connection(("127.0.0.1", port), timeout=5)
        slow.sendall(b"GET /metr")                   # half a request, never finished
        idle.append(slow)
        try:
            worst = 0.0
            for q in ("combien coûte la souscription ?", "quel est le prix"):
                t0 = time.time()
                self.ask(q)
                worst = max(worst, time.time() - t0)
            # the old endpoint read each client for up to 200 ms in turn: seconds here
            self.assertLess(worst, 1.0)
            print(f"\n  metrics: 40 idle + 1 slow client, reply in {worst * 1000:.0f} ms", file=sys.stderr)
            time.sleep(0.5)
            self.assertIsNone(self.b.proc.poll())
        finally:
            for s in idle:
                s.close()
        # the endpoint still answers once the idle clients are gone
        end = time.time() + 10
        while True:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
                break
            except OSError:
                if time.time() > end:
                    raise
                time.sleep(0.2)
        self.assertIn('faqbot_questions_total{transport="telegram"} 3', text)

    def test_metrics_address_is_parsed_strictly(self):
        self.b.stop()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAQBOT_")}
        env.update({k: str(v) for k, v in self.b.env.items()})
        for bad in ("127.1:9464", "127.0.0.01:9464", "127.0.0.256:9464", "127.0.0.1:9464 "):
            env["FAQBOT_METRICS_ADDRESS"] = bad
            p = subprocess.run([FAQBOT, "run"], env=env, capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 1, bad)
            self.assertIn("faqbot: metrics_address:", p.stderr, bad)
            self.assertNotIn("event=started", p.stderr, bad)

    def test_state_permissions_fixed_at_every_start(self):
        self.ask()
        self.b.stop()
        db = os.path.join(self.state, "faqbot.db")
        os.chmod(self.state, 0o755)
        os.chmod(db, 0o644)
        stray = os.path.join(self.state, "notes.txt")
        with open(stray, "w") as f:
            f.write("x")
        os.chmod(stray, 0o664)
        self.restart()
        self.assertEqual(self.ask(), "Dix euros.")
        self.assertEqual(os.stat(self.state).st_mode & 0o777, 0o700)
        for name in os.listdir(self.state):
            mode = os.stat(os.path.join(self.state, name)).st_mode & 0o777
            self.assertEqual(mode & 0o077, 0, f"{name} is {oct(mode)}")
        self.assertIn("event=permissions_fixed", self.b.logs())
        key = os.path.join(self.state, "hash.key")
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        self.assertEqual(os.path.getsize(key), 16)

    def cache_files(self):
        return sorted(n for n in os.listdir(self.state) if n.startswith("index-"))

    def test_index_cache_in_the_state_dir(self):
        self.assertEqual(self.ask(), "Dix euros.")
        first = self.cache_files()
        self.assertEqual(len(first), 1, first)
        self.assertTrue(first[0].endswith(".cache"))
        path = os.path.join(self.state, first[0])
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        # an edit: a new index, a new file, the old one gone
        n = self.b.logs().count("event=reloaded")
        self.write(faq("Vingt euros."))
        self.assertTrue(self.wait_log_count("event=reloaded", n + 1))
        self.assertEqual(self.ask(), "Vingt euros.")
        second = self.cache_files()
        self.assertEqual(len(second), 1, second)
        self.assertNotEqual(first, second)
        # a damaged file: refused, said, rebuilt, written back
        path = os.path.join(self.state, second[0])
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
        self.restart()
        self.assertEqual(self.ask(), "Vingt euros.")
        self.assertIn("event=index_cache", self.b.logs())
        self.assertEqual(self.cache_files(), second)
        self.assertGreater(os.path.getsize(path), 1000)
        # deleting it is safe
        os.unlink(path)
        self.restart()
        self.assertEqual(self.ask(), "Vingt euros.")
        self.assertEqual(self.cache_files(), second)
        # the command line tools never write one
        other = os.path.join(self.tmp, "other-state")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAQBOT_")}
        env.update(FAQBOT_STATE_DIR=other, FAQBOT_FAQ=self.faq)
        for args in (["check"], ["ask", "combien coûte la souscription ?"]):
            p = subprocess.run([FAQBOT, *args], env=env, capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(other) and os.listdir(other))

    def test_unanswered_chats_are_keyed_pseudonyms(self):
        import sqlite3
        self.ask("comment renouveler mon passeport ?")
        self.ask("quel temps fait-il ?")
        self.b.stop()

        def fnv(s):
            h = 1469598103934665603
            for c in s.encode():
                h = ((h ^ c) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
            return f"{h:016x}"
        db = sqlite3.connect(os.path.join(self.state, "faqbot.db"))
        chats = [r[0] for r in db.execute("SELECT chat FROM unanswered")]
        db.close()
        self.assertEqual(len(chats), 2)
        self.assertEqual(chats[0], chats[1])               # one chat, one pseudonym
        self.assertNotEqual(chats[0], fnv(str(self.chat)))  # not the unkeyed hash of the id
        self.assertNotIn(str(self.chat), chats[0])

    def test_report_shows_chat_text_escaped(self):
        self.ask("comment \x1b[2J\x1b[31mrenouveler\x1b[0m\n   9999  [forged]  \"line\"\r\u202e ?")
        rc, out, err = self.run_cli("report")
        self.assertEqual(rc, 0, err)
        self.assertNotIn("\x1b", out)
        self.assertNotIn("\r", out)
        self.assertNotIn("\u202e", out)
        unanswered = out.split("\n\n")[0]
        self.assertEqual(len(unanswered.splitlines()), 2, out)   # the header and one group: no forged line
        self.assertIn("\\x1b[2J", out)
        self.assertIn("\\n   9999  [forged]  \\\"line\\\"\\r\\u202e", out)

    def seed_feedback(self, rows):
        """Writes votes and choices as the chat side records them (store.h's
        schema 4: users and chats as 16-hex-digit pseudonyms)."""
        import sqlite3
        db = sqlite3.connect(os.path.join(self.state, "faqbot.db"))
        now = int(time.time() * 1000)
        for table, values in rows:
            marks = ", ".join("?" for _ in values)
            db.execute(f"INSERT INTO {table} VALUES ({marks})",
                       [now if v == "NOW" else v for v in values])
        db.commit()
        db.close()

    def test_feedback_report_apply_check_ask(self):
        """A 👎 appears in the report; a question two users chose for an entry
        is proposed, applied to the FAQ, passes check and is then answered."""
        entries = [{"id": "cout", "questions": ["Combien coûte la souscription ?"], "answer": "Dix euros."},
                   {"id": "duree", "questions": ["Combien de temps dure l'étude ?"], "answer": "Un an."}]
        self.write(faq("Dix euros.", entries))
        self.restart()
        self.assertEqual(self.ask(), "Dix euros.")           # the state database is at schema 4
        self.b.stop()
        q = "quel est le tarif d'adhésion"
        rc, out, err = self.run_cli("ask", "--json", q)
        self.assertIsNone(json.loads(out)["match"])          # not answered today
        self.seed_feedback([
            ("answered", ("telegram", "900:7", "cout", "combien coûte la souscription ?", "NOW")),
            ("answered_msg", ("telegram", "900", "8", "900:7", "NOW")),
            ("votes", ("telegram", "900:7", "a" * 16, "8", "cout", "combien coûte la souscription ?", -1, "NOW", None)),
            ("votes", ("telegram", "900:7", "b" * 16, "8", "cout", "combien coûte la souscription ?", 1, "NOW", None)),
            ("choices", (None, "telegram", "c" * 16, "a" * 16, q, "cout", "NOW")),
            ("choices", (None, "telegram", "d" * 16, "b" * 16, q + " ?", "cout", "NOW")),
            ("choices", (None, "telegram", "c" * 16, "a" * 16, "\x1b[31mforged\n   9 [x]", "duree", "NOW")),
        ])
        rc, out, err = self.run_cli("report")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"\n  cout  \U0001F44D 1  \U0001F44E 1\n")
        self.assertIn('\U0001F44E "combien coûte la souscription ?"', out)
        self.assertIn(f'cout  "{q}"  2 user(s), 2 choice(s)', out)
        self.assertNotIn("\x1b", out)                          # chat text stays escaped
        self.assertIn("\\x1b[31mforged\\n   9 [x]", out)
        rc, out, err = self.run_cli("report", "--json")
        self.assertEqual(rc, 0, err)
        change = json.loads(out)
        self.assertEqual(change["add_questions"], {"cout": [q], "duree": ["\x1b[31mforged\n   9 [x]"]})
        self.assertEqual(change["review"]["helpfulness"][0]["down_questions"],
                         ["combien coûte la souscription ?"])
        del change["add_questions"]["duree"]                   # the editor's review
        path = os.path.join(self.tmp, "change.json")
        self.write(change, path)
        new = os.path.join(self.tmp, "new.json")
        rc, out, err = self.run_cli("apply", path, "--output", new)
        self.assertEqual(rc, 0, err)
        self.assertIn("added 1 question(s) and 0 entries", err)
        with open(self.faq, encoding="utf-8") as f:
            self.assertNotIn(q, f.read())                      # --output leaves the FAQ alone
        with open(new, encoding="utf-8") as f:
            self.assertEqual(json.load(f)["entries"][0]["questions"], ["Combien coûte la souscription ?", q])
        rc, out, err = self.run_cli("check", new)
        self.assertEqual((rc, out), (0, ""), err)              # clean: no warning at all
        rc, out, err = self.run_cli("ask", "--faq", new, q)
        self.assertEqual(out.strip(), "Dix euros.")
        # in place: the old version is kept beside it; applying again changes nothing
        rc, out, err = self.run_cli("apply", path)
        self.assertEqual(rc, 0, err)
        self.assertTrue(os.path.exists(self.faq + ".bak"))
        with open(self.faq, encoding="utf-8") as f:
            self.assertIn(q, f.read())
        rc, out, err = self.run_cli("apply", path)
        self.assertEqual(rc, 0, err)
        self.assertIn("nothing to apply", err)
        # a proposal the FAQ now answers with its entry is no longer proposed
        rc, out, err = self.run_cli("report", "--json")
        self.assertNotIn("cout", json.loads(out)["add_questions"])

    def test_apply_refuses_what_would_break_the_faq(self):
        self.b.stop()
        path = os.path.join(self.tmp, "change.json")
        with open(self.faq, encoding="utf-8") as f:
            before = f.read()
        self.write({"add_entries": [{"id": "cout", "questions": ["x ?"], "answer": "y"}]}, path)
        rc, out, err = self.run_cli("apply", path)
        self.assertEqual(rc, 1)
        self.assertIn('entry "cout" is already in the FAQ', err)
        self.write({"add_entries": [{"id": "neuf", "questions": [], "answer": "y"}]}, path)
        rc, out, err = self.run_cli("apply", path)
        self.assertEqual(rc, 1)
        self.assertIn("nothing was written", err)
        self.write({"add_entries": [{"id": "draft-1", "questions": ["x ?"], "answer": ""}]}, path)
        rc, out, err = self.run_cli("apply", path)
        self.assertEqual(rc, 0, err)
        self.assertIn('entry "draft-1" is skipped: its answer is empty', err)
        with open(self.faq, encoding="utf-8") as f:
            self.assertEqual(f.read(), before)
        self.assertFalse(os.path.exists(self.faq + ".bak"))

    def test_admin_chat_hears_about_a_broken_edit(self):
        self.restart(FAQBOT_ADMIN_TELEGRAM_CHAT="4242")
        self.ask()
        self.write('{"language": "french", "entries": []}')
        self.assertTrue(self.fake.wait(lambda: self.fake.sent_to(4242), 10))
        msg = self.fake.sent_to(4242)[0]["text"]
        self.assertIn("l'ancienne version reste en service", msg)
        self.assertIn('"entries" is empty', msg)
        self.assertEqual(self.ask(), "Dix euros.")


if __name__ == "__main__":
    try:
        unittest.main(verbosity=1)
    finally:
        shutil.rmtree(LOGDIR, ignore_errors=True)
