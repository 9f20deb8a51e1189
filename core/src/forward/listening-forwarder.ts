import net from 'node:net'
import type { Check } from '../contracts/check.js'
import { NON_LOCAL_CLIENT, type Forwarder, type ForwardTarget, type ListenOptions, type ListenerFigures, type ListenerStatus } from '../contracts/forwarder.js'
import type { Logger } from '../contracts/logger.js'
import { NgrokdError, isNgrokdError } from '../errors/ngrokd-error.js'
import { ConnectionLimits, refuseConnection, type ConnectionLimitOptions } from './connection-limits.js'
import { flatJoin } from '../util/flat-string.js'
import { isNgrokErrorCode } from './ingress-refused-error.js'
import { ipFamily } from '../util/ip-family.js'
import { LocalAddresses } from '../util/local-addresses.js'
import { describePortHolder, findPortHolder, type PortHolder } from '../util/port-holder.js'

/** One forwarded connection as the listener bookkeeping sees it. */
export interface TrackedConnection {
  readonly target: ForwardTarget
  /** Bytes read from the local client so far. */
  bytesIn(): number
  /** Bytes written to the local client so far. */
  bytesOut(): number
  /** Cuts the connection now (RST); it still ends through `untrack()`. */
  cut(): void
}

/** A warning that repeats is said once; again only after this long without it (a new episode). */
const WARN_QUIET_MS = 600_000
/** Distinct error codes one listener counts; later ones count as {@link OTHER_ERRORS}. */
const MAX_ERROR_KEYS = 32
export const OTHER_ERRORS = 'OTHER'
const NO_CONNECTIONS: ReadonlySet<never> = new Set()

/** What a listener only needs once it has had a connection or a failure. */
class ListenerActivity<C> {
  total = 0
  refused = 0
  closedBytesIn = 0
  closedBytesOut = 0
  handshakeCount = 0
  handshakeTotalMs = 0
  handshakeMaxMs = 0
  lastError: NgrokdError | undefined = undefined
  onEmpty: (() => void) | undefined = undefined
  /** The open connections; the set goes with the last one. */
  open: Set<C> | undefined = undefined
  errorCounts: Record<string, number> | undefined = undefined
  /**
   * Each warning said, by log key: when it last happened (said or not), how often since it was said, and whether it
   * was a connection that failed (which a connection that goes through ends: {@link ListenerEntry.recovered}).
   */
  warned: Map<string, { lastAt: number; repeats: number; failure: boolean }> | undefined = undefined
}

const NO_ACTIVITY: Readonly<ListenerActivity<never>> = Object.freeze(new ListenerActivity<never>())

/**
 * One listening address:port and its counters. A daemon may hold 10,000 of these, nearly all idle, so an
 * entry holds what an idle listener needs; its counters, open set, error counts and warn times are made with
 * its first connection or failure ({@link ListenerActivity}), and its handlers are the forwarder's, shared by
 * all listeners.
 */
export class ListenerEntry<C extends TrackedConnection> {
  private activity?: ListenerActivity<C>

  constructor(
    readonly key: string,
    readonly address: string,
    readonly port: number,
    readonly server: net.Server,
    public target: ForwardTarget,
    public rewriteHost: string | undefined,
    /** Clients from other machines are admitted (network mode); else only local ones. */
    public remoteClients: boolean,
  ) {}

  /** The counters and the rest, for reading: one shared, frozen set of zeros while the listener is idle. */
  get seen(): Readonly<ListenerActivity<C>> {
    return this.activity ?? NO_ACTIVITY
  }

  /** The counters and the rest, for writing: made on first use. */
  private get active(): ListenerActivity<C> {
    return (this.activity ??= new ListenerActivity<C>())
  }

  /** The open connections. */
  get conns(): ReadonlySet<C> {
    return this.activity?.open ?? NO_CONNECTIONS
  }

  addConnection(conn: C): void {
    ;(this.active.open ??= new Set()).add(conn)
  }

