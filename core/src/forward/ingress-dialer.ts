import { normalizeIngressEndpoint, splitIngressEndpoint } from '../api/ingress-endpoint.js'
import { createHash, type X509Certificate } from 'node:crypto'
import net from 'node:net'
import tls from 'node:tls'
import type { Logger } from '../contracts/logger.js'
import { NgrokdError, isNgrokdError } from '../errors/ngrokd-error.js'
import { FrameReader, decodeConnResponseBody, encodeConnRequest, type ConnResponse, type PodIdentity } from '../protocol/binding-frames.js'
import { IngressLookup } from './ingress-lookup.js'
import { IngressRefusedError } from './ingress-refused-error.js'
import { peerChain, hasPemCertificate } from './ingress-trust.js'
import { PlaintextReads } from './plaintext-reads.js'
import { ipFamily } from '../util/ip-family.js'
import { PredialPool, type IngressConnection, type PredialPoolStats } from './predial-pool.js'
import { TlsSessionCache } from './tls-session-cache.js'

/** The client certificate and key that the ngrok API issued to this operator (PROTOCOL.md §3). */
export interface IngressCredentials {
  certPem: string
  keyPem: string
}

export interface IngressDialerOptions {
  logger: Logger
  /** Read for every new connection, so a renewed certificate is used without a restart. */
  credentials: () => IngressCredentials | Promise<IngressCredentials>
  /** `host:port` of the binding ingress, read for every new connection; without a port, 443. */
  endpoint: () => string
  /**
   * Trust anchors for the ingress's server certificate (see `loadIngressTrust`); they replace Node's
   * default roots. Partial chains are allowed: an intermediate CA given here is an anchor, as ngrok's
   * intermediate must be (PROTOCOL.md §4.1). Default: Node's roots.
   */
  ca?: string | Buffer | Array<string | Buffer>
  /**
   * `ca` is trusted beside Node's default roots, not instead of them (`ingress.ca_mode: add`). The roots then come
   * from Node's own store, parsed once per thread, rather than as ~145 PEMs parsed for every new context (20-40 ms
   * of the first connection; it also honours NODE_EXTRA_CA_CERTS).
   */
  caBesideNodeRoots?: boolean
  /** Accept any server certificate. Logged as a warning once, at construction. Never a fallback. */
  insecureSkipVerify?: boolean
  /**
   * ConnRequest field 3, sent on every request as ngrok's operator does: an empty message by default
   * (the operator's identity when no pod matches), configured fields when given (`ingress.pod_identity`).
   */
  podIdentity?: PodIdentity
  /** DNS + TCP connect + TLS handshake must finish within this. Default 10 000. */
  handshakeTimeoutMs?: number
  /** The ConnResponse must arrive within this after the handshake. Default 10 000. */
  responseTimeoutMs?: number
  /** Host name resolution for the TCP connect (`dns.lookup` by default, its answer reused: {@link IngressLookup}); tests map a name to loopback with it. */
  lookup?: net.LookupFunction
  /**
   * Resume TLS sessions (tickets) instead of a full handshake per connection. The last session is kept
   * per ingress `host:port` and client certificate; a rotation or endpoint change drops it. Default true
   * (config `ingress.session_resumption`).
   */
  sessionResumption?: boolean
  /**
   * TLS connections kept connected and handshaken ahead of demand, each used for one ConnRequest:
   * 0–64, default 0 = off (config `ingress.predial`). Filled after a successful dial, never while the
   * ingress is failing.
   */
  predial?: number
  /** A connection dialled ahead that is not used within this is closed. Default {@link DEFAULT_PREDIAL_MAX_AGE_MS}. */
  predialMaxAgeMs?: number
}

export interface DialOptions {
  /** The endpoint's bare hostname (`api.prod`), never `host:port`. */
  hostname: string
  port: number
  signal?: AbortSignal
}

/** What {@link IngressDialer.probe} learnt from one TLS handshake with the ingress. */
export interface IngressProbe {
  /** `host:port` dialled. */
  ingress: string
  /** The certificates the ingress presented, leaf first (as far as Node can tell the chain). */
  chain: X509Certificate[]
  protocol: string | null
  cipher: string
  /** The chain verified against the trust anchors (false only with insecureSkipVerify). */
  authorized: boolean
}

/**
 * A connection to the binding ingress that has sent its ConnRequest and got an accepting ConnResponse.
 * `socket` is paused; `early` holds the payload bytes that arrived together with the ConnResponse and
 * must be delivered before anything read from `socket`.
 */
