#!/bin/sh
# The test package's suites: every folder of dist-test/ in the private test namespace (in-netns.sh),
# then pack/ on the machine itself, as its install test needs the npm registry (it touches no interface
# or hosts file: what it runs that could makes a namespace of its own). Both run; the exit code is the
# first failure's.
set -u
status=0
inside=""
for d in dist-test/*/; do
  [ "$d" = dist-test/pack/ ] || inside="$inside ${d%/}"
done
# shellcheck disable=SC2086 # one argument per folder
sh ./scripts/in-netns.sh node ../scripts/run-tests.mjs $inside || status=$?
node ../scripts/run-tests.mjs dist-test/pack || { rc=$?; [ "$status" != 0 ] || status=$rc; }
exit "$status"
