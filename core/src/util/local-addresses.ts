import { networkInterfaces } from 'node:os'

/** How long a read of the machine's addresses is used: at most one read per this, however many connections come. */
const REFRESH_EVERY_MS = 1_000

/** `::ffff:10.0.0.1` → `10.0.0.1`; the kernel reports IPv4 peers of a dual-stack socket that way. */
function unmap(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}

/**
 * Whether a connection's source address is this machine: loopback (127.0.0.0/8, ::1), or an address
 * on one of its interfaces (a local client connecting to 10.107.0.2 comes from 10.107.0.2 itself, or
 * from the machine's own address on that route). Linux accepts packets for any local address from
 * any interface, so without this check a neighbour that routes 10.107.0.0/16 to this host would
 * reach every endpoint.
 *
 * The interface addresses are read at most once a second, for the connections of that second: a new
 * address is seen within a second, and so is one that left (a DHCP lease gone, a VPN down: its next owner
 * on the network is foreign), and a stream of connections costs one `getifaddrs()` a second.
 */
export class LocalAddresses {
  private known = new Set<string>()
  private readAt = -Infinity

  constructor(
    private readonly read: () => Iterable<string> = interfaceAddresses,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /**
   * `destination`, the address the connection came to: a source equal to it is this machine, known or not yet (an
   * endpoint address added a moment ago, before the next read: a local client connecting to 10.107.0.3 comes from
   * 10.107.0.3; a neighbour cannot complete a TCP handshake from an address the replies to which stay here).
   */
  isLocal(source: string | undefined, destination?: string): boolean {
    if (!source) return false
    const address = unmap(source)
    if (address === '::1' || address.startsWith('127.')) return true
    if (destination !== undefined && address === unmap(destination)) return true
    const now = this.clock()
    if (now - this.readAt >= REFRESH_EVERY_MS) {
      this.readAt = now
      this.known = new Set(this.read())
    }
    return this.known.has(address)
  }
}

/** Every address of every interface, as `os.networkInterfaces()` lists them. */
export function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => unmap(i.address)))
}
