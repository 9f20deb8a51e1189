import { spawnSync } from 'node:child_process'
import { readFileSync, readlinkSync } from 'node:fs'

/** Runs a program to its end (no shell): its exit status (null when it did not end by itself) and what it printed. */
export type RunSync = (file: string, args: readonly string[]) => { status: number | null; stdout: string }

export interface CommandLineOptions {
  /** Default `process.platform`. */
  platform?: NodeJS.Platform
  /** Default: spawnSync with a 15 s cap (PowerShell takes a second or two to start). For tests. */
  run?: RunSync
  /** Windows' folder (`%SystemRoot%`), where PowerShell is. Default the environment's, else `C:\Windows`. */
  systemRoot?: string
}

/** What the Windows query prints for a process whose command line this user may not read. */
const UNREADABLE = '<unreadable>'

const runSync: RunSync = (file, args) => {
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: 15_000, windowsHide: true, env: { ...process.env, LC_ALL: 'C' } })
  return { status: r.error ? null : r.status, stdout: r.stdout ?? '' }
}

/**
 * The command line of process `pid`, as the OS tells it: `''` when there is no such process, undefined when it
 * cannot be told here (no permission, no tool, another OS). The programs are named by absolute path: as root
 * nothing is run from `PATH`.
 * - Linux: `/proc/<pid>/cmdline` (NULs between the arguments);
 * - macOS: `/bin/ps -o command=` (another user's process, unreadable to a user, is printed as `(name)`);
 * - Windows: PowerShell's `Win32_Process.CommandLine` (a pid is reused there within minutes).
 */
export function commandLineOf(pid: number, { platform = process.platform, run = runSync, systemRoot = process.env.SystemRoot ?? 'C:\\Windows' }: CommandLineOptions = {}): string | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return ''
  if (platform === 'linux') {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ENOENT' ? '' : undefined
    }
  }
  if (platform === 'darwin') {
    const { status, stdout } = run('/bin/ps', ['-o', 'command=', '-p', String(pid)])
    if (status === 1 && stdout.trim() === '') return '' // ps: no process of that pid
    const line = stdout.trim()
    return status !== 0 || /^\(.*\)$/.test(line) ? undefined : line
  }
  if (platform === 'win32') {
    const query = `$p = Get-CimInstance Win32_Process -Filter 'ProcessId=${pid}'; if (-not $p) { '' } elseif ($null -eq $p.CommandLine) { '${UNREADABLE}' } else { $p.CommandLine }`
    const { status, stdout } = run(`${systemRoot}\\System32\\WindowsPowerShell\\v1.0\\powershell.exe`, ['-NoProfile', '-NonInteractive', '-Command', query])
    const line = stdout.trim()
    return status !== 0 || line === UNREADABLE ? undefined : line
  }
  return undefined
}

/** This boot's id (proc(5): /proc/sys/kernel/random/boot_id) and this process's time namespace, read once. */
let clockView: string | null | undefined

/** .NET ticks (100 ns since 0001-01-01 UTC) at the Unix epoch. */
const DOTNET_TICKS_AT_EPOCH = 621_355_968_000_000_000n

/**
 * How far apart two wall-clock readings of one process's start may be ({@link sameStart}): `ps` says whole seconds, and
 * a process reads its own start as Node does (`performance.timeOrigin`, a little after the OS's). A later process of
 * the same pid starts after the first one ended: a daemon lives longer than this.
 */
const WALL_START_TOLERANCE_MS = 5_000

/**
 * When process `pid` started: the same for a process's whole life, different for every process that gets its pid later,
 * never moved by a change of the wall clock. `<clock>/<view>/<start>`:
 * - Linux: `<boot id>/<time namespace>/<starttime>`, field 22 of `/proc/<pid>/stat` (clock ticks after boot; proc(5)).
 *   The kernel shifts `starttime` by the reader's time namespace (`unshare --time`), which is named beside it: two
 *   readings compare only when read in the same one ({@link sameClockView}).
 * - macOS and Windows: `wall/-/<ms since the epoch>`, recorded at the process's start: `/bin/ps -o lstart=` (macOS,
 *   whole seconds), PowerShell's `Win32_Process.CreationDate` (Windows); this process's own is Node's
 *   `performance.timeOrigin`, which runs no program (PowerShell takes a second or two to start). Two readings compare
 *   within {@link WALL_START_TOLERANCE_MS} ({@link sameStart}).
 *
 * `''` when there is no such process to be seen (or it is hidden: /proc mounted hidepid=2), undefined when it cannot be
 * told here (another OS, an unreadable /proc, no tool).
 */
