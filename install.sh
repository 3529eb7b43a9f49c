#!/bin/sh
# Installs the docker-backup CLI plugin (`docker backup`) from a release: picks the binary for
# this machine, checks it against the release's checksums.txt, and puts it where the docker
# CLI looks for plugins. POSIX sh; needs curl or wget (unless --dir) and sha256sum, shasum or
# openssl.
#
#   sh install.sh                      the latest release, into ${DOCKER_CONFIG:-~/.docker}/cli-plugins
#   sh install.sh --version v1.2.3     that release
#   sh install.sh --dir ./dist         from the release's files in a directory (air-gapped hosts)
#   sh install.sh --system             into the system's plugin directory (as root)
#   sh install.sh --image              also load the sidecar image for the engine's platform
set -eu

REPO_URL=https://github.com/docker-backup/docker-backup
version=latest
dir=
url=${DOCKER_BACKUP_RELEASE_URL:-}
system=
image=
os=
arch=

say() { printf '%s\n' "$*"; }
die() {
  printf 'install.sh: %s\n' "$*" >&2
  exit 1
}

usage() {
  cat <<EOF
Usage: install.sh [--version vX.Y.Z] [--dir DIR | --url URL] [--system] [--image] [--os OS] [--arch ARCH]

  --version V   the release to install (default: latest)
  --dir DIR     install from the release's files in DIR (no download)
  --url URL     download from URL/<file> instead of $REPO_URL/releases
  --system      install for every user (/usr/local/lib/docker/cli-plugins; needs root)
  --image       also load the sidecar image for the Docker engine's platform (docker load)
  --os, --arch  the platform to install for, instead of this machine's
                (os: linux, darwin, windows; arch: amd64, arm64, arm-v7)
EOF
}

while [ $# -gt 0 ]; do
  case $1 in
  --version) [ $# -ge 2 ] || die "--version needs a value (e.g. v1.2.3)"; version=$2; shift 2 ;;
  --dir) [ $# -ge 2 ] || die "--dir needs a directory"; dir=$2; shift 2 ;;
  --url) [ $# -ge 2 ] || die "--url needs a URL"; url=$2; shift 2 ;;
  --os) [ $# -ge 2 ] || die "--os needs a value"; os=$2; shift 2 ;;
  --arch) [ $# -ge 2 ] || die "--arch needs a value"; arch=$2; shift 2 ;;
  --system) system=1; shift ;;
  --image) image=1; shift ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; die "unknown option \"$1\"" ;;
  esac
done

# The platform: the release has linux, darwin and windows binaries for amd64 and arm64,
# and linux for 32-bit ARM (arm-v7).
native=1
[ -z "$os$arch" ] || native=
if [ -z "$os" ]; then
  case $(uname -s) in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  MINGW* | MSYS* | CYGWIN* | Windows_NT) os=windows ;;
  *) die "unsupported operating system \"$(uname -s)\": the release has binaries for Linux, macOS (Darwin) and Windows" ;;
  esac
fi
case $os in
linux | darwin | windows) ;;
*) die "unsupported operating system \"$os\": use linux, darwin or windows" ;;
esac
if [ -z "$arch" ]; then
  case $(uname -m) in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  armv7* | armv8l) arch=arm-v7 ;;
  *) die "unsupported architecture \"$(uname -m)\": the release has binaries for x86_64 (amd64), arm64 (aarch64) and, on Linux, armv7" ;;
  esac
fi
case $os/$arch in
linux/amd64 | linux/arm64 | linux/arm-v7 | darwin/amd64 | darwin/arm64 | windows/amd64 | windows/arm64) ;;
*) die "no release binary for $os/$arch: there are linux/amd64, linux/arm64, linux/arm-v7, darwin/amd64, darwin/arm64, windows/amd64 and windows/arm64" ;;
esac
file=docker-backup-$os-$arch
plugin=docker-backup
if [ "$os" = windows ]; then
  file=$file.exe
  plugin=docker-backup.exe
fi

