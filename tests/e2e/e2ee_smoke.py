#!/usr/bin/env python3
"""A quick smoke of faqbot's Matrix encryption wiring (the full scenarios
are tests/e2e/test_e2ee.py): the faqbot binary against the fake
homeserver, with Debian's python3-matrix-nio as the human.

  1. an encrypted room with alice and the bot; alice (nio) asks;
  2. the bot decrypts, shares its room key and answers encrypted, as a
     reply; alice decrypts it;
  3. the bot stops, alice asks again, the bot starts: the question that
     came while it was down is answered from the stored keys;
  4. nothing went into the room in clear text.

    FAQBOT=build/faqbot /usr/bin/python3 tests/e2e/e2ee_smoke.py
"""
import asyncio
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fake"))
sys.path.insert(0, HERE)

from e2ee_client import E2EEClient  # noqa: E402
from harness import Bot, write_faq  # noqa: E402
from matrix import BOT, PASSWORD, FakeMatrix  # noqa: E402
from nio import RoomMessageNotice  # noqa: E402


async def notice_replying_to(client, room, event_id, seconds=30):
    loop = asyncio.get_event_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        r = await client.sync(timeout=1000)
        j = r.rooms.join.get(room) if hasattr(r, "rooms") else None
        for ev in (j.timeline.events if j else []):
            rel = (ev.source.get("content") or {}).get("m.relates_to") or {}
            if isinstance(ev, RoomMessageNotice) and \
                    rel.get("m.in_reply_to", {}).get("event_id") == event_id:
                return ev
        if client.should_query_keys:
            await client.keys_query()
    return None


def main():
    tmp = tempfile.mkdtemp(prefix="faqbot-e2ee-smoke-")
    faq = os.path.join(tmp, "faq.json")
    write_faq(faq)
    fake = FakeMatrix()
    env = dict(FAQBOT_MATRIX_HOMESERVER=fake.url, FAQBOT_MATRIX_USER="faqbot",
               FAQBOT_MATRIX_PASSWORD=PASSWORD, FAQBOT_MATRIX_SYNC_TIMEOUT=1,
               FAQBOT_STATE_DIR=os.path.join(tmp, "state"), FAQBOT_FAQ=faq)
    failures = []

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)
        return ok

    bot = Bot(**env).start()
    loop = asyncio.new_event_loop()
    try:
        ok = fake.wait(lambda: "event=started" in bot.logs() and "encryption=on" in bot.logs(), 20)
        check(ok, "the bot started with encryption on")
        check(fake.wait(lambda: any(u == BOT for u, d in fake.device_keys), 10),
              "the bot uploaded its device keys")
        alice_id = fake.add_user("alice", "alice-pw")
        room = fake.create_room([alice_id], bot=True, encrypted=True)
        os.makedirs(os.path.join(tmp, "alice"))
        alice = E2EEClient(fake.url, alice_id, os.path.join(tmp, "alice"))
        loop.run_until_complete(alice.start("alice-pw"))
        r = loop.run_until_complete(alice.send_text(room, "combien ça coûte ?"))
        q1 = getattr(r, "event_id", None)
        check(bool(q1), "alice sent an encrypted question")
        ev = loop.run_until_complete(notice_replying_to(alice, room, q1))
        check(ev is not None, "alice decrypted the bot's answer, a reply to her question")
        if ev is None:
            print(bot.logs()[-4000:])

        bot.stop()
        r = loop.run_until_complete(alice.send_text(room, "combien ça coûte ?"))
        q2 = getattr(r, "event_id", None)
        bot = Bot(**env).start()
        ev = loop.run_until_complete(notice_replying_to(alice, room, q2))
        check(ev is not None, "a question asked while the bot was down is answered after its restart")
        if ev is None:
            print(bot.logs()[-4000:])
        # 4. bob joins: the bot's next answer reaches his device too
        bob_id = fake.add_user("bob", "bob-pw")
        os.makedirs(os.path.join(tmp, "bob"))
        bob = E2EEClient(fake.url, bob_id, os.path.join(tmp, "bob"))
        loop.run_until_complete(bob.start("bob-pw"))
        fake.add_member(room, bob_id)
        loop.run_until_complete(bob.sync(timeout=0))
        loop.run_until_complete(alice.sync(timeout=0))
        if alice.should_query_keys:
            loop.run_until_complete(alice.keys_query())
        r = loop.run_until_complete(alice.send_text(room, "faqbot: combien ça coûte ?"))  # a group now
        q3 = getattr(r, "event_id", None)
        ev = loop.run_until_complete(notice_replying_to(bob, room, q3))
        if not check(ev is not None, "a new member's device gets the room key and decrypts the answer"):
            print("\n".join(line[:300] for line in bot.logs().splitlines()
                            if "event=http" not in line)[-8000:])
        sessions = [e["content"].get("session_id") for e in fake.sent if e["room_id"] == room]
        # 5. bob leaves: the next answer uses a new session he never got
        fake.remove_member(room, bob_id)
        loop.run_until_complete(alice.sync(timeout=0))
        r = loop.run_until_complete(alice.send_text(room, "combien ça coûte ?"))
        q4 = getattr(r, "event_id", None)
        ev = loop.run_until_complete(notice_replying_to(alice, room, q4))
        check(ev is not None, "alice decrypts the answer after bob left")
        after = [e["content"].get("session_id") for e in fake.sent if e["room_id"] == room]
        check(after[-1] not in sessions, "the room key was rotated when a member left")
        loop.run_until_complete(bob.close())
        clear = [e for e in fake.sent if e["room_id"] == room and e["type"] != "m.room.encrypted"]
        check(not clear, "nothing in clear text in the encrypted room")
        check(not fake.spec_errors, "no spec errors: " + "; ".join(fake.spec_errors))
        loop.run_until_complete(alice.close())
    finally:
        if bot.proc and bot.proc.poll() is None:
            bot.stop()
        fake.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print("e2ee smoke: " + ("PASS" if not failures else "FAIL"))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