export interface DialResult {
  socket: tls.TLSSocket
  response: ConnResponse
  early: Buffer
  /** The TLS connection was dialled ahead of this request (`predial`). Whether its session was resumed: `socket.isSessionReused()`. */
  predialled?: boolean
  /** How `socket` reads its plaintext: `consume()` takes the chunks from it without the stream ({@link pumpPlaintext}). */
  reads?: PlaintextReads
}

/** What a forwarder needs from a dialer: {@link IngressDialer}, or a wrapper around it. */
export interface Dialer {
  dial(options: DialOptions): Promise<DialResult>
}

export interface IngressDialerStats {
  /** Connections dialled ahead: ready, in progress, failures in a row. All 0 when `predial` is 0. */
  predial: PredialPoolStats
  /** A TLS session is held for the current ingress and credentials. */
  sessionHeld: boolean
}

/**
 * Default {@link IngressDialerOptions.predialMaxAgeMs}. ngrok does not document how long its ingress
 * waits for the ConnRequest; the simulator's ingress closes a connection 10 s after accepting it
 * without one. Under that, with room for a slow handshake and timer delays.
 */
export const DEFAULT_PREDIAL_MAX_AGE_MS = 8_000
/** Upper bound of `predial`; the same as `ingress.predial`'s maximum in config.schema.json. */
export const MAX_PREDIAL = 64
/** How long a probe's connection may take to close after its close_notify before it is cut off. */
const PROBE_CLOSE_MS = 5_000

/**
 * The cipher list offered to the ingress: Node's defaults with TLS_AES_128_GCM_SHA256 moved to the
 * front of the TLS 1.3 suites. That is Go's crypto/tls order on AES hardware (Go ≥ 1.17, so ngrok's
 * ingress picks it whatever we offer); OpenSSL's default puts AES-256-GCM first, which costs ~40% more
 * cipher work per byte (14 AES rounds instead of 10) for no margin that matters here. TLS 1.2 keeps
 * Node's list, whose first suites are already AES-128-GCM.
 */
export const INGRESS_CIPHERS = preferFirst(tls.DEFAULT_CIPHERS, 'TLS_AES_128_GCM_SHA256')

function preferFirst(list: string, first: string): string {
  return [first, ...list.split(':').filter((c) => c !== first)].join(':')
}

/** One notice for one host:port is logged at warn at most this often (ngrokd's choice; ngrok says nothing of how often it sends one). */
const NOTICE_WARN_EVERY_MS = 3_600_000
/** Notices remembered for that; past this many, the longest-unwarned is forgotten (and warned again when it comes). */
const NOTICES_REMEMBERED = 1_000

const CERT_NOT_ACCEPTED_HINT =
  'the ingress usually closes like this when it does not accept our client certificate: issued for another ' +
  'ingress, revoked or expired; restart ngrokd (it asks ngrok for a new certificate when ngrok names another ingress or ' +
  'the saved one has expired); if that does not help, remove client.crt from state_dir and restart (a new key and ' +
  'certificate are asked for), and check `ngrokd doctor`'
/** The peer answered, but not in the binding protocol (or stopped halfway through its answer). */
const NOT_BINDING_INGRESS_HINT =
  'the peer at this address does not speak ngrok\'s binding protocol: check ingress.endpoint (or the endpoint the API names; `ngrokd status` shows which) and run `ngrokd doctor`'
const CA_HINT = 'set ingress.ca_file to the CA certificate (file or directory of PEMs) that signs the ingress certificate'
// OpenSSL X509_V_ERR_* names (Node uses them as error codes) that mean "no trusted root for this chain".
const UNKNOWN_CA_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
])
const CLOCK_CODES = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID'])

type Phase = 'connect' | 'handshake' | 'response'

/** Where one dial goes, with what: the ingress, the TLS context of the current credentials, and their key. */
interface Target {
  ingress: { host: string; port: number; text: string }
  context: tls.SecureContext
  /** Ingress `host:port` + client-credential fingerprint: what a TLS session or a dialled-ahead connection is valid for. */
  key: string
}

/** Failures of a request on a connection that the server closed before answering anything: safe to retry once. */
const closedUnanswered = new WeakSet<Error>()