export function processStartOf(pid: number, { platform = process.platform, run = runSync, systemRoot = process.env.SystemRoot ?? 'C:\\Windows' }: CommandLineOptions = {}): string | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined
  const wall = (ms: number): string | undefined => (Number.isFinite(ms) ? `wall/-/${Math.round(ms)}` : undefined)
  if ((platform === 'darwin' || platform === 'win32') && platform === process.platform && pid === process.pid) return wall(performance.timeOrigin)
  if (platform === 'darwin') {
    const { status, stdout } = run('/bin/ps', ['-o', 'lstart=', '-p', String(pid)])
    const line = stdout.trim().replace(/\s+/g, ' ')
    if (status === 1 && line === '') return '' // ps: no process of that pid
    // `Mon Dec 7 23:54:32 2026` (LC_ALL=C), in this process's time zone, as Date reads it
    return status !== 0 || !/^\w{3} \w{3} \d{1,2} \d{2}:\d{2}:\d{2} \d{4}$/.test(line) ? undefined : wall(Date.parse(line))
  }
  if (platform === 'win32') {
    const query = `$p = Get-CimInstance Win32_Process -Filter 'ProcessId=${pid}'; if (-not $p) { '' } else { $p.CreationDate.ToUniversalTime().Ticks }`
    const { status, stdout } = run(`${systemRoot}\\System32\\WindowsPowerShell\\v1.0\\powershell.exe`, ['-NoProfile', '-NonInteractive', '-Command', query])
    const line = stdout.trim()
    if (status !== 0) return undefined
    return line === '' ? '' : /^\d+$/.test(line) ? wall(Number((BigInt(line) - DOTNET_TICKS_AT_EPOCH) / 10_000n)) : undefined
  }
  if (platform !== 'linux') return undefined
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? '' : undefined
  }
  clockView ??= readClockView()
  // the command name (field 2) is in parentheses and may hold any byte: the fields after its last ')' start at field 3
  const ticks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[22 - 3]
  return clockView && ticks && /^\d+$/.test(ticks) ? `${clockView}/${ticks}` : undefined
}

/** `<boot id>/<time namespace>` of this process; null when the boot id cannot be read. The namespace is `-` before Linux 5.6. */
function readClockView(): string | null {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
    let ns = '-'
    try {
      ns = readlinkSync('/proc/self/ns/time').replace(/^time:\[(\d+)\]$/, '$1')
    } catch {
      // no time namespaces (Linux before 5.6): every reader sees the same starttime
    }
    return boot ? `${boot}/${ns}` : null
  } catch {
    return null
  }
}

/** Whether two {@link processStartOf} readings are of one boot and one time namespace, so that their starttimes compare. */
export function sameClockView(a: string, b: string): boolean {
  return a.slice(0, a.lastIndexOf('/')) === b.slice(0, b.lastIndexOf('/'))
}

/** Whether a {@link processStartOf} reading is of another boot than `b`'s: a process it names has ended for sure (a wall-clock reading names none). */
export function otherBoot(a: string, b: string): boolean {
  return a.split('/')[0] !== b.split('/')[0]
}

/** Whether two {@link processStartOf} readings of one clock view name one process's start (wall-clock ones within a tolerance). */
export function sameStart(a: string, b: string): boolean {
  if (!a.startsWith('wall/') || !b.startsWith('wall/')) return a === b
  return Math.abs(Number(a.slice(a.lastIndexOf('/') + 1)) - Number(b.slice(b.lastIndexOf('/') + 1))) <= WALL_START_TOLERANCE_MS
}
