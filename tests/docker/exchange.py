#!/usr/bin/env python3
"""Runs `faqbot run` inside the built image (buildah run, host network) against
the fake Telegram server on 127.0.0.1, asks one question, expects the answer,
stops the bot.  argv[1]: the buildah working container."""
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "fake"))
from telegram import TOKEN, FakeTelegram  # noqa: E402

fake = FakeTelegram()
cmd = ["buildah", "--storage-driver", "vfs", "run", "--isolation", "chroot",
       "--env", f"FAQBOT_TELEGRAM_TOKEN={TOKEN}", "--env", f"FAQBOT_TELEGRAM_API_URL={fake.url}",
       "--env", "FAQBOT_TELEGRAM_POLL_TIMEOUT=2", "--env", "FAQBOT_STATE_DIR=/tmp/state",
       sys.argv[1], "--", "faqbot", "run", "--config", "/etc/faqbot/faqbot.conf"]
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
try:
    fake.user_message(31, "combien ça coûte ?")
    ok = fake.wait(lambda: fake.sent_to(31), 60)
    if not ok:
        sys.exit("docker-test: no answer from the bot in the image")
    print("docker-test: answered inside the image:", fake.sent_to(31)[0]["text"][:50] + "...")
    if fake.spec_errors:
        sys.exit(f"docker-test: bad requests: {fake.spec_errors}")
finally:
    p.terminate()
    try:
        p.wait(15)
    except subprocess.TimeoutExpired:
        p.kill()
    subprocess.run(["pkill", "-TERM", "-f", "faqbot run --config /etc/faqbot/faqbot.conf"],
                   check=False)
    fake.close()
