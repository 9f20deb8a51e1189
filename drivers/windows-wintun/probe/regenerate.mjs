#!/usr/bin/env node
// Regenerates the Windows ABI fixtures from the real headers. Needs Debian's mingw-w64 (apt-get install mingw-w64)
// and, for the run-time facts, wine (apt-get install wine64). CI does not run this: the JSON files are committed.
//
//   WINTUN_H=/path/to/wintun/api/wintun.h npm run probe      (from drivers/windows-wintun, after npx turbo run build:test)
//
// 1. Compiles probe/windows-abi-probe.c for every mingw-w64 target found (x86_64 is required) and reads each value
//    out of the object file's .ngkval/.ngkname/.ngkluid sections: the compiler's numbers, no Windows needed.
// 2. Compiles every koffi prototype ngrokd declares (the *_PROTOTYPES exports of the built modules) as a C function
//    pointer type and assigns the header's function (or wintun.h's WINTUN_*_FUNC typedef) to it with -Werror, so a
//    wrong return type, argument type, const or calling convention (i686) fails here.
// 3. With wine: links the x86_64 probe, runs it with --runtime, checks that the printed values equal the section
//    values, and records what Wine's iphlpapi answered. Without wine: keeps the previous fixture's record of that
//    (the committed tests read it), and says so on stderr.
// 4. Writes probe/windows-abi.json (everything) and core/src/{names,control,service,util}/windows-abi.json (the values
//    each of those modules uses).
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { keptWineBlock } from './wine-block.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const pkg = resolve(here, '..')
const repo = resolve(pkg, '../..')
const source = join(here, 'windows-abi-probe.c')
const fixture = join(here, 'windows-abi.json')
const work = mkdtempSync(join(tmpdir(), 'ngrokd-abi-probe-'))

function fail(message) {
  console.error(`regenerate: ${message}`)
  process.exit(1)
}

function have(tool) {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).status === 0
}

const wintunH = process.env.WINTUN_H
if (!wintunH || !existsSync(wintunH)) fail('set WINTUN_H to wintun.h (api/wintun.h of the WireGuard wintun repository)')
const targets = ['x86_64', 'i686', 'aarch64'].filter((t) => have(`${t}-w64-mingw32-gcc`))
if (!targets.includes('x86_64')) fail('x86_64-w64-mingw32-gcc not found: apt-get install mingw-w64')

const cflags = ['-std=gnu11', '-Wall', '-Werror', '-O1', `-DNGROKD_WINTUN_H="${resolve(wintunH)}"`]

function section(target, object, name) {
  const out = join(work, `${target}${name}.bin`)
  execFileSync(`${target}-w64-mingw32-objcopy`, ['-O', 'binary', '-j', name, object, out])
  return readFileSync(out)
}

/** name → value, from the object file of one target. */
function compileTimeValues(target) {
  const object = join(work, `probe-${target}.o`)
  execFileSync(`${target}-w64-mingw32-gcc`, [...cflags, '-c', '-o', object, source], { stdio: 'inherit' })
  const values = section(target, object, '.ngkval')
  const names = section(target, object, '.ngkname').toString('latin1').split('\0').filter(Boolean)
  // the section may be padded up to its alignment (32 bytes), never shorter
  if (values.length < names.length * 8 || values.length >= names.length * 8 + 32) fail(`${target}: ${names.length} names for ${values.length} bytes of values`)
  const out = {}
  names.forEach((n, i) => (out[n] = Number(values.readBigUInt64LE(i * 8))))
  const luids = section(target, object, '.ngkluid')
  out['NET_LUID.Info.NetLuidIndex=1'] = Number(luids.readBigUInt64LE(0))
  out['NET_LUID.Info.IfType=1'] = Number(luids.readBigUInt64LE(8))
  return out
}

