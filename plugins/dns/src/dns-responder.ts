import dgram from 'node:dgram'
import net from 'node:net'
import { LocalAddresses, NgrokdError, silentLogger, type Logger } from '@ngrokd/core/plugin'
import { answerQuery, normalizeName, routedDomains, servedSuffixes, type Zone } from './dns-answer.js'

/** One address the responder answers on. */
export interface ListenAddress {
  host: string
  port: number
}

export interface DnsResponderOptions {
  /** Seconds; short, so a moved name is seen soon. */
  ttl?: number
  /** Suffixes served even with no hostname under them (NXDOMAIN rather than REFUSED). */
  suffixes?: readonly string[]
  logger?: Logger
  /** Which sources are this machine (tests inject one). Default: loopback and the interfaces' addresses. */
  localClients?: Pick<LocalAddresses, 'isLocal'>
  /** Milliseconds a TCP client gets between messages and for one message (tests shorten it). Default 10 s. */
  tcpIdleMs?: number
}

export const DEFAULT_TTL = 5
export const DNS_PORT = 53 // RFC 1035 §4.2
/**
 * A TCP client gets this long between messages, and this long to send a message once its first byte came,
 * before it is closed — RFC 7766 §6.2.3 suggests seconds. (A byte now and then does not keep a connection.)
 */
const TCP_IDLE_MS = 10_000
/** Open TCP connections at once; one more closes the one whose last message is oldest — RFC 7766 §6.2.2. */
const MAX_TCP_CONNECTIONS = 64
/**
 * The UDP receive buffer asked for: queries come in bursts (a program resolving many names at once, resolved asking
 * A and AAAA and retrying), faster than one turn of the event loop reads them, and the kernel's default (about
 * 208 KiB, some 250 queries with the kernel's per-datagram overhead) dropped the rest of a 500-query burst. The kernel
 * gives at most net.core.rmem_max on Linux (and doubles what it grants, for its bookkeeping); see growReceiveBuffer.
 */
export const UDP_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024

/**
 * An authoritative DNS responder for the endpoint names over UDP and TCP, on exactly the addresses
 * it is given. Answers may be set before `start()`. `setZone()` swaps the whole answer set at once: a query sees the old set or the new.
 *
 * ```ts
 * const responder = new DnsResponder({ ttl: 5 })
 * await responder.start([{ host: '10.107.0.1', port: 53 }])
 * responder.setZone(new Map([['api.prod', '10.107.0.2']]))
 * ```
 */
export class DnsResponder {
  #zone: { records: Zone; suffixes: ReadonlySet<string>; routes: ReadonlySet<string> } = { records: new Map(), suffixes: new Set(), routes: new Set() }
  readonly #udp: dgram.Socket[] = []
  readonly #tcp: net.Server[] = []
  /** Open TCP connections, the one least recently heard from first. */
  readonly #connections = new Set<net.Socket>()
  readonly #ttl: number
  readonly #tcpIdleMs: number
  readonly #logger: Logger
  readonly #localClients: Pick<LocalAddresses, 'isLocal'>

  constructor(private readonly options: DnsResponderOptions = {}) {
    this.#ttl = options.ttl ?? DEFAULT_TTL
    this.#tcpIdleMs = options.tcpIdleMs ?? TCP_IDLE_MS
    this.#logger = options.logger ?? silentLogger
    this.#localClients = options.localClients ?? new LocalAddresses()
    this.setZone(new Map())
  }

  /** The addresses really bound (ports filled in when 0 was asked for). */
  get addresses(): ListenAddress[] {
    return this.#udp.map((s) => ({ host: s.address().address, port: s.address().port }))
  }

  /** Each UDP socket's receive buffer in bytes, as the kernel granted it ({@link UDP_RECEIVE_BUFFER_BYTES}). */
  get udpReceiveBufferSizes(): number[] {
    return this.#udp.map((s) => s.getRecvBufferSize())
  }

  /** The answer set now (hostnames lowercase). */
  get zone(): Zone {
    return this.#zone.records
  }

