#!/bin/sh
# run in the neighbour netns (net only; same filesystem)
exec nsenter -t $(cat /tmp/revH/peer.pid) -n "$@"
