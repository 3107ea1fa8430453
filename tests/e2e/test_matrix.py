#!/usr/bin/env python3
"""End-to-end tests of faqbot's Matrix transport against a fake homeserver
(tests/fake/matrix.py) on 127.0.0.1.  Each test asserts what the room sees,
and that every request matches the Client-Server API (../shared/specs/matrix/,
or its committed extract tests/fake/specs/matrix.json in a lone clone).

FAQBOT names the binary under test (default build/faqbot).
"""
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fake"))
from harness import (FORMATTED_ENTRIES, LOGDIR, Bot, add_entries, html_balanced,  # noqa: E402
                     html_text, reply_verdict, run_cli, write_faq)
from matrix import BOT, PASSWORD, FakeMatrix  # noqa: E402

ALICE, BOB = "@alice:localhost", "@bob:example.org"


class MatrixCase(unittest.TestCase):
    env = {}

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="faqbot-mx-")
        self.faq = os.path.join(self.tmp, "faq.json")
        write_faq(self.faq)
        self.fake = FakeMatrix()
        self.bots = []

    def tearDown(self):
        for b in self.bots:
            if b.proc and b.proc.poll() is None:
                b.kill()
        self.fake.close()
        self.assertEqual(self.fake.spec_errors, [], "requests that do not match the Matrix spec")
        for b in self.bots:
            if os.path.exists(b.log):
                text = b.logs()
                self.assertNotIn(PASSWORD, text)
                self.assertNotIn("tok-DEV", text)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def bot(self, **env):
        settings = dict(FAQBOT_MATRIX_HOMESERVER=self.fake.url, FAQBOT_MATRIX_USER="faqbot",
                        FAQBOT_MATRIX_PASSWORD=PASSWORD, FAQBOT_MATRIX_SYNC_TIMEOUT=2,
                        FAQBOT_STATE_DIR=os.path.join(self.tmp, "state"), FAQBOT_FAQ=self.faq)
        b = Bot(**{**settings, **self.env, **env})
        self.bots.append(b)
        return b.start()

    def started(self, b):
        self.assertTrue(self.fake.wait(lambda: "event=started" in b.logs() and
                                       "first_sync" in b.logs() or "event=started" in b.logs()
                                       and self.fake.requests and
                                       any(r[2].endswith("/sync") and "since" in r[3]
                                           for r in self.fake.requests), 20), b.logs())

    def notices(self, room, n=1, timeout=20):
        self.assertTrue(self.fake.wait(lambda: len(self.fake.notices(room)) >= n, timeout),
                        f"{room}: expected {n} notice(s), got {self.fake.notices(room)}")
        return self.fake.notices(room)


