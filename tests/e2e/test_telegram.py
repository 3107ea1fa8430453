#!/usr/bin/env python3
"""End-to-end tests of faqbot's Telegram transport against a fake Bot API
server (tests/fake/telegram.py) on 127.0.0.1.  Each test asserts what the
simulated user receives, and that every request faqbot sent matches the
Bot API definition (../shared/specs/telegram/api.json, or its committed
extract tests/fake/specs/telegram.json in a lone clone).

FAQBOT names the binary under test (default build/faqbot).
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fake"))
from harness import (FORMATTED_ENTRIES, LOGDIR, LONG_ANSWER, Bot, add_entries, html_balanced,  # noqa: E402
                     html_text, reply_verdict, run_cli, write_faq)
from telegram import BOT_USERNAME, TOKEN, FakeTelegram  # noqa: E402

class TelegramCase(unittest.TestCase):
    env = {}

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="faqbot-tg-")
        self.faq = os.path.join(self.tmp, "faq.json")
        write_faq(self.faq)
        self.fake = FakeTelegram(**getattr(self, "fake_args", {}))
        self.bots = []

    def tearDown(self):
        for b in self.bots:
            if b.proc and b.proc.poll() is None:
                b.kill()
        self.fake.close()
        self.assertEqual(self.fake.spec_errors, [], "requests that do not match api.json")
        for b in self.bots:
            if os.path.exists(b.log):
                text = b.logs()
                self.assertNotIn(TOKEN, text)
                self.assertNotIn(TOKEN.split(":")[1], text)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def bot(self, **env):
        settings = dict(FAQBOT_TELEGRAM_TOKEN=TOKEN, FAQBOT_TELEGRAM_API_URL=self.fake.url,
                        FAQBOT_STATE_DIR=os.path.join(self.tmp, "state"), FAQBOT_FAQ=self.faq,
                        FAQBOT_TELEGRAM_POLL_TIMEOUT=2, FAQBOT_TELEGRAM_RATE_LIMITS="false")
        b = Bot(**{**settings, **self.env, **env})
        self.bots.append(b)
        return b.start()

    def answer_in(self, chat, n=1, timeout=20):
        self.assertTrue(self.fake.wait(lambda: len(self.fake.sent_to(chat)) >= n, timeout),
                        f"chat {chat}: expected {n} message(s), got {self.fake.sent_to(chat)}")
        return self.fake.sent_to(chat)


class Conversation(TelegramCase):
    def test_answer_fallback_and_choices(self):
        b = self.bot()
        mid = self.fake.user_message(10, "combien ça coûte ?")
        m = self.answer_in(10)[0]
        self.assertEqual(m["text"], "Le ticket d'entrée est modeste.")
        # the reply's log line names the question it answers (chat and message_id)
        self.assertTrue(self.fake.wait(lambda: any(
            "event=reply" in l and f"trigger=m:10:{mid} " in l and "kind=answer" in l
            for l in b.logs().splitlines())), b.logs())
        self.assertEqual(m["parse_mode"], "HTML")
        self.assertNotIn("reply_parameters", m)           # private chat: no quote
        self.fake.user_message(10, "comment renouveler mon passeport")
        m = self.answer_in(10, 2)[1]
        self.assertIn("Pas de réponse sûre.", m["text"])
        self.assertEqual(m["reply_markup"]["inline_keyboard"][-1][0]["url"],
                         "https://example.org/souscrire")
        self.fake.user_message(10, "où sont les archives ?")
        m = self.answer_in(10, 3)[2]
        data = [row[0]["callback_data"] for row in m["reply_markup"]["inline_keyboard"]]
        self.assertEqual(sorted(data), ["a:jumeau-a", "a:jumeau-b"])
        cb = self.fake.callback(10, "a:jumeau-b")
        m = self.answer_in(10, 4)[3]
        self.assertEqual(m["text"], "Là.")
        self.assertTrue(self.fake.wait(lambda: any(a["callback_query_id"] == cb
                                                   for a in self.fake.callback_answers)))
        self.assertEqual(self.fake.commands[0]["command"], "aide")
        self.assertEqual(b.stop(), 0)

    def test_html_is_escaped_and_long_answers_split_in_order(self):
        b = self.bot()
        self.fake.user_message(11, "quelle TVA est appliquée <b>vraiment</b> & ?")
        m = self.answer_in(11)[0]
        self.assertEqual(m["text"], "Prix &lt;b&gt;HT&lt;/b&gt; &lt; 10 € &amp; TVA &gt; 0 \"incluse\"")
        self.fake.user_message(11, "donne moi la réponse très longue")
        # parts are cut at spaces or paragraph breaks (dropped at the cut): the words, in order
        self.assertTrue(self.fake.wait(lambda: " ".join(html_text(x["text"]) for x in self.fake.sent_to(11)[1:])
                                       .split() == LONG_ANSWER.split(), 20))
        parts = self.fake.sent_to(11)[1:]
        self.assertGreaterEqual(len(parts), 3)
        for p in parts:
            self.assertLessEqual(len(p["text"].encode("utf-16-le")) // 2, 4096)
        self.assertEqual([p["message_id"] for p in parts], sorted(p["message_id"] for p in parts))
        self.assertEqual(b.stop(), 0)

    def test_formatted_answers_and_split_without_breaking_tags(self):
        add_entries(self.faq, FORMATTED_ENTRIES)
        b = self.bot()
        self.fake.user_message(13, "comment recevoir les documents de souscription ?")
        m = self.answer_in(13)[0]
        self.assertEqual(m["parse_mode"], "HTML")
        self.assertIn("<b>souscrire</b>", m["text"])
        self.assertIn('<a href="https://example.org/notice">la notice</a>', m["text"])
        self.assertIn("\n• un <i>reçu</i> fiscal\n• un accès aux résultats", m["text"])
        self.assertIsNone(html_balanced(m["text"]))
        self.fake.user_message(13, "quels sont tous les points du règlement ?")
        self.assertTrue(self.fake.wait(lambda: any("Point n°399" in x["text"]
                                                   for x in self.fake.sent_to(13)), 20))
        parts = self.fake.sent_to(13)[1:]
        self.assertGreaterEqual(len(parts), 2)
        for p in parts:
            self.assertEqual(p["parse_mode"], "HTML")
            self.assertIsNone(html_balanced(p["text"]), p["text"])
            self.assertLessEqual(len(html_text(p["text"]).encode("utf-16-le")) // 2, 4096)
        text = "\n".join(html_text(p["text"]) for p in parts)
        for i in range(400):
            self.assertEqual(text.count(f"Point n°{i} :"), 1, i)
        self.assertEqual(html_text(parts[0]["text"]).count("&"), html_text(parts[0]["text"]).count("& le"))
        self.assertEqual(sum(p["text"].count('<a href="https://example.org/p') for p in parts), 400)
        self.assertEqual(b.stop(), 0)

    def test_backlog_skip(self):
        self.fake.user_message(12, "combien ça coûte ?", date=time.time() - 7200)
        b = self.bot(FAQBOT_TELEGRAM_BACKLOG="skip", FAQBOT_TELEGRAM_BACKLOG_MINUTES=30)
        self.fake.user_message(12, "c'est quoi une étude en souscription")
        m = self.answer_in(12)
        time.sleep(0.5)
        self.assertEqual([x["text"] for x in self.fake.sent_to(12)],
                         ["Plusieurs souscripteurs financent l'étude."])
        self.assertIn("backlog_skipped", b.logs())
        b.stop()


class Mentions(TelegramCase):
    fake_args = {"first_name": "Assistant FAQ"}

    def test_the_bots_name_is_cut_before_matching(self):
        b = self.bot()
        bare = self.fake.user_message(14, "à quoi sert cette étude ?")
        named = self.fake.user_message(14, "Assistant FAQ: à quoi sert cette étude ?")
        g = -100777
        grp = self.fake.user_message(g, "Assistant FAQ, à quoi sert cette étude ?", chat_type="supergroup",
                                     reply_to_bot=True)
        at = "à quoi sert cette étude ? @" + BOT_USERNAME
        g2 = -100778  # another group: a repeated answer in one group is a cooldown pointer
        tail = self.fake.user_message(g2, at, chat_type="supergroup",
                                      entities=[{"type": "mention", "offset": len(at) - len(BOT_USERNAME) - 1,
                                                 "length": len(BOT_USERNAME) + 1}])
        self.answer_in(14, 2)
        self.answer_in(g)
        self.answer_in(g2)
        self.assertTrue(self.fake.wait(lambda: reply_verdict(b.logs(), f"m:{g2}:{tail}"), 10), b.logs())
        want = reply_verdict(b.logs(), f"m:14:{bare}")
        self.assertEqual(want[:2], ("answer", "etude"))
        self.assertEqual(reply_verdict(b.logs(), f"m:14:{named}"), want)
        self.assertEqual(reply_verdict(b.logs(), f"m:{g}:{grp}"), want)
        self.assertEqual(reply_verdict(b.logs(), f"m:{g2}:{tail}"), want)
        texts = [m["text"] for m in self.fake.sent_to(14) + self.fake.sent_to(g) + self.fake.sent_to(g2)]
        self.assertEqual(texts, ["Plusieurs souscripteurs financent l'étude."] * 4)
        self.assertEqual(b.stop(), 0)


class Feedback(TelegramCase):
    def test_votes_and_choices_reach_the_report(self):
        b = self.bot()
        self.fake.user_message(20, "combien ça coûte ?")
        m = self.answer_in(20)[0]
        self.assertEqual(m["reply_markup"]["inline_keyboard"][0],
                         [{"text": "\U0001F44D", "callback_data": "v:1"},
                          {"text": "\U0001F44E", "callback_data": "v:-1"}])
        g = -100500
        self.fake.user_message(g, "combien ça coûte ?", chat_type="supergroup", reply_to_bot=True)
        self.assertNotIn("reply_markup", self.answer_in(g)[0])     # no vote row in a group
        # one user pressing 👎 a hundred times: one vote
        for _ in range(100):
            self.fake.callback(20, "v:-1", message_id=m["message_id"])
        self.assertTrue(self.fake.wait(lambda: len(self.fake.callback_answers) >= 100, 30))
        # a pick from a list, by button
        self.fake.user_message(20, "où sont les archives ?")
        lst = self.answer_in(20, 2)[1]
        labels = [row[0]["text"] for row in lst["reply_markup"]["inline_keyboard"]]
        self.assertEqual([l[:3] for l in labels], ["1. ", "2. "])      # numbered, as the text says
        self.fake.callback(20, "a:jumeau-b")
        self.assertEqual(self.answer_in(20, 3)[2]["text"], "Là.")
        self.assertTrue(self.fake.wait(lambda: len(self.fake.callback_answers) >= 101, 10))
        self.assertEqual(b.stop(), 0)
        rc, out, err = run_cli(b, "report")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"\n  cout  \U0001F44D 0  \U0001F44E 1\n")
        self.assertIn('\U0001F44E "combien ça coûte ?"', out)
        rc, out, err = run_cli(b, "report", "--json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["add_questions"], {"jumeau-b": ["où sont les archives ?"]})


class NoFeedback(TelegramCase):
    env = {"FAQBOT_FEEDBACK_RETENTION_DAYS": 0}

    def test_no_vote_buttons_when_votes_are_not_recorded(self):
        b = self.bot()
        self.fake.user_message(21, "combien ça coûte ?")
        self.assertNotIn("reply_markup", self.answer_in(21)[0])
        self.assertEqual(b.stop(), 0)


class Groups(TelegramCase):
    G = -1001234

    def group_msg(self, text, **kw):
        return self.fake.user_message(self.G, text, chat_type="supergroup", **kw)

    def test_etiquette(self):
        b = self.bot()
        self.group_msg("combien ça coûte ?")                                   # not addressed
        self.group_msg("/aide@otherbot")                                        # another bot
        self.group_msg("combien ça coûte ?", from_id=99, is_bot=True,
                       entities=[{"type": "mention", "offset": 0, "length": 11}])
        mention = f"@{BOT_USERNAME} combien ça coûte ?"
        m1 = self.group_msg(mention, entities=[{"type": "mention", "offset": 0,
                                                "length": len(BOT_USERNAME) + 1}])
        m2 = self.group_msg("et c'est quoi une étude en souscription", reply_to_bot=True)
        cmd = f"/aide@{BOT_USERNAME}"
        m3 = self.group_msg(cmd, entities=[{"type": "bot_command", "offset": 0, "length": len(cmd)}])
        sent = self.answer_in(self.G, 3)
        time.sleep(0.5)
        sent = self.fake.sent_to(self.G)
        self.assertEqual(len(sent), 3, [s["text"] for s in sent])
        by_reply = {s["reply_parameters"]["message_id"]: s for s in sent}
        self.assertEqual(by_reply[m1]["text"], "Le ticket d'entrée est modeste.")
        self.assertTrue(by_reply[m1]["reply_parameters"]["allow_sending_without_reply"])
        self.assertEqual(by_reply[m2]["text"], "Plusieurs souscripteurs financent l'étude.")
        self.assertIn("/faq", by_reply[m3]["text"])
        b.stop()

    def test_cooldown_points_to_the_earlier_answer(self):
        b = self.bot(FAQBOT_TELEGRAM_GROUP_MODE="all", FAQBOT_TELEGRAM_COOLDOWN=300)
        self.group_msg("combien ça coûte ?")
        first = self.answer_in(self.G)[0]
        self.group_msg("quel est le prix ?")
        second = self.answer_in(self.G, 2)[1]
        self.assertIn("il y a quelques minutes", second["text"])
        self.assertEqual(second["reply_parameters"]["message_id"], first["message_id"])
        b.stop()

    def test_forum_thread_is_kept(self):
        b = self.bot(FAQBOT_TELEGRAM_GROUP_MODE="all")
        self.group_msg("combien ça coûte ?", thread_id=77)
        self.assertEqual(self.answer_in(self.G)[0]["message_thread_id"], 77)
        b.stop()


class Errors(TelegramCase):
    env = {"FAQBOT_TELEGRAM_GROUP_MODE": "all", "FAQBOT_TELEGRAM_COOLDOWN": 0}

    def test_429_parks_one_chat_only(self):
        self.fake.fault("sendMessage", "status", times=2, status=429, retry_after=2, chat_id=21)
        b = self.bot()
        self.fake.user_message(21, "combien ça coûte ?")
        time.sleep(0.3)
        self.fake.user_message(22, "combien ça coûte ?")
        self.answer_in(22)
        self.assertEqual(self.fake.sent_to(21), [])             # still parked
        self.answer_in(21, timeout=15)
        tries = [t for t, m, p in self.fake.requests if m == "sendMessage" and p.get("chat_id") == 21]
        self.assertEqual(len(tries), 3)
        self.assertGreaterEqual(tries[1] - tries[0], 1.9)
        self.assertGreaterEqual(tries[2] - tries[1], 1.9)
        b.stop()

    def test_5xx_storm_loses_nothing(self):
        self.fake.fault("sendMessage", "status", times=2, status=500)
        self.fake.fault("sendMessage", "status", times=2, status=502)
        b = self.bot()
        for chat in (31, 32, 33):
            self.fake.user_message(chat, "combien ça coûte ?")
        for chat in (31, 32, 33):
            self.assertEqual(len(self.answer_in(chat, timeout=30)), 1)
        self.assertIn("ambiguous_resend", b.logs())
        b.stop()

    def test_poll_faults_never_stop_the_bot(self):
        b = self.bot()
        for kind in ("drop", "truncated", "garbage", "big"):
            self.fake.fault("getUpdates", kind)
            n = len(self.fake.sent_to(41))
            self.fake.user_message(41, "combien ça coûte ?")
            self.answer_in(41, n + 1, timeout=20)
        self.fake.fault("getUpdates", "status", status=500)
        self.fake.user_message(41, "combien ça coûte ?")
        self.answer_in(41, 5, timeout=20)
        self.assertIn("larger than the limit", b.logs())
        self.assertIsNone(b.proc.poll())
        b.stop()

    def test_slow_send_is_resent_once_outcome_unknown(self):
        self.fake.fault("sendMessage", "slow", seconds=3)
        b = self.bot(FAQBOT_TELEGRAM_SEND_TIMEOUT=1)
        self.fake.user_message(42, "combien ça coûte ?")
        self.answer_in(42, timeout=20)
        self.assertTrue(self.fake.wait(lambda: "ambiguous_resend" in b.logs(), 10))
        b.stop()

    def test_migrated_group_is_followed(self):
        self.fake.fault("sendMessage", "status", status=400, chat_id=-500,
                        description="Bad Request: group chat was upgraded to a supergroup chat",
                        parameters={"migrate_to_chat_id": -1005000})
        b = self.bot()
        self.fake.user_message(-500, "combien ça coûte ?", chat_type="group")
        self.assertEqual(self.answer_in(-1005000)[0]["text"], "Le ticket d'entrée est modeste.")
        b.stop()

    def test_unparsable_html_is_resent_as_plain_text(self):
        self.fake.fault("sendMessage", "status", status=400,
                        description="Bad Request: can't parse entities: unexpected end tag")
        b = self.bot()
        self.fake.user_message(43, "quelle TVA est appliquée ?")
        m = self.answer_in(43)[0]
        self.assertNotIn("parse_mode", m)
        self.assertEqual(m["text"], "Prix <b>HT</b> < 10 € & TVA > 0 \"incluse\"")
        b.stop()

    def test_403_drops_that_chat_only(self):
        self.fake.fault("sendMessage", "status", status=403, chat_id=44,
                        description="Forbidden: bot was blocked by the user")
        b = self.bot()
        self.fake.user_message(44, "combien ça coûte ?")
        self.fake.user_message(44, "c'est quoi une étude ?")
        self.fake.user_message(45, "combien ça coûte ?")
        self.answer_in(45)
        time.sleep(1)
        self.assertEqual(self.fake.sent_to(44), [])
        self.assertIn("chat_forbidden", b.logs())
        b.stop()


class Oversize(TelegramCase):
    def test_oversized_backlog_shrinks_the_batch(self):
        # 100 queued group messages of 4,096 Cyrillic characters, each a reply
        # to another such message: about 49 KB each as JSON, 4.9 MB a batch
        long_text = ("Приветмир" * 500)[:4096]
        now = int(time.time())
        for i in range(100):
            self.fake.push_update({"message": {
                "message_id": i + 1, "date": now, "chat": {"id": -100777, "type": "supergroup"},
                "from": {"id": 5000 + i, "is_bot": False, "first_name": "U"}, "text": long_text,
                "reply_to_message": {"message_id": 1, "date": now,
                                     "chat": {"id": -100777, "type": "supergroup"},
                                     "from": {"id": 4999, "is_bot": False, "first_name": "V"},
                                     "text": long_text}}})
        self.fake.user_message(60, "combien ça coûte ?")   # a question behind them
        b = self.bot()
        self.assertEqual(self.answer_in(60, timeout=30)[0]["text"], "Le ticket d'entrée est modeste.")
        self.assertIn("event=poll_oversized", b.logs())
        limits = [p.get("limit") for _, m, p in self.fake.requests if m == "getUpdates"]
        self.assertIn(50, limits)
        self.assertTrue(self.fake.wait(lambda: [p.get("limit") for _, m, p in self.fake.requests
                                                if m == "getUpdates"][-1] == 100, 10))  # restored
        b.stop()


    def test_one_update_over_16_mb_is_skipped_and_counted(self):
        huge = "ж" * (3 << 20)                            # 18 MB as JSON
        uid = self.fake.push_update({"message": {
            "message_id": 1, "date": int(time.time()), "chat": {"id": -100778, "type": "supergroup"},
            "from": {"id": 5001, "is_bot": False, "first_name": "U"}, "text": huge}})
        self.fake.user_message(61, "combien ça coûte ?")
        b = self.bot()
        self.assertEqual(self.answer_in(61, timeout=60)[0]["text"], "Le ticket d'entrée est modeste.")
        self.assertIn(f"event=update_skipped transport=telegram update_id={uid}", b.logs())
        limits = [p.get("limit") for _, m, p in self.fake.requests if m == "getUpdates"]
        self.assertEqual(limits[:8], [100, 50, 25, 12, 6, 3, 1, 1])
        b.stop()


class Logs(TelegramCase):
    def test_server_fields_are_quoted(self):
        forged = "faqtestbot\nlevel=error event=forged"
        orig = self.fake.m_getMe

        def get_me(p):
            status, body = orig(p)
            body["result"]["username"] = forged
            return status, body
        self.fake.m_getMe = get_me
        b = self.bot()
        self.assertTrue(self.fake.wait(lambda: "event=started" in b.logs(), 10))
        self.assertIn('bot="faqtestbot\\nlevel=error event=forged"', b.logs())
        self.assertFalse([ln for ln in b.logs().splitlines() if ln.startswith("level=error event=forged")])
        b.stop()


class Limits(TelegramCase):
    def test_backlog_after_downtime_is_not_a_flood(self):
        # 12 questions from one user sent a minute apart while the bot was down
        now = time.time()
        for i in range(12):
            self.fake.user_message(74, "combien ça coûte ?", date=now - 3600 + i * 60)
        b = self.bot(FAQBOT_FLOOD_MAX=10, FAQBOT_FLOOD_WINDOW=30)
        texts = [m["text"] for m in self.answer_in(74, 12, timeout=30)]
        self.assertEqual(texts, ["Le ticket d'entrée est modeste."] * 12)
        self.assertNotIn("event=flood", b.logs())
        b.stop()

    def test_flood_gets_one_notice_then_silence(self):
        b = self.bot(FAQBOT_FLOOD_MAX=3, FAQBOT_FLOOD_WINDOW=60)
        for _ in range(5):
            self.fake.user_message(70, "combien ça coûte ?")
        self.answer_in(70, 4)
        time.sleep(1)
        texts = [m["text"] for m in self.fake.sent_to(70)]
        self.assertEqual(len(texts), 4)
        self.assertEqual(texts[:3], ["Le ticket d'entrée est modeste."] * 3)
        self.assertIn("beaucoup de questions", texts[3])
        self.fake.user_message(71, "combien ça coûte ?")        # others are not affected
        self.answer_in(71)
        self.assertIn("event=flood", b.logs())
        b.stop()

    def test_allow_list(self):
        b = self.bot(FAQBOT_TELEGRAM_ALLOWED_CHATS="72, -1007")
        self.fake.user_message(73, "combien ça coûte ?")
        self.fake.user_message(72, "combien ça coûte ?")
        self.answer_in(72)
        time.sleep(0.5)
        self.assertEqual(self.fake.sent_to(73), [])
        b.stop()


class Network(TelegramCase):
    def test_tls_is_verified_and_ca_bundle_trusts_a_private_server(self):
        cert, key = os.path.join(self.tmp, "c.pem"), os.path.join(self.tmp, "k.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
        secure = FakeTelegram(tls=(cert, key))
        try:
            b = self.bot(FAQBOT_TELEGRAM_API_URL=secure.url)
            time.sleep(2)
            self.assertFalse(secure.requests)                   # refused: unknown issuer
            self.assertIn("certificate", b.logs().lower())
            b.kill()
            b = self.bot(FAQBOT_TELEGRAM_API_URL=secure.url, FAQBOT_CA_BUNDLE=cert)
            secure.user_message(81, "combien ça coûte ?")
            self.assertTrue(secure.wait(lambda: secure.sent_to(81), 20), b.logs())
            b.stop()
        finally:
            secure.close()

    def test_redirects_are_not_followed(self):
        other = FakeTelegram()
        try:
            self.fake.fault("getMe", "redirect", location=other.url + f"/bot{TOKEN}/getMe")
            b = self.bot()
            self.fake.user_message(82, "combien ça coûte ?")
            self.answer_in(82)                                  # the retry goes to the same host
            self.assertEqual(other.requests, [])
            self.assertIn("status=302", b.logs())
            b.stop()
        finally:
            other.close()


class Fatal(TelegramCase):
    def test_second_instance_refuses(self):
        a = self.bot()
        self.fake.user_message(51, "combien ça coûte ?")
        self.answer_in(51)
        b = self.bot()
        self.assertNotEqual(b.wait_exit(), 0)
        self.assertIn("already using the state directory", b.logs())
        self.assertIsNone(a.proc.poll())
        a.stop()

    def test_conflicting_poller_is_fatal(self):
        self.fake.fault("getUpdates", "status", status=409, description=
                        "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running")
        b = self.bot()
        self.assertEqual(b.wait_exit(), 1)
        self.assertIn("another program is reading this bot's updates", b.logs())

    def test_bad_token_is_fatal(self):
        b = self.bot(FAQBOT_TELEGRAM_TOKEN="123:wrong-token-value")
        self.assertEqual(b.wait_exit(), 1)
        self.assertIn("token was refused", b.logs())
        self.assertNotIn("wrong-token-value", b.logs())


class Webhook(TelegramCase):
    fake_args = {"webhook_url": "https://example.org/hook"}

    def test_webhook_stops_unless_allowed(self):
        b = self.bot()
        self.assertEqual(b.wait_exit(), 1)
        self.assertIn("a webhook is set", b.logs())
        b = self.bot(FAQBOT_TELEGRAM_DELETE_WEBHOOK="true")
        self.fake.user_message(61, "combien ça coûte ?")
        self.answer_in(61)
        self.assertEqual(self.fake.delete_webhook_calls, [{"drop_pending_updates": False}])
        b.stop()


QUESTIONS = ["combien ça coûte ?", "c'est quoi une étude en souscription",
             "quelle est la TVA", "comment renouveler mon passeport"]


class Crashes(TelegramCase):
    # one user asks 20 questions per chat here: no flood limit
    env = {"FAQBOT_TELEGRAM_GROUP_MODE": "all", "FAQBOT_TELEGRAM_COOLDOWN": 0, "FAQBOT_FLOOD_MAX": 0}

    def first_replies_in_order(self, asked):
        """Per chat, the first reply to each question came in the order asked
        (a resend after a crash may repeat one, never overtake it)."""
        for chat in {c for c, _ in asked}:
            firsts = []
            for m in self.fake.sent_to(chat):
                mid = (m.get("reply_parameters") or {}).get("message_id")
                if mid not in firsts:
                    firsts.append(mid)
            self.assertEqual(firsts, [m for c, m in asked if c == chat], f"chat {chat} out of order")

    def test_kill_9_during_parallel_sends(self):
        """A kill -9 while several chats' replies are in flight: nothing is
        lost, and only the replies in flight go twice (at most
        telegram_parallel_sends, 6 by default)."""
        self.fake.send_delay = 0.5
        b = self.bot()
        chats = [-3000 - i for i in range(12)]
        asked = [(c, self.fake.user_message(c, QUESTIONS[r], chat_type="group"))
                 for r in range(2) for c in chats]
        self.assertTrue(self.fake.wait(lambda: sum(self.fake.sending.values()) >= 4, 20),
                        "the replies did not go out in parallel")
        b.kill()
        # the dead bot's requests finish on the server's side (their replies
        # are delivered: these are the duplicates to come), then a new bot
        self.assertTrue(self.fake.wait(lambda: sum(self.fake.sending.values()) == 0, 10))
        self.assertEqual(self.fake.max_sending_chat, 1, "two sends to one chat at once")
        self.fake.max_sending_chat = 0
        b = self.bot()
        ok = self.fake.wait(lambda: all(self.fake.replies_to(c, m) for c, m in asked), 60)
        self.assertTrue(ok, f"unanswered: {[(c, m) for c, m in asked if not self.fake.replies_to(c, m)]}")
        dup = sum(len(self.fake.replies_to(c, m)) - 1 for c, m in asked)
        self.assertGreaterEqual(dup, 1, "the sends in flight at the kill were not sent again")
        self.assertLessEqual(dup, 6, "more duplicates than sends in flight")
        self.assertEqual(self.fake.max_sending_chat, 1, "two sends to one chat at once")
        self.first_replies_in_order(asked)
        self.assertIn("ambiguous_resend", b.logs())
        print(f"\n  kill -9 during parallel sends: {len(asked)} questions answered, {dup} duplicate(s)",
              file=sys.stderr)
        self.assertEqual(b.stop(), 0)

    def test_kill_9_loses_nothing(self):
        # one send at a time: each crash duplicates at most one reply
        self.env = dict(self.env, FAQBOT_TELEGRAM_PARALLEL_SENDS=1)
        questions = QUESTIONS
        chats = [-2000 - i for i in range(10)]
        asked = []
        rnd = random.Random(7)
        b = self.bot()
        done = threading.Event()

        def ask():
            for i in range(200):
                chat = chats[i % len(chats)]
                mid = self.fake.user_message(chat, questions[i % len(questions)], chat_type="group")
                asked.append((chat, mid))
                time.sleep(0.02)
            done.set()

        t = threading.Thread(target=ask)
        t.start()
        kills = 0
        while not done.is_set() or kills < 5:
            time.sleep(rnd.uniform(0.1, 0.8))
            if kills < 5:
                b.kill()
                kills += 1
                b = self.bot()
            else:
                break
        t.join()
        ok = self.fake.wait(lambda: all(self.fake.replies_to(c, m) for c, m in asked), 60)
        missing = [(c, m) for c, m in asked if not self.fake.replies_to(c, m)]
        self.assertTrue(ok, f"unanswered after {kills} kills: {missing[:10]} ({len(missing)})")
        dup = sum(len(self.fake.replies_to(c, m)) - 1 for c, m in asked)
        self.assertLessEqual(dup, kills, "more duplicates than kills")
        self.assertEqual(self.fake.max_sending, 1, "telegram_parallel_sends = 1 sent two at once")
        self.first_replies_in_order(asked)
        print(f"\n  kill -9 x{kills}: 200 questions answered, {dup} duplicate(s)", file=sys.stderr)
        self.assertEqual(b.stop(), 0)

    def test_chats_go_in_parallel_each_chat_in_order(self):
        """Replies to different chats are sent at once (at most
        telegram_parallel_sends); one chat's replies one at a time, in order."""
        self.fake.send_delay = 0.2
        b = self.bot(FAQBOT_TELEGRAM_PARALLEL_SENDS=4)
        chats = [-4000 - i for i in range(8)]
        asked = [(c, self.fake.user_message(c, QUESTIONS[r], chat_type="group"))
                 for r in range(3) for c in chats]
        ok = self.fake.wait(lambda: all(self.fake.replies_to(c, m) for c, m in asked), 60)
        self.assertTrue(ok, "unanswered questions")
        self.assertGreater(self.fake.max_sending, 1, "chats were served one at a time")
        self.assertLessEqual(self.fake.max_sending, 4, "more sends at once than telegram_parallel_sends")
        self.assertEqual(self.fake.max_sending_chat, 1, "two sends to one chat at once")
        self.first_replies_in_order(asked)
        self.assertEqual(sum(len(self.fake.replies_to(c, m)) for c, m in asked), len(asked))
        self.assertEqual(b.stop(), 0)