  /** False when `conn` was not open. The set goes with the last connection. */
  deleteConnection(conn: C): boolean {
    const a = this.activity
    if (!a?.open?.delete(conn)) return false
    if (a.open.size === 0) a.open = undefined
    return true
  }

  /** `fn` is called when the last open connection has ended (a drain waits on it). */
  whenEmpty(fn: () => void): void {
    this.active.onEmpty = fn
  }

  countAccepted(): void {
    this.active.total++
  }

  countRefused(): number {
    return ++this.active.refused
  }

  countClosedBytes(bytesIn: number, bytesOut: number): void {
    const a = this.active
    a.closedBytesIn += bytesIn
    a.closedBytesOut += bytesOut
  }

  recordHandshake(ms: number): void {
    const a = this.active
    a.handshakeCount++
    a.handshakeTotalMs += ms
    if (ms > a.handshakeMaxMs) a.handshakeMaxMs = ms
  }

  /** The latest failed connection, for `diagnose()`. */
  failed(err: NgrokdError): void {
    this.active.lastError = err
  }

  /** Counts a failure under `key` and returns the key it counted under. */
  count(key: string): string {
    const counts = (this.active.errorCounts ??= {})
    // past MAX_ERROR_KEYS codes, a new one counts as OTHER: the counts (and warn times) of one listener stay small whatever fails
    if (counts[key] === undefined && Object.keys(counts).length >= MAX_ERROR_KEYS) key = OTHER_ERRORS
    counts[key] = (counts[key] ?? 0) + 1
    return key
  }

  /** Failures so far by key (a copy). */
  errors(): Record<string, number> {
    return { ...this.activity?.errorCounts }
  }

  /** The listener's figures now: its closed connections' and its open ones' bytes. */
  figures(): ListenerFigures {
    const seen = this.seen
    let bytesIn = seen.closedBytesIn
    let bytesOut = seen.closedBytesOut
    for (const c of this.conns) {
      bytesIn += c.bytesIn()
      bytesOut += c.bytesOut()
    }
    return {
      openConnections: this.conns.size,
      totalConnections: seen.total,
      bytesIn,
      bytesOut,
      errors: this.errors(),
      refused: seen.refused,
      handshake: { count: seen.handshakeCount, totalMs: seen.handshakeTotalMs, maxMs: seen.handshakeMaxMs },
    }
  }

  /**
   * True when `key` is to be said at warn: the first time, and again only after {@link WARN_QUIET_MS} without it; a
   * repeat in between is counted. `failure`: a connection that failed, which the next one that goes through ends.
   */
  warnNow(key: string, failure = false): boolean {
    const now = Date.now()
    const warned = (this.active.warned ??= new Map())
    const w = warned.get(key)
    if (w !== undefined && now - w.lastAt < WARN_QUIET_MS) {
      w.lastAt = now
      w.repeats++
      return false
    }
    warned.set(key, { lastAt: now, repeats: 0, failure })
    return true
  }

  /**
   * A connection went through: the failures said since (their keys, and how many connections failed in all) are over,
   * and forgotten, so that the next one is said again; undefined when none was.
   */
  recovered(): { keys: string[]; failed: number } | undefined {
    const warned = this.activity?.warned
    if (warned === undefined) return undefined
    let failed = 0
    const keys: string[] = []
    for (const [key, w] of warned) {
      if (!w.failure) continue
      keys.push(key)
      failed += w.repeats + 1
      warned.delete(key)
    }
    return keys.length > 0 ? { keys, failed } : undefined
  }
}

export interface ListeningForwarderOptions {
  logger: Logger
  limits?: ConnectionLimitOptions
  /** Decides which sources are this machine (tests inject one). Default: loopback and the interfaces' addresses. */
  localAddresses?: LocalAddresses
}

