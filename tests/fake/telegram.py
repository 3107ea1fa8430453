"""A fake Telegram Bot API server for faqbot's tests (Python standard library).

Serves POST /bot<token>/<method> on 127.0.0.1 with getMe, getWebhookInfo,
deleteWebhook, setMyCommands, getUpdates (long poll; updates below the
requested offset are confirmed and dropped), sendMessage and
answerCallbackQuery.  Every request is checked against the Bot API
definition (method and parameter names, required parameters, types), read
from ../shared/specs/telegram/api.json when it is beside the repository,
else from the committed extract tests/fake/specs/telegram.json (see
extract_specs.py); violations are collected in `spec_errors`.

Faults are scripted per method with `fault(method, kind, times=1, **opts)`:
  status      reply with an error: status=429 retry_after=2, status=500,
              status=400 description="..." parameters={...}
  drop        close the connection without answering (request not processed)
  drop_after  process the request, then close the connection (unknown outcome)
  truncated   send half of a valid JSON body
  garbage     send a non-JSON body with status 200
  slow        sleep `seconds`, then answer normally
  big         answer 200 with a 5 MB body
Tests push user activity with user_message() / callback() and read what the
bot sent from `sent` (sendMessage calls, in arrival order).  `send_delay`
makes each sendMessage take that long; `max_sending` and `max_sending_chat`
record the most sendMessage requests answered at once, in all and to one chat.
"""
import json
import threading
import time

import extract_specs
from common import Handler, QuietServer, Waiting

TOKEN = "7714526301:AAF-test-token-Zq9vX2kLmN4pR7sT"
BOT_ID = 7714526301
BOT_USERNAME = "faqtestbot"


class Spec:
    def __init__(self):
        d = extract_specs.load("telegram")
        self.methods = d["methods"]
        self.types = d["types"]

    def check_value(self, v, types, where, errors):
        for t in types:
            if self._ok(v, t, where, []):
                errs = []
                self._ok(v, t, where, errs)
                errors.extend(errs)
                return
        errors.append(f"{where}: {json.dumps(v)[:80]} is not {' or '.join(types)}")

    def _ok(self, v, t, where, errors):
        if t.startswith("Array of "):
            if not isinstance(v, list):
                return False
            return all(self._ok(x, t[9:], f"{where}[{i}]", errors) for i, x in enumerate(v))
        if t == "Integer":
            return isinstance(v, int) and not isinstance(v, bool)
        if t == "Float":
            return isinstance(v, (int, float)) and not isinstance(v, bool)
        if t == "String":
            return isinstance(v, str)
        if t == "Boolean":
            return isinstance(v, bool)
        if t in self.types:
            ty = self.types[t]
            if not isinstance(v, dict):
                return False
            if "fields" not in ty:
                return True
            fields = {f["name"]: f for f in ty["fields"]}
            ok = True
            for k, x in v.items():
                if k not in fields:
                    errors.append(f"{where}: unknown field {k!r} of {t}")
                    ok = False
                elif not any(self._ok(x, tt, f"{where}.{k}", errors) for tt in fields[k]["types"]):
                    errors.append(f"{where}.{k}: not {fields[k]['types']}")
                    ok = False
            for name, f in fields.items():
                if f.get("required") and name not in v:
                    errors.append(f"{where}: missing required {name!r} of {t}")
                    ok = False
            return ok
        return True  # InputFile and other non-JSON types

    def check_request(self, method, params):
        errors = []
        m = self.methods.get(method)
        if m is None:
            return [f"unknown method {method!r}"]
        fields = {f["name"]: f for f in m.get("fields", [])}
        for k, v in params.items():
            if k not in fields:
                errors.append(f"{method}: unknown parameter {k!r}")
            else:
                self.check_value(v, fields[k]["types"], f"{method}.{k}", errors)
        for name, f in fields.items():
            if f.get("required") and name not in params:
                errors.append(f"{method}: missing required parameter {name!r}")
        return errors


