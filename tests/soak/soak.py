#!/usr/bin/env python3
"""make soak: faqbot answers a steady stream of questions from both fake
servers (Telegram and Matrix, 127.0.0.1) while faults are injected every few
seconds: 429 / M_LIMIT_EXCEEDED, 500s, dropped connections, slow answers,
valid and broken FAQ edits, SIGHUP, the database locked by another program
for several seconds, and (as root, with the state dir on a
small tmpfs) the disk full for a few seconds.  Reports questions asked,
answered, duplicated and lost, the bot's RSS, the WAL's and the database's
size over time.

Pass: nothing lost, duplicates <= kills (nothing is killed here: none), RSS
growth under 1 MB after the warm-up (the first fifth of the run), the WAL
never above its checkpoint size (plus one transaction), and the database
size set by retention, not traffic: with a short de-duplication window
(FAQBOT_TEST_DEDUP_WINDOW_S) it stops growing once rows are pruned.  With --valgrind the
bot runs under memcheck and must report no definitely or indirectly lost
bytes (and no errors).
"""
import argparse
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import sqlite3
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "fake"))
from matrix import PASSWORD, FakeMatrix  # noqa: E402
from telegram import TOKEN, FakeTelegram  # noqa: E402


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0


WAL_LIMIT = 1000 * 4096 + 1024 * 1024   # STORE_WAL_CHECKPOINT_PAGES pages + one transaction


def size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def hold_lock(db_path, seconds):
    """Another program holds the database's write lock (for seconds: faqbot
    waits 200 ms at most, then does the step again a second later)."""
    try:
        db = sqlite3.connect(db_path, isolation_level=None, timeout=10)
        db.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
        db.execute("ROLLBACK")
        db.close()
    except sqlite3.Error as e:
        print(f"soak: lock fault: {e}", file=sys.stderr)