# Where the docker CLI looks for plugins.
if [ -n "$system" ]; then
  case $os in
  windows) dest=${ProgramData:-C:/ProgramData}/Docker/cli-plugins ;;
  *) dest=/usr/local/lib/docker/cli-plugins ;;
  esac
else
  dest=${DOCKER_CONFIG:-${HOME:?HOME is not set: set DOCKER_CONFIG}/.docker}/cli-plugins
fi

tmp=$(mktemp -d 2>/dev/null || mktemp -d -t docker-backup-install)
trap 'rm -rf "$tmp"' EXIT INT TERM

# fetch NAME: the release file NAME into $tmp, from --dir or downloaded.
fetch() {
  if [ -n "$dir" ]; then
    [ -f "$dir/$1" ] || die "$dir has no $1: --dir wants the directory of a release's files (make dist writes dist/)"
    cp "$dir/$1" "$tmp/$1"
    return
  fi
  if [ -n "$url" ]; then
    src=$url/$1
  elif [ "$version" = latest ]; then
    src=$REPO_URL/releases/latest/download/$1
  else
    src=$REPO_URL/releases/download/$version/$1
  fi
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL -o "$tmp/$1" "$src" || die "downloading $src failed"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -O "$tmp/$1" "$src" || die "downloading $src failed"
  else
    die "neither curl nor wget is installed: install one, or use --dir with the release's files"
  fi
}

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d ' ' -f 1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d ' ' -f 1
  elif command -v openssl >/dev/null 2>&1; then
    openssl dgst -sha256 "$1" | sed 's/.*= *//'
  else
    die "no sha256sum, shasum or openssl to check the download with"
  fi
}

# verify NAME: $tmp/NAME matches its line in checksums.txt.
verify() {
  want=$(awk -v f="$1" '$2 == f || $2 == "*" f { print $1 }' "$tmp/checksums.txt")
  [ -n "$want" ] || die "checksums.txt lists no $1: not a release's checksums"
  got=$(sha256 "$tmp/$1")
  [ "$got" = "$want" ] || die "checksum mismatch for $1: checksums.txt says $want, the file is $got: it is damaged or not the release's; nothing was installed"
}

[ -z "$dir" ] || [ -d "$dir" ] || die "--dir $dir: no such directory (make dist writes the release's files to dist/)"
fetch checksums.txt
fetch "$file"
verify "$file"

mkdir -p "$dest" || die "cannot create $dest (--system needs root)"
cp "$tmp/$file" "$dest/.$plugin.new" || die "cannot write to $dest (--system needs root)"
chmod 0755 "$dest/.$plugin.new"
mv -f "$dest/.$plugin.new" "$dest/$plugin"
say "Installed $file (sha256 verified) as $dest/$plugin"

if [ -n "$image" ]; then
  command -v docker >/dev/null 2>&1 || die "--image: the docker CLI is not installed"
  engine=$(docker info --format '{{.OSType}}/{{.Architecture}}') || die "--image: the Docker engine does not answer (docker info)"
  case $engine in
  linux/x86_64 | linux/amd64) tar=sidecar-linux-amd64.tar ;;
  linux/aarch64 | linux/arm64) tar=sidecar-linux-arm64.tar ;;
  linux/armv7* | linux/armv8l) tar=sidecar-linux-arm-v7.tar ;;
  *) die "--image: no sidecar image for an engine running $engine: there are linux amd64, arm64 and arm/v7" ;;
  esac
  fetch "$tar"
  verify "$tar"
  loaded=$(docker load -i "$tmp/$tar") || die "docker load of $tar failed"
  say "${loaded#Loaded image: } loaded into the Docker engine ($engine): the sidecar image of this release"
fi

if [ -n "$native" ] && command -v docker >/dev/null 2>&1; then
  if v=$(docker backup version 2>/dev/null | sed -n 's/^Version: *//p') && [ -n "$v" ]; then
    say "docker backup $v is ready: try docker backup --help"
  else
    say "Note: the docker CLI here does not run the plugin yet (is $dest a plugin directory it searches? docker info shows its plugins)"
  fi
fi
say "To remove it: rm $dest/$plugin"
