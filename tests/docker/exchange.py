#!/usr/bin/env python3
"""Runs `faqbot run` inside the built image (buildah run, host network, the
image's own user, environment and state volume folder) against the fake
Telegram server on 127.0.0.1:

- asks one question and expects the answer; prints the bot's memory;
- `faqbot health` in the image while the bot runs: exit 0, "telegram: ok";
- a graceful stop: a reply is held in flight (the fake answers sendMessage
  slowly), SIGTERM goes to the bot's own pid (`buildah run` does not forward
  signals), the bot delivers that reply and exits 0 within a few seconds;
- `faqbot health` after the stop: non-zero, "not running", and no transport
  line beside it.

The bot's pid: the one process whose /proc/PID/exe is the very file
(device and inode) of the binary inside this container's root (buildah runs
it from a bind mount of that root, under another path), and which is the
pid its heartbeat names; no process is signalled by name.
argv[1]: the buildah working container; argv[2]: its mounted root folder.
"""
import glob
import json
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "fake"))
from telegram import TOKEN, FakeTelegram  # noqa: E402

CTR, MNT = sys.argv[1], os.path.realpath(sys.argv[2])
EXE = os.path.join(MNT, "usr/local/bin/faqbot")
CTR_ID = subprocess.run(["buildah", "--storage-driver", "vfs", "inspect", "--format", "{{.ContainerID}}", CTR],
                        capture_output=True, text=True, check=True).stdout.strip()
GRAPH_ROOT = subprocess.run(["buildah", "--storage-driver", "vfs", "info", "--format", "{{.store.GraphRoot}}"],
                            capture_output=True, text=True, check=True).stdout.strip()
# buildah run keeps the image's VOLUME of a working container here, across runs
HEARTBEATS = f"{GRAPH_ROOT}/vfs-containers/{CTR_ID}/userdata/buildah-volumes/*/heartbeat.json"
BUILDAH = ["buildah", "--storage-driver", "vfs", "run", "--isolation", "chroot"]


def fail(msg):
    sys.exit("docker-test: " + msg)


def in_image(*args):
    p = subprocess.run(BUILDAH + [CTR, "--", *args], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def runs_image_binary(pid):
    try:
        a, b = os.stat(f"/proc/{pid}/exe"), os.stat(EXE)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def image_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit() and runs_image_binary(int(d))]


def bot_pid(timeout=30):
    """The running bot's pid, once its heartbeat names it."""
    end = time.time() + timeout
    while time.time() < end:
        pids = image_pids()
        for path in glob.glob(HEARTBEATS):
            try:
                with open(path, encoding="utf-8") as f:
                    beat = int(json.load(f)["pid"])
            except (OSError, ValueError, KeyError):
                continue
            if pids == [beat]:
                return beat
        time.sleep(0.2)
    fail(f"no heartbeat ({HEARTBEATS}) naming the one running faqbot of this image ({image_pids()})")


fake = FakeTelegram()
cmd = BUILDAH + ["--env", f"FAQBOT_TELEGRAM_TOKEN={TOKEN}", "--env", f"FAQBOT_TELEGRAM_API_URL={fake.url}",
                 "--env", "FAQBOT_TELEGRAM_POLL_TIMEOUT=2",
                 CTR, "--", "faqbot", "run", "--config", "/etc/faqbot/faqbot.conf"]
p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
pid = None
try:
    fake.user_message(31, "combien ça coûte ?")
    if not fake.wait(lambda: fake.sent_to(31), 60):
        fail("no answer from the bot in the image")
    print("docker-test: answered inside the image:", fake.sent_to(31)[0]["text"][:50] + "...")
    pid = bot_pid()
    os.sync()           # the image's files were just written: their pages would count as dirty
    kb = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                kb[parts[0].rstrip(":")] = int(parts[1]) / 1024
    print(f"docker-test: memory of the bot in the image, in service: RSS {kb['Rss']:.1f} MB, "
          f"PSS {kb['Pss']:.1f} MB, private {kb['Private_Clean'] + kb['Private_Dirty']:.1f} MB "
          f"(dirty {kb['Private_Dirty']:.1f} MB): the image's libraries are its own")

    end = time.time() + 10                        # the heartbeat is rewritten every 2 s
    while True:
        rc, out = in_image("faqbot", "health", "--config", "/etc/faqbot/faqbot.conf")
        if rc == 0 or time.time() > end:
            break
        time.sleep(0.5)
    if rc != 0 or "telegram: ok" not in out:
        fail(f"faqbot health while running: exit {rc}: {out!r}")
    print("docker-test: health while running: exit 0,", out.strip().splitlines()[0])

    fake.fault("sendMessage", "slow", chat_id=32, seconds=3)
    fake.user_message(32, "combien ça coûte ?")
    if not fake.wait(lambda: any(r[1] == "sendMessage" and r[2].get("chat_id") == 32
                                 for r in fake.requests), 30):
        fail("the second reply never left")
    t0 = time.time()
    os.kill(pid, signal.SIGTERM)
    try:
        status = p.wait(15)
    except subprocess.TimeoutExpired:
        fail("the bot did not stop within 15 s of SIGTERM")
    took = time.time() - t0
    log = p.stdout.read().decode("utf-8", "replace")
    if status != 0:
        fail(f"the bot exited {status} after SIGTERM:\n{log}")
    if not fake.sent_to(32):
        fail("the reply in flight at SIGTERM was not delivered")
    print(f"docker-test: graceful stop: SIGTERM to pid {pid}, reply in flight delivered, "
          f"exit 0 after {took:.1f} s")
    if fake.spec_errors:
        fail(f"bad requests: {fake.spec_errors}")

    rc, out = in_image("faqbot", "health", "--config", "/etc/faqbot/faqbot.conf")
    if rc == 0 or "not running" not in out or "telegram:" in out:
        fail(f"faqbot health after the stop: exit {rc}: {out!r}")
    print(f"docker-test: health after the stop: exit {rc},", out.strip().splitlines()[0])
finally:
    if p.poll() is None:
        if pid is None:                           # the bot never wrote its pid: look for it
            pids = image_pids()
            pid = pids[0] if len(pids) == 1 else None
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
    fake.close()
