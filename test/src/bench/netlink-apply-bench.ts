/**
 * Benchmark: how long `applyAddresses` takes to add, then remove, `count` /32 addresses on a fresh
 * link. The caller runs it inside a throwaway network namespace; it refuses to run anywhere else
 * (see {@link assertPrivateNetns}).
 *
 * ```ts
 * // unshare -n node test/dist-test/bench/netlink-apply-bench.js 10000
 * const { addMs, removeMs } = await benchApplyAddresses({ count: 10_000 })
 * ```
 */
import { readFileSync, readlinkSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { intToIpv4, NgrokdError, parseSubnet, silentLogger } from '@ngrokd/core/driver'
import linuxNetlink, { type LinuxNetlinkInterface } from '@ngrokd/driver-linux-netlink'

export interface BenchApplyOptions {
  count: number
  /** Default `ngrkbench0`. */
  name?: string
  /** Default `10.107.0.0/16` (65,534 host addresses). */
  subnet?: string
  /**
   * `readlink /proc/self/ns/net` of the caller before it entered the namespace; the bench refuses
   * to run there. Without it the namespace must hold nothing but `lo` (a fresh `unshare -n`).
   */
  hostNetns?: string
}

export interface BenchApplyResult {
  count: number
  addMs: number
  removeMs: number
  /** send() calls for the add and the remove together. */
  sends: number
  /** Times a reply was not yet queued and the socket had to be waited on. */
  waits: number
  /** What open() made, e.g. `bridge (dummy unavailable)`. */
  kind: string
}

export async function benchApplyAddresses({ count, name = 'ngrkbench0', subnet = '10.107.0.0/16', hostNetns }: BenchApplyOptions): Promise<BenchApplyResult> {
  assertPrivateNetns({ ownLink: name, ...(hostNetns === undefined ? {} : { hostNetns }) })
  const net = parseSubnet(subnet)
  if (!Number.isInteger(count) || count < 1 || count > net.size - 2) {
    throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `netlink-apply-bench: count must be 1..${net.size - 2} for ${net.cidr}, not ${count}`)
  }
  const addresses = Array.from({ length: count }, (_, i) => intToIpv4(net.network + 1 + i))
  const created = await linuxNetlink.create({ logger: silentLogger, stateDir: '/nonexistent', platform: 'linux' }, { name, subnet: net.cidr })
  const iface = created.interface as LinuxNetlinkInterface
  const info = await iface.open({ name, subnet: net.cidr })
  try {
    const before = { ...iface.stats! }
    const t0 = performance.now()
    await iface.applyAddresses({ add: addresses, remove: [] })
    const t1 = performance.now()
    await iface.applyAddresses({ add: [], remove: addresses })
    const t2 = performance.now()
    const after = iface.stats!
    return { count, addMs: t1 - t0, removeMs: t2 - t1, sends: after.sends - before.sends, waits: after.waits - before.waits, kind: info.kind }
  } finally {
    await iface.close({ removeInterface: true })
  }
}

/**
 * Fails closed unless this is evidently a throwaway namespace: either `hostNetns` (the caller's
 * `readlink /proc/self/ns/net` from before `unshare -n`) is given and differs from ours, or the
 * namespace has no interface besides `lo` and our own link (what a fresh `unshare -n` has).
 */
export function assertPrivateNetns({ hostNetns, ownLink }: { hostNetns?: string; ownLink?: string } = {}): void {
  const here = readlinkSync('/proc/self/ns/net')
  if (hostNetns !== undefined) {
    if (here !== hostNetns) return
    throw namespaceError(`still in the caller's network namespace ${here}`)
  }
  // /proc/self/net follows the reading thread's namespace: these are the interfaces we would touch
  const others = readFileSync('/proc/self/net/dev', 'utf8')
    .split('\n')
    .slice(2)
    .map((line) => line.split(':')[0]!.trim())
    .filter((n) => n !== '' && n !== 'lo' && n !== ownLink)
  if (others.length > 0) throw namespaceError(`this network namespace has other interfaces (${others.join(', ')})`)
}

function namespaceError(why: string): NgrokdError {
  return new NgrokdError('NGROKD_ERR_NAMESPACE', `netlink-apply-bench: refusing to run: ${why}`, {
    hint: 'run it inside a throwaway network namespace: unshare -n node test/dist-test/bench/netlink-apply-bench.js 10000',
  })
}

// `node netlink-apply-bench.js [count]` prints the result as JSON.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchApplyAddresses({ count: Number(process.argv[2] ?? 10_000) }).then(
    (r) => console.log(JSON.stringify(r)),
    (e: unknown) => {
      console.error(e instanceof Error ? e.message : e)
      process.exitCode = 1
    },
  )
}
