#!/usr/bin/env bash
# System services the tests use for real: PostgreSQL on 127.0.0.1:5432 (trust auth, database
# `test`) and Debian's Chromium for the dashboard's browser tests; wrk for `make bench`; a C
# compiler for the project's extension (airparadis/_fastpath.c); Docker (Debian's docker.io, whose
# client has BuildKit built in) and debootstrap for `make images` and the container tests, with
# dockerd started when it is not running. Installs what is missing.
set -euo pipefail

have_pg() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "system_deps: need root to apt-get install $*; install them yourself" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v wrk >/dev/null || missing+=(wrk)
command -v gcc >/dev/null || missing+=(gcc libc6-dev)
"${PYTHON:-python3}" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || missing+=(python3-dev)
[ -x /usr/bin/docker ] && command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  apt_install "${missing[@]}"
fi

# The Docker daemon: started in the background when none answers (no systemd in CI containers).
if ! /usr/bin/docker info >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "system_deps: dockerd is not running and needs root to start" >&2
    exit 1
  fi
  nohup dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 30); do /usr/bin/docker info >/dev/null 2>&1 && break; sleep 1; done
  /usr/bin/docker info >/dev/null 2>&1 || { echo "system_deps: dockerd did not start (see /var/log/dockerd.log)" >&2; exit 1; }
fi

if ! have_pg; then
  if ! command -v pg_ctlcluster >/dev/null; then
    apt_install postgresql
  fi
  version=$(ls /usr/lib/postgresql | sort -n | tail -1)
  if ! pg_lsclusters -h | grep -q "^$version main"; then
    pg_createcluster "$version" main
  fi
  conf=/etc/postgresql/$version/main
  # Loopback only, trust auth: the CI and test setup this project expects, never a server.
  sed -i "s/^#\?listen_addresses.*/listen_addresses = '127.0.0.1'/" "$conf/postgresql.conf"
  printf 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' >"$conf/pg_hba.conf"
  pg_ctlcluster "$version" main start || pg_ctlcluster "$version" main restart
  for _ in $(seq 1 30); do have_pg && break; sleep 1; done
  have_pg || { echo "system_deps: PostgreSQL did not start" >&2; exit 1; }
fi

psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname='test'" 2>/dev/null | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -c "create database test" >/dev/null
echo "system_deps: PostgreSQL ready on 127.0.0.1:5432 (database test); chromium at $(command -v chromium); docker $(/usr/bin/docker version --format '{{.Server.Version}}')"