  /** The suffixes it is authoritative for now (each hostname's parent, plus the `suffixes` option). */
  get suffixes(): ReadonlySet<string> {
    return this.#zone.suffixes
  }

  /** The domains the machine's resolver should send here ({@link routedDomains}): within {@link suffixes}, never a public one whole. */
  get routes(): ReadonlySet<string> {
    return this.#zone.routes
  }

  setZone(records: Zone): void {
    const copy = new Map([...records].map(([name, address]) => [normalizeName(name), address]))
    this.#zone = { records: copy, suffixes: servedSuffixes(copy, this.options.suffixes), routes: routedDomains(copy, this.options.suffixes) }
  }

  /** Binds UDP and TCP on every listen address (the same port for both); all or nothing. */
  async start(listen: readonly ListenAddress[]): Promise<void> {
    try {
      for (const address of listen) await this.#bind(address)
    } catch (e) {
      await this.close()
      const where = listen.map((l) => `${l.host}:${l.port}`).join(', ')
      throw new NgrokdError('NGROKD_ERR_LISTEN', `dns: cannot listen on ${where}: ${(e as Error).message}`, {
        cause: e,
        hint: 'port 53 needs root (or CAP_NET_BIND_SERVICE) and a free port on that address; set the dns plugin\'s listen option to another address or port',
      })
    }
  }