/**
 * Opens mTLS connections to ngrok's binding ingress and performs the ConnRequest / ConnResponse
 * exchange (PROTOCOL.md §4). Each TLS connection carries exactly one ConnRequest.
 *
 * - With `sessionResumption` (default) the handshake resumes the last TLS session of the same
 *   ingress and client certificate; a session the server refuses, or that a failed connection
 *   offered, is dropped.
 * - With `predial` > 0 a {@link PredialPool} keeps that many handshaken connections ready; a dial
 *   takes one (each once) or falls back to a fresh connection. A ready connection that turns out to
 *   be closed by the server before it answered is replaced by a fresh dial, once.
 * - `close()` closes every connection not yet handed out; dials after it fail with NGROKD_ERR_ABORTED.
 *
 * ```ts
 * const dialer = new IngressDialer({ logger, credentials: () => cert, endpoint: () => 'kubernetes-binding-ingress.ngrok.io:443', predial: 4 })
 * const { socket, early } = await dialer.dial({ hostname: 'api.prod', port: 80 })
 * local.write(early); local.pipe(socket).pipe(local)
 * await dialer.close()
 * ```
 */
export class IngressDialer implements Dialer {
  private readonly logger: Logger
  private readonly handshakeTimeoutMs: number
  private readonly responseTimeoutMs: number
  private readonly sessions?: TlsSessionCache
  private readonly pool?: PredialPool
  private readonly lookups: IngressLookup
  private closed = false
  /** When each notice (by host:port and text) was last logged at warn. */
  private readonly noticeWarnedAt = new Map<string, number>()
  /** ConnRequest fields besides host and port. */
  private readonly connRequestFields: { podIdentity: PodIdentity }
  /** Secure contexts are reused while credentials() returns the same PEMs (parsing a CA bundle per connection is costly). */
  private cached?: { certPem: string; keyPem: string; context: tls.SecureContext; fingerprint: string }

