"""A fake Matrix homeserver for faqbot's tests (Python standard library;
Debian's python3-yaml too when it reads ../shared/specs).

Serves the Client-Server API on 127.0.0.1: /.well-known/matrix/client,
/versions, /login (device_id reuse), /account/whoami, /user/{id}/filter,
/sync (long poll, since, invites, leaves, limited timelines), /rooms/{id}/join,
/rooms/{id}/send/{type}/{txnId} (deduplicated per device and txnId, echoed in
/sync with unsigned.transaction_id), /rooms/{id}/messages and
/rooms/{id}/state/{type}/{stateKey} (recorded in state_gets).  Every request
is checked against the Client-Server API (path, method, query parameters,
required body fields; sent contents against m.room.message / m.notice), read
from ../shared/specs/matrix/ when it is beside the repository, else from the
committed extract tests/fake/specs/matrix.json (see extract_specs.py);
violations go to `spec_errors`.

Faults per endpoint with fault(name, kind, times=1, **opts), name one of
send, sync, join, login, whoami, messages:
  status         errcode + status (e.g. 429 M_LIMIT_EXCEEDED with retry_after_ms
                 or retry_after_header, 500 M_UNKNOWN)
  unknown_token  401 M_UNKNOWN_TOKEN (soft_logout=True/False); the token dies
  drop, drop_after, truncated, slow  as in the Telegram fake
  limited        (sync) return only the last `keep` events, limited: true
/sync honours the filter's room.timeline.limit, whether the filter is an id
from /user/{id}/filter or inline JSON (filter={...}).
"""
import json
import re
import threading
import time
from urllib.parse import parse_qs, unquote, urlsplit

import extract_specs
import matrix_e2ee
from common import Handler, QuietServer, Waiting
BOT = "@faqbot:localhost"
PASSWORD = "correct horse battery staple"
PREFIX = "/_matrix/client/v3"


class Spec:
    def __init__(self):
        facts = extract_specs.load("matrix")
        self.ops = [(op["method"], extract_specs.path_regex(op["path"]), op)
                    for op in facts["operations"]]
        self.notice_required = facts["notice_required"]

    def check(self, method, path, query, body, by_bot=True):
        errors = []
        if path.startswith("/.well-known/"):
            return errors
        if not path.startswith(PREFIX) and not path.startswith("/_matrix/client/versions"):
            return [f"{method} {path}: not a Client-Server API path"]
        rel = path[len(PREFIX):] if path.startswith(PREFIX) else "/versions"
        e2ee = matrix_e2ee.check_request(method, rel, body)  # key endpoints: not in ../shared/specs
        if e2ee is not None:
            return e2ee
        found = [op for m, rx, op in self.ops if m == method and rx.match(rel)]
        if not found:
            return [f"{method} {rel}: no such endpoint in the spec"]
        op = found[0]
        for k in query:
            if k not in op["query"]:
                errors.append(f"{method} {rel}: unknown query parameter {k!r}")
        for k, required in op["query"].items():
            if required and k not in query:
                errors.append(f"{method} {rel}: missing required query parameter {k!r}")
        rb = op["body"]
        if method in ("POST", "PUT"):
            if not isinstance(body, dict):
                errors.append(f"{method} {rel}: the body is not a JSON object")
            elif rb and "send" not in rel:
                for k in rb["required"]:
                    if k not in body:
                        errors.append(f"{method} {rel}: missing required field {k!r}")
                if not rb["others_allowed"]:
                    for k in body:
                        if k not in rb["fields"]:
                            errors.append(f"{method} {rel}: unknown field {k!r}")
            if "/send/m.room.encrypted/" in rel:
                errors += matrix_e2ee.check_encrypted_content(body)
            elif "/send/" in rel and isinstance(body, dict) and by_bot:
                errors += self.check_notice(body)
        return errors

    def check_notice(self, c):
        errors = []
        for k in self.notice_required:
            if k not in c:
                errors.append(f"m.notice content: missing {k!r}")
        if c.get("msgtype") != "m.notice":
            errors.append("bot messages must be m.notice")
        for k in ("body", "format", "formatted_body"):
            if k in c and not isinstance(c[k], str):
                errors.append(f"m.notice content: {k} is not a string")
        if "m.mentions" not in c:
            errors.append("m.mentions is missing (always send it)")
        elif c["m.mentions"].get("room"):
            errors.append("m.mentions.room must never be set")
        rel = c.get("m.relates_to")
        if rel is not None:
            if "m.in_reply_to" in rel and not isinstance(rel["m.in_reply_to"].get("event_id"), str):
                errors.append("m.in_reply_to without event_id")
            if "rel_type" in rel and not isinstance(rel.get("event_id"), str):
                errors.append("m.relates_to with rel_type but no event_id")
        if len(json.dumps(c).encode()) > 65536:
            errors.append("event content over 65,536 bytes")
        return errors


