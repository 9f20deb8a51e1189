#!/bin/sh
# The test package's suites: every folder of dist-test/ in the private test namespace (in-netns.sh),
# then pack/ on the machine itself, as its install test needs the npm registry (it touches no interface
# or hosts file: what it runs that could makes a namespace of its own). Both run; the exit code is the
# first failure's, and the failed tests of both are named again at the very end.
set -u
status=0
inside=""
for d in dist-test/*/; do
  [ "$d" = dist-test/pack/ ] || inside="$inside ${d%/}"
done
NGROKD_TEST_FAILURES="$(mktemp)"
export NGROKD_TEST_FAILURES
trap 'rm -f "$NGROKD_TEST_FAILURES"' EXIT
# shellcheck disable=SC2086 # one argument per folder
sh ./scripts/in-netns.sh node ../scripts/run-tests.mjs $inside || status=$?
node ../scripts/run-tests.mjs dist-test/pack || { rc=$?; [ "$status" != 0 ] || status=$rc; }
if [ -s "$NGROKD_TEST_FAILURES" ]; then
  echo
  echo "== failed in this package's suites:"
  cat "$NGROKD_TEST_FAILURES"
fi
exit "$status"
