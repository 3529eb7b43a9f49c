#!/usr/bin/env bash
# make dist-reproducible DIST VERSION IMAGE_REPO LICENSE: builds the release again from a
# fresh clone of HEAD, in another directory, with an empty Go build cache, and compares every
# file's SHA-256 with DIST/checksums.txt. Same commit and inputs, same bytes: nothing may
# depend on the checkout's path, the build cache, the clock or the machine.
set -euo pipefail
dist=$1 version=$2 repo=$3 license=$4
cd "$(dirname "$0")/../.."
if [ ! -f "$dist/checksums.txt" ]; then
  echo "dist-reproducible: $dist/checksums.txt is missing: run make dist first" >&2
  exit 1
fi
if ! git diff --quiet HEAD --; then
  echo "dist-reproducible: the work tree differs from HEAD, so $dist was not built from a commit: commit first" >&2
  exit 1
fi
commit=$(git rev-parse HEAD)
tmp=$(mktemp -d /tmp/docker-backup-repro-XXXXXX)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
git clone -q --no-local "$PWD" "$tmp/src"
git -C "$tmp/src" checkout -q "$commit"
echo "dist-reproducible: building $version again in $tmp/src with an empty GOCACHE" >&2
GOCACHE=$tmp/gocache make -C "$tmp/src" --no-print-directory dist DIST="$tmp/dist" VERSION="$version" \
  IMAGE_REPO="$repo" LICENSE="$license"
if ! diff -u "$dist/checksums.txt" "$tmp/dist/checksums.txt"; then
  echo "dist-reproducible: the second build differs (- $dist, + the second build)" >&2
  exit 1
fi
echo "dist-reproducible: $(wc -l <"$dist/checksums.txt") files, identical checksums in both builds"
