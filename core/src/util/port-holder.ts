import { readdir, readFile, readlink } from 'node:fs/promises'
import { basename } from 'node:path'

/** Who listens on a TCP port that ngrokd wanted. */
export interface PortHolder {
  /** The socket's local address as the kernel reports it (`0.0.0.0:5432`, `[::]:5432`, `10.107.0.3:5432`). */
  listen: string
  pid?: number
  /** The program's name: its executable's file name, else argv[0]'s, else `/proc/<pid>/comm`. */
  command?: string
}

/** TCP_LISTEN in /proc/net/tcp's `st` column (include/net/tcp_states.h). */
const TCP_LISTEN = '0A'

/** `0100007F` (little-endian words, as /proc/net/tcp prints an IPv4 address) → `127.0.0.1`. */
function ipv4FromProc(hex: string): string {
  const n = Number.parseInt(hex, 16)
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24].join('.')
}

/** /proc/net/tcp6's 32 hex digits (four little-endian words) → the IPv6 text form, or an IPv4-mapped one's IPv4. */
function ipv6FromProc(hex: string): string {
  const bytes: number[] = []
  for (let w = 0; w < 4; w++) {
    const word = hex.slice(w * 8, w * 8 + 8)
    for (let b = 3; b >= 0; b--) bytes.push(Number.parseInt(word.slice(b * 2, b * 2 + 2), 16))
  }
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes.slice(12).join('.')
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16))
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::')
}

/**
 * Finds the listening socket that keeps ngrokd from listening on `address:port` (the same address,
 * or a wildcard on the same port) and the process that owns it, from /proc (Linux; as root every
 * process is visible, else only the user's own). Undefined when nothing is found or not on Linux.
 */
export async function findPortHolder(address: string, port: number): Promise<PortHolder | undefined> {
  if (process.platform !== 'linux') return undefined
  // a listen on 0.0.0.0 collides with a socket on any IPv4 address of the port (and with [::] when it is dual-stack)
  const everyIpv4 = address === '0.0.0.0'
  const candidates: Array<{ listen: string; inode: string }> = []
  for (const [file, v6] of [['/proc/net/tcp', false], ['/proc/net/tcp6', true]] as const) {
    const text = await readFile(file, 'utf8').catch(() => '')
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      if (f.length < 10 || f[3] !== TCP_LISTEN) continue
      const [addrHex, portHex] = f[1]!.split(':') as [string, string]
      if (Number.parseInt(portHex, 16) !== port) continue
      const local = v6 ? ipv6FromProc(addrHex) : ipv4FromProc(addrHex)
      const wildcard = local === '0.0.0.0' || local === '::'
      if (!wildcard && local !== address && !(everyIpv4 && !local.includes(':'))) continue
      candidates.push({ listen: local.includes(':') ? `[${local}]:${port}` : `${local}:${port}`, inode: f[9]! })
    }
  }
  // the exact address first: that is the socket that conflicts even when a wildcard one also exists
  candidates.sort((a, b) => Number(!a.listen.startsWith(`${address}:`)) - Number(!b.listen.startsWith(`${address}:`)))
  const first = candidates[0]
  if (!first) return undefined
  const owner = await socketOwner(first.inode)
  return owner ? { listen: first.listen, ...owner } : { listen: first.listen }
}

/** The process holding socket inode `inode`: a scan of /proc/<pid>/fd (only on this error path). */
async function socketOwner(inode: string): Promise<{ pid: number; command?: string } | undefined> {
  const target = `socket:[${inode}]`
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((n) => /^\d+$/.test(n))
  for (const pid of pids) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])
    for (const fd of fds) {
      if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) !== target) continue
      const command = await programName(pid)
      return { pid: Number(pid), ...(command ? { command } : {}) }
    }
  }
  return undefined
}

/**
 * The program behind `pid`. Not `comm` first: that is the main thread's name, which a program may
 * change (Node 24 calls it `MainThread`). The executable's link is readable for one's own processes
 * (root: all); argv[0] for everyone's.
 */
async function programName(pid: string): Promise<string | undefined> {
  const exe = await readlink(`/proc/${pid}/exe`).catch(() => '')
  if (exe) return basename(exe.replace(/ \(deleted\)$/, ''))
  const argv0 = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0')[0]!.split(' ')[0]!
  if (argv0) return basename(argv0)
  const comm = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim()
  return comm || undefined
}

/**
 * `postgres (pid 812) on 0.0.0.0:5432`. Without a pid (the socket's owner could not be read: another user's
 * process, and ngrokd without CAP_SYS_PTRACE, as under its systemd unit) it says how to find it.
 */
export function describePortHolder(h: PortHolder): string {
  const port = h.listen.slice(h.listen.lastIndexOf(':') + 1)
  const who = h.pid === undefined ? `another program (\`sudo ss -ltnp 'sport = :${port}'\` names it)` : h.pid === process.pid ? `this ngrokd itself (pid ${h.pid}: a bug, please report it)` : `${h.command ?? 'a process'} (pid ${h.pid})`
  return `${who} on ${h.listen}`
}
