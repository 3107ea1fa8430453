#!/usr/bin/env python3
"""Interoperability proof: faqbot's encryption layer (src/mx_crypto.c)
against a real Matrix client (Debian's python3-matrix-nio with python3-olm),
through the fake homeserver.  The transport does all this since
src/mx_e2ee.c (tests/e2e/test_e2ee.py and e2ee_smoke.py run the real
binary); this script keeps the protocol proof of the layer alone: it plays
the bot's part itself, loading mx_crypto.c (compiled here into a shared
object) with ctypes and doing the HTTP with urllib, in the transport's order:

  1. the bot logs in and uploads its signed device keys, one-time keys and
     a fallback key (nio checks the signatures when it queries them);
  2. alice (nio) sends an encrypted question into an encrypted room with the
     bot: she claims one of the bot's one-time keys, sends the room key over
     Olm, then the Megolm event;
  3. the bot syncs: Olm-decrypts the to-device m.room_key, adds the inbound
     session, Megolm-decrypts the question;
  4. the bot answers: queries alice's devices (checks their self-signature),
     claims a one-time key (checks its signature), sends its own room key
     over Olm, then the encrypted m.notice replying to the question;
  5. alice syncs and nio decrypts the answer, reply relation included.

    /usr/bin/python3 tests/e2e/e2ee_interop.py      (exit 0 = all worked)
"""
import asyncio
import ctypes as C
import json
import os
import subprocess
import sys
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "fake"))
sys.path.insert(0, HERE)

from e2ee_client import E2EEClient  # noqa: E402
from nio import RoomMessageNotice  # noqa: E402

ERR = C.create_string_buffer(512)


class OlmDecrypted(C.Structure):
    _fields_ = [("payload", C.c_void_p), ("type", C.c_char_p), ("content", C.c_void_p),
                ("sender", C.c_char_p), ("sender_key", C.c_char_p),
                ("sender_ed25519", C.c_char_p), ("new_session", C.c_void_p),
                ("session_index", C.c_int), ("account_changed", C.c_int)]


class MegolmDecrypted(C.Structure):
    _fields_ = [("event", C.c_void_p), ("message_index", C.c_uint32),
                ("session_changed", C.c_int)]