/** Every `*_PROTOTYPES` array exported by the built modules that declare Windows functions. */
async function prototypes() {
  const modules = [
    // dist-test holds one module per source file; dist is bundled into chunks
    join(pkg, 'dist-test/ffi/win32.js'),
    join(repo, 'core/dist-test/names/windows-dns-flush.js'),
    join(repo, 'core/dist-test/names/windows-nrpt-ffi.js'),
    join(repo, 'core/dist-test/control/windows-pipe-security-ffi.js'),
    join(repo, 'core/dist-test/util/windows-security-ffi.js'),
    join(repo, 'core/dist-test/service/windows-service-ffi.js'),
  ]
  const seen = new Map()
  for (const m of modules) {
    if (!existsSync(m)) fail(`${m} is missing: run npx turbo run build:test first`)
    const mod = await import(pathToFileURL(m).href)
    for (const [key, value] of Object.entries(mod)) {
      if (!key.endsWith('_PROTOTYPES') || !Array.isArray(value)) continue
      for (const p of value) seen.set(p.prototype, p)
    }
  }
  return [...seen.values()]
}

/** C that fails to compile (with -Werror) when a koffi prototype disagrees with the header. */
function prototypeCheck(list) {
  const lines = ['#include "windows-abi-probe.c"', '#ifndef _Out_', '#define _Out_', '#endif', '#ifndef _Inout_', '#define _Inout_', '#endif']
  const unchecked = []
  for (const p of list) {
    const m = /^(.*?)\s*__stdcall\s+(\w+)\((.*)\)$/.exec(p.prototype)
    if (!m) fail(`cannot read prototype ${p.prototype}`)
    const [, ret, name, rawArgs] = m
    const args = rawArgs.trim() === '' ? 'void' : rawArgs.replace(/\b_(Out|Inout)_\s+/g, '')
    lines.push(`typedef ${ret} (WINAPI *ngk_t_${name})(${args});`)
    if (p.header === 'wintun.h') {
      const typedef = `WINTUN_${name.replace(/^Wintun/, '').replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}_FUNC`
      lines.push(`void ngk_check_${name}(void) { ngk_t_${name} p = (${typedef} *)0; (void)p; }`)
    } else if (p.header === 'none') {
      unchecked.push(`${name} (${p.dll}: in no public header)`)
    } else {
      lines.push(`void ngk_check_${name}(void) { ngk_t_${name} p = ${name}; (void)p; }`)
    }
  }
  return { code: lines.join('\n') + '\n', unchecked }
}

const byTarget = {}
for (const t of targets) byTarget[t] = compileTimeValues(t)

const list = await prototypes()
const check = prototypeCheck(list)
const checkFile = join(here, 'prototype-check.c')
writeFileSync(checkFile, check.code)
try {
  for (const t of targets) {
    execFileSync(`${t}-w64-mingw32-gcc`, [...cflags, '-I', here, '-c', '-o', join(work, `check-${t}.o`), checkFile], { stdio: 'inherit' })
  }
} finally {
  rmSync(checkFile, { force: true })
}
console.log(`regenerate: ${list.length - check.unchecked.length} koffi prototypes match the headers on ${targets.join(', ')}`)

let wine = null
if (have('wine')) {
  const exe = join(work, 'probe-x86_64.exe')
  execFileSync('x86_64-w64-mingw32-gcc', [...cflags, '-o', exe, source, '-liphlpapi', '-lws2_32'], { stdio: 'inherit' })
  const env = { ...process.env, WINEDEBUG: '-all', WINEPREFIX: join(work, 'wineprefix') }
  const runtime = {}
  const rows = []
  let checked = false
  // One fact per run: Wine aborts the process when an unimplemented function is called.
  for (const fact of ['initialize', 'table', 'create-delete', 'dnsapi']) {
    const run = spawnSync('wine', [exe, '--runtime', fact], { encoding: 'utf8', env, timeout: 300_000 })
    // Wine reports an unimplemented function on stderr or, depending on the run, on stdout with exit status 0
    const unimplemented = /unimplemented function ([\w.]+)/i.exec(`${run.stderr}\n${run.stdout}`)
    if (unimplemented) runtime[fact] = `not implemented by Wine (${unimplemented[1]})`
    else if (run.status !== 0) fail(`wine run of ${fact} failed (${run.status}): ${run.stderr}`)
    if (run.status !== 0 || unimplemented) continue // Wine's crash report is on stdout too
    for (const line of run.stdout.split(/\r?\n/).filter(Boolean)) {
      const sp = line.startsWith('runtime:') ? line.indexOf(' ') : line.lastIndexOf(' ')
      const key = line.slice(0, sp)
      const value = line.slice(sp + 1)
      if (key === 'runtime:row') rows.push(value)
      else if (key.startsWith('runtime:')) runtime[key.slice(8)] = /^\d+$/.test(value) ? Number(value) : value
      else if (byTarget.x86_64[key] !== Number(value)) fail(`${key}: compile time ${byTarget.x86_64[key]}, wine run ${value}`)
      else checked = true
    }
  }
  if (!checked) fail('the wine runs printed no values')
  const version = spawnSync('wine', ['--version'], { encoding: 'utf8', env }).stdout.trim()
  wine = { version, ran: 'probe-x86_64.exe --runtime <fact> under wine64; the values it printed equal the compile-time ones', runtime, rows }
  console.log(`regenerate: ${version} ran the probe; its values equal the compile-time ones`)
} else {
  wine = keptWineBlock(fixture, (line) => console.error(`regenerate: ${line}`))
}

