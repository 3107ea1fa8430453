#!/usr/bin/env python3
"""Proves, inside the built image, that `ca_bundle` adds CAs to the system's
rather than replacing them.

A throwaway certificate authority stands in for a system CA: its
certificate goes into the working container's /etc/ssl/certs with its hash
link, as Debian's ca-certificates lays them out (not into the bundle file).
The fake Telegram server on 127.0.0.1 serves https with a certificate of
that CA; the bot runs with FAQBOT_CA_BUNDLE naming an unrelated CA.  It
must answer: the system's hashed folder is still trusted beside the
bundle.  Control: without the hash link the same bot must refuse the
server (so the hash link, not something else, is what made it trusted).
argv[1]: the buildah working container; argv[2]: its mounted root folder.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "fake"))
from telegram import TOKEN, FakeTelegram  # noqa: E402

CTR, MNT = sys.argv[1], sys.argv[2]
BUILDAH = ["buildah", "--storage-driver", "vfs", "run", "--isolation", "chroot"]


def fail(msg):
    sys.exit("docker-test: " + msg)


def self_signed(tmp, name, subject):
    """A self-signed certificate for 127.0.0.1.  Subjects must differ: a
    verifier looks an issuer up by name and tries only the first match."""
    cert, key = os.path.join(tmp, name + ".pem"), os.path.join(tmp, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", subject,
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def serve_and_ask(fake, chat, wait_s):
    """Runs the bot in the image against fake; True when it answered chat."""
    cmd = BUILDAH + ["--env", f"FAQBOT_TELEGRAM_TOKEN={TOKEN}", "--env", f"FAQBOT_TELEGRAM_API_URL={fake.url}",
                     "--env", "FAQBOT_TELEGRAM_POLL_TIMEOUT=2", "--env", "FAQBOT_STATE_DIR=/tmp/faqbot-ca-state",
                     "--env", "FAQBOT_CA_BUNDLE=/etc/faqbot/test-private-ca.pem",
                     CTR, "--", "faqbot", "run", "--config", "/etc/faqbot/faqbot.conf"]
    exe = os.stat(os.path.join(MNT, "usr/local/bin/faqbot"))
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        fake.user_message(chat, "combien ça coûte ?")
        return fake.wait(lambda: fake.sent_to(chat), wait_s)
    finally:
        # buildah run does not forward signals: stop the bot by its own pid,
        # the process running this image's binary file
        for d in os.listdir("/proc"):
            try:
                st = os.stat(f"/proc/{d}/exe") if d.isdigit() else None
            except OSError:
                continue
            if st and (st.st_dev, st.st_ino) == (exe.st_dev, exe.st_ino):
                os.kill(int(d), 15)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


tmp = tempfile.mkdtemp(prefix="faqbot-ca-")
certs = os.path.join(MNT, "etc/ssl/certs")
sys_cert, sys_key = self_signed(tmp, "system", "/CN=127.0.0.1")
priv_cert, _ = self_signed(tmp, "private", "/CN=faqbot test private CA")
h = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", sys_cert], capture_output=True,
                   text=True, check=True).stdout.strip()
link = os.path.join(certs, h + ".0")
shutil.copy(sys_cert, os.path.join(certs, "faqbot-test-system-ca.pem"))
shutil.copy(priv_cert, os.path.join(MNT, "etc/faqbot/test-private-ca.pem"))
os.chmod(os.path.join(MNT, "etc/faqbot/test-private-ca.pem"), 0o644)
fake = FakeTelegram(tls=(sys_cert, sys_key))
try:
    if os.path.lexists(link):
        fail(f"{link} exists already")
    if serve_and_ask(fake, 91, 4):
        fail("control failed: the bot trusted a CA that is neither in ca_bundle nor a system CA")
    os.symlink("faqbot-test-system-ca.pem", link)
    if not serve_and_ask(fake, 92, 30):
        fail("with ca_bundle set, a CA of the system's hashed folder /etc/ssl/certs is no longer "
             "trusted: ca_bundle replaces the system CAs instead of adding to them")
    print("docker-test: ca_bundle adds: with FAQBOT_CA_BUNDLE set, a server of a CA in the image's "
          "/etc/ssl/certs (hash link) is still trusted; without the link it is refused")
finally:
    fake.close()
    for f in (link, os.path.join(certs, "faqbot-test-system-ca.pem"),
              os.path.join(MNT, "etc/faqbot/test-private-ca.pem")):
        if os.path.lexists(f):
            os.unlink(f)
    shutil.rmtree(tmp, ignore_errors=True)
