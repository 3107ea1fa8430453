#!/bin/sh
# make docker-test: proves docker/Dockerfile without a Docker engine, with
# buildah (as DEVELOPERS.md describes): debootstrap Debian bookworm (minbase)
# into a folder, import it as localhost/debian:bookworm-slim and :bookworm,
# build the image with --pull=never, then inside it, as its own user:
# `faqbot --version`, `faqbot check`; the numeric user 10001:10001; the
# state folder 0700, owned by it, empty; `faqbot run` without credentials
# and without a terminal fails loudly; every library the binary needs is
# there and every library the image adds is one it loads; then
# tests/docker/exchange.py (an exchange with the fake Telegram server on
# 127.0.0.1, health both ways, a graceful stop by SIGTERM to the bot's pid)
# and tests/docker/ca_bundle.py (ca_bundle adds to the image's system CAs).
# Prints the image size against the base and what the image adds.
# Exit 0 on success, 1 on failure, 77 when it cannot run here (skipped).
set -eu
PYTHON=${PYTHON:-python3}
if [ "$(id -u)" != 0 ] || ! command -v buildah >/dev/null || ! command -v podman >/dev/null ||
   ! command -v debootstrap >/dev/null; then
	echo "docker-test: skipped: needs root, buildah, podman and debootstrap (apt-get install buildah podman debootstrap)"
	exit 77
fi
S="--storage-driver vfs"
cd "$(dirname "$0")/../.."
if ! podman $S image exists localhost/debian:bookworm-slim; then
	# the machine's own Debian mirror
	mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
	[ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
	root=$(mktemp -d /tmp/faqbot-rootfs.XXXXXX)
	echo "docker-test: debootstrap bookworm (minbase) from the configured mirror"
	debootstrap --variant=minbase bookworm "$root" "$mirror" >/tmp/faqbot-debootstrap.log 2>&1 ||
		{ tail -n 20 /tmp/faqbot-debootstrap.log; exit 1; }
	chmod 755 "$root"
	rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
		"$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/usr/share/info/*
	tar -C "$root" -c . | podman $S import - localhost/debian:bookworm-slim >/dev/null
	podman $S tag localhost/debian:bookworm-slim localhost/debian:bookworm
	rm -rf "$root"
fi
echo "docker-test: building docker/Dockerfile"
buildah $S bud --format docker --isolation chroot --pull=never -f docker/Dockerfile -t faqbot . \
	>/tmp/faqbot-bud.log 2>&1 || { tail -n 30 /tmp/faqbot-bud.log; exit 1; }
ctr=$(buildah $S from faqbot)
trap 'buildah $S umount "$ctr" >/dev/null 2>&1; buildah $S rm "$ctr" >/dev/null 2>&1 || true' EXIT
mnt=$(buildah $S mount "$ctr")
run() { buildah $S run --isolation chroot "$@" </dev/null; }
fail() { echo "docker-test: $*"; exit 1; }
run "$ctr" -- faqbot --version
run "$ctr" -- faqbot check /usr/local/share/faqbot/faq.json

ids=$(run "$ctr" -- id -u):$(run "$ctr" -- id -g)
[ "$ids" = 10001:10001 ] || fail "runs as uid:gid $ids, not 10001:10001"
user=$(buildah $S inspect --format '{{.Docker.Config.User}}' faqbot)
[ "$user" = 10001:10001 ] || fail "USER is '$user', not the numeric 10001:10001"
state=$(run "$ctr" -- stat -c '%a %u:%g' /var/lib/faqbot)
[ "$state" = "700 10001:10001" ] || fail "/var/lib/faqbot is '$state', not '700 10001:10001'"
[ -z "$(run "$ctr" -- ls -A /var/lib/faqbot)" ] || fail "/var/lib/faqbot is not empty: $(run "$ctr" -- ls -A /var/lib/faqbot)"
echo "docker-test: runs as $ids; /var/lib/faqbot: $state, empty"

# Without credentials and without a terminal: exit non-zero, say what to set.
if out=$(run "$ctr" -- faqbot run --config /etc/faqbot/faqbot.conf 2>&1); then
	fail "faqbot run without credentials exited 0: $out"
fi
case "$out" in *"no chat credentials, and no terminal"*FAQBOT_TELEGRAM_TOKEN*"faqbot console"*) ;;
	*) fail "faqbot run without credentials did not say what to set: $out" ;; esac
echo "docker-test: without credentials: exit non-zero: $(echo "$out" | head -n 1)"

# Every library the binary needs resolves; every library the image adds to
# the base is one the binary loads.
if run "$ctr" -- ldd /usr/local/bin/faqbot | grep "not found"; then fail "libraries missing"; fi
loaded=$(run "$ctr" -- ldd /usr/local/bin/faqbot | awk '$2 == "=>" { print $1 }')
base=$(buildah $S from localhost/debian:bookworm-slim)
bmnt=$(buildah $S mount "$base")
added=$(cd "$mnt" && find usr/lib -name '*.so*' | while read -r f; do [ -e "$bmnt/$f" ] || echo "$f"; done)
buildah $S umount "$base" >/dev/null; buildah $S rm "$base" >/dev/null
for f in $added; do
	echo "$loaded" | grep -qx "${f##*/}" || fail "the image adds $f, which faqbot does not load"
done
echo "docker-test: the image adds $(echo "$added" | wc -w) libraries, all loaded by faqbot"

$PYTHON tests/docker/exchange.py "$ctr" "$mnt"
$PYTHON tests/docker/ca_bundle.py "$ctr" "$mnt"

health=$(buildah $S inspect --format '{{.Docker.Config.Healthcheck.Test}}' faqbot)
case "$health" in *"faqbot health"*) ;; *) fail "no HEALTHCHECK in the image" ;; esac
size=$(buildah $S images --format '{{.Size}}' localhost/faqbot:latest | head -n 1)
bsize=$(buildah $S images --format '{{.Size}}' localhost/debian:bookworm-slim | head -n 1)
echo "docker-test: image size $size, base (bookworm-slim as imported here) $bsize; what it adds (kB):"
(cd "$mnt" && du -sk usr/local/bin/faqbot usr/local/share/faqbot etc/ssl/certs etc/faqbot $added |
	sort -rn | awk '{ s += $1; print "  " $1 "\t" $2 } END { print "  " s "\ttotal" }')
lang=$(cd "$mnt" && du -sk usr/lib/*/libstemmer.so.* | awk '{ print $1 }')
lex=0; [ -d "$mnt/usr/local/share/faqbot/lexicon" ] && lex=$(du -sk "$mnt/usr/local/share/faqbot/lexicon" | awk '{ print $1 }')
echo "docker-test: language data in that: Snowball stemmers of every language (libstemmer) ${lang} kB," \
	"lexicon files ${lex} kB; stopwords are inside the binary"
echo "docker-test: ok"
