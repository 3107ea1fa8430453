#!/usr/bin/env python3
"""make bench, chat part: faqbot against the fake Bot API server and the fake
homeserver on 127.0.0.1, rate limits off, durable state on (SQLite WAL,
synchronous=FULL).  For each transport:

- latency: questions asked one at a time; time from the update's delivery
  (getUpdates / /sync answer) to the reply's arrival (p50, p99);
- throughput: N questions queued at once over many chats; questions answered
  per second from the first question to the last answer (target, issue #12:
  >= 1,500 questions/s per transport with synchronous=FULL), and the CPU
  time one question costs faqbot and the fake server (the machine may be
  shared: wall time is noisy, CPU time much less so);
- memory of the faqbot process in service, after the throughput run: peak
  RSS (VmHWM), RSS, PSS (shared pages divided among the processes that map
  them) and private memory (Private_Clean + Private_Dirty: what this process
  alone costs), from /proc/PID/smaps_rollup.  Target (issue #12): private
  memory <= 10 MB.  Private_Clean holds library pages that no other process
  maps at that moment, so "private" depends on what else runs: "dirty" (heap,
  stack, written library data) is what faqbot costs in any case; alone in a
  container, every page it maps (RSS) is its own.
Figures, not a pass/fail test.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "fake"))
from matrix import PASSWORD, FakeMatrix  # noqa: E402
from telegram import TOKEN, FakeTelegram  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def start_bot(faqbot, tmp, settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAQBOT_")}
    env.update(FAQBOT_STATE_DIR=os.path.join(tmp, "state"),
               FAQBOT_FAQ=os.path.join(ROOT, "faq", "faq.json"), FAQBOT_LOG_LEVEL="warn",
               FAQBOT_FLOOD_MAX="0")
    env.update(settings)
    return subprocess.Popen([faqbot, "run"], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL)


def memory(pid):
    """Peak RSS, RSS, PSS and private memory of pid, in MB."""
    with open(f"/proc/{pid}/status") as f:
        hwm = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
    kb = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for l in f:
            parts = l.split()
            if len(parts) == 3 and parts[2] == "kB":
                kb[parts[0].rstrip(":")] = int(parts[1])
    return {"hwm": hwm / 1024, "rss": kb["Rss"] / 1024, "pss": kb["Pss"] / 1024,
            "private": (kb["Private_Clean"] + kb["Private_Dirty"]) / 1024,
            "dirty": kb["Private_Dirty"] / 1024,
            "anon": kb.get("Anonymous", 0) / 1024}


def cpu_s(pid):
    """CPU seconds (user + system) used so far by pid."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Cpu:
    """CPU time of faqbot and of this process (the fake server's threads)
    over the throughput run: on a shared machine, wall time is noisy, the
    CPU a question costs much less so."""

    def __init__(self, pid):
        self.pid = pid
        self.bot0, self.fake0 = cpu_s(pid), time.process_time()

    def per_question(self, n):
        return ((cpu_s(self.pid) - self.bot0) * 1000 / n, (time.process_time() - self.fake0) * 1000 / n)


def settled_memory(pid):
    """Memory a few seconds after a burst: faqbot gives freed heap back at
    each heartbeat (every 2 s), so this is what it holds while serving on."""
    time.sleep(2.5)
    return memory(pid)


def report(name, lat, n, seconds, complete, mem, cpu=None, settled=None):
    if lat:
        print(f"bench: {name} latency (delivered -> reply), {len(lat)} questions: "
              f"p50 {pct(lat, 50):.2f} ms, p99 {pct(lat, 99):.2f} ms")
    print(f"bench: {name} throughput: {n} questions in {seconds:.2f} s = {n / seconds:.0f} questions/s"
          f"{'' if complete else ' (INCOMPLETE)'} (target >= 1500)"
          + (f"; CPU per question: faqbot {cpu[0]:.3f} ms, fake server {cpu[1]:.3f} ms" if cpu else ""))
    print(f"bench: {name} memory of faqbot run in service: peak RSS {mem['hwm']:.1f} MB, "
          f"RSS {mem['rss']:.1f} MB, PSS {mem['pss']:.1f} MB, private {mem['private']:.1f} MB "
          f"(dirty {mem['dirty']:.1f} MB, anonymous {mem['anon']:.1f} MB; target private <= 10 MB), "
          "right after the burst")
    if settled:
        print(f"bench: {name} memory 2.5 s later (a heartbeat returned freed heap): RSS {settled['rss']:.1f} MB, "
              f"PSS {settled['pss']:.1f} MB, private {settled['private']:.1f} MB (dirty {settled['dirty']:.1f} MB, "
              f"anonymous {settled['anon']:.1f} MB); private counts library pages no other process maps now")


def bench_matrix(a):
    fake = FakeMatrix(check_spec=False)
    tmp = tempfile.mkdtemp(prefix="faqbot-bench-mx-")
    dm = fake.create_room(["@a:localhost"])
    rooms = [fake.create_room([f"@u{i}:localhost"]) for i in range(100)]
    p = start_bot(a.faqbot, tmp, dict(FAQBOT_MATRIX_HOMESERVER=fake.url, FAQBOT_MATRIX_USER="faqbot",
                                      FAQBOT_MATRIX_PASSWORD=PASSWORD, FAQBOT_MATRIX_SYNC_TIMEOUT="10"))
    try:
        if not fake.wait(lambda: any("since" in r[3] for r in fake.requests if r[2].endswith("/sync")), 20):
            sys.exit("bench: faqbot did not sync")
        lat = []
        for i in range(a.latency_questions):
            n = len(fake.notices(dm))
            with fake.lock:
                t0 = time.time()
            fake.user_message(dm, "@a:localhost", "combien ça coûte la souscription ?")
            fake.wait(lambda: len(fake.notices(dm)) > n, 10)
            lat.append((fake.notices(dm)[-1]["t"] - t0) * 1000)
        base = len(fake.sent)
        cpu = Cpu(p.pid)
        t0 = time.time()
        for i in range(a.throughput_questions):
            fake.user_message(rooms[i % len(rooms)], f"@u{i % len(rooms)}:localhost",
                              "c'est quoi une étude en souscription")
        ok = fake.wait(lambda: len(fake.sent) - base >= a.throughput_questions, 300)
        t1 = max(m["t"] for m in fake.sent)
        mem, cpu_q = memory(p.pid), cpu.per_question(a.throughput_questions)
        report("matrix", lat, a.throughput_questions, t1 - t0, ok, mem, cpu_q, settled_memory(p.pid))
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(15)
        fake.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--faqbot", default="build/faqbot")
    ap.add_argument("--latency-questions", type=int, default=300)
    ap.add_argument("--throughput-questions", type=int, default=3000)
    ap.add_argument("--transport", choices=["telegram", "matrix", "both"], default="both",
                    help="bench one transport only")
    a = ap.parse_args()
    if a.transport != "matrix":
        bench_telegram(a)
    if a.transport != "telegram":
        bench_matrix(a)


def bench_telegram(a):
    fake = FakeTelegram(check_spec=False)  # the tests check requests; here only speed counts
    tmp = tempfile.mkdtemp(prefix="faqbot-bench-tg-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAQBOT_")}
    env.update(FAQBOT_TELEGRAM_TOKEN=TOKEN, FAQBOT_TELEGRAM_API_URL=fake.url,
               FAQBOT_STATE_DIR=os.path.join(tmp, "state"),
               FAQBOT_FAQ=os.path.join(ROOT, "faq", "faq.json"),
               FAQBOT_TELEGRAM_RATE_LIMITS="false", FAQBOT_TELEGRAM_POLL_TIMEOUT="10", FAQBOT_FLOOD_MAX="0",
               FAQBOT_LOG_LEVEL="warn")
    if os.environ.get("FAQBOT_TELEGRAM_PARALLEL_SENDS"):  # to measure another setting
        env["FAQBOT_TELEGRAM_PARALLEL_SENDS"] = os.environ["FAQBOT_TELEGRAM_PARALLEL_SENDS"]
    p = subprocess.Popen([a.faqbot, "run"], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL)
    try:
        fake.user_message(1, "bonjour")
        if not fake.wait(lambda: fake.sent_to(1), 20):
            sys.exit("bench: faqbot did not answer")
        lat = []
        for i in range(a.latency_questions):
            mid = fake.user_message(2, "combien ça coûte la souscription ?")
            n = len(fake.sent_to(2))
            fake.wait(lambda: len(fake.sent_to(2)) > n, 10)
            with fake.lock:
                uid = fake.next_update_id - 1
                lat.append((fake.sent_to(2)[-1]["t"] - fake.delivered_at[uid]) * 1000)
        chats = 100
        base = len(fake.sent)  # before the first question: replies may come while they are pushed
        cpu = Cpu(p.pid)
        t0 = time.time()
        for i in range(a.throughput_questions):
            fake.user_message(10_000 + i % chats, "c'est quoi une étude en souscription")
        ok = fake.wait(lambda: len(fake.sent) - base >= a.throughput_questions, 300)
        t1 = max(m["t"] for m in fake.sent if m["chat_id"] >= 10_000)
        mem, cpu_q = memory(p.pid), cpu.per_question(a.throughput_questions)
        report("telegram", lat, a.throughput_questions, t1 - t0, ok, mem, cpu_q, settled_memory(p.pid))
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(15)
        fake.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