const mingw = execFileSync('x86_64-w64-mingw32-gcc', ['--version'], { encoding: 'utf8' }).split('\n')[0]
const comment = 'Generated by drivers/windows-wintun/probe/regenerate.mjs from windows-abi-probe.c. Do not edit.'
const full = { $comment: comment, compiler: mingw, wintunHeader: 'api/wintun.h (WireGuard wintun)', targets: byTarget, uncheckedPrototypes: check.unchecked, wine }
writeFileSync(fixture, JSON.stringify(full, null, 2) + '\n')

// The core modules get the values they use, with the same provenance.
const areas = {
  'core/src/names/windows-abi.json': /^(HKEY_|REG_|KEY_|DELETE$|ERROR_(SUCCESS|FILE_NOT_FOUND|ACCESS_DENIED|SHARING_VIOLATION|LOCK_VIOLATION)$)/,
  'core/src/control/windows-abi.json': /^(SDDL_|SE_KERNEL_OBJECT|.*_SECURITY_INFORMATION$|READ_CONTROL|WRITE_DAC|WRITE_OWNER|SYNCHRONIZE|FILE_(READ_DATA|WRITE_DATA|APPEND_DATA|CREATE_PIPE_INSTANCE|GENERIC_)|GENERIC_ALL|OPEN_EXISTING|TOKEN_QUERY|SECURITY_MAX_SID_SIZE|SidType|ERROR_(SUCCESS|ACCESS_DENIED|PIPE_BUSY|FILE_NOT_FOUND|NONE_MAPPED)$)/,
  'core/src/util/windows-abi.json': /^(READ_CONTROL|FILE_SHARE_|FILE_FLAG_BACKUP_SEMANTICS|OPEN_EXISTING|SE_FILE_OBJECT|OWNER_SECURITY_INFORMATION|DACL_SECURITY_INFORMATION|SDDL_REVISION_1|(sizeof )?SECURITY_ATTRIBUTES|ERROR_(SUCCESS|FILE_NOT_FOUND|PATH_NOT_FOUND|ACCESS_DENIED|ALREADY_EXISTS)$)/,
  'core/src/service/windows-abi.json': /^(SC_|SERVICE_|sizeof SC_|sizeof SERVICE_|DELETE$|ERROR_(SUCCESS|ACCESS_DENIED|SERVICE_|DUPLICATE_SERVICE_NAME|CALL_NOT_IMPLEMENTED|FAILED_SERVICE_CONTROLLER_CONNECT))/,
}
for (const [file, pattern] of Object.entries(areas)) {
  const subset = {}
  for (const [t, values] of Object.entries(byTarget)) subset[t] = Object.fromEntries(Object.entries(values).filter(([k]) => pattern.test(k.replace(/^sizeof /, 'sizeof '))))
  writeFileSync(join(repo, file), JSON.stringify({ $comment: comment, compiler: mingw, targets: subset }, null, 2) + '\n')
}
rmSync(work, { recursive: true, force: true })
console.log(`regenerate: wrote probe/windows-abi.json and ${Object.keys(areas).join(', ')}`)
