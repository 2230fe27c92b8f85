#!/usr/bin/env bash
# Prints the Python base image the project images build FROM (their PYTHON_IMAGE build arg).
#
# Real users keep the upstream image (python:3.11.14-slim-bookworm): it is used whenever the
# Docker daemon has it or can pull it. On machines that reach no container registry, a
# local equivalent is built once from Debian packages -- a minimal bookworm root made by
# debootstrap, with Debian's Python 3.11 and venv -- and `docker import`ed under a tag named
# after this script's content, so a changed recipe rebuilds it and an unchanged one is reused.
# Diagnostics go to stderr; stdout is only the image reference.
set -euo pipefail

DOCKER=${DOCKER:-/usr/bin/docker}
UPSTREAM=${UPSTREAM_PYTHON_IMAGE:-python:3.11.14-slim-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
recipe=$(sha256sum "$0" | cut -c1-12)
LOCAL=${LOCAL_PYTHON_IMAGE:-airparadis-python:3.11-${SUITE}-${recipe}}

log() { echo "base_image: $*" >&2; }
have() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

if have "$UPSTREAM"; then echo "$UPSTREAM"; exit 0; fi
if [ "${PULL_UPSTREAM:-1}" = 1 ] && timeout 60 "$DOCKER" pull -q "$UPSTREAM" >/dev/null 2>&1; then
  echo "$UPSTREAM"; exit 0
fi
if have "$LOCAL"; then log "reusing $LOCAL"; echo "$LOCAL"; exit 0; fi

[ "$(id -u)" -eq 0 ] || { log "debootstrap needs root; or pull $UPSTREAM yourself"; exit 1; }
command -v debootstrap >/dev/null || { log "debootstrap is missing (apt-get install debootstrap)"; exit 1; }
root=$(mktemp -d /tmp/airparadis-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
log "$UPSTREAM is not available: debootstrapping $SUITE from $MIRROR into $root"
# minbase: only Essential and apt; then Python 3.11 (bookworm's python3), venv and the CA store.
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  "$SUITE" "$root" "$MIRROR" >&2
cat >"$root/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR%/debian}/debian-security $SUITE-security main
SOURCES
# What an image does not need, now and in packages installed later (as the upstream slim
# images do): package caches and lists, translations, docs (but the copyright files), man pages.
cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
DPKG
find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
rm -rf "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
  "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
  "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/tmp/* "$root"/root/.cache
# The upstream image's conventions: `python` on PATH, UTF-8, unbuffered-friendly defaults.
ln -sf python3 "$root/usr/bin/python"
tar --numeric-owner --xattrs -C "$root" -c . | "$DOCKER" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --message "debootstrap $SUITE minbase + python3 python3-venv ca-certificates" \
  - "$LOCAL" >&2
log "built $LOCAL"
echo "$LOCAL"