  /** UDP and TCP on one port; for port 0 the kernel picks UDP's, and another is tried if TCP has it taken. */
  async #bind({ host, port }: ListenAddress): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const udp = dgram.createSocket({ type: net.isIPv6(host) ? 'udp6' : 'udp4' })
      udp.on('message', (msg, peer) => this.#onDatagram(udp, msg, peer))
      udp.on('error', (e) => this.#logger.warn({ err: e }, `dns: udp ${host}:${port}: ${e.message}`))
      await bindUdp(udp, host, port).catch((e: unknown) => {
        udp.close()
        throw e
      })
      growReceiveBuffer(udp)
      const tcp = net.createServer((socket) => this.#onTcp(socket))
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject)
          tcp.listen({ host, port: udp.address().port, exclusive: true }, () => resolve())
        })
      } catch (e) {
        udp.close()
        if (port === 0 && (e as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < 10) continue
        throw e
      }
      tcp.on('error', (e) => this.#logger.warn({ err: e }, `dns: tcp ${host}:${port}: ${e.message}`))
      this.#udp.push(udp)
      this.#tcp.push(tcp)
      return
    }
  }

  async close(): Promise<void> {
    for (const udp of this.#udp.splice(0)) await new Promise<void>((resolve) => udp.close(() => resolve())).catch(() => undefined)
    for (const tcp of this.#tcp.splice(0)) {
      for (const socket of this.#connections) socket.destroy()
      await new Promise<void>((resolve) => tcp.close(() => resolve()))
    }
  }

  /**
   * The reply to one message (`udp`: cut to what a UDP client takes), or undefined to drop it; never throws
   * (a codec bug drops the message and is logged).
   */
  answer(message: Buffer, { udp = false }: { udp?: boolean } = {}): Buffer | undefined {
    const zone = this.#zone // one read: the whole query is answered from one set
    try {
      return answerQuery(message, zone.records, zone.suffixes, this.#ttl, { udp })
    } catch (e) {
      this.#logger.warn({ err: e }, `dns: dropped a ${message.length}-byte message that could not be answered: ${(e as Error).message}`)
      return undefined
    }
  }

  // Only this machine's clients are answered, as the endpoint listeners admit only them: a neighbour that
  // routes the subnet here learns nothing of the names.
  #onDatagram(udp: dgram.Socket, message: Buffer, peer: dgram.RemoteInfo): void {
    if (!this.#localClients.isLocal(peer.address, udp.address().address)) return
    const reply = this.answer(message, { udp: true })
    if (reply) udp.send(reply, peer.port, peer.address, (e) => e && this.#logger.debug(`dns: reply to ${peer.address}:${peer.port}: ${e.message}`))
  }

  /** DNS over TCP: each message is preceded by its 2-byte length — RFC 1035 §4.2.2. */
  #onTcp(socket: net.Socket): void {
    if (!this.#localClients.isLocal(socket.remoteAddress, socket.localAddress)) {
      socket.destroy()
      return
    }
    if (this.#connections.size >= MAX_TCP_CONNECTIONS) this.#connections.values().next().value?.destroy()
    socket.setTimeout(this.#tcpIdleMs, () => socket.destroy())
    socket.on('error', () => socket.destroy())
    this.#connections.add(socket)
    let messageDeadline: NodeJS.Timeout | undefined
    socket.on('close', () => {
      this.#connections.delete(socket)
      clearTimeout(messageDeadline)
    })
    let pending: Buffer = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
      while (pending.length >= 2) {
        const length = pending.readUInt16BE(0)
        if (pending.length < 2 + length) break
        const message = pending.subarray(2, 2 + length)
        pending = pending.subarray(2 + length)
        clearTimeout(messageDeadline)
        messageDeadline = undefined
        this.#connections.delete(socket) // heard from now: the last to be closed for a newcomer
        this.#connections.add(socket)
        const reply = this.answer(Buffer.from(message))
        if (reply === undefined) {
          socket.destroy() // not a query we answer: the stream cannot be trusted further
          return
        }
        const framed = Buffer.alloc(2 + reply.length)
        framed.writeUInt16BE(reply.length, 0)
        reply.copy(framed, 2)
        // a client that sends and does not read is not read from until it does: its replies are bounded
        if (!socket.write(framed)) socket.pause()
      }
      // a message begun has as long from its first byte to its last
      if (pending.length > 0) messageDeadline ??= setTimeout(() => socket.destroy(), this.#tcpIdleMs)
    })
    socket.on('drain', () => socket.resume())
  }
}

function bindUdp(udp: dgram.Socket, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    udp.once('error', reject)
    udp.bind({ address: host, port, exclusive: true }, () => {
      udp.off('error', reject)
      resolve()
    })
  })
}

/**
 * Asks for {@link UDP_RECEIVE_BUFFER_BYTES}, or as much as the kernel takes: Linux caps a larger ask at
 * net.core.rmem_max itself, macOS refuses one past kern.ipc.maxsockbuf (then half is asked for, down to 256 KiB, and
 * else the default stays). Never fails the start.
 */
function growReceiveBuffer(udp: dgram.Socket): void {
  for (let size = UDP_RECEIVE_BUFFER_BYTES; size >= 256 * 1024; size /= 2) {
    try {
      udp.setRecvBufferSize(size)
      return
    } catch {
      // refused (ENOBUFS): a smaller one
    }
  }
}

/** What a `listen` address of the plugin's options may be, for its errors. */
export const LISTEN_EXPECTED = 'an IP address with an optional port 0-65535, such as 10.107.0.1, 127.0.0.53:5353 or [::1]:53'

/**
 * `host:port`, `[v6]:port`, or a bare address (port 53); `option` names the value in the error (NGROKD_ERR_PLUGIN_INVALID)
 * for one that is not such an address. The plugin's `checkOptions` and `register()` both parse with it: one rule.
 */
export function parseListenAddress(text: string, option = 'listen'): ListenAddress {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text)
  const [host, port] = bracketed ? [bracketed[1]!, bracketed[2]] : net.isIP(text) ? [text, undefined] : splitLast(text)
  const portNumber = port === undefined ? DNS_PORT : /^\d{1,5}$/.test(port) ? Number(port) : NaN
  if (net.isIP(host) === 0 || !(portNumber >= 0 && portNumber <= 65535)) {
    throw new NgrokdError('NGROKD_ERR_PLUGIN_INVALID', `${option} is not an IP address with an optional port 0-65535 (got ${JSON.stringify(text)})`, {
      hint: 'write e.g. 10.107.0.1, 127.0.0.53:5353 or [::1]:53 (a name such as localhost is not looked up)',
    })
  }
  return { host, port: portNumber }
}

function splitLast(text: string): [string, string | undefined] {
  const colon = text.lastIndexOf(':')
  return colon < 0 ? [text, undefined] : [text.slice(0, colon), text.slice(colon + 1)]
}