  constructor(private readonly options: IngressDialerOptions) {
    this.logger = options.logger
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000
    this.responseTimeoutMs = options.responseTimeoutMs ?? 10_000
    if (options.ca !== undefined) {
      // createSecureContext() silently skips text that is not PEM: check every entry holds a certificate
      // block (a damaged block inside one fails createSecureContext; loadIngressTrust parses ca_file's)
      try {
        for (const entry of Array.isArray(options.ca) ? options.ca : [options.ca]) {
          if (!hasPemCertificate(entry.toString())) throw new Error('no PEM certificate in an entry')
        }
      } catch (cause) {
        throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `ingress trust roots are not valid PEM certificates: ${(cause as Error).message}`, {
          cause,
          hint: 'ingress.ca_file must name a PEM file (or a directory of *.pem / *.crt files) with CA certificates',
        })
      }
    }
    const predial = options.predial ?? 0
    if (!Number.isInteger(predial) || predial < 0 || predial > MAX_PREDIAL) {
      throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `ingress predial ${predial} is not an integer in 0-${MAX_PREDIAL}`, {
        hint: `set ingress.predial to a number of connections from 0 (off) to ${MAX_PREDIAL}`,
      })
    }
    const maxAgeMs = options.predialMaxAgeMs ?? DEFAULT_PREDIAL_MAX_AGE_MS
    if (!(maxAgeMs > 0 && Number.isFinite(maxAgeMs))) {
      throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `ingress predialMaxAgeMs ${maxAgeMs} is not a positive number of milliseconds`)
    }
    this.connRequestFields = { podIdentity: options.podIdentity ?? {} }
    this.lookups = new IngressLookup(options.lookup)
    if (options.sessionResumption ?? true) this.sessions = new TlsSessionCache()
    if (predial > 0) this.pool = new PredialPool({ size: predial, maxAgeMs, logger: this.logger })
    if (options.insecureSkipVerify) {
      this.logger.warn(
        { insecureSkipVerify: true },
        'INSECURE: ingress.insecure_skip_verify is set: the binding ingress certificate is NOT verified, so anyone on the ' +
          'network path can impersonate it and read or alter forwarded traffic; set ingress.ca_file to the CA that signs ' +
          'the ingress certificate and remove insecure_skip_verify',
      )
    }
  }

  /**
   * ConnResponse notices are warnings (PROTOCOL.md): each is logged at warn the first time for its host:port and
   * again at most every {@link NOTICE_WARN_EVERY_MS}; the repeats in between (one per connection) go to debug.
   */
  private logNotices(hostname: string, port: number, notices: readonly string[]): void {
    const now = Date.now()
    for (const notice of notices) {
      const key = `${hostname}:${port} ${notice}`
      const last = this.noticeWarnedAt.get(key)
      const warn = last === undefined || now - last >= NOTICE_WARN_EVERY_MS
      if (warn) {
        this.noticeWarnedAt.delete(key) // re-inserted last: the map forgets the longest-unwarned first
        this.noticeWarnedAt.set(key, now)
        if (this.noticeWarnedAt.size > NOTICES_REMEMBERED) this.noticeWarnedAt.delete(this.noticeWarnedAt.keys().next().value!)
      }
      this.logger[warn ? 'warn' : 'debug']({ hostname, port, notice }, `binding ingress notice for ${hostname}:${port}: ${notice}`)
    }
  }

  async dial({ hostname, port, signal }: DialOptions): Promise<DialResult> {
    if (!hostname || /[\s:/\\[\]]/.test(hostname)) {
      throw new NgrokdError('NGROKD_ERR_HOSTNAME_INVALID', `binding ingress: ${JSON.stringify(hostname)} is not a bare hostname`, {
        hint: 'the ConnRequest host is the endpoint hostname alone, without scheme or :port',
      })
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new NgrokdError('NGROKD_ERR_ENDPOINT_INVALID', `binding ingress: port ${port} of ${hostname} is not in 1-65535`)
    }
    this.throwIfClosed(hostname, port)
    throwIfAborted(signal, hostname, port)
    const ingress = parseIngressEndpoint(this.options.endpoint())
    const credentials = await this.options.credentials()
    throwIfAborted(signal, hostname, port)
    this.throwIfClosed(hostname, port)
    const { context, fingerprint } = this.secureContext(credentials)
    const target: Target = { ingress, context, key: `${ingress.text} ${fingerprint}` }
    let result: DialResult
    try {
      result = await this.connectAndRequest(target, hostname, port, signal)
    } catch (e) {
      if (e instanceof IngressRefusedError) this.refill(target) // the ingress works; it refused this one target
      throw e
    }
    this.refill(target)
    return result
  }

  /**
   * One full TLS handshake with the ingress (no ConnRequest, no session offered or kept), then closes cleanly:
   * what `ngrokd doctor` uses to say whether and by what the ingress certificate is verified. Throws
   * the same coded errors as {@link dial} (e.g. NGROKD_ERR_INGRESS_TLS for an unknown CA).
   */
  async probe(signal?: AbortSignal): Promise<IngressProbe> {
    this.throwIfClosed('probe', 0)
    const ingress = parseIngressEndpoint(this.options.endpoint())
    const { context, fingerprint } = this.secureContext(await this.options.credentials())
    const { socket } = await this.handshake({ ingress, context, key: `probe ${ingress.text} ${fingerprint}` }, 'a probe', signal, undefined, false)
    try {
      return { ingress: ingress.text, chain: peerChain(socket), protocol: socket.getProtocol(), cipher: socket.getCipher().name, authorized: socket.authorized }
    } finally {
      // close_notify and FIN, not a reset: destroyed at once, under the ingress's unread NewSessionTicket, the socket
      // sends an RST, which the ingress logs as a client failing its handshake; what it still sends is read and
      // dropped, and one that does not close in PROBE_CLOSE_MS is cut off then
      const cutOff = setTimeout(() => socket.destroy(), PROBE_CLOSE_MS).unref()
      socket.once('close', () => clearTimeout(cutOff))
      socket.resume()
      socket.end()
      socket.unref() // nor does it keep a process that is done (doctor) alive meanwhile
    }
  }

  /** Closes every connection dialled ahead and forgets the TLS session; later dials fail. Connections handed out stay open. */
  async close(): Promise<void> {
    this.closed = true
    this.sessions?.clear()
    await this.pool?.close()
  }

  stats(): IngressDialerStats {
    return { predial: this.pool?.stats() ?? { idle: 0, pending: 0, failures: 0 }, sessionHeld: this.sessions?.held ?? false }
  }

  private async connectAndRequest(target: Target, hostname: string, port: number, signal: AbortSignal | undefined): Promise<DialResult> {
    const pooled = this.pool?.take(target.key)
    if (pooled) {
      try {
        return { ...(await this.request(pooled, target, hostname, port, signal)), predialled: true }
      } catch (e) {
        if (!closedUnanswered.has(e as Error)) throw e
        this.logger.debug({ hostname, port, err: (e as Error).message }, 'binding ingress: a connection dialled ahead was closed unanswered; dialling anew')
      }
    }
    const conn = await this.handshake(target, `${hostname}:${port}`, signal)
    return { ...(await this.request(conn, target, hostname, port, signal)), predialled: false }
  }

  /**
   * Tops the pool of connections dialled ahead up, in the background (a no-op without `predial`, or
   * while backing off). Deferred so that the caller has its connection first: `tls.connect` with a
   * session parses it (server certificate chain included) synchronously, ~0.3 ms per dial ahead.
   */
  private refill(target: Target): void {
    const pool = this.pool
    if (!pool || this.closed) return
    setImmediate(() => {
      if (!this.closed) pool.fill(target.key, (signal, track) => this.handshake(target, 'a connection dialled ahead', signal, track))
    })
  }

  private throwIfClosed(hostname: string, port: number): void {
    if (this.closed) {
      throw new NgrokdError('NGROKD_ERR_ABORTED', `binding ingress: dial for ${hostname}:${port} after the dialer was closed`, {
        hint: 'the daemon is stopping; new connections are refused',
      })
    }
  }

  private secureContext({ certPem, keyPem }: IngressCredentials): { context: tls.SecureContext; fingerprint: string } {
    const c = this.cached
    if (c && c.certPem === certPem && c.keyPem === keyPem) return c
    let context: tls.SecureContext
    try {
      const { ca, caBesideNodeRoots } = this.options
      context = tls.createSecureContext({
        // no pair yet (doctor before the first registration): a handshake still shows the server's chain
        ...(certPem ? { cert: certPem, key: keyPem } : {}),
        // without `ca` the context starts from Node's default roots
        ...(caBesideNodeRoots ? {} : { ca }),
        // ngrok's intermediate CA is an anchor (Node ≥ 20.18 / 22.9; `engines` requires them)
        allowPartialTrustChain: ca !== undefined,
        minVersion: 'TLSv1.2', // PROTOCOL.md §4.1: TLS 1.2 or 1.3
        maxVersion: 'TLSv1.3',
        ciphers: INGRESS_CIPHERS,
      })
      // what createSecureContext does with each `ca` entry (lib/internal/tls/secure-context.js), onto the roots' copy
      if (caBesideNodeRoots && ca !== undefined) for (const pem of Array.isArray(ca) ? ca : [ca]) (context.context as { addCACert(pem: string | Buffer): void }).addCACert(pem)
    } catch (cause) {
      throw new NgrokdError('NGROKD_ERR_CERT', `client certificate or key is unusable: ${(cause as Error).message}`, {
        cause,
        hint: 'the certificate and key in the state directory are damaged or do not match; re-register (ngrokd doctor)',
      })
    }
    const fingerprint = createHash('sha256').update(certPem).update('\0').update(keyPem).digest('base64url')
    this.cached = { certPem, keyPem, context, fingerprint }
    return this.cached
  }

  /**
   * TCP connect and TLS handshake, offering the cached session. Resolves the connection with no
   * listeners of its own but error guards; `label` names what it is for in error messages.
   */
  private handshake(target: Target, label: string, signal: AbortSignal | undefined, track?: (raw: net.Socket) => void, resume = true): Promise<IngressConnection> {
    const { ingress, context, key } = target
    const insecure = this.options.insecureSkipVerify === true
    const sessions = resume ? this.sessions : undefined
    const session = sessions?.get(key)
    return new Promise<IngressConnection>((resolve, reject) => {
      let phase: Phase = 'connect'
      let settled = false
      // tls.connect makes the TCP connection itself, so that its plaintext is read without a Buffer per
      // record (`onread`, see PlaintextReads; Node takes `onread` only without a `socket` of ours).
      const reads = new PlaintextReads()
      // allowHalfOpen and onread: tls.connect hands them to its TLSSocket (lib/_tls_wrap.js), though @types/node leaves them out
      const options: tls.ConnectionOptions & { allowHalfOpen: boolean; onread: net.OnReadOpts } = {
        host: ingress.host, // the TCP host, and the name checkServerIdentity verifies
        port: ingress.port,
        lookup: this.lookups.lookup,
        allowHalfOpen: true,
        servername: ipFamily(ingress.host) ? undefined : ingress.host, // SNI is never an IP literal (RFC 6066 §3)
        secureContext: context,
        rejectUnauthorized: !insecure,
        checkServerIdentity: insecure ? () => undefined : tls.checkServerIdentity,
        session,
        onread: reads.onread,
      }
      const socket = tls.connect(options)
      reads.attach(socket)
      track?.(socket)
      // noDelay: after a resumed TLS 1.3 handshake the server sends nothing more, so with Nagle the
      // ConnRequest would wait for the delayed ACK of our Finished (~40 ms on Linux; measured)
      socket.setNoDelay(true)
      socket.setKeepAlive(true, 30_000)
      if (sessions) keepSessions(socket, sessions, key)
      const timer = setTimeout(() => onTimeout(), this.handshakeTimeoutMs)

      const where = `binding ingress ${ingress.text}`
      const fail = (error: NgrokdError): void => {
        if (settled) return
        settled = true
        detach()
        socket.destroy()
        if (session) sessions?.drop(key, session)
        if (phase === 'connect') this.lookups.forget(ingress.host) // the address may have moved
        reject(error)
      }
      const onTimeout = (): void => {
        const what = phase === 'connect' ? 'TCP connect' : 'TLS handshake'
        fail(
          new NgrokdError('NGROKD_ERR_INGRESS_TIMEOUT', `${where}: ${what} for ${label} took longer than ${this.handshakeTimeoutMs} ms`, {
            hint: 'check the network path to the ingress (firewall, proxy) and ingress.endpoint',
          }),
        )
      }
      const onAbort = (): void => {
        fail(new NgrokdError('NGROKD_ERR_ABORTED', `${where}: dial for ${label} aborted`, { cause: signal?.reason }))
      }
      const onConnect = (): void => {
        if (phase === 'connect') phase = 'handshake'
      }
      const onSecure = (): void => {
        if (settled) return
        settled = true
        detach()
        // the server refused the session we offered (new ticket keys, expired): forget it
        if (session && !socket.isSessionReused()) sessions?.drop(key, session)
        resolve({ socket, raw: socket, session, reads })
      }
      const onError = (err: Error): void => {
        fail(classifyError(err, phase, socket.authorizationError, where, ingress.host))
      }
      const onEndOrClose = (): void => {
        if (phase === 'connect') {
          fail(new NgrokdError('NGROKD_ERR_INGRESS_UNREACHABLE', `${where}: connection closed before it was established`))
        } else {
          fail(
            new NgrokdError('NGROKD_ERR_INGRESS_TLS', `${where} closed the connection during the TLS handshake for ${label}: our client certificate is likely not accepted`, {
              hint: CERT_NOT_ACCEPTED_HINT,
            }),
          )
        }
      }
      function detach(): void {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        socket.off('connect', onConnect).off('secureConnect', onSecure).off('error', onError).off('end', onEndOrClose).off('close', onEndOrClose)
      }

      socket.once('connect', onConnect).once('secureConnect', onSecure).on('error', onError).once('end', onEndOrClose).once('close', onEndOrClose)
      if (signal) signal.addEventListener('abort', onAbort, { once: true })
      if (!settled && signal?.aborted) onAbort()
      guardErrors(socket, this.logger, ingress.text)
    })
  }

  /**
   * Writes the ConnRequest on a handshaken connection and reads the ConnResponse. On failure the
   * connection is destroyed; a failure because the server closed it unanswered is in {@link closedUnanswered}.
   */
  private request(conn: IngressConnection, target: Target, hostname: string, port: number, signal: AbortSignal | undefined): Promise<DialResult> {
    const { socket, session, reads } = conn
    const { ingress, key } = target
    return new Promise<DialResult>((resolve, reject) => {
      let settled = false
      let received = 0
      const reader = new FrameReader()
      const timer = setTimeout(() => onTimeout(), this.responseTimeoutMs)
      const where = `binding ingress ${ingress.text}`
      const fail = (error: NgrokdError, unanswered = false): void => {
        if (settled) return
        settled = true
        detach()
        socket.destroy()
        // a resumed connection the ingress would not serve: the next one does a full handshake
        if (session && socket.isSessionReused() && !(error instanceof IngressRefusedError)) this.sessions?.drop(key, session)
        if (unanswered && received === 0) closedUnanswered.add(error)
        reject(error)
      }
      const onTimeout = (): void => {
        fail(
          new NgrokdError('NGROKD_ERR_INGRESS_TIMEOUT', `${where}: ConnResponse for ${hostname}:${port} took longer than ${this.responseTimeoutMs} ms${received > 0 ? ` (${received} bytes of it came)` : ''}`, {
            // nothing at all: an ingress that holds a client it will not serve, or no ingress; part of one: not ours
            hint: received > 0 ? NOT_BINDING_INGRESS_HINT : `${NOT_BINDING_INGRESS_HINT}; or ${CERT_NOT_ACCEPTED_HINT.replace(/ usually closes like this /, ' may also hold the connection like this ')}`,
          }),
        )
      }
      const onAbort = (): void => {
        fail(new NgrokdError('NGROKD_ERR_ABORTED', `${where}: dial for ${hostname}:${port} aborted`, { cause: signal?.reason }))
      }
      const onError = (err: Error): void => {
        const code = (err as NodeJS.ErrnoException).code
        fail(classifyError(err, 'response', socket.authorizationError, where, ingress.host), code === 'ECONNRESET' || code === 'EPIPE')
      }
      const onEndOrClose = (): void => {
        if (received > 0) {
          fail(new NgrokdError('NGROKD_ERR_INGRESS_PROTOCOL', `${where}: connection closed in the middle of the ConnResponse for ${hostname}:${port}`, { hint: NOT_BINDING_INGRESS_HINT }))
        } else {
          fail(
            new NgrokdError('NGROKD_ERR_INGRESS_TLS', `${where} closed the connection before answering the ConnRequest for ${hostname}:${port}: our client certificate is likely not accepted`, {
              hint: CERT_NOT_ACCEPTED_HINT,
            }),
            true,
          )
        }
      }
      const onData = (chunk: Buffer): void => {
        received += chunk.length
        const frame = reader.push(chunk)
        if (!frame) return
        let response: ConnResponse
        try {
          response = decodeConnResponseBody(frame.body)
        } catch (cause) {
          fail(new NgrokdError('NGROKD_ERR_INGRESS_PROTOCOL', `${where}: ConnResponse for ${hostname}:${port} does not decode: ${(cause as Error).message}`, { cause, hint: NOT_BINDING_INGRESS_HINT }))
          return
        }
        if (response.errorCode || response.errorMessage) {
          fail(new IngressRefusedError(hostname, port, response.errorCode, response.errorMessage))
          return
        }
        settled = true
        socket.pause() // before the data listener goes, so nothing after the ConnResponse is lost
        detach()
        if (response.notices.length > 0) this.logNotices(hostname, port, response.notices)
        resolve({ socket, response, early: Buffer.from(frame.rest), reads })
      }
      function detach(): void {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        socket.off('data', onData).off('error', onError).off('end', onEndOrClose).off('close', onEndOrClose)
      }

      socket.on('data', onData).on('error', onError).once('end', onEndOrClose).once('close', onEndOrClose)
      if (signal) signal.addEventListener('abort', onAbort, { once: true })
      if (signal?.aborted) onAbort()
      if (settled) return
      if (socket.destroyed || !socket.writable) {
        onEndOrClose() // closed while it waited in the pool, not yet noticed
        return
      }
      let connRequest: Buffer
      try {
        connRequest = encodeConnRequest({ host: hostname, port, ...this.connRequestFields })
      } catch (e) {
        // over one frame: the config check refuses such a pod identity, a library caller may not have
        fail(new NgrokdError('NGROKD_ERR_INGRESS_PROTOCOL', `${where}: the ConnRequest for ${hostname}:${port} does not fit in one frame: ${(e as Error).message}`, { hint: 'shorten ingress.pod_identity (its annotations)' }))
        return
      }
      socket.write(connRequest)
      socket.resume()
    })
  }
}

