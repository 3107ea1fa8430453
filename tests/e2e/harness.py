"""Shared pieces of the end-to-end tests: the test FAQ and a faqbot process."""
import json
import os
import signal
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FAQBOT = os.path.abspath(os.environ.get("FAQBOT", os.path.join(ROOT, "build", "faqbot")))
LOGDIR = tempfile.mkdtemp(prefix="faqbot-tg-logs-")
LONG_ANSWER = " ".join(f"Phrase numéro {i} de la très longue réponse, avec des accents é è à."
                       + ("\n\n" if i % 7 == 6 else "") for i in range(170))


def write_faq(path):
    faq = {"language": "french", "threshold": 0.35,
           "fallback": {"text": "Pas de réponse sûre.", "url": "https://example.org/souscrire"},
           "entries": [
               {"id": "cout", "questions": ["Combien coûte la souscription ?", "quel est le prix"],
                "answer": "Le ticket d'entrée est modeste."},
               {"id": "etude", "questions": ["C'est quoi une étude en souscription ?"],
                "answer": "Plusieurs souscripteurs financent l'étude."},
               {"id": "html", "questions": ["Quelle est la TVA appliquée ?"],
                "answer": "Prix <b>HT</b> < 10 € & TVA > 0 \"incluse\""},
               {"id": "longue", "questions": ["Donne moi la réponse très longue"],
                "answer": LONG_ANSWER},
               {"id": "jumeau-a", "questions": ["Où se trouvent les archives ?"], "answer": "Ici."},
               {"id": "jumeau-b", "questions": ["Où se trouvent les archives ?"], "answer": "Là."},
           ]}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(faq, f, ensure_ascii=False)


class Bot:
    """One `faqbot run` process; env holds its FAQBOT_* settings."""

    def __init__(self, **env):
        self.env = env
        self.proc = None
        self.log = os.path.join(LOGDIR, f"bot-{time.time():.6f}.log")

    def start(self):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("FAQBOT_"):
                del env[k]
        env["FAQBOT_LOG_LEVEL"] = "debug"
        env.update({k: str(v) for k, v in self.env.items()})
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([FAQBOT, "run"], env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=log)
        return self

    def stop(self, timeout=10):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self):
        self.proc.kill()
        self.proc.wait(10)

    def wait_exit(self, timeout=15):
        return self.proc.wait(timeout)

    def logs(self):
        with open(self.log, encoding="utf-8", errors="replace") as f:
            return f.read()




# Answers in the markup subset (README "Formatting answers"): a link, bold,
# italic and a bullet list; and a long one whose parts must each be valid HTML.
FORMATTED_ANSWER = ("Pour **souscrire**, lisez [la notice](https://example.org/notice) :\n"
                    "- un *reçu* fiscal\n- un accès aux résultats")
LONG_FORMATTED = "\n".join(f"- **Point n°{i}** : voir [le lien {i}](https://example.org/p{i}) "
                           f"et la suite & le reste du texte." for i in range(400))


def add_entries(path, entries):
    """Appends entries to the FAQ file at path."""
    with open(path, encoding="utf-8") as f:
        faq = json.load(f)
    faq["entries"].extend(entries)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(faq, f, ensure_ascii=False)


FORMATTED_ENTRIES = [
    {"id": "documents", "questions": ["Comment recevoir les documents de souscription ?"],
     "answer": FORMATTED_ANSWER},
    {"id": "points", "questions": ["Quels sont tous les points du règlement ?"],
     "answer": LONG_FORMATTED},
]


def html_balanced(html):
    """None when every tag of html is closed in order (void tags aside), else why not."""
    from html.parser import HTMLParser

    class P(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.stack, self.err = [], None

        def handle_starttag(self, tag, attrs):
            if tag not in ("br", "hr", "img"):
                self.stack.append(tag)

        def handle_endtag(self, tag):
            if not self.stack or self.stack[-1] != tag:
                self.err = self.err or f"</{tag}> closes {self.stack[-1:] or 'nothing'}"
            else:
                self.stack.pop()
    p = P()
    p.feed(html)
    p.close()
    if p.err:
        return p.err
    if p.stack:
        return f"unclosed {p.stack}"
    return None


def html_text(html):
    """The text of html with tags dropped and entities decoded."""
    from html.parser import HTMLParser

    class P(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.out = []

        def handle_data(self, d):
            self.out.append(d)
    p = P()
    p.feed(html)
    p.close()
    return "".join(p.out)


def reply_verdict(logs, trigger):
    """(kind, entry, confidence) of the event=reply log line for trigger, or None."""
    for line in logs.splitlines():
        if "event=reply" in line and f"trigger={trigger} " in line:
            f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            return f.get("kind"), f.get("entry"), f.get("confidence")
    return None


def run_cli(bot, *args):
    """Runs `faqbot ARGS` with bot's settings: (returncode, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAQBOT_")}
    env.update({k: str(v) for k, v in bot.env.items()})
    p = subprocess.run([FAQBOT, *args], env=env, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr
