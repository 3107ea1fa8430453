"""End-to-end encryption for the fake Matrix homeserver (tests/fake/matrix.py):
the key endpoints and the sync extensions a homeserver routes between
devices, so a real E2EE client and faqbot can exchange keys through it.

  POST /keys/upload     device_keys (must match the token's user and device;
                        signature checked when python3-olm is installed),
                        one_time_keys (an id reused with another key: 400),
                        fallback_keys; answers one_time_key_counts
  POST /keys/query      device_keys of the asked users (all devices for []),
                        with unsigned.device_display_name
  POST /keys/claim      one one-time key per asked device, removed once
                        claimed; else the fallback key (marked used)
  PUT  /sendToDevice/{type}/{txnId}
                        queued for each target device ("*" = all its
                        devices), deduplicated per (device, txnId)
  GET  /rooms/{id}/joined_members
  /sync                 to_device.events (deleted once a later since
                        acknowledges them), device_lists.changed / left,
                        device_one_time_keys_count,
                        device_unused_fallback_key_types

Shapes as in the Matrix Client-Server API (matrix-org/matrix-spec:
data/api/client-server/keys.yaml, to_device.yaml, rooms.yaml, and the
"End-to-end encryption" / "Send-to-Device messaging" modules); the checks
below (E2EE_OPS, check_encrypted_content) are written from those files,
since ../shared/specs holds no key endpoints.  Apache-2.0, Copyright The
Matrix.org Foundation C.I.C.

Faults (FakeMatrix.fault) work on these endpoints too, by the names
keys_upload, keys_query, keys_claim, send_to_device, joined_members.

Users other than the bot: FakeMatrix.add_user(localpart, password), then
log in as a normal client; rooms gain members with add_member /
remove_member (which also emit m.room.member events and device-list
changes, as a homeserver does).
"""
import json
import re

try:  # Debian's python3-olm: signatures are checked when it is there
    import olm as _olm
except ImportError:  # pragma: no cover - the fake works without it
    _olm = None

ALG_OLM = "m.olm.v1.curve25519-aes-sha2"
ALG_MEGOLM = "m.megolm.v1.aes-sha2"

# (method, path under /_matrix/client/v3, required body fields, allowed body
# fields or None for "any"), from keys.yaml / to_device.yaml / rooms.yaml.
E2EE_OPS = [
    ("POST", r"^/keys/upload$", [], ["device_keys", "one_time_keys", "fallback_keys"]),
    ("POST", r"^/keys/query$", ["device_keys"], ["device_keys", "timeout", "token"]),
    ("POST", r"^/keys/claim$", ["one_time_keys"], ["one_time_keys", "timeout"]),
    ("PUT", r"^/sendToDevice/[^/]+/[^/]+$", ["messages"], ["messages"]),
    ("GET", r"^/rooms/[^/]+/joined_members$", [], []),
    # not a key endpoint, but the bot asks it for a room's m.room.encryption
    # (room_state.yaml, also missing from ../shared/specs)
    ("GET", r"^/rooms/[^/]+/state/[^/]+(/[^/]*)?$", [], []),
]

ROUTES = [
    ("POST", r"^/_matrix/client/v3/keys/upload$", "keys_upload"),
    ("POST", r"^/_matrix/client/v3/keys/query$", "keys_query"),
    ("POST", r"^/_matrix/client/v3/keys/claim$", "keys_claim"),
    ("PUT", r"^/_matrix/client/v3/sendToDevice/([^/]+)/([^/]+)$", "send_to_device"),
    ("GET", r"^/_matrix/client/v3/rooms/([^/]+)/joined_members$", "joined_members"),
]


def canonical_json(obj):
    """The bytes a Matrix signature covers (Appendices, "Signing JSON")."""
    o = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    return json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature_ok(obj, user, device, ed25519_key):
    """None when the signature verifies or cannot be checked here (no
    python3-olm), else a sentence."""
    sig = ((obj.get("signatures") or {}).get(user) or {}).get(f"ed25519:{device}")
    if not isinstance(sig, str):
        return f"no signature by {user}'s device {device}"
    if _olm is None:
        return None
    try:
        _olm.ed25519_verify(ed25519_key, canonical_json(obj), sig)
    except Exception:  # olm.OlmVerifyError, or a malformed key
        return f"the signature by {user}'s device {device} does not verify"
    return None