// The listeners below stay on an ingress socket for its life. Each is made outside the handshake's scope: a
// closure keeps every variable its scope's closures share alive, and in there that is the handshake's timer,
// the abort signal and the listeners it removed (~1 KiB per open connection, measured with a heap snapshot).

/** TLS 1.3 tickets arrive after the handshake (TLS 1.2 ones during it): keeps the newest for the next connection. */
function keepSessions(socket: tls.TLSSocket, sessions: TlsSessionCache, key: string): void {
  socket.on('session', (session: Buffer) => sessions.set(key, session))
}

/**
 * Whoever holds the connection next (the request, the pool, the caller) attaches its own listeners; this
 * only keeps an error from going unhandled (and crashing the process) in between.
 */
function guardErrors(socket: tls.TLSSocket, logger: Logger, ingress: string): void {
  socket.on('error', (err: Error) => {
    if (socket.listenerCount('error') === 1) logger.debug({ ingress, err: err.message }, 'ingress connection error')
  })
}

function throwIfAborted(signal: AbortSignal | undefined, hostname: string, port: number): void {
  if (signal?.aborted) throw new NgrokdError('NGROKD_ERR_ABORTED', `binding ingress: dial for ${hostname}:${port} aborted`, { cause: signal.reason })
}

/**
 * The ingress endpoint as the dialer needs it. Parsing lives in `api/ingress-endpoint.ts` (one home
 * for `host[:port]`, port 443 by default); here a bad value is a configuration error.
 */