class Conversation(MatrixCase):
    def test_direct_room_answer_fallback_and_choice(self):
        dm = self.fake.create_room([ALICE])
        b = self.bot()
        self.started(b)
        q = self.fake.user_message(dm, ALICE, "combien ça coûte ?")
        n = self.notices(dm)[0]
        c = n["content"]
        self.assertEqual(c["msgtype"], "m.notice")
        self.assertEqual(c["body"], "Le ticket d'entrée est modeste.")
        self.assertEqual(c["m.relates_to"], {"m.in_reply_to": {"event_id": q}})
        self.assertEqual(c["m.mentions"], {"user_ids": [ALICE]})
        self.assertEqual(c["format"], "org.matrix.custom.html")
        self.fake.user_message(dm, ALICE, "comment renouveler mon passeport")
        c = self.notices(dm, 2)[1]["content"]
        self.assertIn("https://example.org/souscrire", c["body"])
        self.assertIn('<a href="https://example.org/souscrire">', c["formatted_body"])
        self.fake.user_message(dm, ALICE, "où sont les archives ?")
        c = self.notices(dm, 3)[2]["content"]
        self.assertIn("1. Où se trouvent les archives ?", c["body"])
        self.assertIn("<ol><li>", c["formatted_body"])
        self.fake.user_message(dm, ALICE, "2")
        c = self.notices(dm, 4)[3]["content"]
        self.assertIn(c["body"], ("Ici.", "Là."))
        self.assertEqual(b.stop(), 0)

    def test_html_is_escaped(self):
        dm = self.fake.create_room([ALICE])
        b = self.bot()
        self.started(b)
        self.fake.user_message(dm, ALICE, "quelle TVA est appliquée ?")
        c = self.notices(dm)[0]["content"]
        self.assertEqual(c["body"], "Prix <b>HT</b> < 10 € & TVA > 0 \"incluse\"")
        self.assertEqual(c["formatted_body"],
                         "Prix &lt;b&gt;HT&lt;/b&gt; &lt; 10 € &amp; TVA &gt; 0 &quot;incluse&quot;")
        b.stop()

    def test_formatted_answers_and_split_without_breaking_tags(self):
        add_entries(self.faq, FORMATTED_ENTRIES)
        dm = self.fake.create_room([ALICE])
        b = self.bot()
        self.started(b)
        self.fake.user_message(dm, ALICE, "comment recevoir les documents de souscription ?")
        c = self.notices(dm)[0]["content"]
        self.assertEqual(c["format"], "org.matrix.custom.html")
        f = c["formatted_body"]
        self.assertIn("<strong>souscrire</strong>", f)
        self.assertIn('<a href="https://example.org/notice">la notice</a>', f)
        self.assertIn("<ul><li>un <em>reçu</em> fiscal</li><li>un accès aux résultats</li></ul>", f)
        self.assertIsNone(html_balanced(f))
        self.assertNotIn("<", c["body"])
        self.assertNotIn("**", c["body"])
        self.assertIn("https://example.org/notice", c["body"])
        self.assertIn("reçu fiscal", c["body"])
        self.fake.user_message(dm, ALICE, "quels sont tous les points du règlement ?")
        self.assertTrue(self.fake.wait(lambda: any("Point n°399" in x["content"]["body"]
                                                   for x in self.fake.notices(dm)), 20))
        parts = [x["content"] for x in self.fake.notices(dm)[1:]]
        self.assertGreaterEqual(len(parts), 2)
        for p in parts:
            self.assertEqual(p["format"], "org.matrix.custom.html")
            self.assertIsNone(html_balanced(p["formatted_body"]), p["formatted_body"][-300:])
            self.assertLessEqual(len(p["formatted_body"].encode()), 16000)
            self.assertNotIn("<", p["body"])
        text = "\n".join(html_text(p["formatted_body"]) for p in parts)
        body = "\n".join(p["body"] for p in parts)
        for i in range(400):
            self.assertEqual(text.count(f"Point n°{i} :"), 1, i)
            self.assertEqual(body.count(f"Point n°{i} :"), 1, i)
        self.assertEqual(sum(p["formatted_body"].count('<a href="https://example.org/p') for p in parts), 400)
        self.assertEqual(b.stop(), 0)

    def test_group_mention_rules_threads_and_bots(self):
        room = self.fake.create_room([ALICE, BOB, "@otherbot:localhost"])
        b = self.bot()
        self.started(b)
        self.fake.user_message(room, ALICE, "combien ça coûte ?")                 # not addressed
        self.fake.user_message(room, "@otherbot:localhost", "combien ça coûte ?",
                               msgtype="m.notice", mentions=[BOT])                # another bot
        q1 = self.fake.user_message(room, ALICE, "faqbot: combien ça coûte ?")   # name in body
        q2 = self.fake.user_message(room, BOB, "c'est quoi une étude ?", mentions=[BOT])
        q3 = self.fake.user_message(room, BOB, "!aide")
        root = self.fake.user_message(room, ALICE, "un fil de discussion")
        q4 = self.fake.user_message(room, ALICE, "combien ça coûte ? @faqbot:localhost", thread=root)
        self.notices(room, 4)
        time.sleep(0.5)
        self.assertEqual(len(self.fake.notices(room)), 4)
        self.assertEqual(self.fake.replies_to(room, q1)[0]["content"]["body"],
                         "Le ticket d'entrée est modeste.")
        self.assertEqual(self.fake.replies_to(room, q2)[0]["content"]["m.mentions"], {"user_ids": [BOB]})
        self.assertIn("!faq", self.fake.replies_to(room, q3)[0]["content"]["body"])
        t = self.fake.replies_to(room, q4)[0]["content"]["m.relates_to"]
        self.assertEqual((t["rel_type"], t["event_id"]), ("m.thread", root))
        # a reply to the bot's notice is addressed to it
        mine = self.fake.replies_to(room, q1)[0]["event_id"]
        q5 = self.fake.user_message(room, ALICE, "> <@faqbot:localhost> Le ticket\n\net c'est quoi une étude en souscription ?",
                                    reply_to=mine)
        self.assertTrue(self.fake.wait(lambda: self.fake.replies_to(room, q5)))
        self.assertEqual(self.fake.replies_to(room, q5)[0]["content"]["body"],
                         "Plusieurs souscripteurs financent l'étude.")
        b.stop()

    def test_the_bots_name_is_cut_before_matching(self):
        dm = self.fake.create_room([ALICE])
        room = self.fake.create_room([ALICE, BOB])
        b = self.bot()
        self.started(b)
        bare = self.fake.user_message(dm, ALICE, "à quoi sert cette étude ?")
        self.notices(dm)
        named = self.fake.user_message(dm, ALICE, "Assistant FAQ: à quoi sert cette étude ?",
                                       content={"format": "org.matrix.custom.html",
                                                "formatted_body": '<a href="https://matrix.to/#/%40faqbot%3Alocalhost">'
                                                                  'Assistant FAQ</a>: à quoi sert cette étude ?'})
        # an older client: a pill and no m.mentions, the display name differs from the user name
        pill = self.fake.user_message(room, BOB, "Assistant FAQ: à quoi sert cette étude ?",
                                      content={"format": "org.matrix.custom.html",
                                               "formatted_body": '<a href="https://matrix.to/#/@faqbot:localhost">'
                                                                 'Assistant FAQ</a>: à quoi sert cette étude ?'})
        self.notices(dm, 2)
        self.notices(room, 1)
        self.assertTrue(self.fake.wait(lambda: reply_verdict(b.logs(), f"e:{pill}"), 10), b.logs())
        want = reply_verdict(b.logs(), f"e:{bare}")
        self.assertEqual(want[:2], ("answer", "etude"))
        self.assertEqual(reply_verdict(b.logs(), f"e:{named}"), want)
        self.assertEqual(reply_verdict(b.logs(), f"e:{pill}"), want)
        self.assertEqual(self.fake.replies_to(room, pill)[0]["content"]["body"],
                         "Plusieurs souscripteurs financent l'étude.")
        b.stop()

    def test_reactions_and_choices_reach_the_report(self):
        dm = self.fake.create_room([ALICE])
        b = self.bot()
        self.started(b)
        q = self.fake.user_message(dm, ALICE, "combien ça coûte ?")
        answer = self.notices(dm)[0]["event_id"]
        # one user reacting a hundred times: one vote; a withdrawn 👍 counts nothing
        for _ in range(100):
            self.fake.reaction(dm, ALICE, answer, "\U0001F44E")
        up = self.fake.reaction(dm, BOB, answer, "\U0001F44D")
        self.fake.redact(dm, BOB, up)
        self.fake.reaction(dm, BOB, q, "\U0001F44E")                # not the bot's reply: ignored
        self.fake.user_message(dm, ALICE, "où sont les archives ?")
        self.notices(dm, 2)
        self.fake.user_message(dm, ALICE, "2")                        # a pick by number
        c = self.notices(dm, 3)[2]["content"]
        self.assertIn(c["body"], ("Ici.", "Là."))
        chosen = "jumeau-a" if c["body"] == "Ici." else "jumeau-b"
        # the reactions came before the list in the room: handled before the pick was answered
        self.assertEqual(b.stop(), 0)
        rc, out, err = run_cli(b, "report")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"\n  cout  \U0001F44D 0  \U0001F44E 1\n")
        self.assertIn('\U0001F44E "combien ça coûte ?"', out)
        rc, out, err = run_cli(b, "report", "--json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["add_questions"], {chosen: ["où sont les archives ?"]})

    def test_encrypted_room_with_encryption_off_stays_silent(self):
        # before E2EE, a notice went into the encrypted room in clear text
        room = self.fake.create_room([ALICE], encrypted=True)
        b = self.bot(FAQBOT_MATRIX_ENCRYPTION="false")
        self.started(b)
        self.fake.encrypted_message(room, ALICE)
        self.fake.encrypted_message(room, ALICE)
        self.assertTrue(self.fake.wait(lambda: "event=encrypted_room" in b.logs(), 20), b.logs())
        time.sleep(0.8)
        self.assertEqual(self.fake.notices(room), [])
        self.assertEqual(b.logs().count("event=encrypted_room "), 1)
        b.stop()
        b = self.bot(FAQBOT_MATRIX_ENCRYPTION="false")   # the flag is persisted
        self.started(b)
        self.fake.encrypted_message(room, ALICE)
        time.sleep(1.0)
        self.assertEqual(self.fake.notices(room), [])
        self.assertNotIn("event=encrypted_room ", b.logs())
        b.stop()

    def test_undecryptable_message_is_requested_then_given_up_once(self):
        room = self.fake.create_room([ALICE], encrypted=True)
        b = self.bot(FAQBOT_TEST_KEY_WAIT_S="2")
        self.started(b)
        self.fake.encrypted_message(room, ALICE)          # its key never comes
        self.fake.encrypted_message(room, ALICE)
        # the key is asked for once per session, over /sendToDevice
        key_requests = lambda: [r for r in self.fake.requests  # noqa: E731
                                if "/sendToDevice/m.room_key_request/" in r[2]]
        self.assertTrue(self.fake.wait(lambda: key_requests(), 20), b.logs())
        self.assertEqual(key_requests()[0][4]["messages"][ALICE]["*"]["action"], "request")
        self.assertTrue(self.fake.wait(lambda: len(self.fake.notices(room)) >= 1, 30), b.logs())
        time.sleep(1.0)
        sent = self.fake.notices(room)
        self.assertEqual(len(sent), 1, sent)             # one notice for the room, not one per message
        self.assertEqual(sent[0]["type"], "m.room.encrypted")   # never clear text in an encrypted room
        self.assertNotIn("body", sent[0]["content"])
        self.assertEqual(b.logs().count("event=undecryptable_given_up"), 2, b.logs())
        self.assertEqual(len(key_requests()), 1)
        b.stop()

    def test_wrong_pickle_key_stops_with_advice_and_reset_makes_a_new_device(self):
        b = self.bot(FAQBOT_MATRIX_PICKLE_KEY="the-right-key")
        self.started(b)
        self.assertTrue(self.fake.wait(lambda: self.fake.key_uploads, 10), b.logs())
        first_device = self.fake.key_uploads[0][1]
        b.stop()
        b = self.bot(FAQBOT_MATRIX_PICKLE_KEY="another-key")
        self.assertEqual(b.wait_exit(20), 1)
        self.assertIn("cannot be opened", b.logs())
        self.assertIn("matrix_pickle_key", b.logs())
        self.assertIn("matrix-reset", b.logs())
        self.assertNotIn("another-key", b.logs())
        rc, out, err = run_cli(b, "matrix-reset")
        self.assertEqual(rc, 0, err)
        self.assertIn("new device", out)
        b = self.bot(FAQBOT_MATRIX_PICKLE_KEY="another-key")
        self.started(b)
        self.assertTrue(self.fake.wait(lambda: len({d for _, d, _ in self.fake.key_uploads}) == 2, 10),
                        b.logs())
        self.assertNotEqual(self.fake.key_uploads[-1][1], first_device)
        b.stop()

    def test_pickle_key_file_is_private_and_kept(self):
        b = self.bot()
        self.started(b)
        b.stop()
        path = os.path.join(self.tmp, "state", "pickle.key")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        with open(path, "rb") as f:
            key = f.read()
        self.assertEqual(len(key), 32)
        b = self.bot()                        # the same key opens the stored keys
        self.started(b)
        b.stop()
        with open(path, "rb") as f:
            self.assertEqual(f.read(), key)
        self.assertEqual(len({d for _, d, _ in self.fake.key_uploads}), 1)
        self.assertNotIn("event=fatal", b.logs())

    def test_invite_join_hello_and_allow_list(self):
        b = self.bot(FAQBOT_MATRIX_INVITE_ALLOW="@alice:localhost, example.org")
        self.started(b)
        r1 = self.fake.create_room([ALICE], bot=False)
        self.fake.fault("join", "status", status=403, errcode="M_FORBIDDEN", error="not invited yet")
        self.fake.invite(r1, ALICE)
        self.assertIn("aide", self.notices(r1)[0]["content"]["body"])
        self.assertEqual(self.fake.joins, [r1])
        r2 = self.fake.create_room(["@mallory:evil.org"], bot=False)
        self.fake.invite(r2, "@mallory:evil.org")
        r3 = self.fake.create_room([BOB], bot=False)
        self.fake.invite(r3, BOB)                     # allowed by server name
        self.notices(r3)
        self.assertNotIn(r2, self.fake.joins)
        b.stop()

    def test_first_start_answers_no_history(self):
        dm = self.fake.create_room([ALICE])
        old = self.fake.user_message(dm, ALICE, "combien ça coûte ?")
        b = self.bot()
        self.started(b)
        new = self.fake.user_message(dm, ALICE, "c'est quoi une étude ?")
        self.assertTrue(self.fake.wait(lambda: self.fake.replies_to(dm, new)))
        self.assertEqual(self.fake.replies_to(dm, old), [])
        b.stop()


class Limits(MatrixCase):
    def test_allowed_rooms(self):
        inside = self.fake.create_room([ALICE])
        outside = self.fake.create_room([BOB])
        b = self.bot(FAQBOT_MATRIX_ALLOWED_ROOMS=inside)
        self.started(b)
        self.fake.user_message(outside, BOB, "combien ça coûte ?")
        self.fake.user_message(inside, ALICE, "combien ça coûte ?")
        self.notices(inside)
        time.sleep(0.5)
        self.assertEqual(self.fake.notices(outside), [])
        b.stop()


class Delivery(MatrixCase):
    env = {"FAQBOT_FLOOD_MAX": 0}  # one user asks many questions here
    def test_limited_sync_loses_nothing(self):
        dm = self.fake.create_room([ALICE])
        b = self.bot()
        self.started(b)
        b.stop()
        qs = [self.fake.user_message(dm, ALICE, f"combien ça coûte ? ({i})") for i in range(12)]
        self.fake.fault("sync", "limited", keep=2)
        b = self.bot()
        self.assertTrue(self.fake.wait(lambda: all(self.fake.replies_to(dm, q) for q in qs), 30))
        self.assertIn("sync_gap", b.logs())
        self.assertTrue(any("/messages" in r[2] for r in self.fake.requests))
        b.stop()

    def test_rate_limits_and_5xx_lose_nothing(self):
        rooms = [self.fake.create_room([f"@u{i}:localhost"]) for i in range(3)]
        self.fake.fault("send", "status", status=429, errcode="M_LIMIT_EXCEEDED", retry_after_header=1)
        self.fake.fault("send", "status", status=429, errcode="M_LIMIT_EXCEEDED", retry_after_ms=800)
        self.fake.fault("send", "status", times=2, status=500, errcode="M_UNKNOWN")
        self.fake.fault("send", "drop_after")         # delivered, answer lost: the txnId dedups
        b = self.bot()
        self.started(b)
        qs = [(r, self.fake.user_message(r, f"@u{i}:localhost", "combien ça coûte ?"))
              for i, r in enumerate(rooms) for _ in range(2)]
        self.assertTrue(self.fake.wait(lambda: all(self.fake.replies_to(r, q) for r, q in qs), 40))
        time.sleep(0.5)
        for r, q in qs:
            self.assertEqual(len(self.fake.replies_to(r, q)), 1)
        self.assertIn("rate_limited", b.logs())
        # every rate_limited line names the question whose reply waits (its event id)
        limited = [l for l in b.logs().splitlines() if "event=rate_limited" in l]
        self.assertTrue(limited)
        for l in limited:
            self.assertTrue(any(f"trigger=e:{q}" in l for _, q in qs), l)
        b.stop()

    def test_device_is_kept_and_soft_logout_relogs(self):
        dm = self.fake.create_room([ALICE])
        b = self.bot()
        self.started(b)
        b.stop()
        self.fake.fault("sync", "unknown_token", soft_logout=True)
        b = self.bot()
        self.fake.user_message(dm, ALICE, "combien ça coûte ?")
        self.notices(dm)
        self.assertIn("relogin", b.logs())
        devices = [l.get("device_id") for l in self.fake.logins]
        self.assertEqual(devices[0], None)               # first login creates the device
        self.assertTrue(all(d == "DEV1" for d in devices[1:]) and len(devices) >= 2, devices)
        b.stop()

    def test_one_sync_after_a_send_relogs(self):
        # review of the transport skeleton: a send refused with M_UNKNOWN_TOKEN
        # relogs while the long-poll /sync is still out; a second /sync must
        # not start beside it (they share the batch and gap state)
        dm = self.fake.create_room([ALICE])
        b = self.bot(FAQBOT_MATRIX_SYNC_TIMEOUT=20)   # the next /sync waits while the reply is sent
        self.started(b)
        # a 500 first, so the retried send is refused while the next /sync waits
        self.fake.fault("send", "status", status=500)
        self.fake.fault("send", "unknown_token")
        self.fake.user_message(dm, ALICE, "combien ça coûte ?")
        self.notices(dm, timeout=30)
        self.assertIn("relogin", b.logs())
        time.sleep(2)
        self.fake.user_message(dm, ALICE, "quel est le prix ?")
        self.assertEqual(len(self.notices(dm, 2)), 2)
        self.assertEqual(self.fake.sync_peak, 1, f"two /sync requests were in flight at once; {b.logs()[-3000:]}")
        self.assertEqual(b.stop(), 0)

    def test_unknown_token_without_password_is_fatal(self):
        b = self.bot(FAQBOT_MATRIX_TOKEN="not-a-token", FAQBOT_MATRIX_USER="", FAQBOT_MATRIX_PASSWORD="")
        self.assertEqual(b.wait_exit(), 1)
        self.assertIn("access token was refused", b.logs())
        self.assertNotIn("not-a-token", b.logs())

    def test_kill_9_no_duplicates(self):
        rooms = [self.fake.create_room([f"@k{i}:localhost"]) for i in range(8)]
        b = self.bot()
        self.started(b)
        asked = []
        done = threading.Event()

        def ask():
            for i in range(200):
                r = rooms[i % len(rooms)]
                asked.append((r, self.fake.user_message(r, f"@k{i % len(rooms)}:localhost",
                                                        "combien ça coûte ?")))
                time.sleep(0.02)
            done.set()

        t = threading.Thread(target=ask)
        t.start()
        rnd = random.Random(11)
        kills = 0
        while kills < 5:
            time.sleep(rnd.uniform(0.2, 0.8))
            b.kill()
            kills += 1
            b = self.bot()
        t.join()
        ok = self.fake.wait(lambda: all(self.fake.replies_to(r, q) for r, q in asked), 60)
        missing = [q for r, q in asked if not self.fake.replies_to(r, q)]
        self.assertTrue(ok, f"unanswered after {kills} kills: {len(missing)}")
        dup = sum(len(self.fake.replies_to(r, q)) - 1 for r, q in asked)
        self.assertEqual(dup, 0, "duplicates visible in the rooms")
        print(f"\n  kill -9 x{kills}: 200 questions answered, 0 duplicates", file=sys.stderr)
        self.assertEqual(b.stop(), 0)


class Oversize(MatrixCase):
    def test_oversized_backlog_shrinks_sync_and_messages(self):
        # 180 events of about 45 KB in two group rooms (not addressed to the
        # bot), then a question in a direct room behind them
        big_a = self.fake.create_room([ALICE, BOB])
        big_b = self.fake.create_room([ALICE, BOB])
        dm = self.fake.create_room([ALICE])
        b = self.bot()
        self.started(b)
        b.stop()
        blob = "x" * 45000
        for i in range(120):
            self.fake.user_message(big_a, BOB, f"{i} {blob}")
        for i in range(60):
            self.fake.user_message(big_b, BOB, f"{i} {blob}")
        q = self.fake.user_message(dm, ALICE, "combien ça coûte ?")
        b = self.bot()
        self.assertTrue(self.fake.wait(lambda: self.fake.replies_to(dm, q), 60), b.logs()[-3000:])
        logs = b.logs()
        self.assertIn("event=oversized transport=matrix request=sync", logs)
        self.assertIn("event=oversized transport=matrix request=messages", logs)
        self.assertNotIn("gap_truncated", logs)
        syncs = [r[3].get("filter", "") for r in self.fake.requests if r[2].endswith("/sync")]
        self.assertTrue(any(f.startswith("{") for f in syncs))      # a tighter inline filter
        pages = [int(r[3]["limit"]) for r in self.fake.requests if r[2].endswith("/messages")]
        self.assertTrue(pages and min(pages) < 100, pages)
        # every event of the backlog reached the inbox: none skipped
        self.assertTrue(self.fake.wait(lambda: not [r[3].get("filter", "") for r in self.fake.requests
                                                    if r[2].endswith("/sync")][-1].startswith("{"), 10))
        self.assertEqual(b.stop(), 0)

    def test_failed_gap_fill_frees_its_events(self):
        dm = self.fake.create_room([ALICE])
        b = self.bot(FAQBOT_FLOOD_MAX=0)
        self.started(b)
        b.stop()
        qs = [self.fake.user_message(dm, ALICE, f"combien ça coûte ? ({i})") for i in range(8)]
        self.fake.fault("sync", "limited", keep=2)
        self.fake.fault("messages", "status", status=500, errcode="M_UNKNOWN")
        b = self.bot(FAQBOT_FLOOD_MAX=0)
        self.assertTrue(self.fake.wait(lambda: all(self.fake.replies_to(dm, q) for q in qs), 30))
        # under AddressSanitizer a leaked gap makes the exit status 86
        self.assertEqual(b.stop(), 0)


class Waits(MatrixCase):
    def test_429_holds_the_account_not_one_room(self):
        r1 = self.fake.create_room([ALICE])
        r2 = self.fake.create_room([BOB])
        b = self.bot()
        self.started(b)
        self.fake.fault("send", "status", status=429, errcode="M_LIMIT_EXCEEDED", retry_after_ms=2000)
        q1 = self.fake.user_message(r1, ALICE, "combien ça coûte ?")
        self.assertTrue(self.fake.wait(lambda: any("/send/" in r[2] for r in self.fake.requests), 10))
        t0 = [r[0] for r in self.fake.requests if "/send/" in r[2]][0]
        q2 = self.fake.user_message(r2, BOB, "combien ça coûte ?")     # the other busy room
        self.assertTrue(self.fake.wait(lambda: self.fake.replies_to(r1, q1) and
                                       self.fake.replies_to(r2, q2), 20))
        sends = [r[0] for r in self.fake.requests if "/send/" in r[2]]
        self.assertFalse([t for t in sends[1:] if t < t0 + 1.8], "a send during the account's wait")
        self.assertIn("rate_limited", b.logs())
        b.stop()

    def test_server_waits_are_clamped(self):
        dm = self.fake.create_room([ALICE])
        other = self.fake.create_room([BOB])
        b = self.bot()
        self.started(b)
        # a negative wait: no hot loop, at least a second between tries
        self.fake.fault("send", "status", times=3, status=429, errcode="M_LIMIT_EXCEEDED",
                        retry_after_ms=-1000)
        q = self.fake.user_message(dm, ALICE, "combien ça coûte ?")
        self.assertTrue(self.fake.wait(lambda: self.fake.replies_to(dm, q), 20))
        tries = [r[0] for r in self.fake.requests if "/send/" in r[2]]
        self.assertEqual(len(tries), 4)
        self.assertTrue(all(b2 - a >= 0.9 for a, b2 in zip(tries, tries[1:])), tries)
        # a wait past any bound (and past a signed 64-bit product): one hour
        self.fake.fault("send", "status", status=429, errcode="M_LIMIT_EXCEEDED",
                        retry_after_header="99999999999999999999")
        self.fake.user_message(other, BOB, "combien ça coûte ?")
        self.assertTrue(self.fake.wait(lambda: "retry_in_ms=3600000" in b.logs(), 10), b.logs()[-2000:])
        time.sleep(0.5)
        self.assertIsNone(b.proc.poll())
        self.assertEqual(b.stop(), 0)

    def test_backlog_after_downtime_is_not_a_flood(self):
        dm = self.fake.create_room([ALICE])
        b = self.bot()
        self.started(b)
        b.stop()
        now = time.time()
        qs = [self.fake.user_message(dm, ALICE, f"combien ça coûte ? ({i})", ts=now - 3600 + i * 60)
              for i in range(12)]
        b = self.bot(FAQBOT_FLOOD_MAX=10, FAQBOT_FLOOD_WINDOW=30)
        self.assertTrue(self.fake.wait(lambda: all(self.fake.replies_to(dm, q) for q in qs), 30))
        texts = [self.fake.replies_to(dm, q)[0]["content"]["body"] for q in qs]
        self.assertEqual(texts, ["Le ticket d'entrée est modeste."] * 12)
        self.assertNotIn("event=flood", b.logs())
        b.stop()

    def test_server_fields_are_quoted(self):
        b = self.bot()
        self.started(b)
        self.fake.fault("sync", "status", status=500, errcode="M_X forged=1\nlevel=error", error="e")
        self.assertTrue(self.fake.wait(lambda: "sync_failed" in b.logs(), 10))
        self.assertIn('errcode="M_X forged=1\\nlevel=error"', b.logs())
        b.stop()


class BothTransports(MatrixCase):
    def test_one_process_serves_telegram_and_matrix(self):
        from telegram import TOKEN, FakeTelegram
        tg = FakeTelegram()
        try:
            dm = self.fake.create_room([ALICE])
            b = self.bot(FAQBOT_TELEGRAM_TOKEN=TOKEN, FAQBOT_TELEGRAM_API_URL=tg.url,
                         FAQBOT_TELEGRAM_POLL_TIMEOUT=2)
            self.started(b)
            tg.user_message(77, "combien ça coûte ?")
            self.fake.user_message(dm, ALICE, "combien ça coûte ?")
            self.assertTrue(tg.wait(lambda: tg.sent_to(77), 20))
            self.notices(dm)
            self.assertEqual(tg.spec_errors, [])
            self.assertEqual(b.stop(), 0)
        finally:
            tg.close()


class SpecCheck(MatrixCase):
    """The fake's own request check finds what it must (from ../shared/specs
    or the committed extract, whichever this run uses)."""

    def call(self, method, path, body=None):
        req = urllib.request.Request(self.fake.url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                r.read()
        except urllib.error.HTTPError as e:
            e.read()

    def test_bad_requests_are_caught(self):
        self.call("POST", "/_matrix/client/v3/login",
                  {"type": "m.login.password", "password": PASSWORD,
                   "identifier": {"type": "m.id.user", "user": "faqbot"}})
        self.assertEqual(self.fake.spec_errors, [])
        self.call("GET", "/_matrix/client/v3/sync?timeout=0&bogus=1")
        self.call("POST", "/_matrix/client/v3/login", {"password": PASSWORD})
        self.call("PUT", "/_matrix/client/v3/rooms/!r1:localhost/send/m.room.message/t1",
                  {"msgtype": "m.text", "body": "x"})
        errors = list(self.fake.spec_errors)
        self.fake.spec_errors.clear()
        self.assertIn("GET /sync: unknown query parameter 'bogus'", errors)
        self.assertIn("POST /login: missing required field 'type'", errors)
        self.assertIn("bot messages must be m.notice", errors)
        self.assertIn("m.mentions is missing (always send it)", errors)
        self.assertEqual(len(errors), 4, errors)


class Storage(MatrixCase):
    """Storage errors (issue 10): a sync that could not be stored is made
    again; nothing is lost or sent twice."""
    env = {"FAQBOT_FLOOD_MAX": 0}

    def test_lock_held_by_another_program(self):
        import sqlite3
        dm = self.fake.create_room([ALICE])
        b = self.bot()
        self.started(b)
        self.fake.user_message(dm, ALICE, "combien ça coûte ?")
        self.notices(dm)
        db = sqlite3.connect(os.path.join(self.tmp, "state", "faqbot.db"), isolation_level=None,
                             timeout=10)
        db.execute("BEGIN EXCLUSIVE")     # longer than faqbot waits for a lock (200 ms), many retries
        asked = [self.fake.user_message(dm, ALICE, "combien ça coûte ?") for _ in range(4)]
        time.sleep(7)
        db.execute("ROLLBACK")
        db.close()
        self.assertTrue(self.fake.wait(lambda: all(self.fake.replies_to(dm, e) for e in asked), 40),
                        b.logs()[-3000:])
        time.sleep(2)
        self.assertEqual([len(self.fake.replies_to(dm, e)) for e in asked], [1] * 4)
        self.assertIn("store_error", b.logs())
        self.assertEqual(b.stop(), 0)


if __name__ == "__main__":
    try:
        unittest.main(verbosity=1)
    finally:
        shutil.rmtree(LOGDIR, ignore_errors=True)
