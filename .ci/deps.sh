#!/bin/sh
# Installs the Debian packages given as arguments when any is missing.
# Used by `make deps` (and so by `make run`, `make test`, `make`): a fresh
# Debian 12 machine needs nothing else.  apt-get runs as root, or through
# sudo; when neither is possible it says what to install and fails.
set -eu
missing=""
if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "faqbot: not a Debian system; make sure these (or their equivalents) are installed: $*" >&2
	exit 0
fi
for p in "$@"; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0
echo "faqbot: installing missing Debian packages:$missing"
if [ "$(id -u)" = 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "faqbot: these packages are missing:$missing" >&2
	echo "faqbot: run 'make' as root, or install sudo, or run: apt-get install$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1; then
	$SUDO apt-get update -q
	$SUDO apt-get install -y -q --no-install-recommends $missing
fi
