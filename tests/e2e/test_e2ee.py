#!/usr/bin/env python3
"""End-to-end tests of faqbot in encrypted Matrix rooms (issue 11), with a
real end-to-end encrypting client on the other side: Debian's
python3-matrix-nio with python3-olm (tests/e2e/e2ee_client.py), through the
fake homeserver (tests/fake/matrix.py, matrix_e2ee.py), which routes device
keys, one-time keys and to-device messages as the Client-Server API says.

Written from the issue and the Matrix specification, not from the bot's code.
Every scenario checks, for each question, that:
  - the bot sent EXACTLY ONE reply to it (found by the relation in clear on
    the wire: the m.relates_to of an m.room.encrypted event stays outside the
    ciphertext, spec "End-to-end encryption" / m.room.encrypted);
  - that reply is an m.room.encrypted Megolm event on the wire;
  - the nio client decrypts it to an m.notice carrying the FAQ entry's answer;
and, for each encrypted room, that the bot never posted a plain event there
(hello and notices included): every non-state event from the bot in the
room's timeline after m.room.encryption is m.room.encrypted.

The settings used: matrix_encryption (true by default; false in
test_09) and matrix_pickle_key (set in test_03 and test_14; elsewhere unset,
so the bot generates a key file in its state directory), and the bot's test
knob FAQBOT_TEST_KEY_WAIT_S (test_06b: a key that never comes is given up
after 4 s instead of 30 s / 10 min).  FAQBOT_FLOOD_MAX=0: one person asks
many questions here.

The fake can hold back, drop or inject to-device messages, switch a room to
encryption, add and remove members; nio plays alice, bob... (one store each,
several devices for one person are several User objects).

Run alone: FAQBOT=build/faqbot /usr/bin/python3 tests/e2e/test_e2ee.py
(the Python must have nio and olm: tests/run.sh picks one, or skips).
"""
import asyncio
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fake"))
sys.path.insert(0, HERE)
try:
    import olm  # noqa: F401
    from nio import MegolmEvent, RoomMessageNotice  # noqa: F401
except ImportError:
    print("test_e2ee: SKIP: this Python has no nio/olm (Debian: apt-get install python3-matrix-nio "
          "python3-olm; run with /usr/bin/python3)", file=sys.stderr)
    sys.exit(77)

from e2ee_client import E2EEClient  # noqa: E402
from harness import FORMATTED_ENTRIES, LOGDIR, Bot, add_entries, run_cli, write_faq  # noqa: E402
from matrix import BOT, PASSWORD, FakeMatrix  # noqa: E402
from matrix_e2ee import ALG_MEGOLM, ALG_OLM, canonical_json  # noqa: E402

# questions of the test FAQ (harness.write_faq) and the answer each gets
COUT = ("combien ça coûte ?", "Le ticket d'entrée est modeste.")
ETUDE = ("c'est quoi une étude ?", "Plusieurs souscripteurs financent l'étude.")
TVA = ("quelle TVA est appliquée ?", 'Prix <b>HT</b> < 10 € & TVA > 0 "incluse"')
PICKLE_KEY = "pickle-key-9f1c2b7e-do-not-log"


class User:
    """A person on a real E2EE client (nio), driven synchronously: every
    call runs the client's coroutines to their end on the test's loop."""

    def __init__(self, case, localpart, password=None):
        self.case = case
        self.fake = case.fake
        self.password = password or localpart + "-pw"
        self.id = self.fake.add_user(localpart, self.password)
        store = tempfile.mkdtemp(prefix=localpart + "-", dir=case.tmp)
        self.c = E2EEClient(self.fake.url, self.id, store)
        self.seen = {}        # event_id -> nio event (decrypted, or MegolmEvent while it is not)
        self.device = None
        case.users.append(self)

    def run(self, coro):
        return self.case.loop.run_until_complete(coro)

    def start(self):
        self.run(self.c.start(self.password))
        self.device = self.c.device_id
        return self

    def sync(self, timeout_ms=0):
        """One /sync; records every timeline event, retries the ones that
        did not decrypt yet (their key may have come since), keeps keys
        queried and one-time keys topped up."""
        r = self.run(self.c.sync(timeout=timeout_ms))
        for rid, info in (getattr(r, "rooms", None) and r.rooms.join or {}).items():
            for ev in info.timeline.events:
                if getattr(ev, "event_id", None):
                    if isinstance(ev, MegolmEvent) and not ev.room_id:
                        ev.room_id = rid
                    self.seen[ev.event_id] = ev
        for eid, ev in list(self.seen.items()):
            if isinstance(ev, MegolmEvent):
                try:
                    d = self.c.decrypt_event(ev)
                except Exception:  # nio's EncryptionError: not yet
                    d = None
                if d is not None and not isinstance(d, MegolmEvent):
                    self.seen[eid] = d
        if self.c.should_query_keys:
            self.run(self.c.keys_query())
        if self.c.should_upload_keys:
            self.run(self.c.keys_upload())
        return r

    def ask(self, room, text, mention=False, thread=None):
        """Sends text as an m.text (encrypted when nio knows the room is);
        mention: addressed to the bot as in a group room.  Returns the event id."""
        self.sync()
        content = {"msgtype": "m.text", "body": text}
        if mention:
            content["body"] = "faqbot: " + text
            content["m.mentions"] = {"user_ids": [BOT]}
        if thread:
            content["m.relates_to"] = {"rel_type": "m.thread", "event_id": thread,
                                       "is_falling_back": True, "m.in_reply_to": {"event_id": thread}}
        r = self.run(self.c.room_send(room, "m.room.message", content, ignore_unverified_devices=True))
        eid = getattr(r, "event_id", None)
        self.case.assertTrue(eid, f"{self.id} could not send: {r}")
        return eid

    def decrypted(self, event_ids, seconds=20):
        """Syncs until every event id decrypted; returns {id: nio event}
        (an undecrypted one stays a MegolmEvent, a missing one None)."""
        end = time.time() + seconds
        while time.time() < end:
            if all(e in self.seen and not isinstance(self.seen[e], MegolmEvent) for e in event_ids):
                break
            self.sync(timeout_ms=500)
        return {e: self.seen.get(e) for e in event_ids}

    def close(self):
        self.run(self.c.close())