def fill_disk(state, seconds):
    """Fills the state dir's file system for a while."""
    filler = os.path.join(state, "filler")
    try:
        with open(filler, "wb", buffering=0) as f:
            while True:
                f.write(b"\0" * 65536)
    except OSError:
        pass
    time.sleep(seconds)
    try:
        os.unlink(filler)
    except OSError:
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--faqbot", default="build/faqbot")
    ap.add_argument("--seconds", type=int, default=1800)
    ap.add_argument("--valgrind", action="store_true")
    a = ap.parse_args()
    rnd = random.Random(5)
    tmp = tempfile.mkdtemp(prefix="faqbot-soak-")
    faq_path = os.path.join(tmp, "faq.json")
    with open(os.path.join(ROOT, "faq", "faq.json"), encoding="utf-8") as f:
        base_faq = json.load(f)
    base_faq.pop("$schema", None)

    def write_faq(version=0, broken=False):
        tmpf = faq_path + ".new"
        with open(tmpf, "w", encoding="utf-8") as f:
            if broken:
                f.write('{"language": "french", "entries": [,]}')
            else:
                d = json.loads(json.dumps(base_faq))
                d["entries"][0]["answer"] += f" (version {version})"
                json.dump(d, f, ensure_ascii=False)
        os.rename(tmpf, faq_path)

    write_faq()
    state = os.path.join(tmp, "state")
    os.makedirs(state)
    tmpfs = False
    if os.geteuid() == 0 and shutil.which("mount") and not a.valgrind:
        tmpfs = subprocess.call(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", state],
                                stderr=subprocess.DEVNULL) == 0
    if not tmpfs:
        print("soak: no disk-full faults (they need root and a tmpfs; none under valgrind)",
              file=sys.stderr)
    window = max(20, min(120, a.seconds // 6))   # de-duplication window under test
    db_path = os.path.join(state, "faqbot.db")
    tg = FakeTelegram(check_spec=False)
    mx = FakeMatrix(check_spec=False)
    rooms = [mx.create_room([f"@s{i}:localhost"]) for i in range(10)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAQBOT_")}
    env.update(FAQBOT_TELEGRAM_TOKEN=TOKEN, FAQBOT_TELEGRAM_API_URL=tg.url,
               FAQBOT_MATRIX_HOMESERVER=mx.url, FAQBOT_MATRIX_USER="faqbot",
               FAQBOT_MATRIX_PASSWORD=PASSWORD, FAQBOT_STATE_DIR=state, FAQBOT_TEST_DEDUP_WINDOW_S=str(window),
               FAQBOT_FAQ=faq_path, FAQBOT_TELEGRAM_POLL_TIMEOUT="5", FAQBOT_MATRIX_SYNC_TIMEOUT="5",
               FAQBOT_TELEGRAM_RATE_LIMITS="false", FAQBOT_FLOOD_MAX="0",
               FAQBOT_TELEGRAM_GROUP_MODE="all", FAQBOT_TELEGRAM_COOLDOWN="0",
               FAQBOT_TELEGRAM_SEND_TIMEOUT="5", FAQBOT_LOG_LEVEL="warn")
    cmd = [a.faqbot, "run"]
    vlog = os.path.join(tmp, "valgrind.log")
    if a.valgrind:
        cmd = ["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
               "--show-leak-kinds=definite,indirect", "--error-exitcode=99",
               f"--log-file={vlog}"] + cmd
    log = open(os.path.join(tmp, "bot.log"), "wb")
    p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
    questions = ["combien ça coûte ?", "c'est quoi une étude en souscription",
                 "comment renouveler mon passeport", "on a déjà essayé, ça n'a pas marché",
                 "PLH 2.0 ?", "y a-t-il un risque à attendre ?"]
    asked_tg, asked_mx = [], []
    samples = []
    faults = ["tg429", "tg500", "tgdrop", "tgslow", "mx429", "mx500", "mxdrop", "mxsyncdrop",
              "edit", "broken", "hup", "lock"] + (["diskfull"] if tmpfs else [])
    max_wal = 0
    db_sizes = []
    fault_threads = []
    storage_faults = {}
    t0 = time.time()
    next_fault = t0 + 3
    next_sample = t0
    version = 0
    ok = False
    try:
        # both transports up: Telegram polling, and Matrix past its first sync
        # (which, by design, answers no history)
        up = 120 if a.valgrind else 30
        if not tg.wait(lambda: any(r[1] == "getUpdates" for r in tg.requests), up) or \
                not mx.wait(lambda: any(r[2].endswith("/sync") and "since" in r[3] for r in mx.requests), up):
            sys.exit("soak: the bot did not start")
        while time.time() - t0 < a.seconds:
            now = time.time()
            i = len(asked_tg)
            chat = -3000 - i % 20
            asked_tg.append((chat, tg.user_message(chat, questions[i % len(questions)],
                                                   chat_type="group")))
            r = rooms[i % len(rooms)]
            asked_mx.append((r, mx.user_message(r, f"@s{i % len(rooms)}:localhost",
                                                questions[(i + 1) % len(questions)])))
            if now >= next_fault:
                f = rnd.choice(faults)
                if f == "tg429":
                    tg.fault("sendMessage", "status", status=429, retry_after=1)
                elif f == "tg500":
                    tg.fault("sendMessage", "status", times=2, status=500)
                elif f == "tgdrop":
                    tg.fault("getUpdates", "drop")
                elif f == "tgslow":
                    tg.fault("getUpdates", "slow", seconds=2)
                elif f == "mx429":
                    mx.fault("send", "status", status=429, errcode="M_LIMIT_EXCEEDED", retry_after_ms=700)
                elif f == "mx500":
                    mx.fault("send", "status", times=2, status=500, errcode="M_UNKNOWN")
                elif f == "mxdrop":
                    mx.fault("send", "drop_after")
                elif f == "mxsyncdrop":
                    mx.fault("sync", "drop")
                elif f == "edit":
                    version += 1
                    write_faq(version)
                elif f == "broken":
                    write_faq(broken=True)
                    time.sleep(0.5)
                    write_faq(version)
                elif f == "hup":
                    p.send_signal(signal.SIGHUP)
                elif f in ("lock", "diskfull") and not any(t.is_alive() for t in fault_threads):
                    t = threading.Thread(target=hold_lock, args=(db_path, 6.5)) if f == "lock" else \
                        threading.Thread(target=fill_disk, args=(state, 3))
                    t.start()
                    fault_threads.append(t)
                    storage_faults[f] = storage_faults.get(f, 0) + 1
                next_fault = now + rnd.uniform(2, 5)
            max_wal = max(max_wal, size(db_path + "-wal"))
            if now >= next_sample:
                samples.append((now - t0, rss_kb(p.pid)))
                db_sizes.append((now - t0, size(db_path)))
                next_sample = now + 5
            if p.poll() is not None:
                sys.exit(f"soak: the bot exited early with status {p.returncode}")
            time.sleep(0.1 if not a.valgrind else 0.3)
        for t in fault_threads:
            t.join()
        # let the queues drain; replies are counted once per check, by what
        # they answer (asking replies_to per question is quadratic: minutes
        # per check after a 30-minute run)
        def tg_counts():
            n = collections.Counter()
            for m in list(tg.sent):
                n[(m["chat_id"], (m.get("reply_parameters") or {}).get("message_id"))] += 1
            return n

        def mx_counts():
            n = collections.Counter()
            for e in list(mx.sent):
                rel = (e["content"].get("m.relates_to") or {}).get("m.in_reply_to") or {}
                n[(e["room_id"], rel.get("event_id"))] += 1
            return n
        def all_answered(counts, asked):
            n = counts()
            return all(n[tuple(q)] for q in asked)
        tg.wait(lambda: all_answered(tg_counts, asked_tg), 120)
        mx.wait(lambda: all_answered(mx_counts, asked_mx), 120)
        ntg, nmx = tg_counts(), mx_counts()
        lost_tg = sum(1 for q in asked_tg if not ntg[tuple(q)])
        lost_mx = sum(1 for q in asked_mx if not nmx[tuple(q)])
        dup_tg = sum(max(0, ntg[tuple(q)] - 1) for q in asked_tg)
        dup_mx = sum(max(0, nmx[tuple(q)] - 1) for q in asked_mx)
        samples.append((time.time() - t0, rss_kb(p.pid)))
        warm = [kb for t, kb in samples if t >= a.seconds / 5]
        growth = (max(warm) - warm[0]) / 1024 if warm else 0.0
        print(f"soak: {a.seconds} s, faults every 2-5 s; telegram: {len(asked_tg)} asked, "
              f"{len(asked_tg) - lost_tg} answered, {dup_tg} duplicated, {lost_tg} lost; matrix: "
              f"{len(asked_mx)} asked, {len(asked_mx) - lost_mx} answered, {dup_mx} duplicated, "
              f"{lost_mx} lost")
        print("soak: RSS (MB) over time: " +
              ", ".join(f"{t:.0f}s={kb / 1024:.1f}" for t, kb in samples[:: max(1, len(samples) // 12)]))
        print(f"soak: RSS growth after warm-up: {growth:.2f} MB")
        # the database: once the window has passed twice and retention ran
        # (every minute), its size must stop following the traffic
        settled = [b for t, b in db_sizes if t >= max(a.seconds / 2, 2 * window + 70)]
        db_growth = (max(settled) - settled[0]) if settled else 0
        db_ok = not settled or db_growth <= max(512 * 1024, settled[0] // 4)
        print("soak: database (KB) over time: " +
              ", ".join(f"{t:.0f}s={b / 1024:.0f}" for t, b in db_sizes[:: max(1, len(db_sizes) // 12)]))
        print(f"soak: de-duplication window {window} s; database growth once settled: "
              f"{db_growth / 1024:.0f} KB; WAL at most {max_wal / 1024:.0f} KB "
              f"(limit {WAL_LIMIT / 1024:.0f} KB); storage faults: "
              f"lock x{storage_faults.get('lock', 0)}, "
              + (f"disk full x{storage_faults.get('diskfull', 0)}" if tmpfs else "no disk full"))
        try:  # what the database holds at the end: retention, table by table
            ro = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
            tables = [r[0] for r in ro.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            rows = {t: ro.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
            free = ro.execute("PRAGMA freelist_count").fetchone()[0]
            ro.close()
            print("soak: rows at the end: " + ", ".join(f"{t}={n}" for t, n in sorted(rows.items()))
                  + f"; free pages {free}")
        except sqlite3.Error as e:
            print(f"soak: cannot read the database's row counts: {e}")
        ok = lost_tg == lost_mx == 0 and dup_tg == dup_mx == 0 and (a.valgrind or growth < 1.0) \
            and max_wal <= WAL_LIMIT and db_ok
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = -9
        tg.close()
        mx.close()
        log.close()
        if a.valgrind:
            with open(vlog, encoding="utf-8", errors="replace") as f:
                summary = [l.strip() for l in f if "definitely lost" in l or "indirectly lost" in l
                           or "ERROR SUMMARY" in l or "no leaks are possible" in l]
            print("soak: valgrind: " + " | ".join(s.split("== ")[-1] for s in summary))
            ok = ok and rc == 0
            if rc == 99:
                print("soak: valgrind found leaks or errors")
        elif rc != 0:
            print(f"soak: the bot exited with status {rc}")
            ok = False
        if tmpfs:
            subprocess.call(["umount", "-l", state])
        shutil.rmtree(tmp, ignore_errors=True)
    print("soak: " + ("PASS" if ok else "FAIL"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