def build(tmp):
    so = os.path.join(tmp, "libmx_crypto.so")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "jansson", "olm"],
                           capture_output=True, text=True, check=True).stdout.split()
    subprocess.run(["cc", "-shared", "-fPIC", "-std=c11", "-O1", "-I" + os.path.join(ROOT, "include"),
                    os.path.join(ROOT, "src", "mx_crypto.c"), os.path.join(ROOT, "src", "util.c"),
                    "-o", so] + flags, check=True)
    lib = C.CDLL(so)
    P, S, Z, I = C.c_void_p, C.c_char_p, C.c_size_t, C.c_int
    sigs = {
        "mx_account_new": (P, [S, S, P, Z]),
        "mx_account_keys_upload_body": (P, [P, I, C.c_longlong, P, Z]),
        "mx_account_fallback_keys": (P, [P, P, Z]),
        "mx_account_mark_published": (None, [P]),
        "mx_account_curve25519": (S, [P]),
        "mx_olm_decrypt": (I, [P, P, Z, P, P, P, Z]),
        "mx_megolm_in_new": (P, [P, S, S, S, P, Z]),
        "mx_megolm_decrypt": (I, [P, S, P, P, P, Z]),
        "mx_megolm_out_new": (P, [S, C.c_int64, P, Z]),
        "mx_megolm_out_room_key": (P, [P, P, Z]),
        "mx_megolm_out_encrypt": (P, [P, P, S, P, P, Z]),
        "mx_device_keys_check": (I, [P, S, S, C.POINTER(S), C.POINTER(S), P, Z]),
        "mx_olm_session_new_outbound": (P, [P, S, S, S, S, P, P, Z]),
        "mx_olm_encrypt": (P, [P, P, S, S, S, P, P, Z]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    jan = C.CDLL("libjansson.so.4")
    jan.json_loads.restype, jan.json_loads.argtypes = P, [S, Z, P]
    jan.json_dumps.restype, jan.json_dumps.argtypes = P, [P, Z]
    return lib, jan


def main():
    from matrix import BOT, PASSWORD, FakeMatrix
    tmp = tempfile.mkdtemp(prefix="faqbot-e2ee-")
    lib, jan = build(tmp)

    def J(obj):  # Python -> json_t * (leaked: a short script)
        return jan.json_loads(json.dumps(obj).encode(), 0, None)

    def Py(ptr):
        return json.loads(C.string_at(jan.json_dumps(ptr, 0)).decode())

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what + ("" if ok else f" ({ERR.value.decode()})"))
        if not ok:
            raise SystemExit(1)

    fake = FakeMatrix()

    def http(method, path, body=None, token=None):
        req = urllib.request.Request(fake.url + "/_matrix/client/v3" + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
        with urllib.request.urlopen(req, timeout=20) as r:
            return json.loads(r.read())

    try:
        # 1. the bot's device and keys
        login = http("POST", "/login", {"type": "m.login.password", "password": PASSWORD,
                                         "identifier": {"type": "m.id.user", "user": "faqbot"}})
        tok, dev = login["access_token"], login["device_id"]
        acct = lib.mx_account_new(BOT.encode(), dev.encode(), ERR, 512)
        body = Py(lib.mx_account_keys_upload_body(acct, 1, 0, ERR, 512))
        body["fallback_keys"] = Py(lib.mx_account_fallback_keys(acct, ERR, 512))
        r = http("POST", "/keys/upload", body, tok)
        lib.mx_account_mark_published(acct)
        check(r["one_time_key_counts"].get("signed_curve25519") == 50,
              "bot uploaded signed device keys, 50 one-time keys and a fallback key")
        since = http("GET", "/sync?timeout=0", token=tok)["next_batch"]

        alice_id = fake.add_user("alice", "alice-pw")
        room = fake.create_room([alice_id], bot=True, encrypted=True)

        async def alice_asks(alice):
            await alice.start("alice-pw")
            r = await alice.send_text(room, "Combien coûte la souscription ?")
            return getattr(r, "event_id", None)

        store = os.path.join(tmp, "alice")
        os.makedirs(store)
        alice = E2EEClient(fake.url, alice_id, store)
        loop = asyncio.new_event_loop()
        q_id = loop.run_until_complete(alice_asks(alice))
        check(bool(q_id), "alice (nio) accepted the bot's keys and sent an encrypted question")

        # 3. the bot reads it
        s = http("GET", f"/sync?timeout=0&since={since}", token=tok)
        room_in = None
        for ev in s["to_device"]["events"]:
            if ev["type"] != "m.room.encrypted":
                continue
            d = OlmDecrypted()
            rc = lib.mx_olm_decrypt(acct, None, 0, J(ev), C.byref(d), ERR, 512)
            check(rc == 0 and d.type == b"m.room_key", "bot Olm-decrypted alice's m.room_key")
            room_in = lib.mx_megolm_in_new(d.content, d.sender, d.sender_key, d.sender_ed25519, ERR, 512)
            check(bool(room_in), "bot added alice's Megolm session")
        check(room_in is not None, "a room key reached the bot over /sendToDevice")
        evs = [e for e in s["rooms"]["join"][room]["timeline"]["events"] if e["type"] == "m.room.encrypted"]
        md = MegolmDecrypted()
        rc = lib.mx_megolm_decrypt(room_in, room.encode(), J(evs[0]), C.byref(md), ERR, 512)
        q = Py(md.event) if rc == 0 else {}
        check(q.get("content", {}).get("body") == "Combien coûte la souscription ?",
              "bot Megolm-decrypted the question")

        # 4. the bot answers
        keys = http("POST", "/keys/query", {"device_keys": {alice_id: []}}, tok)["device_keys"][alice_id]
        adev, adk = next(iter(keys.items()))
        curve, ed = C.c_char_p(), C.c_char_p()
        check(lib.mx_device_keys_check(J(adk), alice_id.encode(), adev.encode(), C.byref(curve),
                                       C.byref(ed), ERR, 512) == 0,
              "alice's device keys (made by nio) pass the bot's signature check")
        claimed = http("POST", "/keys/claim", {"one_time_keys": {alice_id: {adev: "signed_curve25519"}}},
                       tok)["one_time_keys"][alice_id][adev]
        olm_out = lib.mx_olm_session_new_outbound(acct, alice_id.encode(), adev.encode(), curve.value,
                                                  ed.value, J(claimed), ERR, 512)
        check(bool(olm_out), "bot opened an Olm session with alice's signed one-time key")
        out = lib.mx_megolm_out_new(room.encode(), 0, ERR, 512)
        rk = lib.mx_megolm_out_room_key(out, ERR, 512)
        td = Py(lib.mx_olm_encrypt(acct, olm_out, alice_id.encode(), ed.value, b"m.room_key", rk, ERR, 512))
        http("PUT", "/sendToDevice/m.room.encrypted/bot1", {"messages": {alice_id: {adev: td}}}, tok)
        reply = {"msgtype": "m.notice", "body": "Le ticket d'entrée est modeste.",
                 "m.relates_to": {"m.in_reply_to": {"event_id": q_id}},
                 "m.mentions": {"user_ids": [alice_id]}}
        enc = Py(lib.mx_megolm_out_encrypt(out, acct, b"m.room.message", J(reply), ERR, 512))
        http("PUT", f"/rooms/{room}/send/m.room.encrypted/reply1", enc, tok)

        # 5. alice reads the answer
        async def alice_reads():
            for _ in range(10):
                r = await alice.sync(timeout=1000)
                j = r.rooms.join.get(room) if hasattr(r, "rooms") else None
                for ev in (j.timeline.events if j else []):
                    if isinstance(ev, RoomMessageNotice):
                        return ev
            return None
        ev = loop.run_until_complete(alice_reads())
        check(ev is not None and ev.body == reply["body"], "alice (nio) decrypted the bot's answer")
        rel = (ev.source.get("content") or {}).get("m.relates_to") or {}
        check(rel.get("m.in_reply_to", {}).get("event_id") == q_id,
              "the answer replies to the question (relation in clear)")
        loop.run_until_complete(alice.close())
        check(not fake.spec_errors, "no spec violation seen by the fake" +
              ("" if not fake.spec_errors else ": " + "; ".join(fake.spec_errors)))
    finally:
        fake.close()
    print("e2ee interop: PASS")


if __name__ == "__main__":
    main()