class SpecCheck(TelegramCase):
    """The fake's own request check finds what it must (from ../shared/specs
    or the committed extract, whichever this run uses)."""

    def post(self, method, params):
        req = urllib.request.Request(f"{self.fake.url}/bot{TOKEN}/{method}",
                                     data=json.dumps(params).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()

    def test_bad_requests_are_caught(self):
        self.post("sendMessage", {"chat_id": 1, "text": "ok",
                                  "reply_markup": {"inline_keyboard": [[
                                      {"text": "a", "callback_data": "1"}]]}})
        self.assertEqual(self.fake.spec_errors, [])
        self.post("sendMessage", {"chat_id": 1, "txt": "typo"})
        self.post("sendMessage", {"chat_id": 1, "text": "x", "reply_markup": {
            "inline_keyboard": [[{"text": "a", "callback_data": 5}]]}})
        self.post("answerCallbackQuery", {"callback_query_id": 7})
        errors = list(self.fake.spec_errors)
        self.fake.spec_errors.clear()
        self.assertIn("sendMessage: unknown parameter 'txt'", errors)
        self.assertIn("sendMessage: missing required parameter 'text'", errors)
        self.assertTrue(any("callback_data" in e for e in errors), errors)
        self.assertTrue(any(e.startswith("answerCallbackQuery.callback_query_id") for e in errors),
                        errors)
        self.assertEqual(len(errors), 4, errors)


class Queue(TelegramCase):
    """The sender takes the first row that may go now (issue 10)."""
    G = -1009876

    def test_busy_group_does_not_stall_another_chat(self):
        b = self.bot(FAQBOT_TELEGRAM_RATE_LIMITS="true", FAQBOT_FLOOD_MAX=0)
        for i in range(9):   # a group may send 20 a minute (burst 3): 6 of these wait 3 s each
            self.fake.user_message(self.G, "/faq", chat_type="supergroup", from_id=700 + i,
                                   entities=[{"type": "bot_command", "offset": 0, "length": 4}])
        self.answer_in(self.G, 3)
        asked = time.time()
        self.fake.user_message(10, "combien ça coûte ?")
        m = self.answer_in(10, timeout=30)[0]
        waited = m["t"] - asked
        self.assertLess(waited, 2.5, f"chat 10 waited {waited:.1f} s behind the group's queue")
        self.assertLess(len(self.fake.sent_to(self.G)), 9, "the group's queue was not busy")
        self.assertEqual(b.stop(), 0)

    def test_button_presses_do_not_stall_another_chat(self):
        b = self.bot(FAQBOT_TELEGRAM_RATE_LIMITS="true", FAQBOT_FLOOD_MAX=10,
                     FAQBOT_FLOOD_WINDOW=60)
        for _ in range(30):
            self.fake.callback(10, "a:jumeau-b")
        self.answer_in(10, 3)
        asked = time.time()
        self.fake.user_message(11, "combien ça coûte ?")
        m = self.answer_in(11, timeout=40)[0]
        self.assertLess(m["t"] - asked, 2.5, "chat 11 waited behind chat 10's button presses")
        # presses count against the flood limit: 10 answers and one notice at most
        time.sleep(3)
        self.assertLessEqual(len(self.fake.sent_to(10)), 11)
        self.assertEqual(b.stop(), 0)


class Storage(TelegramCase):
    """Storage errors and retention (issue 10)."""
    env = {"FAQBOT_FLOOD_MAX": 0}

    def state(self):
        return os.path.join(self.tmp, "state")

    def test_reused_update_ids_are_answered(self):
        b = self.bot()
        for _ in range(6):
            self.fake.user_message(10, "combien ça coûte ?")
        self.answer_in(10, 6)
        time.sleep(0.5)
        self.fake.restart_update_ids(1000)   # ids 1000.. again, for new messages
        for _ in range(3):
            self.fake.user_message(10, "quel est le prix")
        self.answer_in(10, 9)
        time.sleep(1)
        self.assertEqual(len(self.fake.sent_to(10)), 9)
        # handled updates are not kept: no message text stays in the inbox
        import sqlite3
        db = sqlite3.connect(os.path.join(self.state(), "faqbot.db"))
        self.assertEqual(db.execute("SELECT COUNT(*) FROM inbox").fetchone()[0], 0)
        db.close()
        self.assertEqual(b.stop(), 0)

    def test_retention_runs_while_the_bot_runs(self):
        import sqlite3
        # a 2 s de-duplication window: retention then runs every second
        b = self.bot(FAQBOT_TEST_DEDUP_WINDOW_S=2)
        for i in range(40):
            self.fake.user_message(100 + i % 4, "combien ça coûte ?")
        for c in range(100, 104):
            self.answer_in(c, 10)
        db = sqlite3.connect(os.path.join(self.state(), "faqbot.db"))
        count = lambda t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]  # noqa: E731
        self.assertEqual(count("inbox"), 0)   # deleted as they are handled
        # a sent row's body is blanked when its answer is committed (just after the fake saw it)
        self.assertTrue(self.fake.wait(lambda: db.execute(
            "SELECT COUNT(*) FROM outbox WHERE body<>''").fetchone()[0] == 0, 5))
        self.assertTrue(self.fake.wait(lambda: count("ledger") == 0 and count("outbox") == 0, 10),
                        f"ledger {count('ledger')}, outbox {count('outbox')} rows after the window")
        db.close()
        self.assertEqual(b.stop(), 0)

    def ask_during(self, fault, chats, n=3):
        """Asks n questions in each chat while fault() holds; everything
        must be answered exactly once after it ends."""
        b = self.bot()
        self.fake.user_message(chats[0], "combien ça coûte ?")
        self.answer_in(chats[0])
        asked = []
        with fault():
            for i in range(n):
                for c in chats:
                    asked.append((c, self.fake.user_message(c, "combien ça coûte ?")))
                time.sleep(0.3)
            time.sleep(3)
        ok = self.fake.wait(lambda: all(self.fake.sent_to(c) for c, m in asked) and
                            sum(len(self.fake.sent_to(c)) for c in chats) >= len(asked) + 1, 40)
        time.sleep(2)
        total = sum(len(self.fake.sent_to(c)) for c in chats)
        self.assertTrue(ok, f"{total} answers for {len(asked) + 1} questions; per chat "
                        f"{[len(self.fake.sent_to(c)) for c in chats]}; log tail:\n{b.logs()[-6000:]}")
        self.assertEqual(total, len(asked) + 1, "a question was lost or answered twice")
        self.assertIn("store_error", b.logs())
        self.assertIsNone(b.proc.poll())
        self.assertEqual(b.stop(), 0)
        return b

    def test_lock_held_by_another_program(self):
        import contextlib
        import sqlite3

        @contextlib.contextmanager
        def locked():
            db = sqlite3.connect(os.path.join(self.state(), "faqbot.db"), isolation_level=None,
                                 timeout=10)
            db.execute("BEGIN EXCLUSIVE")
            try:
                yield
                time.sleep(4)    # held 7 s and more: faqbot retries every second meanwhile
            finally:
                db.execute("ROLLBACK")
                db.close()
        b = self.ask_during(locked, [51, 52])
        self.assertIn("locked", b.logs())

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("mount"), "needs root to mount a tmpfs")
    def test_disk_full(self):
        import contextlib
        os.makedirs(self.state())
        # room for the database and a full WAL (STORE_WAL_CHECKPOINT_PAGES, 4 MB):
        # the filler below takes every byte left, whatever the size
        if subprocess.call(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", self.state()],
                           stderr=subprocess.DEVNULL):
            self.skipTest("cannot mount a tmpfs here")
        self.addCleanup(subprocess.call, ["umount", "-l", self.state()])
        filler = os.path.join(self.state(), "filler")

        @contextlib.contextmanager
        def full():
            with open(filler, "wb", buffering=0) as f:
                try:
                    while True:
                        f.write(b"\0" * 4096)
                        f.flush()
                except OSError:
                    pass
            # the WAL may have room in pages it already holds: fill it too
            try:
                yield
            finally:
                os.unlink(filler)
        b = self.ask_during(full, [61, 62], n=6)
        self.assertIn("disk is full", b.logs())


if __name__ == "__main__":
    try:
        unittest.main(verbosity=1)
    finally:
        shutil.rmtree(LOGDIR, ignore_errors=True)
