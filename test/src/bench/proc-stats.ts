import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

let clockTicks: number | undefined

/** Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`; 100 on Linux when unknown). */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })
    const n = Number(r.stdout?.trim())
    clockTicks = r.status === 0 && Number.isInteger(n) && n > 0 ? n : 100
  }
  return clockTicks
}

/** CPU-seconds a process (all its threads) has used: utime + stime, fields 14 and 15 of /proc/<pid>/stat (proc(5)). */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // fields after the comm, which may hold spaces, start at field 3
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(rest[11]) + Number(rest[12])) / ticksPerSecond()
}

/** `VmRSS` and `VmHWM` (peak) of /proc/<pid>/status, in MiB. */
export function processMemoryMiB(pid: number): { rssMiB: number; peakRssMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)
    if (!m) throw new Error(`/proc/${pid}/status has no ${key}`)
    return Number(m[1])
  }
  return { rssMiB: kib('VmRSS') / 1024, peakRssMiB: kib('VmHWM') / 1024 }
}