class E2EECase(unittest.TestCase):
    env = {}

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="faqbot-e2ee-")
        self.faq = os.path.join(self.tmp, "faq.json")
        write_faq(self.faq)
        self.fake = FakeMatrix()
        self.loop = asyncio.new_event_loop()
        self.bots = []
        self.users = []
        self.secrets = []

    def tearDown(self):
        for b in self.bots:
            if b.proc and b.proc.poll() is None:
                b.kill()
        for u in self.users:
            try:
                u.close()
            except Exception:
                pass
        self.loop.close()
        self.fake.close()
        self.assertEqual(self.fake.spec_errors, [], "requests that do not match the Matrix spec")
        for b in self.bots:
            if os.path.exists(b.log):
                text = b.logs()
                for s in [PASSWORD, "tok-DEV"] + self.secrets:
                    self.assertNotIn(s, text, "a secret is in the log")
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- the bot ---------------------------------------------------------

    def bot(self, **env):
        settings = dict(FAQBOT_MATRIX_HOMESERVER=self.fake.url, FAQBOT_MATRIX_USER="faqbot",
                        FAQBOT_MATRIX_PASSWORD=PASSWORD, FAQBOT_MATRIX_SYNC_TIMEOUT=2,
                        FAQBOT_STATE_DIR=os.path.join(self.tmp, "state"), FAQBOT_FAQ=self.faq,
                        FAQBOT_FLOOD_MAX=0)
        b = Bot(**{**settings, **self.env, **env})
        self.bots.append(b)
        return b.start()

    def bot_device(self):
        devs = self.fake.devices_of(BOT)
        return devs[0] if devs else None

    def ready(self, b, keys=True):
        """The bot runs, (keys) uploaded its device keys, and has asked
        for a /sync after its first one (so it took that one in)."""
        first = self.fake.bot_syncs

        def ok():
            if b.proc.poll() is not None:
                return True
            return self.fake.bot_syncs >= first + 2 and (not keys or self.fake.devices_of(BOT))
        self.fake.wait(ok, 20)
        self.assertIsNone(b.proc.poll(), "the bot exited:\n" + b.logs()[-3000:])
        if keys:
            self.assertTrue(self.fake.devices_of(BOT),
                            "the bot uploaded no device keys (/keys/upload): it cannot take part in "
                            "encrypted rooms\n" + b.logs()[-2000:])

    # ---- what the room holds -------------------------------------------

    def event(self, room, event_id):
        """The event as the homeserver holds it."""
        with self.fake.lock:
            return next(e for p, e in self.fake.rooms[room]["events"] if e["event_id"] == event_id)

    def pos_of(self, room, event_id):
        with self.fake.lock:
            return next(p for p, e in self.fake.rooms[room]["events"] if e["event_id"] == event_id)

    def bot_events(self, room, after=0):
        """The bot's non-state events in room after position after, as on the wire."""
        with self.fake.lock:
            return [dict(e) for p, e in self.fake.rooms[room]["events"]
                    if p > after and e["sender"] == BOT and "state_key" not in e]

    def encryption_pos(self, room):
        with self.fake.lock:
            ps = [p for p, e in self.fake.rooms[room]["events"] if e["type"] == "m.room.encryption"]
        return ps[0] if ps else None

    def assert_no_clear(self, room):
        """Nothing from the bot in clear after the room turned encrypted."""
        start = self.encryption_pos(room)
        self.assertIsNotNone(start, f"{room} is not encrypted")
        clear = [(e["type"], e["content"].get("body")) for e in self.bot_events(room, start)
                 if e["type"] != "m.room.encrypted"]
        self.assertEqual(clear, [], f"the bot posted in clear text into the encrypted room {room}")

    def wire_reply(self, room, q, seconds=30):
        """The one bot event replying to q (relation read in clear)."""
        def replies():
            return [e for e in self.bot_events(room) if
                    (((e["content"].get("m.relates_to") or {}).get("m.in_reply_to") or {})
                     .get("event_id")) == q]
        self.fake.wait(lambda: replies(), seconds)
        got = replies()
        if not got:
            sent = [(e["type"], sorted(e["content"])) for e in self.bot_events(room)]
            self.fail(f"no reply to {q} in {room} whose m.relates_to (outside the ciphertext) "
                      f"names it; the bot sent there: {sent}\n" + self.bots[-1].logs()[-2500:])
        return got

    def expect_answers(self, user, room, asked, encrypted=True, thread=None, settle=0.5):
        """asked: [(question event id, answer)].  Exactly one reply each,
        encrypted (or not) on the wire, decrypted by user's client to the
        answer.  Returns {question id: reply event on the wire}."""
        for q, _ in asked:
            self.wire_reply(room, q)
        time.sleep(settle)                      # room for a duplicate to show
        wire = {}
        for q, _ in asked:
            got = self.wire_reply(room, q, 0)
            self.assertEqual(len(got), 1, f"{len(got)} replies to {q}")
            wire[q] = got[0]
        for q, answer in asked:
            e = wire[q]
            if encrypted:
                self.assertEqual(e["type"], "m.room.encrypted", f"reply to {q} sent in clear")
                self.assertEqual(e["content"].get("algorithm"), ALG_MEGOLM)
                for k in ("body", "formatted_body", "msgtype"):
                    self.assertNotIn(k, e["content"], f"{k} in clear beside the ciphertext")
            else:
                self.assertEqual(e["type"], "m.room.message")
                self.assertEqual(e["content"]["body"], answer)
            rel = e["content"]["m.relates_to"]
            if thread:
                self.assertEqual((rel.get("rel_type"), rel.get("event_id")), ("m.thread", thread),
                                 "the thread relation must be in clear beside the ciphertext")
        if encrypted:
            got = user.decrypted([wire[q]["event_id"] for q, _ in asked])
            for q, answer in asked:
                ev = got[wire[q]["event_id"]]
                self.assertIsNotNone(ev, f"{user.id}'s client never saw the reply to {q}")
                self.assertNotIsInstance(ev, MegolmEvent,
                                         f"{user.id} ({user.device}) cannot decrypt the reply to {q}")
                self.assertIsInstance(ev, RoomMessageNotice)
                self.assertEqual(ev.body, answer)
                self.check_megolm_payload(user, room, wire[q])
        return wire

    def check_megolm_payload(self, user, room, e):
        """The decrypted Megolm payload of the bot's event e holds type,
        content and the room's id (spec, m.megolm.v1.aes-sha2), read with
        the session user's client received."""
        c = e["content"]
        sess = user.c.olm.inbound_group_store.get(room, c.get("sender_key"), c["session_id"])
        if sess is None:             # no sender_key (deprecated): nio's store is keyed by it
            return
        plain, _ = sess.decrypt(c["ciphertext"])
        payload = json.loads(plain)
        self.assertEqual((payload.get("type"), payload.get("room_id")), ("m.room.message", room),
                         "the Megolm payload does not name the event type and this room")
        self.assertEqual(payload["content"].get("msgtype"), "m.notice")

    def alice_dm(self, b=None, **env):
        """An encrypted direct room, the bot ready, alice on nio."""
        room = self.fake.create_room(["@alice:localhost"], encrypted=True)
        b = b or self.bot(**env)
        self.ready(b)
        alice = User(self, "alice").start()
        return room, b, alice