/**
 * What every forwarder that listens with `node:net` shares: listen/unlisten bookkeeping (serialized per
 * address:port, idempotent, re-targeting), connection limits, drain, counters, `listeners()` and
 * `diagnose()`. A subclass carries the bytes of each admitted connection in {@link accept}.
 *
 * Rules for subclasses:
 * - `accept()` calls `track()` synchronously and `untrack()` exactly once when the connection has ended
 *   on both sides (that releases its limit slot and folds its byte counts into the listener's).
 * - A connection over a limit never reaches `accept()`: it is reset at once and counted in `refused`.
 */
export abstract class ListeningForwarder<C extends TrackedConnection> implements Forwarder {
  abstract readonly forwarder: string
  protected readonly logger: Logger
  protected readonly limits: ConnectionLimits
  protected readonly entries = new Map<string, ListenerEntry<C>>()
  /** Listens that failed, by key, until a later listen or unlisten of the same address:port. */
  private readonly failed = new Map<string, NgrokdError>()
  private readonly queues = new Map<string, Promise<unknown>>()
  /** Listeners unlistened whose open connections are still finishing. */
  private readonly draining = new Set<ListenerEntry<C>>()
  /** The figures of the listeners unlistened and drained, summed: `unlistened()` keeps status totals from going backwards. */
  private readonly gone: Required<ListenerFigures> = noFigures()
  /** After `endDrains()`: every unlisten, those not begun yet included, closes its connections at once. */
  private drainsEnded = false
  protected closed = false
  private readonly localAddresses: LocalAddresses
  /** Each server's entry, for the handlers all servers share. */
  private readonly listenerOf = new WeakMap<net.Server, ListenerEntry<C>>()
  private readonly onConnection: (this: net.Server, socket: net.Socket) => void
  private readonly onAcceptError: (this: net.Server, err: NodeJS.ErrnoException) => void

  constructor(options: ListeningForwarderOptions) {
    this.logger = options.logger
    this.limits = new ConnectionLimits(options.limits)
    this.localAddresses = options.localAddresses ?? new LocalAddresses()
    const forwarder = this
    this.onConnection = function (socket) {
      const entry = forwarder.listenerOf.get(this)
      if (entry) forwarder.admit(entry, socket)
      else refuseConnection(socket)
    }
    this.onAcceptError = function (err) {
      const entry = forwarder.listenerOf.get(this)
      if (!entry) return
      const code = entry.count(err.code ?? 'accept')
      forwarder.warn(entry, code, { listener: entry.key, err: err.message }, `${entry.key}: accept failed: ${err.message}`)
    }
  }

  /** Carries one admitted, paused local connection. See the class rules. */
  protected abstract accept(entry: ListenerEntry<C>, client: net.Socket): void

