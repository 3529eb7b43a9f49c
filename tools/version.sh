#!/bin/sh
# Prints what a build is made from, for the Makefile (POSIX sh, git only):
#   tools/version.sh version   the semver: the tag from `git describe --tags` (v1.2.3, or
#                              v1.2.3-4-gabcdef012345 after it); untagged:
#                              v0.0.0-<commit date, UTC, YYYYMMDDhhmmss>-<12-digit commit>;
#                              "-dirty" appended when tracked files differ from the commit
#   tools/version.sh commit    the full commit hash
#   tools/version.sh epoch     the commit's time in seconds (SOURCE_DATE_EPOCH)
# Outside a git checkout: version "dev", commit empty, epoch 0.
set -eu
what=${1:-version}
if ! git rev-parse --verify -q HEAD >/dev/null 2>&1; then
  case $what in version) echo dev ;; epoch) echo 0 ;; commit) echo ;; esac
  exit 0
fi
case $what in
commit) git rev-parse HEAD ;;
epoch) git log -1 --format=%ct HEAD ;;
version)
  if v=$(git describe --tags --match 'v[0-9]*' --abbrev=12 2>/dev/null); then :; else
    v=v0.0.0-$(TZ=UTC git log -1 --date=format-local:%Y%m%d%H%M%S --format=%cd HEAD)-$(git rev-parse --short=12 HEAD)
  fi
  if ! git diff --quiet HEAD -- 2>/dev/null; then v=$v-dirty; fi
  echo "$v"
  ;;
*)
  echo "tools/version.sh: unknown argument \"$what\": use version, commit or epoch" >&2
  exit 2
  ;;
esac
