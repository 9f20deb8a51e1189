import dns from 'node:dns'
import type net from 'node:net'

/** How long a resolved ingress address is reused: well under the minutes DNS answers usually live. */
export const INGRESS_LOOKUP_TTL_MS = 30_000

interface Answer {
  at: number
  address: string | dns.LookupAddress[]
  family?: number
}

/**
 * The ingress host's address, resolved once per {@link INGRESS_LOOKUP_TTL_MS} instead of once per
 * connection. Each `dns.lookup` is a round trip through libuv's thread pool and, with glibc, a read
 * of /etc/hosts, which holds a line per served endpoint: 7 % of the daemon's CPU per new connection
 * here (perf). Failed lookups are not kept; `forget()` drops a host whose address did not connect,
 * so the next dial resolves it afresh.
 */
export class IngressLookup {
  private readonly answers = new Map<string, Answer>()

  constructor(
    private readonly resolve: net.LookupFunction = dns.lookup,
    private readonly ttlMs = INGRESS_LOOKUP_TTL_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** For `net.connect({ lookup })`. */
  readonly lookup: net.LookupFunction = (hostname, options, callback) => {
    const key = `${hostname}\0${options.family ?? 0}\0${options.hints ?? 0}\0${options.all === true}`
    const kept = this.answers.get(key)
    if (kept && this.now() - kept.at < this.ttlMs) {
      const address = Array.isArray(kept.address) ? [...kept.address] : kept.address
      process.nextTick(callback, null, address, kept.family)
      return
    }
    this.resolve(hostname, options, (err, address, family) => {
      if (err) this.answers.delete(key)
      else this.answers.set(key, { at: this.now(), address: Array.isArray(address) ? [...address] : address, family })
      callback(err, address, family)
    })
  }

  /** Drops what is kept for `hostname`: the next connection resolves it again. */
  forget(hostname: string): void {
    for (const key of this.answers.keys()) if (key.startsWith(`${hostname}\0`)) this.answers.delete(key)
  }
}