def check_request(method, rel, body):
    """Spec errors of an E2EE request, or None when rel is not one."""
    for m, rx, required, allowed in E2EE_OPS:
        if m == method and re.match(rx, rel):
            errors = []
            if method in ("POST", "PUT"):
                if not isinstance(body, dict):
                    return [f"{method} {rel}: the body is not a JSON object"]
                for k in required:
                    if k not in body:
                        errors.append(f"{method} {rel}: missing required field {k!r}")
                for k in body:
                    if allowed is not None and k not in allowed:
                        errors.append(f"{method} {rel}: unknown field {k!r}")
            return errors
    return None


def check_device_keys(dk):
    """DeviceKeys (definitions/device_keys.yaml): every required field."""
    errors = []
    for k in ("user_id", "device_id", "algorithms", "keys", "signatures"):
        if k not in dk:
            errors.append(f"device_keys: missing {k!r}")
    if not isinstance(dk.get("algorithms"), list):
        errors.append("device_keys: algorithms is not a list")
    return errors


def check_to_device(etype, content):
    """A to-device message: room keys travel only inside Olm
    (m.room_key, m.forwarded_room_key must be encrypted), and an Olm
    m.room.encrypted carries sender_key and a {type 0|1, body} per
    recipient key."""
    errors = []
    if etype in ("m.room_key", "m.forwarded_room_key"):
        return [f"{etype} sent in clear text over /sendToDevice (it must be Olm-encrypted)"]
    if etype == "m.room_key_request":
        # event-schemas/schema/m.room_key_request.yaml: sent unencrypted;
        # action, requesting_device_id, request_id required; body (algorithm,
        # room_id, session_id) required when action is "request"
        if not isinstance(content, dict):
            return ["m.room_key_request: content is not an object"]
        for k in ("action", "requesting_device_id", "request_id"):
            if not isinstance(content.get(k), str):
                errors.append(f"m.room_key_request: {k!r} is missing or not a string")
        if content.get("action") not in ("request", "request_cancellation"):
            errors.append(f"m.room_key_request: action {content.get('action')!r} is not request or "
                          "request_cancellation")
        if content.get("action") == "request":
            body = content.get("body")
            if not isinstance(body, dict):
                errors.append("m.room_key_request: body is missing (required for action request)")
            else:
                for k in ("algorithm", "room_id", "session_id"):
                    if not isinstance(body.get(k), str):
                        errors.append(f"m.room_key_request: body.{k} is missing or not a string")
        return errors
    if etype == "m.room.encrypted":
        if not isinstance(content, dict) or content.get("algorithm") != ALG_OLM:
            return ["to-device m.room.encrypted: algorithm is not " + ALG_OLM]
        if not isinstance(content.get("sender_key"), str):
            errors.append("to-device m.room.encrypted: sender_key is missing")
        ct = content.get("ciphertext")
        if not isinstance(ct, dict) or not ct:
            errors.append("to-device m.room.encrypted: ciphertext is not a map of recipient keys")
        else:
            for k, v in ct.items():
                if not isinstance(v, dict) or v.get("type") not in (0, 1) or \
                        not isinstance(v.get("body"), str):
                    errors.append(f"to-device m.room.encrypted: ciphertext[{k}] is not {{type 0|1, body}}")
    return errors


def check_encrypted_content(c):
    """m.room.encrypted content (event-schemas/schema/m.room.encrypted.yaml)
    as a room event: Megolm, with ciphertext and session_id."""
    errors = []
    if not isinstance(c, dict):
        return ["m.room.encrypted content is not an object"]
    for k in ("algorithm", "ciphertext"):
        if k not in c:
            errors.append(f"m.room.encrypted content: missing {k!r}")
    if c.get("algorithm") == ALG_MEGOLM:
        if not isinstance(c.get("ciphertext"), str):
            errors.append("m.room.encrypted (Megolm): ciphertext is not a string")
        if not isinstance(c.get("session_id"), str):
            errors.append("m.room.encrypted (Megolm): session_id is missing")
    elif "algorithm" in c:
        errors.append(f"m.room.encrypted in a room: algorithm {c.get('algorithm')!r} is not Megolm")
    for k in ("body", "msgtype", "formatted_body"):
        if k in c:
            errors.append(f"m.room.encrypted content carries {k!r} in clear text")
    if len(json.dumps(c).encode()) > 65536:   # the whole event must fit in 65,536 bytes
        errors.append("m.room.encrypted content over 65,536 bytes")
    return errors


