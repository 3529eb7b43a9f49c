#!/usr/bin/env bash
# Prepares a machine for the tests and the demo: a Docker engine, debootstrap (to build the
# fixture images, since no registry is needed), zstd, docker-compose, setcap/getcap (file
# capabilities through backups), restic and borg (make bench's incremental cases), Prometheus and promtool
# (Debian's package: the metrics and alert tests), the age CLI (the encryption tests), a
# MinIO server (a real S3, built from its Go module, for the S3 tests), Azurite (Microsoft's
# Azure Storage emulator, from npm, for the Azure tests) and fake-gcs-server (a GCS emulator,
# from its Go module, for the gs:// tests). Idempotent: it installs only what is missing and
# starts dockerd only when no engine answers.
#
#   test/setup.sh        everything the tests need
#   test/setup.sh demo   only what `make demo` needs (no Prometheus, MinIO, Azurite or fake-gcs-server)
set -euo pipefail
mode=${1:-test}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "setup: need root to run: $*" >&2; exit 1; fi
}

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v docker >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v zstd >/dev/null || need+=(zstd)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
command -v chattr >/dev/null || need+=(e2fsprogs)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v getcap >/dev/null || [ -x /usr/sbin/getcap ] || [ -x /sbin/getcap ] || need+=(libcap2-bin)
lean=()
if [ "$mode" != demo ]; then
  { command -v prometheus >/dev/null && command -v promtool >/dev/null; } || lean+=(prometheus)
  command -v azurite-blob >/dev/null || command -v npm >/dev/null || lean+=(nodejs npm)
  # restic 0.14 and borg 1.2.4 (Debian's): make bench's incremental cases run beside them.
  command -v restic >/dev/null || lean+=(restic)
  command -v borg >/dev/null || lean+=(borgbackup)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ${#lean[@]} -gt 0 ]; then
  # Without recommends: prometheus would pull in its node exporter and more.
  echo "setup: installing ${lean[*]}" >&2
  [ ${#need[@]} -gt 0 ] || as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${lean[@]}" >/dev/null
fi

# The age CLI: the tests prove encrypted artifacts open with the standard tool.
AGE_VERSION=${AGE_VERSION:-v1.3.2}
gobin=$(go env GOPATH)/bin
if [ "$mode" != demo ] && ! command -v age >/dev/null && [ ! -x "$gobin/age" ]; then
  echo "setup: installing the age CLI $AGE_VERSION (go install)" >&2
  (cd /tmp && GOFLAGS= go install "filippo.io/age/cmd/...@$AGE_VERSION")
fi

# MinIO: built once from source (about 5 minutes), kept in GOPATH/bin.
MINIO_VERSION=${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}
if [ "$mode" != demo ] && ! command -v minio >/dev/null && [ ! -x "$gobin/minio" ]; then
  echo "setup: building the MinIO server $MINIO_VERSION (go install, a few minutes)" >&2
  (cd /tmp && GOFLAGS= go install "github.com/minio/minio@$MINIO_VERSION")
fi

# Azurite: Microsoft's Azure Storage emulator (npm), a real Blob service for the Azure tests.
# 3.35.0 is the newest that runs on Node.js 20 (3.36 wants Node.js 21 or later).
AZURITE_VERSION=${AZURITE_VERSION:-3.35.0}
if [ "$mode" != demo ] && ! command -v azurite-blob >/dev/null; then
  echo "setup: installing Azurite $AZURITE_VERSION (npm install -g)" >&2
  as_root npm install -g --no-audit --no-fund "azurite@$AZURITE_VERSION" >/dev/null
fi

# fake-gcs-server: a Google Cloud Storage emulator (the JSON API), for the gs:// tests.
FAKE_GCS_VERSION=${FAKE_GCS_VERSION:-v1.56.1}
if [ "$mode" != demo ] && ! command -v fake-gcs-server >/dev/null && [ ! -x "$gobin/fake-gcs-server" ]; then
  echo "setup: building fake-gcs-server $FAKE_GCS_VERSION (go install)" >&2
  (cd /tmp && GOFLAGS= go install "github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION")
fi

if ! docker info >/dev/null 2>&1; then
  echo "setup: starting dockerd (log: /var/log/dockerd.log)" >&2
  as_root sh -c 'nohup setsid dockerd >/var/log/dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start; last lines of its log:" >&2; tail -20 /var/log/dockerd.log >&2; exit 1; }
fi
echo "setup: Docker $(docker version --format '{{.Server.Version}}') is ready" >&2
