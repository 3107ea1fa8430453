#!/bin/sh
# make docker-test: proves docker/Dockerfile without a Docker engine, with
# buildah (as DEVELOPERS.md describes): debootstrap Debian bookworm (minbase)
# into a folder, import it as localhost/debian:bookworm-slim and :bookworm,
# build the image with --pull=never, then inside it, as its non-root user,
# run `faqbot --version`, `faqbot check`, and a short exchange with the fake
# Telegram server on 127.0.0.1; print the image size.
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
trap 'buildah $S rm "$ctr" >/dev/null 2>&1 || true' EXIT
run() { buildah $S run --isolation chroot "$@"; }
run "$ctr" -- faqbot --version
run "$ctr" -- faqbot check /usr/local/share/faqbot/faq.json
user=$(run "$ctr" -- id -un)
[ "$user" = faqbot ] || { echo "docker-test: runs as $user, not faqbot"; exit 1; }
$PYTHON tests/docker/exchange.py "$ctr"
size=$(buildah $S images --format '{{.Size}}' localhost/faqbot:latest | head -n 1)
health=$(buildah $S inspect --format '{{.Docker.Config.Healthcheck.Test}}' faqbot)
echo "docker-test: image size $size, runs as $user, HEALTHCHECK $health"
case "$health" in *"faqbot health"*) ;; *) echo "docker-test: no HEALTHCHECK in the image"; exit 1 ;; esac
echo "docker-test: ok"