  listen({ address, port, target, rewriteHost, remoteClients = false, signal }: ListenOptions): Promise<void> {
    const where = hostPort(address, port)
    if (ipFamily(address) === 0) {
      return Promise.reject(new NgrokdError('NGROKD_ERR_LISTEN', `${this.forwarder} forwarder: cannot listen on ${JSON.stringify(address)}: not an IP address`))
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      return Promise.reject(new NgrokdError('NGROKD_ERR_LISTEN', `${this.forwarder} forwarder: cannot listen on ${where}: port not in 1-65535`))
    }
    const key = where
    return this.serialize(key, async () => {
      if (this.closed) throw new NgrokdError('NGROKD_ERR_LISTEN', `${this.forwarder} forwarder: cannot listen on ${where}: the forwarder is closed`)
      if (signal?.aborted) throw new NgrokdError('NGROKD_ERR_ABORTED', `${this.forwarder} forwarder: listen on ${where} aborted`, { cause: signal.reason })
      const existing = this.entries.get(key)
      if (existing) {
        if (!sameTarget(existing.target, target) || existing.rewriteHost !== rewriteHost) {
          this.logger.info({ listener: where, from: existing.target, to: target }, `${where}: new connections now go to ${target.hostname}:${target.port}`)
          existing.target = { ...target }
          existing.rewriteHost = rewriteHost
        }
        existing.remoteClients = remoteClients
        return
      }
      const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true })
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject)
          // exactly the address given: never a wildcard that was not asked for
          server.listen({ host: address, port, exclusive: true }, () => {
            server.off('error', reject)
            resolve()
          })
        })
      } catch (cause) {
        server.close()
        const err = cause as NodeJS.ErrnoException
        const holder = err.code === 'EADDRINUSE' ? await findPortHolder(address, port).catch(() => undefined) : undefined
        const error = listenError(where, address, port, err, holder, remoteClients)
        this.failed.set(key, error)
        throw error
      }
      if (signal?.aborted) {
        server.close()
        throw new NgrokdError('NGROKD_ERR_ABORTED', `${this.forwarder} forwarder: listen on ${where} aborted`, { cause: signal.reason })
      }
      const entry = new ListenerEntry<C>(key, address, port, server, { ...target }, rewriteHost, remoteClients)
      this.listenerOf.set(server, entry)
      server.on('connection', this.onConnection)
      // after listen, 'error' means a failed accept (EMFILE, ENFILE): the server keeps listening
      server.on('error', this.onAcceptError)
      this.entries.set(key, entry)
      this.failed.delete(key)
      this.logger.debug({ listener: where, target }, `listening on ${where} for ${target.hostname}:${target.port}`)
    })
  }

  unlisten({ address, port, drainMs: asked = 0 }: { address: string; port: number; drainMs?: number }): Promise<void> {
    const key = hostPort(address, port)
    // only the close is serialized with the listens of this address:port: a listen after it waits for no drain
    const closed = this.serialize(key, async () => {
      const drainMs = this.drainsEnded ? 0 : asked
      this.failed.delete(key)
      const entry = this.entries.get(key)
      if (!entry) return undefined
      this.entries.delete(key)
      entry.server.close() // stops accepting at once; open connections are ours to drain
      return { drained: this.drain(entry, drainMs) }
    })
    return closed.then((c) => c?.drained)
  }

  /**
   * Lets the open connections of an unlistened listener finish (cut after `drainMs`), then keeps its figures in
   * {@link gone}. Taken from `entries` and put in `draining` (or `gone`) in one step: counted once, never missed.
   */
  private async drain(entry: ListenerEntry<C>, drainMs: number): Promise<void> {
    if (entry.conns.size > 0) {
      let timer: NodeJS.Timeout | undefined
      this.draining.add(entry)
      await new Promise<void>((resolve) => {
        entry.whenEmpty(resolve)
        if (drainMs > 0) timer = setTimeout(() => cutAll(entry), drainMs)
        else cutAll(entry)
      })
      clearTimeout(timer)
      this.draining.delete(entry)
    }
    addFigures(this.gone, entry.figures())
    this.logger.debug({ listener: entry.key, total: entry.seen.total }, `stopped listening on ${entry.key}`)
  }

  listeners(): ListenerStatus[] {
    const out: ListenerStatus[] = []
    for (const e of this.entries.values()) {
      if (!e.server.listening) continue
      out.push({ address: e.address, port: e.port, target: { ...e.target }, ...e.figures() })
    }
    return out
  }

  /** Listeners unlistened: the connections still draining and their counters, and the counters of those gone. */
  unlistened(): ListenerFigures {
    const sum = addFigures(noFigures(), this.gone)
    for (const e of this.draining) addFigures(sum, e.figures())
    return sum
  }

  endDrains(): void {
    this.drainsEnded = true
    for (const entry of this.draining) cutAll(entry)
  }

  async close(): Promise<void> {
    this.closed = true
    await Promise.all([...this.entries.values()].map((e) => this.unlisten({ address: e.address, port: e.port, drainMs: 0 })))
    this.failed.clear()
  }

  async diagnose(): Promise<Check[]> {
    const checks: Check[] = []
    for (const error of this.failed.values()) {
      checks.push({ id: 'forwarder.listen', status: 'fail', summary: error.message, hint: error.hint, code: error.code })
    }
    const ls = this.listeners()
    const open = ls.reduce((n, l) => n + l.openConnections, 0)
    const total = ls.reduce((n, l) => n + l.totalConnections, 0)
    // a refusal is counted in `refused`, and one of another machine's clients under its error key too
    const nonLocal = ls.reduce((n, l) => n + (l.errors[NON_LOCAL_CLIENT] ?? 0), 0)
    const failed = ls.reduce((n, l) => n + Object.values(l.errors).reduce((a, b) => a + b, 0), 0) - nonLocal
    const atLimit = ls.reduce((n, l) => n + (l.refused ?? 0), 0) - nonLocal
    const last = [...this.entries.values()].map((e) => e.seen.lastError).filter((e) => e !== undefined).at(-1)
    const summary = `${this.forwarder} forwarder: ${ls.length} listeners, ${open} open connections, ${total} since start, ${failed} failed, ${atLimit} refused over a limit, ${nonLocal} refused from another machine`
    const hints = [
      ...(atLimit > 0 ? ['raise forwarder.max_connections or forwarder.max_connections_per_endpoint if these clients are legitimate'] : []),
      ...(nonLocal > 0
        ? [[...this.entries.values()].some((e) => e.remoteClients)
            ? "an endpoint's own address serves this machine only: other machines use its network port (ngrokd list shows them)"
            : 'endpoints serve this machine only: set net.network.listen to serve other machines']
        : []),
    ]
    checks.push(
      last
        ? { id: 'forwarder.connections', status: 'warn', summary: `${summary}; latest: ${last.message}`, hint: last.hint, code: last.code }
        : hints.length > 0
          ? { id: 'forwarder.connections', status: 'warn', summary, hint: hints.join('; ') }
          : { id: 'forwarder.connections', status: 'ok', summary },
    )
    return checks
  }

  protected track(entry: ListenerEntry<C>, conn: C): void {
    entry.addConnection(conn)
  }

  /** The connection has ended on both sides: frees its limit slot; its final byte counts join the listener's. */
  protected untrack(entry: ListenerEntry<C>, conn: C, bytesIn: number, bytesOut: number): void {
    if (!entry.deleteConnection(conn)) return
    this.limits.release()
    entry.countClosedBytes(bytesIn, bytesOut)
    if (entry.conns.size === 0) entry.seen.onEmpty?.()
  }

  /** Time from accept to the ConnResponse of one connection; the first after failures that were said says they ended. */
  protected recordHandshake(entry: ListenerEntry<C>, ms: number): void {
    entry.recordHandshake(ms)
    const recovered = entry.recovered()
    if (recovered) {
      const { hostname, port } = entry.target
      this.logger.info(
        { listener: entry.key, hostname, port, failed: recovered.failed, codes: recovered.keys },
        `${hostname}:${port}: connections go through again (after ${recovered.failed} failed: ${recovered.keys.join(', ')})`,
      )
    }
  }

  /** Counts a failed connection under its code and logs it: at warn once while it repeats, at debug each time after. */
  protected recordFailure(entry: ListenerEntry<C>, err: unknown, target: ForwardTarget): void {
    const key = entry.count(errorKey(err))
    if (isNgrokdError(err)) entry.failed(err)
    const ngrokCode = (err as { ngrokCode?: string }).ngrokCode
    const { hostname, port } = target
    this.warn(
      entry,
      key,
      { listener: entry.key, hostname, port, code: isNgrokdError(err) ? err.code : undefined, ngrokCode, hint: (err as NgrokdError).hint },
      `${hostname}:${port}: ${(err as Error).message}`,
      true,
    )
  }

  /** Counts an error without logging it above debug (local resets, ingress resets mid-stream). */
  protected countError(entry: ListenerEntry<C>, key: string): void {
    entry.count(key)
  }

  /** How another machine reaches this endpoint: its network-mode listener, or that there is none. */
  private otherMachinesWay(entry: ListenerEntry<C>): string {
    for (const e of this.entries.values()) {
      if (e.remoteClients && sameTarget(e.target, entry.target)) return `an endpoint's own address serves this machine only; other machines reach it on ${hostPort(e.address, e.port)} (net.network.listen)`
    }
    return 'endpoints are for local clients unless net.network.listen is set'
  }

  /** `msg` at warn once while it repeats (again after {@link WARN_QUIET_MS} without it), else at debug. `failure`: see {@link ListenerEntry.warnNow}. */
  protected warn(entry: ListenerEntry<C>, key: string, obj: object, msg: string, failure = false): void {
    if (entry.warnNow(key, failure)) this.logger.warn(obj, msg)
    else this.logger.debug(obj, msg)
  }

  private admit(entry: ListenerEntry<C>, socket: net.Socket): void {
    if (this.closed || this.entries.get(entry.key) !== entry) {
      refuseConnection(socket)
      return
    }
    // a client that reset before it was admitted has no address left to judge: gone, neither refused nor counted
    if (socket.remoteAddress === undefined) {
      socket.destroy()
      return
    }
    // only this machine's clients, unless the listener is network mode's (net.network.listen)
    if (!entry.remoteClients && !this.localAddresses.isLocal(socket.remoteAddress, socket.localAddress)) {
      const source = socket.remoteAddress
      refuseConnection(socket)
      entry.countRefused()
      entry.count(NON_LOCAL_CLIENT)
      this.warn(
        entry,
        NON_LOCAL_CLIENT,
        { listener: entry.key, hostname: entry.target.hostname, source },
        `${entry.key}: refused a connection from ${source}, which is not this machine: ${this.otherMachinesWay(entry)}`,
      )
      return
    }
    let hit = this.limits.admit(entry.conns.size)
    // at a limit, first give back the slots of connections that ended and are not yet accounted for
    if (hit && this.releaseEnded()) hit = this.limits.admit(entry.conns.size)
    if (hit) {
      refuseConnection(socket)
      const refused = entry.countRefused() - (entry.seen.errorCounts?.[NON_LOCAL_CLIENT] ?? 0) // at a limit, not other machines'
      const limit = this.limits.limitOf(hit)
      const scope = hit === 'max_connections' ? 'across all endpoints' : `to ${entry.target.hostname}:${entry.target.port}`
      this.warn(
        entry,
        `limit:${hit}`,
        { listener: entry.key, hostname: entry.target.hostname, limit: hit, max: limit, refused },
        `${entry.key}: refused a connection: ${limit} connections already open ${scope} (forwarder.${hit}); ${refused} refused so far`,
      )
      return
    }
    entry.countAccepted()
    this.accept(entry, socket)
  }

  /**
   * Gives back the limit slots of connections whose client has closed though `untrack()` has not run yet (a forwarder
   * that learns of the end later than the client does: the worker pool); true when it gave any back.
   */
  protected releaseEnded(): boolean {
    return false
  }

  /** Runs listen/unlisten of one address:port one after another, in call order. */
  private serialize<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(key) ?? Promise.resolve()
    const next = prev.then(fn)
    const tail = next.then(
      () => undefined,
      () => undefined,
    )
    this.queues.set(key, tail)
    void tail.then(() => {
      if (this.queues.get(key) === tail) this.queues.delete(key)
    })
    return next
  }
}

