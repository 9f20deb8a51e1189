#!/bin/sh
# Runs a command inside a fresh private network + mount namespace: loopback up, and a private copy
# of /etc/hosts bind-mounted over the real path. Tests there may add interfaces and rewrite "the"
# hosts file without touching the machine; everything disappears with the namespace. The command
# sees NGROKD_TEST_NETNS=1. Not root: runs the command outside with NGROKD_TEST_NETNS unset, so
# privileged tests skip and say why.
set -eu
if [ "${NGROKD_IN_NETNS_INNER:-}" = 1 ]; then
  unset NGROKD_IN_NETNS_INNER
  ip link set lo up
  hosts=$(mktemp /tmp/ngrokd-test-hosts.XXXXXX)
  # no umount: a process the command left running would then write the machine's real /etc/hosts (seen: a daemon
  # started in the background outlived its script). The bind mount goes with the namespace's last process; the copy
  # is unlinked at exit (a run cut short by a signal included) and freed with it.
  trap 'rm -f "$hosts"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  cp /etc/hosts "$hosts"
  chmod 0644 "$hosts" # as /etc/hosts is: readable to every user (mktemp makes it 0600)
  mount --bind "$hosts" /etc/hosts
  status=0
  NGROKD_TEST_NETNS=1 "$@" || status=$?
  exit "$status"
fi
if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1; then
  echo "in-netns: not root or no unshare/ip: privileged end-to-end tests will be skipped" >&2
  unset NGROKD_TEST_NETNS
  exec "$@"
fi
NGROKD_IN_NETNS_INNER=1 exec unshare --net --mount --propagation private -- sh "$0" "$@"
