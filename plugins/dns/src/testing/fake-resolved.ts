import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import dbus from '@homebridge/dbus-native'
import { AF_INET, RESOLVED_BUS_NAME, RESOLVED_LINK, RESOLVED_MANAGER, RESOLVED_MANAGER_PATH, type LinkDnsAddress, type LinkDomain } from '../systemd-resolved.js'

/** A bus of its own for a test: `dbus-daemon` on a socket in a temp dir (never the machine's system bus). */
export class PrivateBus {
  private constructor(
    private child: ChildProcess,
    private readonly dir: string,
    /** `unix:path=…`: what `DBUS_SYSTEM_BUS_ADDRESS` is set to. */
    readonly address: string,
  ) {}

  /** Starts `dbus-daemon --session` (Debian: dbus-daemon) on a socket in a temp dir: anyone on it may own any name. */
  static async start(): Promise<PrivateBus> {
    const dir = await mkdtemp(join(tmpdir(), 'ngrokd-dbus-'))
    const address = `unix:path=${join(dir, 'bus')}`
    return new PrivateBus(await spawnBus(address), dir, address)
  }

  /** Stops the bus and starts a new one on the same address, as a restart of the system bus does: every connection ends. */
  async restart(): Promise<void> {
    await this.#kill()
    this.child = await spawnBus(this.address)
  }

  async stop(): Promise<void> {
    await this.#kill()
    await rm(this.dir, { recursive: true, force: true })
  }

  async #kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = new Promise((resolve) => this.child.once('exit', resolve))
    this.child.kill('SIGTERM')
    await exited
  }
}

/** `dbus-daemon` listening on `address`, once it says it does. */
async function spawnBus(address: string): Promise<ChildProcess> {
  const child = spawn('dbus-daemon', ['--session', `--address=${address}`, '--nofork', '--print-address=1'], { stdio: ['ignore', 'pipe', 'pipe'] })
  await new Promise<void>((resolve, reject) => {
    let err = ''
    child.stdout!.once('data', () => resolve())
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`dbus-daemon exited (${code}) before it listened: ${err}`)))
  })
  return child
}

/** One call the fake took, as it arrived. */
export interface ResolvedCall {
  member: string
  signature: string
  body: unknown[]
}

/** What the fake holds for a link, as resolved would after the calls. */
export interface FakeLink {
  dns: LinkDnsAddress[]
  domains: LinkDomain[]
  defaultRoute?: boolean
  dnssec?: string
}

/** The methods the fake serves, with their signatures from org.freedesktop.resolve1(5). */
const METHODS: Record<string, [inSignature: string, outSignature: string]> = {
  SetLinkDNS: ['ia(iay)', ''],
  SetLinkDomains: ['ia(sb)', ''],
  SetLinkDefaultRoute: ['ib', ''],
  SetLinkDNSSEC: ['is', ''],
  RevertLink: ['i', ''],
  GetLink: ['i', 'o'],
}
const DNSSEC_MODES = new Set(['', 'yes', 'no', 'allow-downgrade'])
/** A domain as resolved's SetLinkDomains takes it: a DNS name, no `~` (the bool says routing-only). */
const DOMAIN = /^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$/i

class InvalidArgs extends Error {
  readonly dbusName = 'org.freedesktop.DBus.Error.InvalidArgs'
}

/** resolved's answer for an ifindex the kernel has no link of (systemd's bus-common-errors.h, BUS_ERROR_NO_SUCH_LINK). */
class NoSuchLink extends Error {
  readonly dbusName = 'org.freedesktop.resolve1.NoSuchLink'
}

/**
 * A stand-in for systemd-resolved on a {@link PrivateBus}: owns `org.freedesktop.resolve1` and
 * serves the per-link Manager methods the dns plugin calls, checking every call — its signature
 * exactly, the ifindex, each address's family and byte count, each domain — and answering
 * `InvalidArgs` (and recording the problem in `problems`) as resolved would refuse it. The link
 * state it keeps is readable over the bus (`GetLink`, the Link's `DNS` and `Domains` properties).
 *
 * ```ts
 * const bus = await PrivateBus.start()
 * const resolved = await FakeResolved.start(bus.address)
 * // … run the plugin with DBUS_SYSTEM_BUS_ADDRESS=bus.address …
 * assert.deepEqual(resolved.problems, [])
 * ```
 */
export class FakeResolved {
  readonly calls: ResolvedCall[] = []
  /** Calls refused, each with why: a correct client leaves this empty. */
  readonly problems: string[] = []
  readonly links = new Map<number, FakeLink>()
  /** Ifindexes of links deleted from the machine (`ip link del`): every call naming one is answered NoSuchLink. */
  readonly gone = new Set<number>()
  readonly #exported = new Set<number>()
  /** While set, calls are recorded as they come and answered only once it resolves (a stopped, hung resolved). */
  #stalled: Promise<void> | undefined

  private constructor(private readonly bus: ReturnType<typeof createBus>) {}