function noFigures(): Required<ListenerFigures> {
  return { openConnections: 0, totalConnections: 0, bytesIn: 0, bytesOut: 0, errors: {}, refused: 0, handshake: { count: 0, totalMs: 0, maxMs: 0 } }
}

/** Adds `f` into `sum` (returned); error keys past {@link MAX_ERROR_KEYS} count as {@link OTHER_ERRORS}, as one listener's do. */
function addFigures(sum: Required<ListenerFigures>, f: ListenerFigures): Required<ListenerFigures> {
  sum.openConnections += f.openConnections
  sum.totalConnections += f.totalConnections
  sum.bytesIn += f.bytesIn
  sum.bytesOut += f.bytesOut
  sum.refused += f.refused ?? 0
  for (const [code, n] of Object.entries(f.errors)) {
    const key = sum.errors[code] === undefined && Object.keys(sum.errors).length >= MAX_ERROR_KEYS ? OTHER_ERRORS : code
    sum.errors[key] = (sum.errors[key] ?? 0) + n
  }
  if (f.handshake) {
    sum.handshake.count += f.handshake.count
    sum.handshake.totalMs += f.handshake.totalMs
    if (f.handshake.maxMs > sum.handshake.maxMs) sum.handshake.maxMs = f.handshake.maxMs
  }
  return sum
}

