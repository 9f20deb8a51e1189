#!/usr/bin/env node
// Reads the probe's global constants back from LLVM IR and writes the layout fixtures.
// Called by probe-layouts.sh: node ir-to-json.mjs --xnu TAG --libinfo TAG --clang VERSION
//   --out FILE --xucred-out FILE --sockopt-out FILE <target>=<file.ll>...
import { readFileSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { xnu: { type: 'string' }, libinfo: { type: 'string' }, clang: { type: 'string' }, out: { type: 'string' }, 'xucred-out': { type: 'string' }, 'sockopt-out': { type: 'string' } },
})

/** `@probe_X = constant i64 N` → numbers; `@probe_s_X = constant [n x i8] c"...\00"` → strings. */
function read(ir) {
  const numbers = {}
  const strings = {}
  for (const m of ir.matchAll(/^@probe_(\w+) = (?:[a-z_]+ )*constant i64 (-?\d+)/gm)) numbers[m[1]] = Number(m[2])
  for (const m of ir.matchAll(/^@probe_s_(\w+) = (?:[a-z_]+ )*constant \[\d+ x i8\] c"((?:[^"\\]|\\[0-9A-F]{2})*)"/gm)) {
    strings[m[1]] = m[2].replace(/\\([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))).replace(/\0$/, '')
  }
  for (const k of Object.keys(strings)) delete numbers[`s_${k}`]
  return { numbers, strings }
}

const targets = {}
for (const arg of positionals) {
  const [target, file] = arg.split('=')
  const { numbers, strings } = read(readFileSync(file, 'utf8'))
  if (Object.keys(numbers).length < 100) throw new Error(`${file}: only ${Object.keys(numbers).length} values found; did the IR format change?`)
  targets[target] = { ...numbers, ...strings }
}

const source = {
  generatedBy: 'drivers/darwin-utun/scripts/probe-layouts.sh (do not edit: rerun it)',
  headers: { xnu: values.xnu, libinfo: values.libinfo },
  compiler: values.clang,
}
writeFileSync(values.out, `${JSON.stringify({ ...source, targets }, null, 2)}\n`)

/** core's subsets: the values each of its macOS modules uses, with the same provenance. */
function writeSubset(file, keep) {
  const subset = Object.fromEntries(Object.entries(targets).map(([t, v]) => [t, Object.fromEntries(Object.entries(v).filter(([k]) => keep.test(k)))]))
  writeFileSync(file, `${JSON.stringify({ ...source, targets: subset }, null, 2)}\n`)
}
// control/peer-cred-darwin.ts: LOCAL_PEERCRED, struct xucred and the errno values that getsockopt can answer
writeSubset(values['xucred-out'], /^(SOL_LOCAL|LOCAL_PEERCRED|XUCRED_VERSION|NGROUPS|EBADF|EFAULT|EINVAL|ENOTSOCK|ENOPROTOOPT|ENOTCONN)$|xucred/)
// forward/socket-state.ts: SO_ERROR, SO_LINGER and struct linger
writeSubset(values['sockopt-out'], /^(SOL_SOCKET|SO_ERROR|SO_LINGER)$|_linger/)
console.log(`wrote ${values.out}, ${values['xucred-out']} and ${values['sockopt-out']} (${Object.keys(targets).join(', ')})`)
