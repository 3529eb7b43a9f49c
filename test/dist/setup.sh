#!/usr/bin/env bash
# Prepares a machine for make dist-check: what the demo needs (a Docker engine, debootstrap
# for the Debian fixture image; test/setup.sh demo), and file(1), rpm (to read and install
# the .rpm) and gcc (a cgo plugin: the worker fallback test). Installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
test/setup.sh demo
need=()
command -v file >/dev/null || need+=(file)
command -v rpm >/dev/null || need+=(rpm)
command -v gcc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
  echo "dist setup: installing ${need[*]}" >&2
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
