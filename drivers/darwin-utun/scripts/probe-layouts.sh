#!/usr/bin/env bash
# Regenerates test-fixtures/darwin-layouts.json (and the subsets core's macOS code uses) from Apple's headers.
#
#   scripts/probe-layouts.sh <xnu-checkout> <libinfo-checkout>
#
# <xnu-checkout>:     a checkout of https://github.com/apple-oss-distributions/xnu (headers under bsd/)
# <libinfo-checkout>: a checkout of https://github.com/apple-oss-distributions/Libinfo (<ifaddrs.h>)
#
# Needs clang (Debian: apt-get install -y clang) and node. Nothing is run for darwin: probe-layouts.c
# is compiled to LLVM IR for x86_64 and arm64 macOS, and each value is read back from a global
# constant. CI does not run this; the JSON it writes is committed and the tests compare against it.
#
# The XNU source tree is not an installed SDK: a few headers that XNU's build generates from the SDK
# (symbol aliasing, POSIX availability, libpthread's typedefs, libc's <time.h>, <os/availability.h>)
# are replaced by stubs below. None of them defines a struct, constant or ioctl the probe reads.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 <xnu-checkout> <libinfo-checkout>" >&2
  exit 2
fi
xnu=$(cd "$1" && pwd)
libinfo=$(cd "$2" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
package=$(dirname "$here")
repo=$(cd "$package/../.." && pwd)

for f in "$xnu/bsd/sys/kern_control.h" "$xnu/bsd/net/if_utun.h" "$libinfo/gen.subproj/ifaddrs.h"; do
  [[ -f $f ]] || { echo "$0: $f not found: is that the right checkout?" >&2; exit 1; }
done
command -v clang >/dev/null || { echo "$0: clang not found (apt-get install -y clang)" >&2; exit 1; }

shim=$(mktemp -d)
trap 'rm -rf "$shim"' EXIT

# <sys/...>, <net/...> … resolve into the XNU tree; <ifaddrs.h> into Libinfo.
mkdir -p "$shim/tree" "$shim/stubs/sys/_pthread" "$shim/stubs/os"
for d in sys net netinet netinet6 machine i386 arm bsm; do ln -s "$xnu/bsd/$d" "$shim/tree/$d"; done
ln -s "$xnu/osfmk/mach" "$shim/tree/mach"
ln -s "$xnu/libkern/libkern" "$shim/tree/libkern"
ln -s "$libinfo/gen.subproj/ifaddrs.h" "$shim/tree/ifaddrs.h"

# Stubs for what XNU's build generates (searched first).
echo '/* stub: generated from the SDK at XNU build time; only function declarations use it */' >"$shim/stubs/sys/_symbol_aliasing.h"
echo '/* stub: generated from the SDK at XNU build time; only function declarations use it */' >"$shim/stubs/sys/_posix_availability.h"
echo '/* stub: libc header; nothing probed needs it */' >"$shim/stubs/time.h"
echo '#define API_AVAILABLE(...)' >"$shim/stubs/os/availability.h"
for t in attr_t cond_t condattr_t key_t mutex_t mutexattr_t once_t rwlock_t rwlockattr_t t; do
  printf '#ifndef _PTHREAD_%s\n#define _PTHREAD_%s\ntypedef __darwin_pthread_%s pthread_%s;\n#endif\n' "$t" "$t" "$t" "$t" >"$shim/stubs/sys/_pthread/_pthread_$t.h"
done

targets=(x86_64-apple-macos11 arm64-apple-macos11)
irs=()
for target in "${targets[@]}"; do
  out="$shim/$target.ll"
  clang --target="$target" -ffreestanding -nostdinc \
    -isystem "$(clang -print-resource-dir)/include" \
    -isystem "$shim/stubs" -isystem "$shim/tree" -isystem "$xnu/EXTERNAL_HEADERS" \
    -Werror=implicit-function-declaration -S -emit-llvm -o "$out" "$here/probe-layouts.c"
  irs+=("$target=$out")
done

describe() { git -C "$1" describe --tags --always 2>/dev/null || echo unknown; }
node "$here/ir-to-json.mjs" \
  --xnu "$(describe "$xnu")" --libinfo "$(describe "$libinfo")" --clang "$(clang --version | head -1)" \
  --out "$package/test-fixtures/darwin-layouts.json" \
  --xucred-out "$repo/core/src/control/peer-cred-darwin.layouts.json" \
  --sockopt-out "$repo/core/src/forward/socket-state-darwin.layouts.json" \
  "${irs[@]}"