class E2EE:
    """The mixin FakeMatrix inherits; state lives under self.e2 (a dict),
    guarded by the fake's lock."""

    def _e2ee_init(self, bot_id):
        self.bot_id = bot_id
        self.users = {}              # localpart -> password, besides the bot
        self.device_user = {}        # device id -> user id (absent: the bot)
        self.device_names = {}       # device id -> display name
        self.device_keys = {}        # (user, device) -> DeviceKeys
        self.otks = {}               # (user, device) -> {"alg:id": key object}
        self.fallback = {}           # (user, device) -> {"alg:id": key object, ...}
        self.fallback_used = {}      # (user, device) -> set of algorithms
        self.to_device = {}          # device -> [(pos, event)]
        self.to_device_txns = set()  # (device, txnId)
        self.key_changes = []        # (pos, user, audience): device list changed, for everyone
                                     # sharing a room with user (audience None) or those users
        self.departures = []         # (pos, room, user)
        self.to_device_log = []      # every to-device message routed: (sender, type, user, device, content)
        self.key_uploads = []        # (user, device, body)
        self.held = {}               # device -> [(sender, type, content)]: to-device messages held back
        self.holding = set()         # devices whose incoming to-device messages are held
        self.dropping = set()        # devices whose incoming to-device messages are lost

    # ---- scripting ---------------------------------------------------------

    def add_user(self, localpart, password):
        with self.lock:
            self.users[localpart] = password
            return f"@{localpart}:localhost"

    def user_of(self, device):
        return self.device_user.get(device, self.bot_id)

    def add_member(self, room, user):
        """user joins room: an m.room.member event, and a device-list change
        for those who now share a room with it."""
        with self.lock:
            self._joined(room, user)

    def _joined(self, room, user):
        """user joins room (lock held): the member event and device-list
        changes both ways (keys.yaml / sync: device_lists.changed lists the
        users "who now share an encrypted room with the client")."""
        others = set(self.rooms[room]["members"]) - {user}
        self.rooms[room]["members"].add(user)
        self.rooms[room].setdefault("joined_at", {})[user] = self.pos + 1
        self._event(room, user, "m.room.member", {"membership": "join"}, state_key=user)
        self.key_changes.append((self.pos, user, None))
        for m in others:
            self.key_changes.append((self.pos, m, {user}))

    def enable_encryption(self, room, sender, **params):
        """An m.room.encryption state event (Megolm) in a room that was in
        clear; params: rotation_period_ms, rotation_period_msgs."""
        with self.lock:
            return self._event(room, sender, "m.room.encryption",
                               dict(algorithm=ALG_MEGOLM, **params), state_key="")["event_id"]

    def hold_to_device(self, device):
        """Holds back every to-device message for device (until
        release_to_device): a room key that arrives after its message."""
        with self.lock:
            self.holding.add(device)

    def release_to_device(self, device):
        with self.lock:
            self.holding.discard(device)
            for sender, etype, content in self.held.pop(device, []):
                self.pos += 1
                self.to_device.setdefault(device, []).append(
                    (self.pos, {"type": etype, "sender": sender, "content": content}))
            self.lock.notify_all()

    def drop_to_device(self, device):
        """Every to-device message for device is lost from now on (a key
        that never comes)."""
        with self.lock:
            self.dropping.add(device)

    def inject_to_device(self, device, sender, etype, content):
        """A to-device event for device as if sender had sent it (anything:
        the tests use it for garbage)."""
        with self.lock:
            self.pos += 1
            self.to_device.setdefault(device, []).append(
                (self.pos, {"type": etype, "sender": sender, "content": content}))
            self.lock.notify_all()

    def devices_of(self, user):
        with self.lock:
            return sorted(d for (u, d) in self.device_keys if u == user)

    def remove_member(self, room, user):
        with self.lock:
            self.rooms[room]["members"].discard(user)
            self._event(room, user, "m.room.member", {"membership": "leave"}, state_key=user)
            self.departures.append((self.pos, room, user))

    def shares_room(self, a, b):
        return a == b or any(a in r["members"] and b in r["members"] for r in self.rooms.values())

    # ---- endpoints (called by FakeMatrix's router with the lock free) --------

    def r_keys_upload(self, dev, args, q, b, f):
        user = self.user_of(dev)
        with self.lock:
            self.key_uploads.append((user, dev, b))
            key = (user, dev)
            dk = b.get("device_keys")
            if dk is not None:
                errs = check_device_keys(dk)
                if dk.get("user_id") != user or dk.get("device_id") != dev:
                    errs.append("device_keys: user_id / device_id are not the uploader's")
                ed = (dk.get("keys") or {}).get(f"ed25519:{dev}")
                if not errs:
                    e = signature_ok(dk, user, dev, ed)
                    if e:
                        errs.append("device_keys: " + e)
                if errs:
                    self.spec_errors.extend(errs)
                    return 400, {"errcode": "M_INVALID_PARAM", "error": "; ".join(errs)}
                if self.device_keys.get(key) != dk:
                    self.device_keys[key] = dk
                    self.pos += 1
                    self.key_changes.append((self.pos, user, None))
                    self.lock.notify_all()
            ed = ((self.device_keys.get(key) or {}).get("keys") or {}).get(f"ed25519:{dev}")
            mine = self.otks.setdefault(key, {})
            for kid, k in (b.get("one_time_keys") or {}).items():
                if kid in mine and mine[kid] != k:
                    return 400, {"errcode": "M_INVALID_PARAM",
                                 "error": f"One time key {kid} already exists."}
                if isinstance(k, dict) and ed:
                    e = signature_ok(k, user, dev, ed)
                    if e:
                        self.spec_errors.append(f"one_time_keys {kid}: {e}")
                mine[kid] = k
            if b.get("fallback_keys"):
                self.fallback[key] = dict(b["fallback_keys"])
                self.fallback_used[key] = set()
            return 200, {"one_time_key_counts": self._otk_counts(key)}

    def _otk_counts(self, key):
        counts = {}
        for kid in self.otks.get(key, {}):
            alg = kid.split(":", 1)[0]
            counts[alg] = counts.get(alg, 0) + 1
        return counts

    def r_keys_query(self, dev, args, q, b, f):
        hook = getattr(self, "bot_query_hook", None)
        if hook and self.user_of(dev) == self.bot_id:
            self.bot_query_hook = None
            hook()
        with self.lock:
            out = {}
            failures = {}
            omit = getattr(self, "query_omit", set())
            for user, devices in (b.get("device_keys") or {}).items():
                if user in omit and self.user_of(dev) == self.bot_id:
                    # as when the member's server does not answer: the user
                    # is left out and the server named in failures (once)
                    omit.discard(user)
                    failures[user.split(":", 1)[1]] = {"status": 503, "message": "Not ready"}
                    continue
                found = {}
                for (u, d), dk in self.device_keys.items():
                    if u == user and (not devices or d in devices):
                        k = dict(dk)
                        k["unsigned"] = {"device_display_name": self.device_names.get(d, d)}
                        found[d] = k
                out[user] = found
        post = getattr(self, "bot_query_post", None)
        if post and self.user_of(dev) == self.bot_id:
            self.bot_query_post = None
            post()
        with self.lock:
            return 200, {"device_keys": out, "failures": failures}

    def r_keys_claim(self, dev, args, q, b, f):
        with self.lock:
            out = {}
            for user, devices in (b.get("one_time_keys") or {}).items():
                for d, alg in (devices or {}).items():
                    key = (user, d)
                    pool = self.otks.get(key, {})
                    kid = next((k for k in sorted(pool) if k.startswith(alg + ":")), None)
                    if kid is not None:
                        out.setdefault(user, {})[d] = {kid: pool.pop(kid)}
                        continue
                    fb = {k: v for k, v in (self.fallback.get(key) or {}).items()
                          if k.startswith(alg + ":")}
                    if fb:
                        self.fallback_used.setdefault(key, set()).add(alg)
                        out.setdefault(user, {})[d] = fb
            return 200, {"one_time_keys": out, "failures": {}}

    def r_send_to_device(self, dev, args, q, b, f):
        etype, txn = args
        sender = self.user_of(dev)
        with self.lock:
            if (dev, txn) in self.to_device_txns:
                return 200, {}
            self.to_device_txns.add((dev, txn))
            for user, per_device in (b.get("messages") or {}).items():
                for d, content in (per_device or {}).items():
                    self.spec_errors.extend(check_to_device(etype, content))
                    targets = [x for (u, x) in self.device_keys if u == user] if d == "*" else [d]
                    if d == "*":
                        targets += [x for x, u in self.device_user.items()
                                    if u == user and x not in targets]
                    for t in targets:
                        self.to_device_log.append((sender, etype, user, t, content))
                        if t in self.dropping:
                            continue
                        if t in self.holding:
                            self.held.setdefault(t, []).append((sender, etype, content))
                            continue
                        self.pos += 1
                        self.to_device.setdefault(t, []).append(
                            (self.pos, {"type": etype, "sender": sender, "content": content}))
            self.lock.notify_all()
            return 200, {}

    def r_joined_members(self, dev, args, q, b, f):
        rid = args[0]
        user = self.user_of(dev)
        with self.lock:
            r = self.rooms.get(rid)
            if r is None or user not in r["members"]:
                return 403, {"errcode": "M_FORBIDDEN", "error": "not in room"}
            # display_name as Synapse gives it (the localpart when unset); nio needs it
            return 200, {"joined": {m: {"display_name": m[1:].split(":")[0]}
                                    for m in sorted(r["members"])}}

    # ---- sync --------------------------------------------------------------

    def e2ee_sync(self, dev, since):
        """The E2EE parts of a /sync answer for device dev after position
        since (None: initial sync).  Call with the lock held.  Messages up to
        since were acknowledged by this very request, so they go."""
        user = self.user_of(dev)
        s = since or 0
        queue = self.to_device.get(dev, [])
        if since is not None:
            queue = [(p, e) for p, e in queue if p > since]
            self.to_device[dev] = queue
        events = [dict(e) for p, e in queue if p > s]
        changed = sorted({u for p, u, aud in self.key_changes
                          if p > s and since is not None and self.shares_room(user, u)
                          and (aud is None or user in aud)})
        left = sorted({u for p, r, u in self.departures
                       if p > s and since is not None and u != user and not self.shares_room(user, u)})
        key = (user, dev)
        counts = self._otk_counts(key)
        counts.setdefault("signed_curve25519", 0)
        unused = sorted(k.split(":", 1)[0] for k in (self.fallback.get(key) or {})
                        if k.split(":", 1)[0] not in self.fallback_used.get(key, set()))
        return {"to_device": {"events": events},
                "device_lists": {"changed": changed, "left": left},
                "device_one_time_keys_count": counts,
                "device_unused_fallback_key_types": unused}

    def user_sync(self, user, dev, q, f):
        """/sync for a user other than the bot: the rooms it is in, with
        state (members, encryption) on the first sync."""
        import time
        since = int(q["since"][1:]) if q.get("since") else None
        timeout = int(q.get("timeout", "0")) / 1000.0
        end = time.time() + timeout
        with self.lock:
            while since is not None and self.pos <= since and time.time() < end:
                self.lock.wait(min(0.2, max(0.0, end - time.time())))
            s = since or 0
            join = {}
            for rid, r in self.rooms.items():
                if user not in r["members"]:
                    continue
                evs = [dict(e) for p, e in r["events"] if p > s]
                if since is not None and not evs:
                    continue
                for e in evs:
                    if e.get("_device") == dev:
                        e["unsigned"] = {"transaction_id": e["_txn"]}
                    e.pop("_device", None)
                    e.pop("_txn", None)
                    e.pop("room_id", None)
                state = []
                if since is None or r.get("joined_at", {}).get(user, 0) > s:
                    # the whole state on a first sync, or of a room joined since
                    state = [{"type": "m.room.create", "state_key": "", "sender": user,
                              "event_id": f"$create-{rid}", "origin_server_ts": 0,
                              "content": {"creator": user}}]
                    state += [{"type": "m.room.member", "state_key": m, "sender": m,
                               "event_id": f"$member-{rid}-{m}", "origin_server_ts": 0,
                               "content": {"membership": "join"}} for m in sorted(r["members"])]
                    state += [dict(e) for p, e in r["events"] if "state_key" in e and p <= s and
                              e["type"] != "m.room.member"]
                    for e in state:
                        e.pop("_device", None)
                        e.pop("_txn", None)
                        e.pop("room_id", None)
                join[rid] = {"timeline": {"events": evs, "limited": False, "prev_batch": f"s{s}"},
                             "state": {"events": state},
                             "summary": {"m.joined_member_count": len(r["members"])}}
            resp = {"next_batch": f"s{self.pos}", "rooms": {"join": join, "invite": {}, "leave": {}}}
            resp.update(self.e2ee_sync(dev, since))
            return 200, resp
