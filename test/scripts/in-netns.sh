#!/bin/sh
# Runs a command inside a private network + mount namespace: loopback up, and a private copy of
# /etc/hosts bind-mounted over the real path. Tests there may add interfaces and rewrite "the"
# hosts file without touching the machine; everything disappears with the namespace.
# Not root: runs the command outside with NGROKD_TEST_NETNS unset, so privileged tests skip and say why.
set -eu
if [ "${NGROKD_TEST_NETNS:-}" = 1 ]; then
  ip link set lo up
  hosts=$(mktemp /tmp/ngrokd-test-hosts.XXXXXX)
  cp /etc/hosts "$hosts"
  mount --bind "$hosts" /etc/hosts
  exec "$@"
fi
if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1; then
  echo "in-netns: not root or no unshare/ip: privileged end-to-end tests will be skipped" >&2
  exec "$@"
fi
NGROKD_TEST_NETNS=1 exec unshare --net --mount --propagation private -- sh "$0" "$@"