class Scenarios(E2EECase):
    def test_01_dm_encrypted_from_the_start(self):
        """A direct room encrypted from its creation: every question gets
        one encrypted answer; an invitation into another encrypted room is
        greeted with an encrypted hello (never in clear)."""
        room, b, alice = self.alice_dm()
        asked = [(alice.ask(room, q), a) for q, a in (COUT, ETUDE, TVA)]
        self.expect_answers(alice, room, asked)
        # invited into a second encrypted direct room: the hello is encrypted
        r2 = self.fake.create_room([alice.id], bot=False, encrypted=True)
        self.fake.invite(r2, alice.id)
        self.assertTrue(self.fake.wait(lambda: self.bot_events(r2), 20),
                        "no hello after the invitation\n" + b.logs()[-2000:])
        hello = self.bot_events(r2)[0]
        self.assertEqual(hello["type"], "m.room.encrypted", "the hello went in clear")
        got = alice.decrypted([hello["event_id"]])[hello["event_id"]]
        self.assertIsInstance(got, RoomMessageNotice, "alice cannot decrypt the hello")
        q = alice.ask(r2, COUT[0])
        self.expect_answers(alice, r2, [(q, COUT[1])])
        self.assert_no_clear(room)
        self.assert_no_clear(r2)
        self.assertEqual(len(self.bot_events(room)), 3)
        self.assertEqual(b.stop(), 0)

    def test_01b_hello_when_the_invite_does_not_say_encrypted(self):
        """The invitation's stripped state need not carry m.room.encryption
        (the spec lists it among the events a server SHOULD include); the
        room is encrypted all the same, and the state of the first /sync
        after the join says so.  The hello must not go out in clear before
        the bot knows the room's state."""
        alice = User(self, "alice")
        b = self.bot()
        self.ready(b)
        alice.start()
        r2 = self.fake.create_room([alice.id], bot=False, encrypted=True)
        self.fake.invite(r2, alice.id, stripped_state=False)
        self.assertTrue(self.fake.wait(lambda: self.bot_events(r2), 20),
                        "no hello after the invitation\n" + b.logs()[-2000:])
        self.assert_no_clear(r2)
        hello = self.bot_events(r2)[0]
        got = alice.decrypted([hello["event_id"]])[hello["event_id"]]
        self.assertIsInstance(got, RoomMessageNotice, "alice cannot decrypt the hello")
        self.assertEqual(b.stop(), 0)

    def test_01c_long_answer_in_parts(self):
        """A long answer (harness.LONG_FORMATTED, 400 formatted lines,
        split in several events as test_matrix checks in clear) in an
        encrypted room: every part encrypted, under the event size limit
        once encrypted (the fake checks 65,536 bytes), decrypted by alice,
        every line in exactly one part."""
        add_entries(self.faq, FORMATTED_ENTRIES)
        room, b, alice = self.alice_dm()
        alice.ask(room, "quels sont tous les points du règlement ?")
        self.assertTrue(self.fake.wait(lambda: len(self.bot_events(room)) >= 2, 20),
                        "the long answer did not come in several parts\n" + b.logs()[-2000:])
        time.sleep(1.0)
        parts = self.bot_events(room)
        self.assertEqual([e["type"] for e in parts], ["m.room.encrypted"] * len(parts))
        got = alice.decrypted([e["event_id"] for e in parts])
        bodies = []
        for e in parts:
            ev = got[e["event_id"]]
            self.assertIsInstance(ev, RoomMessageNotice, f"alice cannot decrypt part {e['event_id']}")
            bodies.append(ev.body)
        text = "\n".join(bodies)
        for i in range(400):
            self.assertEqual(text.count(f"Point n°{i} :"), 1, i)
        self.assertEqual(b.stop(), 0)

    def test_02_group_room_turns_encryption_on(self):
        """A group room in clear, the bot in it; questions in clear get
        answers in clear; then m.room.encryption arrives: later questions
        (and a thread) get encrypted answers, with no "I cannot read this"
        notice, and a clear question sent after the switch (a careless
        client) is answered encrypted too."""
        alice = User(self, "alice")
        carol = "@carol:localhost"                 # a member without any device
        room = self.fake.create_room([alice.id, carol])
        b = self.bot()
        self.ready(b)
        alice.start()
        q1 = alice.ask(room, COUT[0], mention=True)
        self.expect_answers(alice, room, [(q1, COUT[1])], encrypted=False)
        self.fake.enable_encryption(room, alice.id)
        time.sleep(0.5)
        alice.sync()
        q2 = alice.ask(room, ETUDE[0], mention=True)
        self.assertEqual(self.event(room, q2)["type"], "m.room.encrypted")
        root = alice.ask(room, "un fil de discussion")
        q3 = alice.ask(room, TVA[0], mention=True, thread=root)
        self.expect_answers(alice, room, [(q2, ETUDE[1])])
        self.expect_answers(alice, room, [(q3, TVA[1])], thread=root)
        q4 = self.fake.user_message(room, alice.id, "faqbot: " + COUT[0], mentions=[BOT])
        self.expect_answers(alice, room, [(q4, COUT[1])])
        cmd = alice.ask(room, "!aide")
        help_reply = self.wire_reply(room, cmd)[0]
        self.assertEqual(help_reply["type"], "m.room.encrypted", "the !aide reply went in clear")
        got = alice.decrypted([help_reply["event_id"]])[help_reply["event_id"]]
        self.assertIsInstance(got, RoomMessageNotice)
        self.assertIn("!faq", got.body)
        self.assertEqual(len(self.bot_events(room, self.encryption_pos(room))), 4,
                         "the bot sent something besides the 4 replies after the switch")
        self.assert_no_clear(room)
        self.assertEqual(b.stop(), 0)

    def test_03_restart_with_encrypted_questions_pending(self):
        """Questions (and a new room key) sent while the bot is stopped are
        all answered once after its restart; the bot keeps its device and
        identity keys; the pickle key (matrix_pickle_key) is not in the
        log nor in the database."""
        self.secrets.append(PICKLE_KEY)
        room, b, alice = self.alice_dm(FAQBOT_MATRIX_PICKLE_KEY=PICKLE_KEY)
        dev = self.bot_device()
        keys_before = self.fake.device_keys[(BOT, dev)]
        q1 = alice.ask(room, COUT[0])
        self.expect_answers(alice, room, [(q1, COUT[1])])
        self.assertEqual(b.stop(), 0)
        q2 = alice.ask(room, ETUDE[0])
        alice.c.olm.outbound_group_sessions.pop(room, None)   # next: a new session, shared now
        q3 = alice.ask(room, TVA[0])
        q4 = alice.ask(room, COUT[0])
        b = self.bot(FAQBOT_MATRIX_PICKLE_KEY=PICKLE_KEY)
        self.expect_answers(alice, room, [(q2, ETUDE[1]), (q3, TVA[1]), (q4, COUT[1])])
        self.assertEqual(self.fake.devices_of(BOT), [dev], "the bot has another device")
        self.assertEqual(self.fake.device_keys[(BOT, dev)], keys_before, "the bot's device keys changed")
        devices = [l.get("device_id") for l in self.fake.logins if
                   (l.get("identifier") or {}).get("user") in ("faqbot", BOT)]
        self.assertTrue(devices and devices[0] is None and all(d == dev for d in devices[1:]),
                        f"the bot's logins did not keep its device {dev}: {devices}")
        self.assert_no_clear(room)
        self.assertEqual(b.stop(), 0)
        for top, _, files in os.walk(os.path.join(self.tmp, "state")):
            for name in files:
                with open(os.path.join(top, name), "rb") as f:
                    self.assertNotIn(PICKLE_KEY.encode(), f.read(), f"the pickle key is written in {name}")

    def test_04_member_with_two_devices(self):
        """alice on two devices: both decrypt the bot's replies; a third
        device that logs in later decrypts the replies sent after it did."""
        room, b, alice = self.alice_dm()
        alice2 = User(self, "alice").start()
        self.assertNotEqual(alice.device, alice2.device)
        q1 = alice.ask(room, COUT[0])
        self.expect_answers(alice, room, [(q1, COUT[1])])
        self.expect_answers(alice2, room, [(q1, COUT[1])], settle=0)
        alice3 = User(self, "alice").start()
        time.sleep(1.0)
        q2 = alice2.ask(room, ETUDE[0])
        for u in (alice, alice2, alice3):
            self.expect_answers(u, room, [(q2, ETUDE[1])], settle=0)
        self.assert_no_clear(room)
        self.assertEqual(b.stop(), 0)

    def test_05_member_joins_then_leaves(self):
        """bob joins a group room: the bot's next replies decrypt on his
        device, and his own question is answered.  Then bob leaves: the
        next reply uses a new Megolm session (another session_id), and no
        to-device message from the bot reaches bob's device afterwards.
        bob, having logged in on a second device meanwhile, comes back: the
        next reply decrypts on both his devices."""
        alice = User(self, "alice")
        bob = User(self, "bob")
        carol = "@carol:localhost"
        room = self.fake.create_room([alice.id, carol], encrypted=True)
        b = self.bot()
        self.ready(b)
        alice.start()
        bob.start()
        q1 = alice.ask(room, COUT[0], mention=True)
        self.expect_answers(alice, room, [(q1, COUT[1])])
        self.fake.add_member(room, bob.id)
        time.sleep(0.5)
        alice.sync()
        bob.sync()
        q2 = alice.ask(room, ETUDE[0], mention=True)
        self.expect_answers(bob, room, [(q2, ETUDE[1])])
        q3 = bob.ask(room, TVA[0], mention=True)
        w3 = self.expect_answers(alice, room, [(q3, TVA[1])])
        self.expect_answers(bob, room, [(q3, TVA[1])], settle=0)
        before = w3[q3]["content"]["session_id"]
        self.fake.remove_member(room, bob.id)
        with self.fake.lock:
            mark = len(self.fake.to_device_log)
        time.sleep(0.5)
        alice.sync()
        q4 = alice.ask(room, COUT[0], mention=True)
        w4 = self.expect_answers(alice, room, [(q4, COUT[1])])
        self.assertNotEqual(w4[q4]["content"]["session_id"], before,
                            "the Megolm session was not rotated after bob left")
        with self.fake.lock:
            to_bob = [(t, ty) for s, ty, u, t, _ in self.fake.to_device_log[mark:]
                      if s == BOT and u == bob.id]
        self.assertEqual(to_bob, [], "the bot sent to-device messages to bob after he left")
        # bob, while out, logs in on a second device (the bot shares no room
        # with him: no device-list change reaches it); he comes back: the
        # replies after his return reach both his devices
        bob2 = User(self, "bob").start()
        self.fake.add_member(room, bob.id)
        time.sleep(0.5)
        alice.sync()
        bob.sync()
        bob2.sync()
        q5 = alice.ask(room, TVA[0], mention=True)
        self.expect_answers(bob, room, [(q5, TVA[1])])
        self.expect_answers(bob2, room, [(q5, TVA[1])], settle=0)
        self.assert_no_clear(room)
        self.assertEqual(b.stop(), 0)

    def test_05b_member_event_during_keys_query(self):
        """A member event synced while the bot's /keys/query is in flight
        (it drops the room's cached member list): the reply is still
        encrypted for alice's device, not for nobody."""
        alice = User(self, "alice")
        carol = "@carol:localhost"
        room = self.fake.create_room([alice.id, carol], encrypted=True)
        b = self.bot()
        self.ready(b)
        alice.start()
        def hook():
            self.fake.add_member(room, "@dave:localhost")
            time.sleep(3)
        self.fake.bot_query_hook = hook
        q1 = alice.ask(room, COUT[0], mention=True)
        self.expect_answers(alice, room, [(q1, COUT[1])], settle=5)

    def test_05c_member_the_server_did_not_answer_for(self):
        """The bot's /keys/query comes back without alice (her server did
        not answer, named in failures): the reply is not encrypted for
        nobody; it goes later, once alice's devices are known, and she
        decrypts it."""
        alice = User(self, "alice")
        carol = "@carol:localhost"
        room = self.fake.create_room([alice.id, carol], encrypted=True)
        b = self.bot()
        self.ready(b)
        alice.start()
        self.fake.query_omit = {alice.id}
        q1 = alice.ask(room, COUT[0], mention=True)
        self.expect_answers(alice, room, [(q1, COUT[1])])
        self.assertEqual(self.fake.query_omit, set(), "the bot's query was not answered without alice")
        self.assertEqual(b.stop(), 0)

    def test_04b_new_device_while_keys_query_in_flight(self):
        """alice logs in a new device while the bot's /keys/query for her
        is held (its answer lists the old devices only): the bot's list
        must not stay at that older answer, so the next reply reaches the
        new device.  (The bot now asks for a sender's devices before it
        stores the sync batch that carries her room key, which serialises
        this case; the race with a sync in between is the generation test
        of tests/unit/test_store.c.)"""
        room, b, alice = self.alice_dm()
        # the hook runs in the fake's thread and holds the bot's query
        # while this thread (which owns nio's event loop) adds the device
        in_flight, release = threading.Event(), threading.Event()
        def post():
            in_flight.set()
            release.wait(15)
        self.fake.bot_query_post = post
        q1 = alice.ask(room, COUT[0])
        self.assertTrue(in_flight.wait(15), "the bot sent no /keys/query\n" + b.logs()[-2000:])
        try:
            alice2 = User(self, "alice").start()
            time.sleep(1.0)
        finally:
            release.set()
        self.expect_answers(alice, room, [(q1, COUT[1])], settle=1)
        time.sleep(1.0)
        q2 = alice.ask(room, ETUDE[0])
        self.expect_answers(alice2, room, [(q2, ETUDE[1])])

    def test_04c_device_keys_swapped_by_the_server(self):
        """The homeserver hands out other (validly self-signed) keys for
        alice's known device: the bot keeps the keys it knew, says so in
        its log (mx_device_key_changed), and the next room key still goes
        to the real device, which decrypts the reply."""
        import olm
        room, b, alice = self.alice_dm()
        q1 = alice.ask(room, COUT[0])
        self.expect_answers(alice, room, [(q1, COUT[1])])
        evil = olm.Account()
        ids = evil.identity_keys
        dev = alice.device
        with self.fake.lock:
            dk = dict(self.fake.device_keys[(alice.id, dev)])
            dk.pop("signatures", None)
            dk.pop("unsigned", None)
            dk["keys"] = {f"curve25519:{dev}": ids["curve25519"], f"ed25519:{dev}": ids["ed25519"]}
            dk["signatures"] = {alice.id: {f"ed25519:{dev}": evil.sign(canonical_json(dk))}}
            self.fake.device_keys[(alice.id, dev)] = dk
            self.fake.pos += 1
            self.fake.key_changes.append((self.fake.pos, alice.id, None))
            self.fake.lock.notify_all()
        # a member comes and goes: the bot rotates and shares a new room key
        self.fake.add_member(room, "@bob:localhost")
        self.fake.remove_member(room, "@bob:localhost")
        time.sleep(1.5)
        q2 = alice.ask(room, ETUDE[0])
        self.expect_answers(alice, room, [(q2, ETUDE[1])])
        self.assertIn("event=mx_device_key_changed", b.logs())
        self.assertEqual(b.stop(), 0)

    def test_06a_room_key_arrives_after_its_message(self):
        """The to-device room key reaches the bot only after it synced the
        message: the bot waits for it and answers once (no "cannot
        decrypt" notice meanwhile)."""
        room, b, alice = self.alice_dm()
        dev = self.bot_device()
        self.fake.hold_to_device(dev)
        q1 = alice.ask(room, COUT[0])
        q2 = alice.ask(room, ETUDE[0])
        p = self.pos_of(room, q2)
        self.assertTrue(self.fake.wait(lambda: self.fake.bot_synced >= p, 20),
                        "the bot never synced the questions")
        time.sleep(2.0)
        self.assertEqual(self.bot_events(room), [], "the bot said something before it had the key")
        self.fake.release_to_device(dev)
        self.expect_answers(alice, room, [(q1, COUT[1]), (q2, ETUDE[1])])
        self.assertEqual(len(self.bot_events(room)), 2)
        self.assert_no_clear(room)
        self.assertEqual(b.stop(), 0)

    def test_06c_late_key_comes_while_the_bot_is_down(self):
        """The bot synced a question without its key and is stopped; the key
        arrives while it is down; after the restart the question is answered
        once (waiting events survive a restart)."""
        room, b, alice = self.alice_dm()
        dev = self.bot_device()
        self.fake.hold_to_device(dev)
        q1 = alice.ask(room, COUT[0])
        self.assertTrue(self.fake.wait(lambda: self.fake.bot_synced >= self.pos_of(room, q1), 20))
        time.sleep(1.0)
        self.assertEqual(b.stop(), 0)
        self.fake.release_to_device(dev)
        b = self.bot()
        self.expect_answers(alice, room, [(q1, COUT[1])])
        self.assertEqual(len(self.bot_events(room)), 1)
        self.assertEqual(b.stop(), 0)

    def test_06d_requested_key_is_forwarded(self):
        """The room key was lost on the way; the bot asks for it
        (m.room_key_request) and alice's device answers as clients do, with
        an m.forwarded_room_key over Olm (the session exported from its
        first index; alice's own device, so an empty forwarding chain and
        the original sender key).  The waiting question is then answered,
        once: asking for a key is of use only if the answer is taken."""
        room, b, alice = self.alice_dm()
        dev = self.bot_device()
        self.fake.drop_to_device(dev)
        q1 = alice.ask(room, COUT[0])
        sid = self.event(room, q1)["content"]["session_id"]

        def requested():
            with self.fake.lock:
                return [c for s_, ty, u, t, c in self.fake.to_device_log
                        if s_ == BOT and ty == "m.room_key_request" and
                        (c.get("body") or {}).get("session_id") == sid]
        self.assertTrue(self.fake.wait(requested, 20), "no m.room_key_request\n" + b.logs()[-2000:])
        with self.fake.lock:
            self.fake.dropping.discard(dev)
        ak = alice.c.olm.account.identity_keys
        inbound = alice.c.olm.inbound_group_store.get(room, ak["curve25519"], sid)
        self.assertIsNotNone(inbound)
        content = {"algorithm": ALG_MEGOLM, "room_id": room, "sender_key": ak["curve25519"],
                   "session_id": sid, "session_key": inbound.export_session(inbound.first_known_index),
                   "sender_claimed_ed25519_key": ak["ed25519"], "forwarding_curve25519_key_chain": []}
        bot_dev = alice.c.device_store[BOT][dev]
        session = alice.c.olm.session_store.get(bot_dev.curve25519)
        olm_dict = alice.c.olm._olm_encrypt(session, bot_dev, "m.forwarded_room_key", content)
        self.fake.inject_to_device(dev, alice.id, "m.room.encrypted", olm_dict)
        self.expect_answers(alice, room, [(q1, COUT[1])])
        self.assertEqual(len(self.bot_events(room)), 1)
        self.assertEqual(b.stop(), 0)

    def test_06b_room_key_never_arrives(self):
        """The room key never reaches the bot: it asks alice's devices for
        it (m.room_key_request, in clear as the spec says, naming the room
        and the session) and, once its wait is over, posts ONE encrypted
        notice in the room, not one per message.  The bot tells the room
        after 30 s and keeps the events 10 minutes for a late key
        (MX_KEY_NOTICE_MS, MX_KEY_WAIT_MS); FAQBOT_TEST_KEY_WAIT_S, its test
        knob, shortens both to 4 s here."""
        room, b, alice = self.alice_dm(FAQBOT_TEST_KEY_WAIT_S=4)
        self.fake.drop_to_device(self.bot_device())
        qs = [alice.ask(room, q) for q, _ in (COUT, ETUDE, TVA)]
        sid = self.event(room, qs[0])["content"]["session_id"]

        def requests():
            with self.fake.lock:
                return [(t, c) for s, ty, u, t, c in self.fake.to_device_log
                        if s == BOT and ty == "m.room_key_request" and u == alice.id]
        self.assertTrue(self.fake.wait(requests, 20), "no m.room_key_request to alice's devices\n"
                        + b.logs()[-2000:])
        t, c = requests()[0]
        self.assertEqual(t, alice.device)
        self.assertEqual(c["action"], "request")
        self.assertEqual((c["body"]["room_id"], c["body"]["session_id"], c["body"]["algorithm"]),
                         (room, sid, ALG_MEGOLM))
        self.assertEqual(c["requesting_device_id"], self.bot_device())
        self.assertTrue(self.fake.wait(lambda: self.bot_events(room), 30),
                        "no notice about the undecryptable messages\n" + b.logs()[-2000:])
        time.sleep(2.0)
        evs = self.bot_events(room)
        self.assertEqual(len(evs), 1, f"{len(evs)} notices for 3 undecryptable messages")
        self.assertEqual(evs[0]["type"], "m.room.encrypted", "the notice went in clear")
        got = alice.decrypted([evs[0]["event_id"]])[evs[0]["event_id"]]
        self.assertIsInstance(got, RoomMessageNotice, "alice cannot decrypt the notice")
        q = alice.ask(room, ETUDE[0])                 # still undecryptable: no second notice
        self.assertTrue(self.fake.wait(lambda: self.fake.bot_synced >= self.pos_of(room, q), 20))
        time.sleep(2.0)
        self.assertEqual(len(self.bot_events(room)), 1)
        self.assertIsNone(b.proc.poll())
        self.assertEqual(b.stop(), 0)
        # the room was told: not again after a restart either
        b = self.bot(FAQBOT_TEST_KEY_WAIT_S=4)
        q = alice.ask(room, COUT[0])
        self.assertTrue(self.fake.wait(lambda: self.fake.bot_synced >= self.pos_of(room, q), 20))
        time.sleep(5.5)
        self.assertEqual(len(self.bot_events(room)), 1, "a second notice after a restart")
        self.assert_no_clear(room)
        self.assertEqual(b.stop(), 0)

    def test_07_kill_9_mid_stream(self):
        """40 encrypted questions while the bot is SIGKILLed 4 times, alice
        sending a new room key every 10 questions: every one answered
        exactly once, and every reply decrypts (a Megolm message index used
        twice after a crash is refused by nio as a replay)."""
        room, b, alice = self.alice_dm()
        state = {"bot": b, "kills": 0}
        stop = threading.Event()

        def killer():
            rnd = random.Random(7)
            while state["kills"] < 4 and not stop.is_set():
                time.sleep(rnd.uniform(0.4, 1.2))
                state["bot"].kill()
                state["kills"] += 1
                state["bot"] = self.bot()
        t = threading.Thread(target=killer)
        t.start()
        asked = []
        try:
            for i in range(40):
                if i % 10 == 5:    # a new room key from alice now and then, mid-stream
                    alice.c.olm.outbound_group_sessions.pop(room, None)
                q, a = (COUT, ETUDE)[i % 2]
                asked.append((alice.ask(room, q), a))
                time.sleep(0.1)
        finally:
            t.join()
        ok = self.fake.wait(lambda: all(self.wire_reply_count(room, q) for q, _ in asked), 60)
        missing = [q for q, _ in asked if not self.wire_reply_count(room, q)]
        self.assertTrue(ok, f"{len(missing)} of 40 unanswered after {state['kills']} kills\n"
                        + state["bot"].logs()[-2000:])
        self.expect_answers(alice, room, asked, settle=2.0)
        self.assertEqual(len(self.bot_events(room)), 40)
        self.assert_no_clear(room)
        # restarts must not pile one-time keys up on the server: libolm keeps
        # at most 100 private halves, and a claimed key the account forgot
        # makes an Olm session nobody can open
        with self.fake.lock:
            held = len(self.fake.otks.get((BOT, self.bot_device()), {}))
        self.assertLessEqual(held, 100, f"{held} one-time keys of the bot on the server")
        print(f"\n  kill -9 x{state['kills']}: 40 encrypted questions answered once each",
              file=sys.stderr)
        self.assertEqual(state["bot"].stop(), 0)

    def wire_reply_count(self, room, q):
        return sum(1 for e in self.bot_events(room) if
                   (((e["content"].get("m.relates_to") or {}).get("m.in_reply_to") or {})
                    .get("event_id")) == q)

    def test_08_bad_input(self):
        """Malformed m.room.encrypted events, one with an unknown session,
        a replayed question (same session and message index, new event id),
        a room key sent in clear (not over Olm) with a message encrypted
        with it, and garbage to-device events: the bot keeps running, never
        answers any of them, posts at most one notice, and keeps answering
        real questions."""
        room, b, alice = self.alice_dm()
        dev = self.bot_device()
        bot_curve = self.fake.device_keys[(BOT, dev)]["keys"][f"curve25519:{dev}"]
        q1 = alice.ask(room, COUT[0])
        self.expect_answers(alice, room, [(q1, COUT[1])])
        real = self.event(room, q1)["content"]
        self.assertEqual(real.get("algorithm"), ALG_MEGOLM)
        alice_curve = real.get("sender_key") or alice.c.olm.account.identity_keys["curve25519"]
        bad_ids = []

        def room_event(content):
            with self.fake.lock:
                bad_ids.append(self.fake._event(room, alice.id, "m.room.encrypted", content)["event_id"])

        corrupt = real["ciphertext"][:20] + ("A" if real["ciphertext"][20] != "A" else "B") + \
            real["ciphertext"][21:]
        for content in [
            {}, {"algorithm": ALG_MEGOLM}, {"algorithm": ALG_MEGOLM, "ciphertext": 12345, "session_id": 7},
            {"algorithm": ALG_MEGOLM, "ciphertext": "!!!not base64!!!", "session_id": "unknown-session",
             "sender_key": alice_curve, "device_id": alice.device},
            {**real, "ciphertext": corrupt},
            {**real, "ciphertext": real["ciphertext"][:30]},
            {**real, "session_id": {"x": 1}},
            {"algorithm": ALG_OLM, "ciphertext": {bot_curve: {"type": 0, "body": "AAAA"}},
             "sender_key": alice_curve},
            {"algorithm": "m.megolm.v2.unknown", "ciphertext": "AAAA", "session_id": "s"},
            {"algorithm": ALG_MEGOLM, "ciphertext": "A" * 60000, "session_id": "s" * 1000},
            {"algorithm": ALG_MEGOLM, "ciphertext": "é\ud7ff\u0001", "session_id": "\u0001"},
            [], "just a string", None,
        ]:
            room_event(content)
        # the very question again, under a new event id: a replay
        room_event(dict(real))
        # and in another room the bot shares with alice (a session is bound
        # to its room: m.room_key's room_id, and the payload's room_id)
        other = self.fake.create_room([alice.id], encrypted=True)
        with self.fake.lock:
            copied = self.fake._event(other, alice.id, "m.room.encrypted", dict(real))["event_id"]
        # a room key in clear (it must come over Olm) and a message encrypted with it
        ogs = olm.OutboundGroupSession()
        self.fake.inject_to_device(dev, alice.id, "m.room_key", {
            "algorithm": ALG_MEGOLM, "room_id": room, "session_id": ogs.id, "session_key": ogs.session_key})
        payload = {"type": "m.room.message", "room_id": room,
                   "content": {"msgtype": "m.text", "body": ETUDE[0]}}
        room_event({"algorithm": ALG_MEGOLM, "ciphertext": ogs.encrypt(json.dumps(payload)),
                    "session_id": ogs.id, "sender_key": alice_curve, "device_id": alice.device})
        # garbage to-device events
        for etype, content in [
            ("m.room.encrypted", {"algorithm": ALG_OLM, "sender_key": alice_curve,
                                  "ciphertext": {bot_curve: {"type": 0, "body": "garbage"}}}),
            ("m.room.encrypted", {"algorithm": ALG_OLM, "sender_key": alice_curve,
                                  "ciphertext": {bot_curve: {"type": 1, "body": "AAAAAAAAAAAA"}}}),
            ("m.room.encrypted", {"algorithm": ALG_OLM, "sender_key": alice_curve,
                                  "ciphertext": {bot_curve: {"type": 7, "body": 3}}}),
            ("m.room.encrypted", {"algorithm": ALG_OLM, "sender_key": alice_curve,
                                  "ciphertext": {"not-my-key": {"type": 0, "body": "AAAA"}}}),
            ("m.room.encrypted", {"algorithm": ALG_OLM, "ciphertext": "not a map"}),
            ("m.room.encrypted", None),
            ("m.room.encrypted", [1, 2, 3]),
            ("m.forwarded_room_key", {"algorithm": ALG_MEGOLM, "room_id": room, "session_id": "x",
                                      "session_key": "AAAA", "sender_key": alice_curve}),
            ("m.room_key", {"algorithm": ALG_MEGOLM}),
            ("m.room_key_request", {"action": "request", "requesting_device_id": alice.device,
                                    "request_id": "r1", "body": {"algorithm": ALG_MEGOLM,
                                                                 "room_id": room, "session_id": "nope"}}),
            ("m.room_key_request", {"action": 5}),
            ("m.dummy", {}),
            ("x.unknown", {"deep": [[[[[[[[[[{"a": "b" * 5000}]]]]]]]]]]}),
        ]:
            self.fake.inject_to_device(dev, alice.id, etype, content)
        self.assertTrue(self.fake.wait(lambda: self.fake.bot_synced >= self.fake.pos, 20))
        q2 = alice.ask(room, ETUDE[0])
        self.expect_answers(alice, room, [(q2, ETUDE[1])], settle=2.0)
        self.assertIsNone(b.proc.poll(), "the bot died on bad input:\n" + b.logs()[-3000:])
        for e in bad_ids:
            self.assertEqual(self.wire_reply_count(room, e), 0,
                             f"the bot answered a bad or forged event {e}")
        self.assertEqual(self.wire_reply_count(other, copied), 0,
                         "the bot answered a question copied from another room")
        self.assert_no_clear(other)
        others = [e for e in self.bot_events(room) if e["event_id"] not in
                  (self.wire_reply(room, q1, 0)[0]["event_id"], self.wire_reply(room, q2, 0)[0]["event_id"])]
        self.assertLessEqual(len(others), 1, f"{len(others)} notices about bad events (at most one)")
        self.assert_no_clear(room)
        self.assertEqual(b.stop(), 0)

    def test_08c_redacted_encrypted_event_is_no_loss(self):
        """A redacted m.room.encrypted event (content {}, the redaction in
        unsigned.redacted_because) was removed on purpose: no notice in the
        room, not logged as given up, and the next question is answered."""
        room, b, alice = self.alice_dm()
        with self.fake.lock:
            self.fake._event(room, alice.id, "m.room.encrypted", {}, unsigned={"redacted_because": {
                "type": "m.room.redaction", "sender": alice.id, "event_id": "$redaction1",
                "origin_server_ts": int(time.time() * 1000), "content": {}}})
        self.assertTrue(self.fake.wait(lambda: self.fake.bot_synced >= self.fake.pos, 20))
        q1 = alice.ask(room, COUT[0])
        self.expect_answers(alice, room, [(q1, COUT[1])], settle=2.0)
        reply = self.wire_reply(room, q1, 0)[0]["event_id"]
        others = [e for e in self.bot_events(room) if e["event_id"] != reply]
        self.assertEqual(others, [], "the bot posted about a redacted event")
        self.assertNotIn("undecryptable_given_up", b.logs())
        self.assertEqual(b.stop(), 0)

    def test_08b_nul_in_an_event_does_not_stop_the_sync(self):
        """A \\u0000 escape in one event's ciphertext (valid JSON; a
        malicious or broken client can send it) must cost at most that event.
        Bug (in src/matrix.c, older than the encryption work): the /sync
        answer is parsed with json_loadb(..., 0, ...), and jansson refuses
        \\u0000 unless given JSON_ALLOW_NUL; the whole answer is refused
        ("the sync answer has no next_batch"), the same batch is asked again
        forever, and no room is answered any more."""
        room, b, alice = self.alice_dm()
        with self.fake.lock:
            bad = self.fake._event(room, alice.id, "m.room.encrypted",
                                   {"algorithm": ALG_MEGOLM, "ciphertext": "é\u0000x",
                                    "session_id": "\u0000"})["event_id"]
        q = alice.ask(room, COUT[0])
        self.expect_answers(alice, room, [(q, COUT[1])])
        self.assertEqual(self.wire_reply_count(room, bad), 0)
        self.assertEqual(b.stop(), 0)

    def test_10_encryption_known_from_the_sync_state(self):
        """First start in a group room whose m.room.encryption is older
        than the first /sync's timeline (50 events): the server gives it
        in the room's state block only.  The bot must know the room is
        encrypted: a question sent in clear is answered encrypted (or not
        at all), never in clear; alice's encrypted question gets an
        encrypted answer."""
        alice = User(self, "alice")
        carol = "@carol:localhost"
        room = self.fake.create_room([alice.id, carol], encrypted=True)
        for i in range(60):
            self.fake.user_message(room, carol, f"bavardage {i}")
        b = self.bot()
        self.ready(b)
        # first a question in clear, before any encrypted event could tell
        q2 = self.fake.user_message(room, carol, "faqbot: " + ETUDE[0], mentions=[BOT])
        self.assertTrue(self.fake.wait(lambda: self.fake.bot_synced >= self.pos_of(room, q2), 20))
        time.sleep(1.5)
        self.assert_no_clear(room)
        alice.start()
        q1 = alice.ask(room, COUT[0], mention=True)
        self.expect_answers(alice, room, [(q1, COUT[1])])
        self.assert_no_clear(room)
        self.assertEqual(b.stop(), 0)

    def test_10b_room_turns_encrypted_while_the_bot_is_down(self):
        """The room turns encrypted while the bot is stopped, and 60 events
        follow: the next /sync is limited and m.room.encryption is only in
        its state block (or in the gap the bot fills).  Questions asked
        meanwhile get encrypted answers, never clear ones."""
        alice = User(self, "alice")
        carol = "@carol:localhost"
        room = self.fake.create_room([alice.id, carol])
        b = self.bot()
        self.ready(b)
        alice.start()
        q0 = alice.ask(room, TVA[0], mention=True)
        self.expect_answers(alice, room, [(q0, TVA[1])], encrypted=False, settle=0)
        self.assertEqual(b.stop(), 0)
        self.fake.enable_encryption(room, alice.id)
        alice.sync()
        q2 = self.fake.user_message(room, carol, "faqbot: " + ETUDE[0], mentions=[BOT])
        q1 = alice.ask(room, COUT[0], mention=True)
        for i in range(60):
            self.fake.user_message(room, carol, f"bavardage {i}")
        b = self.bot()
        self.expect_answers(alice, room, [(q1, COUT[1])])
        self.assertTrue(self.fake.wait(lambda: self.fake.bot_synced >= self.fake.pos, 20))
        time.sleep(1.0)
        self.assertLessEqual(self.wire_reply_count(room, q2), 1)
        self.assert_no_clear(room)
        self.assertEqual(b.stop(), 0)

    def test_10c_switch_after_the_question_before_the_reply(self):
        """The room turns encrypted after a question in clear and before the
        bot's reply went out: (a) both in one /sync while the bot was down;
        (b) the reply was refused twice (500) while the switch happened.
        The reply must go out encrypted (alice decrypts it), never in clear
        into the now encrypted room."""
        alice = User(self, "alice")
        carol = "@carol:localhost"
        room = self.fake.create_room([alice.id, carol])
        room2 = self.fake.create_room([alice.id, carol])
        b = self.bot()
        self.ready(b)
        alice.start()
        self.assertEqual(b.stop(), 0)
        q1 = alice.ask(room, COUT[0], mention=True)          # in clear
        self.fake.enable_encryption(room, alice.id)
        b = self.bot()
        self.expect_answers(alice, room, [(q1, COUT[1])])
        # (b) another room in clear, the reply delayed by errors
        self.fake.fault("send", "status", times=2, status=500, errcode="M_UNKNOWN")
        q2 = self.fake.user_message(room2, alice.id, "faqbot: " + ETUDE[0], mentions=[BOT])
        self.assertTrue(self.fake.wait(lambda: not self.fake.faults.get("send"), 20),
                        "the bot did not try to send")
        self.fake.enable_encryption(room2, alice.id)
        alice.sync()
        self.expect_answers(alice, room2, [(q2, ETUDE[1])])
        self.assert_no_clear(room)
        self.assert_no_clear(room2)
        self.assertEqual(b.stop(), 0)

    def test_10d_room_encrypted_before_an_upgrade(self):
        """An install from before encryption support: the room is encrypted
        but the bot's state does not know it (no mx_rooms row) and no later
        sync carries the room's state.  A plain question there (an old
        client) is answered encrypted: before its first send into the room
        the bot asks the room's m.room.encryption state, once."""
        alice = User(self, "alice")
        carol = "@carol:localhost"
        room = self.fake.create_room([alice.id, carol], encrypted=True)
        b = self.bot()
        self.ready(b)
        alice.start()
        self.assertEqual(b.stop(), 0)
        con = sqlite3.connect(os.path.join(self.tmp, "state", "faqbot.db"))
        con.execute("DELETE FROM mx_rooms")
        con.execute("DELETE FROM kv WHERE key LIKE 'matrix.enc_checked.%'")
        con.commit()
        con.close()
        b = self.bot()
        self.ready(b)
        q1 = self.fake.user_message(room, carol, "faqbot: " + COUT[0], mentions=[BOT])
        self.expect_answers(alice, room, [(q1, COUT[1])])
        q2 = self.fake.user_message(room, carol, "faqbot: " + ETUDE[0], mentions=[BOT])
        self.expect_answers(alice, room, [(q2, ETUDE[1])])
        self.assert_no_clear(room)
        self.assertEqual(len([g for g in self.fake.state_gets if g[1] == room]), 1,
                         "the room's encryption state is asked once")
        self.assertEqual(b.stop(), 0)

    def test_11_rotation_as_the_room_asks(self):
        """m.room.encryption's rotation_period_msgs = 2: the bot's Megolm
        session changes after 2 messages; rotation_period_ms = 1500: it
        changes when older than 1.5 s."""
        alice = User(self, "alice")
        room = self.fake.create_room([alice.id], encrypted=False)
        self.fake.enable_encryption(room, alice.id, rotation_period_msgs=2)
        timed = self.fake.create_room([alice.id], encrypted=False)
        self.fake.enable_encryption(timed, alice.id, rotation_period_ms=1500)
        b = self.bot()
        self.ready(b)
        alice.start()
        sids = []
        for q, a in (COUT, ETUDE, TVA):
            eid = alice.ask(room, q)
            w = self.expect_answers(alice, room, [(eid, a)], settle=0)
            sids.append(w[eid]["content"]["session_id"])
        self.assertEqual(sids[0], sids[1], "rotated before rotation_period_msgs")
        self.assertNotEqual(sids[1], sids[2], "not rotated after rotation_period_msgs = 2 messages")
        e1 = alice.ask(timed, COUT[0])
        w1 = self.expect_answers(alice, timed, [(e1, COUT[1])], settle=0)
        time.sleep(2.0)
        e2 = alice.ask(timed, ETUDE[0])
        w2 = self.expect_answers(alice, timed, [(e2, ETUDE[1])], settle=0)
        self.assertNotEqual(w1[e1]["content"]["session_id"], w2[e2]["content"]["session_id"],
                            "not rotated after rotation_period_ms")
        self.assert_no_clear(room)
        self.assert_no_clear(timed)
        self.assertEqual(b.stop(), 0)

    def test_12_one_time_keys_run_out(self):
        """Others claimed all of the bot's one-time keys: the bot uploads new
        ones when /sync says its count fell (device_one_time_keys_count), and
        a new device still reaches it when they are all gone again (the
        fallback key, or the keys the bot uploaded meanwhile)."""
        room, b, alice0 = self.alice_dm()
        dev = self.bot_device()
        with self.fake.lock:
            n = len(self.fake.otks[(BOT, dev)])
        self.assertGreater(n, 0)
        for _ in range(n):     # what many new devices opening sessions do
            with self.fake.lock:
                pool = self.fake.otks[(BOT, dev)]
                pool.pop(sorted(pool)[0])
                self.fake.pos += 1        # a sync reports the count
                self.fake.lock.notify_all()
        self.assertTrue(self.fake.wait(lambda: len(self.fake.otks.get((BOT, dev), {})) > 0, 15),
                        "the bot did not top its one-time keys up")
        with self.fake.lock:                           # claimed again, all of them
            self.fake.otks[(BOT, dev)] = {}
        alice = User(self, "alice").start()          # a new device: gets the fallback key
        q = alice.ask(room, COUT[0])
        self.expect_answers(alice, room, [(q, COUT[1])])
        self.assertEqual(b.stop(), 0)

    def test_13_bad_devices_do_not_hold_replies_up(self):
        """A group room where carol's device has no one-time key left (and
        no fallback key), and a device listed for dave whose keys carry a
        broken signature: alice still gets her encrypted answer; the bot
        sends no room key to the forged device.  Once carol's client has
        uploaded one-time keys again, the next reply reaches her device
        (a device missed once is not left out for the session's life)."""
        alice = User(self, "alice")
        carol = User(self, "carol")
        dave = "@dave:localhost"
        room = self.fake.create_room([alice.id, carol.id, dave], encrypted=True)
        b = self.bot()
        self.ready(b)
        carol.start()
        with self.fake.lock:
            self.fake.otks[(carol.id, carol.device)] = {}
            self.fake.fallback.pop((carol.id, carol.device), None)
            forged = json.loads(json.dumps(self.fake.device_keys[(carol.id, carol.device)]))
            forged["user_id"], forged["device_id"] = dave, "EVIL"
            forged["keys"] = {"curve25519:EVIL": forged["keys"][f"curve25519:{carol.device}"],
                              "ed25519:EVIL": forged["keys"][f"ed25519:{carol.device}"]}
            forged["signatures"] = {dave: {"ed25519:EVIL": "A" * 86}}
            self.fake.device_keys[(dave, "EVIL")] = forged
            self.fake.otks[(dave, "EVIL")] = {"signed_curve25519:AAAAAQ": {
                "key": "A" * 43, "signatures": {dave: {"ed25519:EVIL": "A" * 86}}}}
        alice.start()
        q = alice.ask(room, COUT[0], mention=True)
        self.expect_answers(alice, room, [(q, COUT[1])])
        with self.fake.lock:
            evil = [(s_, ty) for s_, ty, u, t, _ in self.fake.to_device_log if t == "EVIL" and s_ == BOT]
        self.assertEqual(evil, [], "the bot sent a room key to a device whose signature is broken")
        # carol's client uploads one-time keys again: the next reply reaches her
        # (nio 0.20 ignores a count of 0 in /sync: told here)
        carol.c.olm.uploaded_key_count = 0
        carol.run(carol.c.keys_upload())
        with self.fake.lock:
            self.assertTrue(self.fake.otks.get((carol.id, carol.device)), "carol's nio did not top up")
        q2 = alice.ask(room, ETUDE[0], mention=True)
        self.expect_answers(alice, room, [(q2, ETUDE[1])])
        self.expect_answers(carol, room, [(q2, ETUDE[1])], settle=0)
        self.assert_no_clear(room)
        self.assertEqual(b.stop(), 0)

    def test_14_another_pickle_key_stops_the_start(self):
        """The state was pickled with one matrix_pickle_key; a start with
        another one must stop (exit status not 0) with a sentence naming the
        setting, and neither make a new device nor post anything.  Then
        `faqbot matrix-reset` and a start make a new device with new keys,
        which answers alice (the room still known as encrypted)."""
        self.secrets += [PICKLE_KEY, "another-pickle-key-77"]
        room, b, alice = self.alice_dm(FAQBOT_MATRIX_PICKLE_KEY=PICKLE_KEY)
        q = alice.ask(room, COUT[0])
        self.expect_answers(alice, room, [(q, COUT[1])], settle=0)
        self.assertEqual(b.stop(), 0)
        keys = dict(self.fake.device_keys)
        alice.ask(room, ETUDE[0])
        b = self.bot(FAQBOT_MATRIX_PICKLE_KEY="another-pickle-key-77")
        self.assertNotEqual(b.wait_exit(20), 0, "the bot ran with another pickle key")
        self.assertIn("matrix_pickle_key", b.logs())
        self.assertEqual(self.fake.device_keys, keys, "new device keys were uploaded")
        self.assertEqual(len(self.bot_events(room)), 1)
        # the way out (README): faqbot matrix-reset, then a start as a new device
        old = self.bot_device()
        rc, out, err = run_cli(b, "matrix-reset")
        self.assertEqual(rc, 0, out + err)
        b = self.bot(FAQBOT_MATRIX_PICKLE_KEY="another-pickle-key-77")
        self.assertTrue(self.fake.wait(lambda: len(self.fake.devices_of(BOT)) == 2, 20),
                        "no new device after matrix-reset\n" + b.logs()[-2000:])
        self.ready(b)
        new = [d for d in self.fake.devices_of(BOT) if d != old][0]
        self.assertNotEqual(new, old)
        alice.sync()
        q2 = alice.ask(room, TVA[0])
        self.expect_answers(alice, room, [(q2, TVA[1])])
        with self.fake.lock:
            used = {t for s_, ty, u, t, _ in self.fake.to_device_log if s_ == alice.id and u == BOT}
        self.assertIn(new, used, "alice's room key did not reach the new device")
        self.assert_no_clear(room)
        self.assertEqual(b.stop(), 0)

    def test_15_relations_only_outside_the_ciphertext(self):
        """A client may keep m.relates_to only in the clear content of its
        m.room.encrypted event (the spec puts relations there, so that the
        server can read them), not in the encrypted payload.  In a group
        room: a question in a thread is answered in that thread, and a reply
        to the bot's answer (without mention) is addressed to the bot."""
        alice = User(self, "alice")
        carol = "@carol:localhost"
        room = self.fake.create_room([alice.id, carol], encrypted=True)
        b = self.bot()
        self.ready(b)
        alice.start()
        root = alice.ask(room, "un fil de discussion")

        def send(body, relation, mention):
            content = {"msgtype": "m.text", "body": body}
            if mention:
                content["m.mentions"] = {"user_ids": [BOT]}
            _, enc = alice.c.encrypt(room, "m.room.message", content)   # no relation inside
            enc = dict(enc, **{"m.relates_to": relation})
            with self.fake.lock:
                return self.fake._event(room, alice.id, "m.room.encrypted", enc)["event_id"]
        alice.sync()
        q1 = send("faqbot: " + COUT[0], {"rel_type": "m.thread", "event_id": root, "is_falling_back": True,
                                          "m.in_reply_to": {"event_id": root}}, True)
        w = self.expect_answers(alice, room, [(q1, COUT[1])], thread=root)
        q2 = send(ETUDE[0], {"m.in_reply_to": {"event_id": w[q1]["event_id"]}}, False)
        self.expect_answers(alice, room, [(q2, ETUDE[1])])
        self.assert_no_clear(room)
        self.assertEqual(b.stop(), 0)

    def test_16_busy_group(self):
        """A group room with 4 people on nio, one of them on two devices,
        all asking at once (several replies in flight together, a fresh
        room key from each asker): each question answered once, every reply
        decrypted on all 5 devices."""
        people = [User(self, n) for n in ("alice", "bob", "dan", "erin")]
        room = self.fake.create_room([u.id for u in people], encrypted=True)
        b = self.bot()
        self.ready(b)
        for u in people:
            u.start()
        bob2 = User(self, "bob").start()
        for u in people + [bob2]:
            u.sync()
        asked = []
        for i, u in enumerate(people * 2):
            q, a = (COUT, ETUDE, TVA)[i % 3]
            asked.append((u.ask(room, q, mention=True), a))
        for u in people + [bob2]:
            self.expect_answers(u, room, asked, settle=0 if u is not people[0] else 1.0)
        self.assertEqual(len(self.bot_events(room)), len(asked))
        self.assert_no_clear(room)
        self.assertEqual(b.stop(), 0)

    def test_17_lost_olm_session_is_mended(self):
        """The bot lost its Olm session with alice's device (the bot prunes
        Olm sessions unused for 30 days; here the rows are deleted while it
        is stopped, which is what that pruning does).  alice's client still
        has the session and sends her next room key over it: the bot cannot
        decrypt that to-device message.  The spec ("Recovering from
        undecryptable messages") says the receiver then makes a new Olm
        session with the sender's device and sends an m.dummy over it, so
        that the sender uses the new session from then on.  Checked: the
        bot does send a new Olm pre-key message to alice's device, and the
        room key alice sends after that reaches the bot (her question is
        answered); the question whose key was lost gets at most one notice."""
        import sqlite3
        room, b, alice = self.alice_dm(FAQBOT_TEST_KEY_WAIT_S=4)
        q1 = alice.ask(room, COUT[0])
        self.expect_answers(alice, room, [(q1, COUT[1])], settle=0)
        self.assertEqual(b.stop(), 0)
        db = sqlite3.connect(os.path.join(self.tmp, "state", "faqbot.db"))
        n = db.execute("DELETE FROM mx_olm").rowcount
        db.commit()
        db.close()
        self.assertGreater(n, 0)
        b = self.bot(FAQBOT_TEST_KEY_WAIT_S=4)
        self.ready(b)
        with self.fake.lock:
            mark = len(self.fake.to_device_log)
        alice.c.olm.outbound_group_sessions.pop(room, None)
        q2 = alice.ask(room, ETUDE[0])                # its key travels over the lost session

        def prekey_to_alice():
            with self.fake.lock:
                return [c for s_, ty, u, t, c in self.fake.to_device_log[mark:]
                        if s_ == BOT and ty == "m.room.encrypted" and t == alice.device and
                        any(v.get("type") == 0 for v in (c.get("ciphertext") or {}).values())]
        self.assertTrue(self.fake.wait(prekey_to_alice, 10),
                        "the bot made no new Olm session with alice's device after a to-device "
                        "message it could not decrypt\n" + b.logs()[-2500:])
        alice.sync()
        alice.c.olm.outbound_group_sessions.pop(room, None)
        q3 = alice.ask(room, TVA[0])
        self.expect_answers(alice, room, [(q3, TVA[1])])
        self.assertLessEqual(self.wire_reply_count(room, q2), 1)
        self.assert_no_clear(room)
        self.assertEqual(b.stop(), 0)

    def test_18_olm_payload_checks(self):
        """Room keys that come over a good Olm session but whose decrypted
        payload lies (spec, m.olm.v1.curve25519-aes-sha2: the recipient
        must check sender, recipient, recipient_keys and keys): sender is
        not the to-device event's sender; recipient is another user;
        recipient_keys is not the bot's key; keys.ed25519 is not the sending
        device's key.  A message encrypted with each such room key must not
        be answered; the same message with an honest payload is (so the
        forgery, not the plumbing, is what is refused).  With an honest room
        key: a Megolm payload naming another room, and an event whose sender
        (bob) is not the user the room key came from (alice): not answered
        either (an answer would mention bob for alice's words).
        Fails (against e2ee-wire 0c75b06): a false keys.ed25519 is accepted;
        the spec says it must match the ed25519 key /keys/query gives for the
        device whose curve25519 key is the sender_key.  Low impact while the
        bot verifies no device, but the key it records for the session is
        then whatever the sender claimed."""
        room, b, alice = self.alice_dm()
        bob = "@bob:localhost"
        self.fake.add_member(room, bob)               # a group room: questions name the bot
        time.sleep(0.3)
        alice.sync()
        q0 = alice.ask(room, COUT[0], mention=True)   # alice and the bot have an Olm session
        self.expect_answers(alice, room, [(q0, COUT[1])], settle=0)
        dev = self.bot_device()
        bk = self.fake.device_keys[(BOT, dev)]["keys"]
        bot_curve, bot_ed = bk[f"curve25519:{dev}"], bk[f"ed25519:{dev}"]
        ak = alice.c.olm.account.identity_keys
        session = alice.c.olm.session_store.get(bot_curve)
        self.assertIsNotNone(session, "alice's client has no Olm session with the bot")
        honest = {"sender": alice.id, "sender_device": alice.device, "keys": {"ed25519": ak["ed25519"]},
                  "recipient": BOT, "recipient_keys": {"ed25519": bot_ed}}
        lies = {"sender": {"sender": "@bob:localhost"},
                "recipient": {"recipient": "@mallory:localhost"},
                "recipient_keys": {"recipient_keys": {"ed25519": ak["ed25519"]}},
                "keys": {"keys": {"ed25519": bot_ed}}}
        # and two lies of the Megolm payload or event, with an honest key:
        # the payload names another room; the event claims another sender
        lies.update({"inner room_id": {}, "event sender": {}})
        asked = {}
        for name, lie in list(lies.items()) + [("honest", {})]:
            ogs = olm.OutboundGroupSession()
            payload = dict(honest, **lie)
            payload.update(type="m.room_key", content={"algorithm": ALG_MEGOLM, "room_id": room,
                                                       "session_id": ogs.id, "session_key": ogs.session_key})
            m = session.encrypt(json.dumps(payload))
            self.fake.inject_to_device(dev, alice.id, "m.room.encrypted", {
                "algorithm": ALG_OLM, "sender_key": ak["curve25519"],
                "ciphertext": {bot_curve: {"type": m.message_type, "body": m.ciphertext}}})
            inner = {"type": "m.room.message",
                     "room_id": "!elsewhere:localhost" if name == "inner room_id" else room,
                     "content": {"msgtype": "m.text", "body": f"faqbot: {ETUDE[0]} {name}",
                                 "m.mentions": {"user_ids": [BOT]}}}
            with self.fake.lock:
                asked[name] = self.fake._event(room, bob if name == "event sender" else alice.id,
                                               "m.room.encrypted", {
                    "algorithm": ALG_MEGOLM, "ciphertext": ogs.encrypt(json.dumps(inner)),
                    "session_id": ogs.id, "sender_key": ak["curve25519"],
                    "device_id": alice.device})["event_id"]
        self.assertTrue(self.fake.wait(lambda: self.wire_reply_count(room, asked["honest"]), 20),
                        "the honest control was not answered: the test's plumbing is broken\n"
                        + b.logs()[-2000:])
        time.sleep(1.0)
        answered = [name for name in lies if self.wire_reply_count(room, asked[name])]
        self.assertEqual(answered, [], "answered messages whose key, payload or sender lied")
        self.assert_no_clear(room)
        self.assertIsNone(b.proc.poll())
        self.assertEqual(b.stop(), 0)

    def test_19_many_devices(self):
        """carol has 30 devices (libolm accounts made here, keys signed and
        uploaded the way clients do); alice asks in the group room: the
        reply comes, and each of carol's 30 devices got exactly one Olm
        pre-key message from the bot that it opens (with the one-time key
        the bot claimed) to an m.room_key for this room and the reply's
        session, addressed to carol and to that device's ed25519 key (the
        Olm payload fields of the spec)."""
        from matrix_e2ee import canonical_json
        alice = User(self, "alice")
        carol = self.fake.add_user("carol", "carol-pw")
        room = self.fake.create_room([alice.id, carol], encrypted=True)
        accounts = {}
        with self.fake.lock:
            for i in range(30):
                d = f"CAROL{i:02d}"
                acct = olm.Account()
                idk = acct.identity_keys
                dk = {"user_id": carol, "device_id": d, "algorithms": [ALG_OLM, ALG_MEGOLM],
                      "keys": {f"curve25519:{d}": idk["curve25519"], f"ed25519:{d}": idk["ed25519"]}}
                dk["signatures"] = {carol: {f"ed25519:{d}": acct.sign(canonical_json(dk))}}
                acct.generate_one_time_keys(3)      # alice's client claims one too
                otks = {}
                for kid, key in acct.one_time_keys["curve25519"].items():
                    o = {"key": key}
                    o["signatures"] = {carol: {f"ed25519:{d}": acct.sign(canonical_json(o))}}
                    otks[f"signed_curve25519:{kid}"] = o
                acct.mark_keys_as_published()
                self.fake.device_keys[(carol, d)] = dk
                self.fake.otks[(carol, d)] = otks
                accounts[d] = acct
        b = self.bot()
        self.ready(b)
        alice.start()
        t0 = time.time()
        q = alice.ask(room, COUT[0], mention=True)
        w = self.expect_answers(alice, room, [(q, COUT[1])], settle=0)
        took = time.time() - t0
        sid = w[q]["content"]["session_id"]
        dev = self.bot_device()
        bot_ed = self.fake.device_keys[(BOT, dev)]["keys"][f"ed25519:{dev}"]
        with self.fake.lock:
            got = [(t, c) for s_, ty, u, t, c in self.fake.to_device_log
                   if s_ == BOT and u == carol and ty == "m.room.encrypted"]
        self.assertEqual(sorted(t for t, _ in got), sorted(accounts), "not one message per device")
        for d, c in got:
            acct = accounts[d]
            ct = c["ciphertext"][acct.identity_keys["curve25519"]]
            self.assertEqual(ct["type"], 0)
            msg = olm.OlmPreKeyMessage(ct["body"])
            session = olm.InboundSession(acct, msg, c["sender_key"])
            payload = json.loads(session.decrypt(msg))
            self.assertEqual((payload["type"], payload["sender"], payload["recipient"]),
                             ("m.room_key", BOT, carol))
            self.assertEqual(payload["recipient_keys"]["ed25519"], acct.identity_keys["ed25519"])
            self.assertEqual(payload["keys"]["ed25519"], bot_ed)
            self.assertEqual((payload["content"]["room_id"], payload["content"]["session_id"]), (room, sid))
        with self.fake.lock:
            puts = sum(1 for r in self.fake.requests if "/sendToDevice/" in r[2] and r[1] == "PUT")
        print(f"\n  31 devices: question to decrypted reply {took:.2f} s, {puts} /sendToDevice requests",
              file=sys.stderr)
        self.assert_no_clear(room)
        self.assertEqual(b.stop(), 0)

    def test_20_key_endpoints_fail_for_a_while(self):
        """/keys/query answers 500 once, /keys/claim 429 (retry_after_ms),
        /sendToDevice 500 once and one answer lost after it was delivered
        (the bot's usual send backoff applies: a few seconds), while the bot must reach a new device of alice: every
        reply still decrypts on both, each question answered once
        (a reply must not go out before its room key did, or go out with a
        key that never left)."""
        room, b, alice = self.alice_dm()
        q0 = alice.ask(room, TVA[0])                  # the bot has an Olm session with alice's device
        self.expect_answers(alice, room, [(q0, TVA[1])], settle=0)
        alice2 = User(self, "alice").start()          # and none with this one: it must query and claim
        time.sleep(0.5)
        alice.sync()
        # alice's client shares its own key with her new device now, before
        # the faults (an m.notice: the bot ignores it)
        alice.run(alice.c.room_send(room, "m.room.message", {"msgtype": "m.notice", "body": "."},
                                    ignore_unverified_devices=True))
        alice.sync()
        self.fake.fault("keys_query", "status", status=500, errcode="M_UNKNOWN")
        self.fake.fault("keys_claim", "status", status=429, errcode="M_LIMIT_EXCEEDED", retry_after_ms=500)
        self.fake.fault("send_to_device", "status", status=500, errcode="M_UNKNOWN")
        self.fake.fault("send_to_device", "drop_after")
        q1 = alice.ask(room, COUT[0])
        q2 = alice.ask(room, ETUDE[0])
        self.expect_answers(alice, room, [(q1, COUT[1]), (q2, ETUDE[1])], settle=1.0)
        self.expect_answers(alice2, room, [(q1, COUT[1]), (q2, ETUDE[1])], settle=0)
        with self.fake.lock:
            left = {k: len(v) for k, v in self.fake.faults.items() if v}
        self.assertEqual(left, {}, "faults the bot never met (the test did not test)")
        self.assertEqual(len(self.bot_events(room)), 3)
        self.assert_no_clear(room)
        self.assertEqual(b.stop(), 0)

    def test_09_encryption_off_posts_nothing_in_clear(self):
        """matrix_encryption = false: nothing in clear in an encrypted room
        (no answer, no hello, no notice), even to a question sent there in
        clear or in a room that turned encrypted; rooms in clear still get
        answers."""
        b = self.bot(FAQBOT_MATRIX_ENCRYPTION="false")
        self.ready(b, keys=False)
        alice = User(self, "alice")
        carol = "@carol:localhost"
        enc = self.fake.create_room([alice.id], encrypted=True)
        clear = self.fake.create_room([carol])
        group = self.fake.create_room([alice.id, carol])
        alice.start()
        alice.ask(enc, COUT[0])
        self.fake.user_message(enc, alice.id, ETUDE[0])              # a clear message there
        invited = self.fake.create_room([alice.id], bot=False, encrypted=True)
        self.fake.invite(invited, alice.id)
        q = self.fake.user_message(clear, carol, COUT[0])
        self.expect_answers(None, clear, [(q, COUT[1])], encrypted=False, settle=0)
        g1 = self.fake.user_message(group, carol, "faqbot: " + COUT[0], mentions=[BOT])
        self.expect_answers(None, group, [(g1, COUT[1])], encrypted=False, settle=0)
        self.fake.enable_encryption(group, carol)
        g2 = self.fake.user_message(group, carol, "faqbot: " + ETUDE[0], mentions=[BOT])
        self.assertTrue(self.fake.wait(lambda: self.fake.bot_synced >= self.pos_of(group, g2), 20))
        time.sleep(2.5)
        self.assertIsNone(b.proc.poll(), b.logs()[-2000:])
        for r in (enc, invited, group):
            self.assert_no_clear(r)
        self.assertEqual(b.stop(), 0)


if __name__ == "__main__":
    try:
        unittest.main(verbosity=2)
    finally:
        shutil.rmtree(LOGDIR, ignore_errors=True)