class FakeTelegram(Waiting):
    def __init__(self, webhook_url="", check_spec=True, tls=None, first_name="FAQ"):
        self.spec = Spec() if check_spec else None
        self.first_name = first_name  # the bot's display name (getMe)
        self.lock = threading.Condition()
        self.updates = []          # pending updates (not yet confirmed)
        self.next_update_id = 1000
        self.next_message_id = {}  # per chat
        self.bot_message_id = 5000
        self.sent = []             # sendMessage params + message_id + t
        self.callback_answers = []
        self.requests = []         # (t, method, params)
        self.spec_errors = []
        self.faults = {}           # method -> list of fault dicts
        self.webhook_url = webhook_url
        self.delete_webhook_calls = []
        self.commands = None
        self.delivered_at = {}     # update_id -> time it was first returned by getUpdates
        self.send_delay = 0.0      # seconds each sendMessage takes (parallel sends show)
        self.sending = {}          # chat_id -> sendMessage requests being answered now
        self.max_sending = 0       # most sendMessage requests at once, all chats
        self.max_sending_chat = 0  # most at once to one chat
        self.chat_types = {}
        self.server = QuietServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        if tls:  # (certfile, keyfile): serve https
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.url = f"https://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            self.lock.notify_all()

    # ---- scripting -------------------------------------------------------

    def fault(self, method, kind, times=1, **opts):
        with self.lock:
            self.faults.setdefault(method, []).extend([dict(kind=kind, **opts)] * times)

    def _take_fault(self, method, params):
        with self.lock:
            lst = self.faults.get(method) or []
            for i, f in enumerate(lst):
                if "chat_id" in f and params.get("chat_id") != f["chat_id"]:
                    continue
                return lst.pop(i)
        return None

    def restart_update_ids(self, start):
        """Telegram picks update ids afresh after a week without updates: the
        next ids may be ones already used, and an offset from before the
        restart no longer hides them."""
        with self.lock:
            self.next_update_id = start
            self.ids_restarted = True

    def push_update(self, upd):
        with self.lock:
            upd = {"update_id": self.next_update_id, **upd}  # first, as Telegram writes it
            self.next_update_id += 1
            self.updates.append(upd)
            self.lock.notify_all()
            return upd["update_id"]

    def user_message(self, chat_id, text, chat_type="private", from_id=None, is_bot=False,
                     entities=None, reply_to_bot=False, date=None, thread_id=None):
        with self.lock:
            mid = self.next_message_id.get(chat_id, 1)
            self.next_message_id[chat_id] = mid + 1
        uid = from_id or (chat_id if chat_id > 0 else 4242)
        msg = {"message_id": mid, "date": int(date if date is not None else time.time()),
               "chat": {"id": chat_id, "type": chat_type},
               "from": {"id": uid, "is_bot": is_bot, "first_name": "U", "username": f"user{uid}"},
               "text": text}
        if entities:
            msg["entities"] = entities
        if reply_to_bot:
            msg["reply_to_message"] = {"message_id": 1, "date": int(time.time()),
                                       "chat": msg["chat"],
                                       "from": {"id": BOT_ID, "is_bot": True, "first_name": "FAQ",
                                                "username": BOT_USERNAME}}
        if thread_id:
            msg["message_thread_id"] = thread_id
            msg["is_topic_message"] = True
        self.push_update({"message": msg})
        return mid

    def callback(self, chat_id, data, message_id=1, chat_type="private"):
        cid = f"cb{self.next_update_id}"
        self.push_update({"callback_query": {
            "id": cid, "chat_instance": "x", "data": data,
            "from": {"id": chat_id if chat_id > 0 else 4242, "is_bot": False, "first_name": "U"},
            "message": {"message_id": message_id, "date": int(time.time()),
                        "chat": {"id": chat_id, "type": chat_type}, "text": "?"}}})
        return cid

    # ---- queries -----------------------------------------------------------

    def sent_to(self, chat_id):
        with self.lock:
            return [m for m in self.sent if m["chat_id"] == chat_id]

    def replies_to(self, chat_id, message_id):
        with self.lock:
            return [m for m in self.sent if m["chat_id"] == chat_id and
                    (m.get("reply_parameters") or {}).get("message_id") == message_id]

    # ---- HTTP ----------------------------------------------------------------

    def _handler(self):
        fake = self

        class H(Handler):
            def do_GET(self):
                self.do_POST()

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b"{}"
                parts = self.path.split("/")
                if len(parts) != 3 or not parts[1].startswith("bot"):
                    return self.reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
                token, method = parts[1][3:], parts[2]
                if token != TOKEN:
                    return self.reply(401, {"ok": False, "error_code": 401,
                                             "description": "Unauthorized"})
                try:
                    params = json.loads(raw or b"{}")
                except ValueError:
                    params = None
                with fake.lock:
                    fake.requests.append((time.time(), method, params))
                    if not isinstance(params, dict):
                        fake.spec_errors.append(f"{method}: body is not a JSON object")
                        params = {}
                    if fake.spec:
                        fake.spec_errors.extend(fake.spec.check_request(method, params))
                f = fake._take_fault(method, params)
                if f:
                    k = f["kind"]
                    if k == "status":
                        body = {"ok": False, "error_code": f["status"],
                                "description": f.get("description", "Internal Server Error")}
                        if "retry_after" in f:
                            body["parameters"] = {"retry_after": f["retry_after"]}
                            body["description"] = f"Too Many Requests: retry after {f['retry_after']}"
                        if "parameters" in f:
                            body["parameters"] = f["parameters"]
                        return self.reply(f["status"], body)
                    if k == "drop":
                        return self.drop()
                    if k == "redirect":
                        return self.reply(302, {"ok": False}, headers={"Location": f["location"]})
                    if k == "truncated":
                        return self.reply(200, raw=b'{"ok":true,"result":[{"update_id":')
                    if k == "garbage":
                        return self.reply(200, raw=b"<html>502 Bad Gateway</html>")
                    if k == "big":
                        return self.reply(200, raw=b'{"ok":true,"result":"' + b"x" * (5 << 20) + b'"}')
                    if k == "slow":
                        time.sleep(f.get("seconds", 3))
                result = getattr(fake, "m_" + method, None)
                if result is None:
                    return self.reply(404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"})
                status, body = result(params)
                if f and f["kind"] == "drop_after":
                    return self.drop()
                self.reply(status, body)

        return H

    # ---- methods -------------------------------------------------------------

    def m_getMe(self, p):
        return 200, {"ok": True, "result": {"id": BOT_ID, "is_bot": True,
                                             "first_name": self.first_name, "username": BOT_USERNAME,
                                             "can_read_all_group_messages": False}}

    def m_getWebhookInfo(self, p):
        return 200, {"ok": True, "result": {"url": self.webhook_url, "has_custom_certificate": False,
                                             "pending_update_count": 0}}

    def m_deleteWebhook(self, p):
        with self.lock:
            self.delete_webhook_calls.append(p)
            self.webhook_url = ""
        return 200, {"ok": True, "result": True}

    def m_setMyCommands(self, p):
        self.commands = p.get("commands")
        return 200, {"ok": True, "result": True}

    def m_getUpdates(self, p):
        offset = p.get("offset", 0)
        limit = p.get("limit", 100)
        timeout = min(p.get("timeout", 0), 50)
        end = time.time() + timeout
        with self.lock:
            while True:
                if getattr(self, "ids_restarted", False) and offset > self.next_update_id:
                    offset = 0  # an offset of the old sequence
                self.updates = [u for u in self.updates if u["update_id"] >= offset]
                if self.updates or time.time() >= end:
                    break
                self.lock.wait(min(0.2, max(0.0, end - time.time())))
            batch = self.updates[:limit]
            now = time.time()
            for u in batch:
                self.delivered_at.setdefault(u["update_id"], now)
            return 200, {"ok": True, "result": batch}

    def m_sendMessage(self, p):
        chat_id = p.get("chat_id")
        with self.lock:
            self.sending[chat_id] = self.sending.get(chat_id, 0) + 1
            self.max_sending = max(self.max_sending, sum(self.sending.values()))
            self.max_sending_chat = max(self.max_sending_chat, self.sending[chat_id])
        try:
            if self.send_delay:
                time.sleep(self.send_delay)
            return self._send_message(p)
        finally:
            with self.lock:
                self.sending[chat_id] -= 1

    def _send_message(self, p):
        with self.lock:
            self.bot_message_id += 1
            m = dict(p)
            m["message_id"] = self.bot_message_id
            m["t"] = time.time()
            self.sent.append(m)
            chat = {"id": p.get("chat_id"), "type": "private"}
            return 200, {"ok": True, "result": {"message_id": self.bot_message_id,
                                                 "date": int(time.time()), "chat": chat,
                                                 "text": p.get("text", "")}}

    def m_answerCallbackQuery(self, p):
        with self.lock:
            self.callback_answers.append(p)
        return 200, {"ok": True, "result": True}