/** Cuts every open connection: reset, since whatever was in flight is lost. */
function cutAll<C extends TrackedConnection>(entry: ListenerEntry<C>): void {
  for (const c of entry.conns) c.cut()
}

/**
 * ngrok's code for a refusal (`ERR_NGROK_3200`), else the NgrokdError code, else the errno code. A refusal whose
 * code has not ngrok's form counts under its NgrokdError code: what an ingress sends must not make new keys at will.
 */
export function errorKey(err: unknown): string {
  const e = err as { ngrokCode?: string; code?: unknown }
  if (typeof e?.ngrokCode === 'string' && isNgrokErrorCode(e.ngrokCode)) return e.ngrokCode
  if (typeof e?.code === 'string' && e.code) return e.code
  return 'UNKNOWN'
}

function sameTarget(a: ForwardTarget, b: ForwardTarget): boolean {
  return a.hostname === b.hostname && a.port === b.port && a.proto === b.proto
}

/** 0.0.0.0 or ::: a listen on every address. */
function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::'
}

export function hostPort(address: string, port: number): string {
  return address.includes(':') ? flatJoin('[', address, ']:', port) : flatJoin(address, ':', port)
}

/**
 * Why a listen failed; for EADDRINUSE it names who holds the port (`holder`, from /proc) and how to free it.
 * `network`: a listener of network mode (on `net.network.listen`, its port from `net.network.start_port`).
 */
