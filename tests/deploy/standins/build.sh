#!/usr/bin/env bash
# Local stand-ins for the base images docker-compose.yml and the Dockerfiles name, built from Debian's packages,
# for machines that reach Debian's mirror and PyPI but no image registry (CI here). Idempotent: an image that
# already exists under its tag is kept, so only the first run on a machine pays for debootstrap and apt.
#
#   tests/deploy/standins/build.sh          # builds what is missing; prints one line per image
#   STANDINS_REBUILD=1 tests/deploy/standins/build.sh   # rebuilds all of them
#
# trainyard-standin/debian:bookworm   debootstrap --variant=minbase of bookworm from the mirror this machine's apt
#                                     uses, with this machine's CA certificates (the package index may be reached
#                                     through a TLS-intercepting proxy whose CA only the machine's bundle holds)
# python:3.11-slim                    Debian's python3.11 as a virtualenv in /usr/local (python, pip on PATH, as in
#                                     the official image); pip uses the machine's CA bundle (/etc/pip.conf)
# postgres:16-alpine                  Debian's PostgreSQL 15 with an entrypoint that honours POSTGRES_USER,
#                                     POSTGRES_PASSWORD, POSTGRES_DB and PGDATA like the official image's
# redis:7-alpine                      Debian's redis-server, listening on every address, as the official image
# Each carries the label org.trainyard.standin=1, so `docker images -f label=org.trainyard.standin` lists them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
BASE=trainyard-standin/debian:bookworm
SUITE=bookworm

have() { [ -z "${STANDINS_REBUILD:-}" ] && docker image inspect "$1" >/dev/null 2>&1; }

# The mirror apt uses here (deb822 or one-line sources); Debian's own when none is found.
mirror() {
  local uri
  uri=$(grep -hE '^URIs:.*/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}')
  [ -n "$uri" ] || uri=$(grep -hE '^deb .*/debian/? ' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}')
  echo "${uri:-http://deb.debian.org/debian}"
}

build_base() {
  if have "$BASE"; then echo "kept  $BASE"; return; fi
  command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
  local root url
  root=$(mktemp -d /var/tmp/trainyard-standin.XXXXXX)
  trap 'rm -rf "$root"' RETURN
  url=$(mirror)
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$root" "$url" >"$root.log" 2>&1 \
    || { tail -20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
  rm -f "$root.log"
  cat >"$root/etc/apt/sources.list" <<SOURCES
deb $url $SUITE main
deb $url $SUITE-updates main
deb ${url%/debian*}/debian-security $SUITE-security main
SOURCES
  # The machine's extra CAs, and a bundle rebuilt from them as the machine's is.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  fi
  chroot "$root" update-ca-certificates >/dev/null 2>&1
  # Like Docker's debian images: no recommends, no caches, no docs.
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$root/etc/apt/apt.conf.d/90standin"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/*
  tar -C "$root" -c . | docker import --change 'CMD ["bash"]' --change 'LABEL org.trainyard.standin=1' \
    --change 'ENV LANG=C.UTF-8' - "$BASE" >/dev/null
  echo "built $BASE"
}

build_image() {  # TAG DOCKERFILE
  if have "$1"; then echo "kept  $1"; return; fi
  local log
  log=$(mktemp)
  docker build --label org.trainyard.standin=1 -t "$1" -f "$here/$2" "$here" >"$log" 2>&1 \
    || { tail -30 "$log" >&2; rm -f "$log"; exit 1; }
  rm -f "$log"
  echo "built $1"
}

build_base
build_image python:3.11-slim python.Dockerfile
build_image postgres:16-alpine postgres.Dockerfile
build_image redis:7-alpine redis.Dockerfile