class FakeMatrix(Waiting, matrix_e2ee.E2EE):
    def __init__(self, check_spec=True):
        self.spec = Spec() if check_spec else None
        self.lock = threading.Condition()
        self.pos = 0
        self.rooms = {}          # id -> {"members": set, "events": [(pos, ev)], "left": pos}
        self.invites = {}        # room -> (pos, inviter)
        self.tokens = {"static-token": "STATIC"}
        self.devices = 0
        self.logins = []
        self.txns = {}           # (device, room, txn) -> event_id
        self.sent = []           # bot events
        self.joins = []
        self.state_gets = []     # (user, room, event type, state key) of GET /rooms/{id}/state/...
        self.requests = []
        self.spec_errors = []
        self.faults = {}
        self.sync_now = self.sync_peak = 0   # the bot's /sync requests in flight, and the most at once
        self.filters = []
        self.next_event = 1
        self.bot_synced = 0      # the position the bot's last /sync answer reached
        self.bot_syncs = 0       # /sync requests the bot made
        self._e2ee_init(BOT)
        self.server = QuietServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    # ---- scripting -----------------------------------------------------------

    def fault(self, name, kind, times=1, **opts):
        with self.lock:
            self.faults.setdefault(name, []).extend([dict(kind=kind, **opts)] * times)

    def _take(self, name):
        with self.lock:
            lst = self.faults.get(name) or []
            return lst.pop(0) if lst else None

    def _event(self, room, sender, etype, content, **extra):
        self.pos += 1
        ev = {"event_id": f"$e{self.next_event}", "type": etype, "sender": sender,
              "origin_server_ts": int(time.time() * 1000), "room_id": room, "content": content}
        ev.update(extra)
        self.next_event += 1
        self.rooms[room]["events"].append((self.pos, ev))
        self.lock.notify_all()
        return ev

    def create_room(self, members, bot=True, encrypted=False):
        with self.lock:
            rid = f"!r{len(self.rooms) + 1}:localhost"
            self.rooms[rid] = {"members": set(members) | ({BOT} if bot else set()), "events": [],
                               "left": None}
            if encrypted:
                self._event(rid, members[0], "m.room.encryption",
                            {"algorithm": "m.megolm.v1.aes-sha2"}, state_key="")
            return rid

    def invite(self, room, inviter, stripped_state=True):
        """The bot is invited; stripped_state=False: the invite_state
        carries only the invitation (no m.room.encryption)."""
        with self.lock:
            self.pos += 1
            self.invites[room] = (self.pos, inviter)
            self.rooms[room]["bare_invite"] = not stripped_state
            self.lock.notify_all()

    def user_message(self, room, sender, body, mentions=None, reply_to=None, thread=None,
                     msgtype="m.text", content=None, ts=None):
        c = {"msgtype": msgtype, "body": body}
        if mentions is not None:
            c["m.mentions"] = {"user_ids": mentions}
        if thread:
            c["m.relates_to"] = {"rel_type": "m.thread", "event_id": thread, "is_falling_back": True,
                                 "m.in_reply_to": {"event_id": reply_to or thread}}
        elif reply_to:
            c["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        if content:
            c.update(content)
        extra = {"origin_server_ts": int(ts * 1000)} if ts is not None else {}
        with self.lock:
            return self._event(room, sender, "m.room.message", c, **extra)["event_id"]

    def reaction(self, room, sender, event_id, key):
        """An m.reaction (client-server spec, module "Event annotations and
        reactions"): an m.annotation relation to event_id with key."""
        with self.lock:
            return self._event(room, sender, "m.reaction",
                               {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id,
                                                 "key": key}})["event_id"]

    def redact(self, room, sender, event_id):
        """An m.room.redaction of event_id: "redacts" at the top level (room
        versions 1-10) and in content (version 11), as servers send it."""
        with self.lock:
            return self._event(room, sender, "m.room.redaction", {"redacts": event_id},
                               redacts=event_id)["event_id"]

    def encrypted_message(self, room, sender):
        with self.lock:
            return self._event(room, sender, "m.room.encrypted",
                               {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "xyz",
                                "session_id": "s", "sender_key": "k", "device_id": "D"})["event_id"]

    # ---- queries ---------------------------------------------------------------

    def notices(self, room):
        with self.lock:
            return [e for e in self.sent if e["room_id"] == room]

    def replies_to(self, room, event_id):
        with self.lock:
            return [e for e in self.sent if e["room_id"] == room and
                    ((e["content"].get("m.relates_to") or {}).get("m.in_reply_to") or {}).get("event_id")
                    == event_id]

    # ---- HTTP ------------------------------------------------------------------

    def _handler(self):
        fake = self

        class H(Handler):
            def do_GET(self):
                self.handle_any("GET")

            def do_POST(self):
                self.handle_any("POST")

            def do_PUT(self):
                self.handle_any("PUT")

            def handle_any(self, method):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                u = urlsplit(self.path)
                path = u.path
                query = {k: v[0] for k, v in parse_qs(u.query).items()}
                body = None
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        body = "<not json>"
                with fake.lock:
                    fake.requests.append((time.time(), method, path, query, body))
                token = (self.headers.get("Authorization") or "")[7:]
                with fake.lock:
                    if fake.spec:
                        # the m.notice rules are the bot's; other users (the
                        # E2EE tests' clients) send m.text
                        dev = fake.tokens.get(token)
                        by_bot = dev is None or fake.user_of(dev) == BOT
                        fake.spec_errors.extend(fake.spec.check(method, path, query, body, by_bot))
                route = fake.route(method, path)
                if route is None:
                    return self.reply(404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"})
                name, args = route
                f = fake._take(name)
                if f:
                    k = f["kind"]
                    if k == "status":
                        obj = {"errcode": f.get("errcode", "M_UNKNOWN"), "error": f.get("error", "fault")}
                        hdr = {}
                        if "retry_after_ms" in f:
                            obj["retry_after_ms"] = f["retry_after_ms"]
                        if "retry_after_header" in f:
                            hdr["Retry-After"] = str(f["retry_after_header"])
                        return self.reply(f["status"], obj, headers=hdr)
                    if k == "unknown_token":
                        with fake.lock:
                            fake.tokens.pop(token, None)
                        return self.reply(401, {"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid token",
                                                "soft_logout": f.get("soft_logout", False)})
                    if k == "drop":
                        return self.drop()
                    if k == "truncated":
                        return self.reply(200, raw=b'{"next_batch": "s1", "rooms": {"join": {')
                    if k == "slow":
                        time.sleep(f.get("seconds", 3))
                if name not in ("login", "wellknown", "versions"):
                    with fake.lock:
                        device = fake.tokens.get(token)
                    if device is None:
                        return self.reply(401, {"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid token",
                                                "soft_logout": False})
                else:
                    device = None
                status, obj = getattr(fake, "r_" + name)(device, args, query, body, f)
                if f and f["kind"] == "drop_after":
                    return self.drop()
                self.reply(status, obj)

        return H

    ROUTES = [
        ("GET", r"^/\.well-known/matrix/client$", "wellknown"),
        ("GET", r"^/_matrix/client/versions$", "versions"),
        ("POST", r"^/_matrix/client/v3/login$", "login"),
        ("GET", r"^/_matrix/client/v3/account/whoami$", "whoami"),
        ("POST", r"^/_matrix/client/v3/user/([^/]+)/filter$", "filter"),
        ("GET", r"^/_matrix/client/v3/sync$", "sync"),
        ("POST", r"^/_matrix/client/v3/rooms/([^/]+)/join$", "join"),
        ("PUT", r"^/_matrix/client/v3/rooms/([^/]+)/send/([^/]+)/([^/]+)$", "send"),
        ("GET", r"^/_matrix/client/v3/rooms/([^/]+)/messages$", "messages"),
        ("GET", r"^/_matrix/client/v3/rooms/([^/]+)/state/([^/]+)(?:/([^/]*))?$", "room_state"),
    ] + matrix_e2ee.ROUTES

    def route(self, method, path):
        for m, rx, name in self.ROUTES:
            mt = re.match(rx, path)
            if m == method and mt:
                return name, [None if g is None else unquote(g) for g in mt.groups()]
        return None

    # ---- endpoints -----------------------------------------------------------

    def r_wellknown(self, dev, args, q, b, f):
        return 200, {"m.homeserver": {"base_url": self.url}}

    def r_versions(self, dev, args, q, b, f):
        return 200, {"versions": ["v1.11"]}

    def r_login(self, dev, args, q, b, f):
        with self.lock:
            self.logins.append(b)
            user = (b.get("identifier") or {}).get("user", "")
            local = user[1:].split(":")[0] if user.startswith("@") else user
            other = local in self.users and b.get("password") == self.users[local]  # E2EE tests
            if not other and (b.get("type") != "m.login.password" or user not in ("faqbot", BOT) or
                              b.get("password") != PASSWORD):
                return 403, {"errcode": "M_FORBIDDEN", "error": "Invalid username or password"}
            device = b.get("device_id")
            if not device:
                self.devices += 1
                device = f"DEV{self.devices}"
            token = f"tok-{device}-{len(self.logins)}"
            self.tokens[token] = device
            user_id = f"@{local}:localhost" if other else BOT
            if other:
                self.device_user[device] = user_id
                self.device_names[device] = b.get("initial_device_display_name") or device
            return 200, {"user_id": user_id, "access_token": token, "device_id": device}

    def r_whoami(self, dev, args, q, b, f):
        return 200, {"user_id": self.user_of(dev), "device_id": dev}

    def r_filter(self, dev, args, q, b, f):
        with self.lock:
            self.filters.append(b)
        return 200, {"filter_id": f"f{len(self.filters)}"}

    @staticmethod
    def _events_after(r, since):
        """A room's (pos, event) after since: they are kept in pos order, so
        only the new ones are looked at (not the whole history each sync)."""
        evs = r["events"]
        i = len(evs)
        while i and evs[i - 1][0] > since:
            i -= 1
        return evs[i:]

    def _room_view(self, rid, since, limit, force_keep=None, full_state=False):
        r = self.rooms[rid]
        evs = self._events_after(r, since)
        limited = False
        keep = force_keep if force_keep is not None else limit
        if len(evs) > keep:
            evs = evs[-keep:] if keep else []
            limited = True
        start = evs[0][0] if evs else self.pos + 1
        prev = f"s{start - 1}"
        timeline = {"events": [dict(e) for _, e in evs], "limited": limited, "prev_batch": prev}
        # state: "updates to the state, between the time indicated by the
        # since parameter, and the start of the timeline" (all of it on an
        # initial sync or for a room just joined), latest per (type, state_key)
        state = {}
        for p, e in r["events"]:
            if "state_key" in e and p < start and (full_state or p > since):
                state[(e["type"], e["state_key"])] = dict(e)
        return {"timeline": timeline, "state": {"events": list(state.values())},
                "summary": {"m.joined_member_count": len(r["members"])}}

    def timeline_limit(self, q):
        """The room.timeline.limit of the request's filter (an id or inline JSON)."""
        spec = q.get("filter") or ""
        try:
            if spec.startswith("{"):
                flt = json.loads(spec)
            elif re.match(r"^f\d+$", spec):
                flt = self.filters[int(spec[1:]) - 1]
            else:
                flt = {}
            return int(((flt.get("room") or {}).get("timeline") or {}).get("limit", 50))
        except (ValueError, IndexError, AttributeError):
            return 50

    def r_sync(self, dev, args, q, b, f):
        if self.user_of(dev) != BOT:
            return self.user_sync(self.user_of(dev), dev, q, f)
        with self.lock:
            self.bot_syncs += 1
            self.sync_now += 1
            self.sync_peak = max(self.sync_peak, self.sync_now)
        try:
            return self.bot_sync(dev, args, q, b, f)
        finally:
            with self.lock:
                self.sync_now -= 1

    def bot_sync(self, dev, args, q, b, f):
        limit = self.timeline_limit(q)
        since = int(q["since"][1:]) if q.get("since") else None
        timeout = int(q.get("timeout", "0")) / 1000.0
        end = time.time() + timeout
        with self.lock:
            while since is not None and self.pos <= since and time.time() < end:
                self.lock.wait(min(0.2, max(0.0, end - time.time())))
            s = since or 0
            join, invite, leave = {}, {}, {}
            for rid, r in self.rooms.items():
                if BOT in r["members"] and (since is None or (r["events"] and r["events"][-1][0] > s)):
                    keep = f["keep"] if f and f["kind"] == "limited" else None
                    join[rid] = self._room_view(rid, s, limit, keep,
                                                full_state=since is None or r.get("bot_joined", 0) > s)
                    for e in join[rid]["timeline"]["events"]:
                        if e["sender"] == BOT and e.get("_device") == dev:
                            e["unsigned"] = {"transaction_id": e["_txn"]}
                        e.pop("_device", None)
                        e.pop("_txn", None)
                if r["left"] is not None and r["left"] > s:
                    leave[rid] = {"timeline": {"events": []}}
            for rid, (p, inviter) in self.invites.items():
                if p > s:
                    # stripped state: the spec's list includes m.room.encryption
                    # (Client-Server API, "Stripped state")
                    stripped = [{"type": e["type"], "state_key": e["state_key"], "sender": e["sender"],
                                 "content": e["content"]} for _, e in self.rooms[rid]["events"]
                                if e["type"] == "m.room.encryption" and
                                not self.rooms[rid].get("bare_invite")][-1:]
                    invite[rid] = {"invite_state": {"events": stripped + [
                        {"type": "m.room.member", "state_key": BOT, "sender": inviter,
                         "content": {"membership": "invite"}}]}}
            resp = {"next_batch": f"s{self.pos}",
                    "rooms": {"join": join, "invite": invite, "leave": leave}}
            resp.update(self.e2ee_sync(dev, since))
            self.bot_synced = self.pos   # everything up to here was handed to the bot
            return 200, resp

    def r_room_state(self, dev, args, q, b, f):
        """GET /rooms/{roomId}/state/{eventType}/{stateKey} (the trailing
        slash optional for an empty state key): the content of the room's
        current state event, 404 M_NOT_FOUND when there is none, 403 to a
        user who is not a member (Client-Server API, "Getting events for a
        room")."""
        rid, etype, skey = args[0], args[1], args[2] or ""
        user = self.user_of(dev)
        with self.lock:
            self.state_gets.append((user, rid, etype, skey))
            if rid not in self.rooms or user not in self.rooms[rid]["members"]:
                return 403, {"errcode": "M_FORBIDDEN", "error": "You aren't a member of the room."}
            found = None
            for _, ev in self.rooms[rid]["events"]:
                if ev.get("type") == etype and ev.get("state_key") == skey:
                    found = ev
            if found is None:
                return 404, {"errcode": "M_NOT_FOUND", "error": "Event not found."}
            return 200, found["content"]

    def r_join(self, dev, args, q, b, f):
        rid = args[0]
        with self.lock:
            if rid not in self.rooms or rid not in self.invites and BOT not in self.rooms[rid]["members"]:
                return 403, {"errcode": "M_FORBIDDEN", "error": "You are not invited to this room."}
            if BOT not in self.rooms[rid]["members"]:
                self._joined(rid, BOT)               # the member event, device-list changes
                self.rooms[rid]["bot_joined"] = self.pos
            self.invites.pop(rid, None)
            self.joins.append(rid)
            return 200, {"room_id": rid}

    def r_send(self, dev, args, q, b, f):
        rid, etype, txn = args
        sender = self.user_of(dev)
        with self.lock:
            key = (dev, rid, txn)
            if key in self.txns:
                return 200, {"event_id": self.txns[key]}
            if rid not in self.rooms or sender not in self.rooms[rid]["members"]:
                return 403, {"errcode": "M_FORBIDDEN", "error": "not in room"}
            ev = self._event(rid, sender, etype, b, _device=dev, _txn=txn)
            self.txns[key] = ev["event_id"]
            if sender != BOT:
                return 200, {"event_id": ev["event_id"]}
            rec = dict(ev)
            rec["t"] = time.time()
            rec["txn"] = txn
            self.sent.append(rec)
            return 200, {"event_id": ev["event_id"]}

    def r_messages(self, dev, args, q, b, f):
        rid = args[0]
        frm = int(q["from"][1:])
        to = int(q["to"][1:]) if q.get("to") else 0
        limit = int(q.get("limit", "10"))
        with self.lock:
            evs = [e for p, e in reversed(self.rooms[rid]["events"]) if to < p <= frm]
            chunk = [dict(e) for e in evs[:limit]]
            for e in chunk:
                e.pop("_device", None)
                e.pop("_txn", None)
            out = {"start": q["from"], "chunk": chunk}
            if len(evs) > limit:
                last = [p for p, e in self.rooms[rid]["events"] if e["event_id"] == evs[limit - 1]["event_id"]][0]
                out["end"] = f"s{last - 1}"
            return 200, out
