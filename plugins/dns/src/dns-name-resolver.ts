import { lookup } from 'node:dns/promises'
import { Lifecycle, NgrokdError, type Check, type NameRecord, type NameResolver } from '@ngrokd/core/plugin'
import type { DnsResponder } from './dns-responder.js'

/**
 * Publishes the names as the answers of a {@link DnsResponder} (`names.resolver: dns`). The responder's
 * sockets belong to the plugin (they open once the interface has its address); this resolver only
 * swaps the answer set, whole, on each `publish()`.
 *
 * What is published lives in memory: after a restart nothing is answered until the daemon
 * publishes again (it does at start, from its last known endpoint list).
 */
export class DnsNameResolver implements NameResolver {
  readonly resolver = 'dns'
  readonly #lifecycle = new Lifecycle('dns name resolver')

  constructor(private readonly responder: DnsResponder) {}

  async open({ signal }: { signal?: AbortSignal } = {}): Promise<void> {
    throwIfAborted(signal, 'open()')
    this.#lifecycle.open()
  }

  async publish({ records, signal }: { records: readonly NameRecord[]; signal?: AbortSignal }): Promise<{ changed: boolean }> {
    this.#lifecycle.assertOpen('publish()')
    throwIfAborted(signal, 'publish()')
    const next = new Map(records.map((r) => [r.hostname.toLowerCase(), r.address]))
    const current = this.responder.zone
    const changed = next.size !== current.size || [...next].some(([name, address]) => current.get(name) !== address)
    if (changed) this.responder.setZone(next)
    return { changed }
  }

  async list(): Promise<NameRecord[]> {
    return [...this.responder.zone].map(([hostname, address]) => ({ hostname, address }))
  }

  async close(): Promise<void> {
    this.#lifecycle.close()
  }

  /** Where it answers, and whether the machine's own resolver gives each published name its address. */
  async diagnose(): Promise<Check[]> {
    const where = this.responder.addresses
    const checks: Check[] = [
      where.length === 0
        ? { id: 'dns.responder', status: 'warn', summary: 'the DNS responder is not answering (the daemon is not running, or its listen failed: see its log)' }
        : { id: 'dns.responder', status: 'ok', summary: `DNS responder answering on ${where.map((a) => `${a.host}:${a.port}`).join(', ')}` },
    ]
    const records = await this.list()
    if (records.length === 0) return checks
    const wrong: string[] = []
    await Promise.all(
      records.map(async ({ hostname, address }) => {
        const got = await lookup(hostname, { family: 4 }).then((r) => r.address, (e: NodeJS.ErrnoException) => e.code ?? 'error')
        if (got !== address) wrong.push(`${hostname} → ${got} (published ${address})`)
      }),
    )
    checks.push(
      wrong.length === 0
        ? { id: 'dns.system-resolver', status: 'ok', summary: `all ${records.length} names resolve through the system resolver` }
        : {
            id: 'dns.system-resolver',
            status: 'warn',
            summary: `${wrong.length} of ${records.length} names do not resolve through the system resolver: ${wrong.slice(0, 5).join('; ')}`,
            hint: `point the system resolver at the responder for the endpoint suffixes (systemd-resolved per-link DNS, or /etc/resolver on macOS), or use names.resolver: hosts-file`,
          },
    )
    return checks
  }
}

function throwIfAborted(signal: AbortSignal | undefined, method: string): void {
  if (signal?.aborted) throw new NgrokdError('NGROKD_ERR_ABORTED', `dns name resolver: ${method} aborted`, { cause: signal.reason })
}
