#!/usr/bin/env bash
# Builds the original Go daemon (public repository ishanj12/ngrokd, its cmd/ngrokd), unmodified, for the
# side-by-side row of `npm run bench -- --peer PATH`.
#
#   sudo test/scripts/build-go-peer.sh GIT_DIR OUT_DIR     # prints the built binary's path on its last line
#
# GIT_DIR: a clone (bare or not) of https://github.com/ishanj12/ngrokd; its HEAD is built.
# OUT_DIR: where the source export, GOPATH, build cache and bin/ngrokd go; outside any git work tree, so
#          the Go sources never land in this repository.
# It uses the distribution's Go and its packaged Go libraries (Debian: golang-go and golang-*-dev, installed
# with apt-get when missing, which needs root) in GOPATH mode: no Go module proxy, no network besides apt.
# Those packages are older than the versions the upstream go.mod pins; the upstream code builds with them.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 GIT_DIR OUT_DIR  (GIT_DIR: a clone of github.com/ishanj12/ngrokd)" >&2; exit 2; }
git_dir=$1
mkdir -p "$2"
out=$(cd "$2" && pwd)
git -C "$git_dir" rev-parse --verify -q HEAD >/dev/null || { echo "$0: $git_dir is not a git dir with a HEAD (clone https://github.com/ishanj12/ngrokd)" >&2; exit 2; }
if git -C "$out" rev-parse --show-toplevel >/dev/null 2>&1; then
  echo "$0: $out is inside the git work tree $(git -C "$out" rev-parse --show-toplevel); give an OUT_DIR outside every repository" >&2
  exit 2
fi

# Go import path the upstream module declares (go.mod: module github.com/ishanjain/ngrok-forward-proxy)
module=$(git -C "$git_dir" show HEAD:go.mod | sed -n 's/^module[[:space:]]\+//p')
[ -n "$module" ] || { echo "$0: no module line in $git_dir's go.mod" >&2; exit 2; }

# The packaged libraries the daemon imports, at the GOPATH Debian installs them under.
GOCODE=/usr/share/gocode
packages=(golang-go golang-google-protobuf-dev golang-github-go-logr-logr-dev golang-gopkg-yaml.v3-dev
  golang-github-vishvananda-netlink-dev golang-github-vishvananda-netns-dev golang-github-fsnotify-fsnotify-dev
  golang-golang-x-sys-dev)
if ! command -v go >/dev/null 2>&1 || [ ! -d "$GOCODE/src/github.com/vishvananda/netlink" ]; then
  command -v apt-get >/dev/null 2>&1 || { echo "$0: needs Go and the Go libraries: ${packages[*]} (Debian names)" >&2; exit 2; }
  [ "$(id -u)" = 0 ] || { echo "$0: Go or its libraries are missing; run as root to apt-get install ${packages[*]}" >&2; exit 2; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}"; }
fi

# Only the Go source: the repository also tracks release archives (dist/) that a partial clone may lack; git
# still complains about those while it walks the tree ("invalid object"), which is filtered out.
src=$out/gopath/src/$module
rm -rf "$out/gopath/src"
mkdir -p "$src" "$out/bin"
git -C "$git_dir" archive HEAD -- go.mod cmd internal pkg 2> >(grep -v "invalid object" >&2) | tar -x -C "$src"
commit=$(git -C "$git_dir" rev-parse HEAD)

cd "$src"
GO111MODULE=off GOFLAGS= GOPATH="$out/gopath:$GOCODE" GOCACHE="$out/gocache" go build -o "$out/bin/ngrokd" ./cmd/ngrokd
echo "$commit" > "$out/bin/ngrokd.commit"
echo "built ishanj12/ngrokd $commit with $(go version | cut -d' ' -f3)" >&2
echo "$out/bin/ngrokd"
