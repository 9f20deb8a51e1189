import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { intToIpv4, parseSubnet } from '@ngrokd/core'
import { benchApplyAddresses, type BenchApplyResult } from './netlink-apply-bench.js'
import { median, ratio } from './stats.js'

/** Figure 1: `count` /32 additions, then removals, in one batch each — ngrokd's netlink driver vs `ip -batch`. */
export interface AddressesFigure {
  status: 'ok' | 'skipped' | 'error'
  reason?: string
  count: number
  runs: number
  subnet: string
  /** Medians over the runs. */
  ngrokd?: { addMs: number; removeMs: number; sends: number; waits: number; kind: string }
  ip?: {
    addMs: number
    removeMs: number
    kind: string
    version: string
    /** sendmsg/recvmsg calls of one add + one remove batch, counted once with `strace -c` (untimed); null without strace. */
    sendmsg: number | null
    recvmsg: number | null
  }
  /** ip time / ngrokd time: above 1 means ngrokd is faster. */
  ratio?: { add: number | null; remove: number | null }
  samples: { ngrokd: BenchApplyResult[]; ip: Array<{ addMs: number; removeMs: number }> }
}

const SUBNET = '10.107.0.0/16'
const NGROKD_LINK = 'ngkbaddr0'
const IP_LINK = 'ngkbipref0'

function ip(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${(r.stderr || r.error?.message || '').trim()}`)
}

/** A link like the driver's: dummy where the kernel has it, else bridge; up. Returns its kind. */
function makeReferenceLink(): string {
  let kind = 'dummy'
  const dummy = spawnSync('ip', ['link', 'add', IP_LINK, 'type', 'dummy'], { encoding: 'utf8' })
  if (dummy.status !== 0) {
    ip(['link', 'add', IP_LINK, 'type', 'bridge'])
    kind = 'bridge (dummy unavailable)'
  }
  ip(['link', 'set', IP_LINK, 'up'])
  return kind
}

function timedBatch(file: string): number {
  const t0 = performance.now()
  const r = spawnSync('ip', ['-batch', file], { encoding: 'utf8' })
  const ms = performance.now() - t0
  if (r.status !== 0) throw new Error(`ip -batch ${file}: ${r.stderr.trim()}`)
  return ms
}

/** Counts sendmsg/recvmsg of `ip -batch file` with strace -c; null when strace is missing or fails. */
function countSyscalls(file: string, dir: string): { sendmsg: number; recvmsg: number } | null {
  const out = join(dir, 'strace.txt')
  const r = spawnSync('strace', ['-f', '-c', '-o', out, '-e', 'trace=sendmsg,recvmsg,sendto,recvfrom', 'ip', '-batch', file], { encoding: 'utf8' })
  if (r.error || r.status !== 0) return null
  const calls: Record<string, number> = {}
  // strace -c rows: % time, seconds, usecs/call, calls, [errors], syscall
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/)
    const name = f[f.length - 1]!
    if (/^(sendmsg|recvmsg|sendto|recvfrom)$/.test(name) && f.length >= 5) calls[name] = Number(f[3])
  }
  return { sendmsg: (calls.sendmsg ?? 0) + (calls.sendto ?? 0), recvmsg: (calls.recvmsg ?? 0) + (calls.recvfrom ?? 0) }
}

export async function runAddressesFigure({ count, runs, hostNetns, log }: { count: number; runs: number; hostNetns: string; log: (line: string) => void }): Promise<AddressesFigure> {
  const fig: AddressesFigure = { status: 'ok', count, runs, subnet: SUBNET, samples: { ngrokd: [], ip: [] } }
  const net = parseSubnet(SUBNET)
  const addresses = Array.from({ length: count }, (_, i) => intToIpv4(net.network + 1 + i))
  const dir = mkdtempSync(join(tmpdir(), 'ngrokd-bench-addr-'))
  const addFile = join(dir, 'add.batch')
  const delFile = join(dir, 'del.batch')
  writeFileSync(addFile, addresses.map((a) => `address add ${a}/32 dev ${IP_LINK}\n`).join(''))
  writeFileSync(delFile, addresses.map((a) => `address del ${a}/32 dev ${IP_LINK}\n`).join(''))
  let ipKind = ''
  try {
    for (let run = 1; run <= runs; run++) {
      // side by side in one run: ngrokd's batch, then iproute2's on a link of the same kind
      const ours = await benchApplyAddresses({ count, name: NGROKD_LINK, subnet: SUBNET, hostNetns })
      fig.samples.ngrokd.push(ours)
      ipKind = makeReferenceLink()
      try {
        const addMs = timedBatch(addFile)
        const removeMs = timedBatch(delFile)
        fig.samples.ip.push({ addMs, removeMs })
      } finally {
        ip(['link', 'del', IP_LINK])
      }
      const last = fig.samples.ip[fig.samples.ip.length - 1]!
      log(`  run ${run}/${runs}: ngrokd add ${ours.addMs.toFixed(0)} ms, remove ${ours.removeMs.toFixed(0)} ms (${ours.sends} sends); ip -batch add ${last.addMs.toFixed(0)} ms, remove ${last.removeMs.toFixed(0)} ms`)
    }
    makeReferenceLink()
    let calls: { sendmsg: number; recvmsg: number } | null
    try {
      const add = countSyscalls(addFile, dir)
      const del = add && countSyscalls(delFile, dir)
      calls = add && del ? { sendmsg: add.sendmsg + del.sendmsg, recvmsg: add.recvmsg + del.recvmsg } : null
    } finally {
      ip(['link', 'del', IP_LINK])
    }
    const s = fig.samples
    fig.ngrokd = {
      addMs: median(s.ngrokd.map((r) => r.addMs)),
      removeMs: median(s.ngrokd.map((r) => r.removeMs)),
      sends: median(s.ngrokd.map((r) => r.sends)),
      waits: median(s.ngrokd.map((r) => r.waits)),
      kind: s.ngrokd[0]!.kind,
    }
    const version = spawnSync('ip', ['-V'], { encoding: 'utf8' }).stdout.trim().replace(/^ip utility, /, '').split(',')[0]!
    fig.ip = { addMs: median(s.ip.map((r) => r.addMs)), removeMs: median(s.ip.map((r) => r.removeMs)), kind: ipKind, version, sendmsg: calls?.sendmsg ?? null, recvmsg: calls?.recvmsg ?? null }
    fig.ratio = { add: ratio(fig.ip.addMs, fig.ngrokd.addMs), remove: ratio(fig.ip.removeMs, fig.ngrokd.removeMs) }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return fig
}