export function parseIngressEndpoint(text: string): { host: string; port: number; text: string } {
  try {
    if (text.trim() === '') throw new Error('empty')
    const { host, port } = splitIngressEndpoint(text)
    return { host, port, text: normalizeIngressEndpoint(text) }
  } catch (cause) {
    throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `binding ingress endpoint ${JSON.stringify(text)} is not host:port`, {
      cause,
      hint: 'ingress.endpoint (or the registration) must look like kubernetes-binding-ingress.ngrok.io:443',
    })
  }
}

function classifyError(err: Error, phase: Phase, authorizationError: Error | string | null | undefined, where: string, ingressHost: string): NgrokdError {
  if (isNgrokdError(err)) return err
  const code = (err as NodeJS.ErrnoException).code ?? ''
  const detail = code ? `${code}: ${err.message.split('\n')[0]}` : err.message
  if (phase === 'connect') {
    const hint =
      code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? `the name ${ingressHost} does not resolve; check DNS and ingress.endpoint`
        : code === 'ECONNREFUSED'
          ? 'nothing accepts connections there; check ingress.endpoint'
          : 'check the network path to the ingress (firewall, proxy) and ingress.endpoint'
    return new NgrokdError('NGROKD_ERR_INGRESS_UNREACHABLE', `${where} unreachable: ${detail}`, { cause: err, hint })
  }
  // Node sets authorizationError exactly when the server certificate failed verification (chain or name).
  if (authorizationError) {
    const hint =
      code === 'ERR_TLS_CERT_ALTNAME_INVALID'
        ? `the certificate does not name ${ingressHost}; check ingress.endpoint`
        : CLOCK_CODES.has(code)
          ? 'the ingress certificate is outside its validity period: check the system clock'
          : CA_HINT
    const why = UNKNOWN_CA_CODES.has(code) ? 'is signed by an unknown CA' : 'failed verification'
    return new NgrokdError('NGROKD_ERR_INGRESS_TLS', `${where}: the server certificate ${why} (${detail})`, { cause: err, hint })
  }
  if (code.startsWith('ERR_SSL_') && code.includes('ALERT')) {
    // an alert received from the ingress: it rejected something we sent
    if (/CERTIFICATE|UNKNOWN_CA|ACCESS_DENIED|HANDSHAKE_FAILURE|DECRYPT_ERROR/.test(code)) {
      return new NgrokdError('NGROKD_ERR_INGRESS_TLS', `${where} rejected our client certificate (${code})`, { cause: err, hint: CERT_NOT_ACCEPTED_HINT })
    }
    return new NgrokdError('NGROKD_ERR_INGRESS_TLS', `${where}: TLS failed (${detail})`, { cause: err, hint: 'the ingress needs TLS 1.2 or 1.3; check ingress.endpoint' })
  }
  if (code === 'ECONNRESET' || code === 'EPIPE') {
    const when = phase === 'handshake' ? 'during the TLS handshake' : 'before answering the ConnRequest'
    return new NgrokdError('NGROKD_ERR_INGRESS_TLS', `${where} reset the connection ${when}: our client certificate is likely not accepted`, { cause: err, hint: CERT_NOT_ACCEPTED_HINT })
  }
  if (phase === 'handshake' || code.startsWith('ERR_SSL_') || code.startsWith('ERR_OSSL_')) {
    return new NgrokdError('NGROKD_ERR_INGRESS_TLS', `${where}: TLS failed (${detail})`, { cause: err, hint: 'check ingress.endpoint and ingress.ca_file' })
  }
  return new NgrokdError('NGROKD_ERR_INGRESS_PROTOCOL', `${where}: ${detail}`, { cause: err, hint: NOT_BINDING_INGRESS_HINT })
}