  /** `without`: methods it answers UnknownMethod to, as an older resolved would. */
  static async start(address: string, { without = [] }: { without?: readonly string[] } = {}): Promise<FakeResolved> {
    const bus = createBus(address)
    const fake = new FakeResolved(bus)
    const methods = Object.fromEntries(Object.keys(METHODS).filter((m) => !without.includes(m)).map((member) => [member, (...args: unknown[]) => fake.#handle(member, args.at(-1) as { signature?: string; body?: unknown[] })]))
    bus.exportInterface(methods, RESOLVED_MANAGER_PATH, { name: RESOLVED_MANAGER, methods: METHODS, signals: {}, properties: {} })
    await new Promise<void>((resolve, reject) =>
      // 4: DBUS_NAME_FLAG_DO_NOT_QUEUE; reply 1: DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER
      bus.requestName(RESOLVED_BUS_NAME, 4, (e: unknown, reply: number) => (e || reply !== 1 ? reject(new Error(`cannot own ${RESOLVED_BUS_NAME}: ${JSON.stringify(e ?? reply)}`)) : resolve())),
    )
    return fake
  }

  /**
   * From now on it takes calls and answers none (as a resolved that is stopped or hung) until the function returned
   * is called: then it answers them, in order, as it would have.
   */
  stall(): () => void {
    let release!: () => void
    this.#stalled = new Promise((resolve) => (release = resolve))
    return () => {
      this.#stalled = undefined
      release()
    }
  }

  /** The calls of one method, their bodies in order. */
  bodies(member: string): unknown[][] {
    return this.calls.filter((c) => c.member === member).map((c) => c.body)
  }

  stop(): void {
    this.bus.connection.end()
  }

  #handle(member: string, message: { signature?: string; body?: unknown[] }): unknown {
    const signature = message.signature ?? ''
    const body = message.body ?? []
    this.calls.push({ member, signature, body })
    const stalled = this.#stalled
    return stalled ? stalled.then(() => this.#answer(member, signature, body)) : this.#answer(member, signature, body)
  }

  #answer(member: string, signature: string, body: unknown[]): unknown {
    try {
      if (signature !== METHODS[member]![0]) throw new InvalidArgs(`${member}: signature ${JSON.stringify(signature)}, expected ${JSON.stringify(METHODS[member]![0])}`)
      const ifindex = body[0]
      if (typeof ifindex !== 'number' || !Number.isInteger(ifindex) || ifindex <= 0) throw new InvalidArgs(`${member}: ifindex ${JSON.stringify(ifindex)} is not a positive integer`)
      if (this.gone.has(ifindex)) throw new NoSuchLink(`Link ${ifindex} not known`)
      const link = this.links.get(ifindex) ?? { dns: [], domains: [] }
      switch (member) {
        case 'SetLinkDNS':
          link.dns = (body[1] as Array<[number, Buffer]>).map(([family, bytes]) => {
            if (family !== AF_INET || !Buffer.isBuffer(bytes) || bytes.length !== 4) throw new InvalidArgs(`SetLinkDNS: family ${family} with ${Buffer.isBuffer(bytes) ? bytes.length : typeof bytes} bytes (AF_INET=${AF_INET} takes 4)`)
            return [family, Buffer.from(bytes)]
          })
          break
        case 'SetLinkDomains':
          link.domains = (body[1] as Array<[string, boolean]>).map(([domain, routingOnly]) => {
            if (typeof domain !== 'string' || !DOMAIN.test(domain)) throw new InvalidArgs(`SetLinkDomains: ${JSON.stringify(domain)} is not a domain name`)
            if (typeof routingOnly !== 'boolean') throw new InvalidArgs(`SetLinkDomains: routing-only flag ${JSON.stringify(routingOnly)} is not a boolean`)
            return [domain, routingOnly]
          })
          break
        case 'SetLinkDefaultRoute':
          if (typeof body[1] !== 'boolean') throw new InvalidArgs(`SetLinkDefaultRoute: ${JSON.stringify(body[1])} is not a boolean`)
          link.defaultRoute = body[1]
          break
        case 'SetLinkDNSSEC':
          if (typeof body[1] !== 'string' || !DNSSEC_MODES.has(body[1])) throw new InvalidArgs(`SetLinkDNSSEC: mode ${JSON.stringify(body[1])}`)
          link.dnssec = body[1]
          break
        case 'RevertLink':
          this.links.delete(ifindex)
          return undefined
        case 'GetLink':
          return this.#linkPath(ifindex)
      }
      this.links.set(ifindex, link)
      return undefined
    } catch (e) {
      this.problems.push((e as Error).message)
      return e
    }
  }

  /** Exports the link's object (`DNS`, `Domains` read from what the fake holds now) and returns its path. */
  #linkPath(ifindex: number): string {
    const path = `${RESOLVED_MANAGER_PATH}/link/_3${ifindex}` // resolved's bus_path_encode of the ifindex
    if (!this.#exported.has(ifindex)) {
      this.#exported.add(ifindex)
      const links = this.links
      const state = {
        get DNS() {
          return links.get(ifindex)?.dns ?? []
        },
        get Domains() {
          return links.get(ifindex)?.domains ?? []
        },
      }
      this.bus.exportInterface(state, path, { name: RESOLVED_LINK, methods: {}, signals: {}, properties: { DNS: 'a(iay)', Domains: 'a(sb)' } })
    }
    return path
  }
}

type Callback = (...args: any[]) => void
function createBus(address: string) {
  const bus = (dbus as unknown as { createClient(o: { busAddress: string }): any }).createClient({ busAddress: address }) as {
    exportInterface(impl: object, path: string, iface: { name: string; methods: object; signals: object; properties: object }): void
    requestName(name: string, flags: number, cb: Callback): void
    connection: NodeJS.EventEmitter & { end(): void }
  }
  bus.connection.on('error', () => undefined) // the bus going away at the end of a test
  return bus
}
