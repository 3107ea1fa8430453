#!/usr/bin/env python3
"""A real end-to-end encrypting Matrix client for the E2EE tests: Debian's
python3-matrix-nio (with python3-olm), pointed at the fake homeserver.

tests/e2e/test_e2ee.py drives it against faqbot.  Run alone it is a proof
that the fake routes keys as a homeserver does:

    /usr/bin/python3 tests/e2e/e2ee_client.py

two nio clients (alice, bob) log in, upload device and one-time keys, and
each sends an encrypted message into an encrypted room: the sender queries
the room's devices, claims one-time keys, shares its Megolm session over
/sendToDevice, and the other decrypts the message after its /sync brought
the room key (to_device) and the event.  Then bob logs in on a second
device: alice's /sync reports it (device_lists.changed), and her next
message decrypts on both of bob's devices.  Exit 0 when all of it decrypts
and the fake saw no spec violation.

nio 0.20 speaks the r0 API with the access token in the query string, which
the fake (like the current spec) refuses; E2EEClient rewrites both into v3
paths and an Authorization header, nothing else.
"""
import asyncio
import os
import sys
import tempfile
from urllib.parse import parse_qsl, urlencode, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fake"))

from nio import AsyncClient, AsyncClientConfig, MegolmEvent, RoomMessageText  # noqa: E402


class E2EEClient(AsyncClient):
    """nio's AsyncClient with encryption, speaking v3 with a bearer token."""

    def __init__(self, url, user, store_dir):
        cfg = AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False,
                                request_timeout=20)
        super().__init__(url, user, store_path=store_dir, config=cfg)

    async def send(self, method, path, data=None, headers=None, trace_context=None, timeout=None):
        u = urlsplit(path)
        q = dict(parse_qsl(u.query))
        token = q.pop("access_token", None)
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        p = u.path.replace("/_matrix/client/r0/", "/_matrix/client/v3/", 1)
        path = p + ("?" + urlencode(q) if q else "")
        return await super().send(method, path, data, headers, trace_context, timeout)

    async def start(self, password):
        """Logs in, uploads keys, makes a first sync."""
        r = await self.login(password, device_name=f"{self.user} (nio)")
        if not hasattr(r, "access_token"):
            raise RuntimeError(f"{self.user}: login failed: {r}")
        if self.should_upload_keys:
            await self.keys_upload()
        await self.sync(timeout=0, full_state=True)

    async def send_text(self, room_id, body):
        """An encrypted m.text (sharing the Megolm session first)."""
        return await self.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body},
                                    ignore_unverified_devices=True)

    async def wait_text(self, room_id, body, seconds=15):
        """Syncs until the room holds a decrypted m.text with body; returns
        True, or False (with what it saw) after seconds."""
        loop = asyncio.get_event_loop()
        end = loop.time() + seconds
        seen = []
        while loop.time() < end:
            r = await self.sync(timeout=1000)
            for ev in getattr(r, "rooms", None) and r.rooms.join.get(room_id, None) and \
                    r.rooms.join[room_id].timeline.events or []:
                if isinstance(ev, RoomMessageText) and ev.body == body:
                    return True
                seen.append(type(ev).__name__ + (" (undecrypted)" if isinstance(ev, MegolmEvent) else ""))
            if self.should_query_keys:
                await self.keys_query()
        print(f"  {self.user}: no decrypted {body!r}; saw {seen}", file=sys.stderr)
        return False


async def proof():
    from matrix import FakeMatrix
    fake = FakeMatrix()
    ok = True
    try:
        alice_id = fake.add_user("alice", "alice-pw")
        bob_id = fake.add_user("bob", "bob-pw")
        room = fake.create_room([alice_id, bob_id], bot=False, encrypted=True)
        with tempfile.TemporaryDirectory() as d:
            os.makedirs(os.path.join(d, "a"))
            os.makedirs(os.path.join(d, "b"))
            alice = E2EEClient(fake.url, alice_id, os.path.join(d, "a"))
            bob = E2EEClient(fake.url, bob_id, os.path.join(d, "b"))
            try:
                await alice.start("alice-pw")
                await bob.start("bob-pw")
                print(f"uploaded device keys: {sorted(d for (u, d) in fake.device_keys)}")
                r = await alice.send_text(room, "hello bob")
                print(f"alice sent: {type(r).__name__}")
                got = await bob.wait_text(room, "hello bob")
                print(f"bob decrypted alice's message: {got}")
                ok &= got
                r = await bob.send_text(room, "hello alice")
                got = await alice.wait_text(room, "hello alice")
                print(f"alice decrypted bob's message: {got}")
                ok &= got
                enc = [e for rid, r in fake.rooms.items() for p, e in r["events"]
                       if e["type"] == "m.room.encrypted"]
                clear = [e for rid, r in fake.rooms.items() for p, e in r["events"]
                         if e["type"] == "m.room.message"]
                print(f"room events: {len(enc)} m.room.encrypted, {len(clear)} in clear text")
                print("to-device routed: " + ", ".join(f"{s}->{u}/{t}:{ty}"
                                                         for s, ty, u, t, _ in fake.to_device_log))
                ok &= len(enc) == 2 and not clear

                # bob logs in on a second device: alice's sync lists bob in
                # device_lists.changed, she queries his devices again, and
                # her next message reaches both of his devices
                os.makedirs(os.path.join(d, "b2"))
                bob2 = E2EEClient(fake.url, bob_id, os.path.join(d, "b2"))
                try:
                    await bob2.start("bob-pw")
                    r = await alice.sync(timeout=1000)
                    changed = list(getattr(r, "device_list", None) and r.device_list.changed or [])
                    print(f"alice's sync: device_lists.changed = {changed}")
                    ok &= bob_id in changed
                    if alice.should_query_keys:
                        await alice.keys_query()
                    print(f"alice knows bob's devices: {sorted(alice.device_store[bob_id].keys())}")
                    await alice.send_text(room, "to both your devices")
                    got1 = await bob.wait_text(room, "to both your devices")
                    got2 = await bob2.wait_text(room, "to both your devices")
                    print(f"bob's first device decrypted: {got1}, second device: {got2}")
                    ok &= got1 and got2
                finally:
                    await bob2.close()
            finally:
                await alice.close()
                await bob.close()
        if fake.spec_errors:
            print("spec errors seen by the fake:")
            for e in fake.spec_errors:
                print("  " + e)
            ok = False
    finally:
        fake.close()
    return ok


if __name__ == "__main__":
    ok = asyncio.run(proof())
    print("e2ee proof: " + ("PASS" if ok else "FAIL"))
    sys.exit(0 if ok else 1)