function listenError(where: string, address: string, port: number, err: NodeJS.ErrnoException, holder?: PortHolder, network = false): NgrokdError {
  const code = err.code ?? 'UNKNOWN'
  if (code === 'EADDRINUSE') {
    const wildcard = holder !== undefined && !holder.listen.startsWith(`${address}:`) && !isWildcard(address)
    const who = holder ? describePortHolder(holder) : `another program (find it with \`ss -ltnp 'sport = :${port}'\`)`
    const free = network
      ? holder?.command === 'node' || holder?.command === 'ngrokd'
        ? 'stop it; if it is another ngrokd in network mode (an instance), give each its own net.network.start_port'
        : 'stop it, or set net.network.start_port so that the network ports lie clear of it'
      : 'stop it, or change its port'
    const hint = wildcard
      ? `${who} already listens on every address, ${address} included: make it listen on 127.0.0.1 (or its own address) only, or stop it`
      : `${who} already listens on ${holder?.listen ?? where}: ${free}`
    return new NgrokdError('NGROKD_ERR_LISTEN', `cannot listen on ${where}: EADDRINUSE: held by ${who}`, { cause: err, hint })
  }
  const hint =
    code === 'EACCES'
        ? 'ports below 1024 need root or CAP_NET_BIND_SERVICE (setcap cap_net_bind_service+ep $(readlink -f $(which node)))'
        : code === 'EADDRNOTAVAIL'
          ? network
            ? `${address} is not an address of this machine: set net.network.listen to one of its addresses (ip -4 addr lists them), or 0.0.0.0`
            : `${address} is not an address of this machine: the interface driver has to add it first (ngrokd doctor)`
          : undefined
  return new NgrokdError('NGROKD_ERR_LISTEN', `cannot listen on ${where}: ${code}`, { cause: err, hint })
}
