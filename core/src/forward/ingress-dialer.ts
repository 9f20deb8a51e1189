import net from 'node:net'
import tls from 'node:tls'
import type { Logger } from '../contracts/logger.js'
import { NgrokdError, isNgrokdError } from '../errors/ngrokd-error.js'
import { FrameReader, decodeConnResponseBody, encodeConnRequest, type ConnResponse } from '../protocol/binding-frames.js'
import { IngressRefusedError } from './ingress-refused-error.js'
import { pemCertificates } from './load-trust-roots.js'

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
  /** Trust roots for the ingress's server certificate; they replace Node's bundled roots. Default: Node's roots. */
  ca?: string | Buffer | Array<string | Buffer>
  /** Accept any server certificate. Logged as a warning once, at construction. Never a fallback. */
  insecureSkipVerify?: boolean
  /** DNS + TCP connect + TLS handshake must finish within this. Default 10 000. */
  handshakeTimeoutMs?: number
  /** The ConnResponse must arrive within this after the handshake. Default 10 000. */
  responseTimeoutMs?: number
  /** Host name resolution for the TCP connect (`dns.lookup` by default); tests map a name to loopback with it. */
  lookup?: net.LookupFunction
}

export interface DialOptions {
  /** The endpoint's bare hostname (`api.prod`), never `host:port`. */
  hostname: string
  port: number
  signal?: AbortSignal
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
}

/** What a forwarder needs from a dialer: {@link IngressDialer}, or a wrapper around it. */
export interface Dialer {
  dial(options: DialOptions): Promise<DialResult>
}

const CERT_NOT_ACCEPTED_HINT =
  'the ingress usually closes like this when it does not accept our client certificate: issued for another ' +
  'ingress, revoked or expired; renew the registration (restart ngrokd, or check `ngrokd doctor`)'
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

/**
 * Opens one mTLS connection to ngrok's binding ingress per call and performs the ConnRequest /
 * ConnResponse exchange (PROTOCOL.md §4). Each TLS connection carries exactly one ConnRequest.
 *
 * ```ts
 * const dialer = new IngressDialer({ logger, credentials: () => cert, endpoint: () => 'kubernetes-binding-ingress.ngrok.io:443' })
 * const { socket, early } = await dialer.dial({ hostname: 'api.prod', port: 80 })
 * local.write(early); local.pipe(socket).pipe(local)
 * ```
 */
export class IngressDialer implements Dialer {
  private readonly logger: Logger
  private readonly handshakeTimeoutMs: number
  private readonly responseTimeoutMs: number
  /** Secure contexts are reused while credentials() returns the same PEMs (parsing a CA bundle per connection is costly). */
  private cached?: { certPem: string; keyPem: string; context: tls.SecureContext }

  constructor(private readonly options: IngressDialerOptions) {
    this.logger = options.logger
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000
    this.responseTimeoutMs = options.responseTimeoutMs ?? 10_000
    if (options.ca !== undefined) {
      // createSecureContext() silently skips text that is not PEM: check every entry holds certificates
      try {
        for (const entry of Array.isArray(options.ca) ? options.ca : [options.ca]) {
          if (pemCertificates(entry.toString()).length === 0) throw new Error('no PEM certificate in an entry')
        }
      } catch (cause) {
        throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `ingress trust roots are not valid PEM certificates: ${(cause as Error).message}`, {
          cause,
          hint: 'ingress.ca_file must name a PEM file (or a directory of *.pem / *.crt files) with CA certificates',
        })
      }
    }
    if (options.insecureSkipVerify) {
      this.logger.warn(
        { insecureSkipVerify: true },
        'INSECURE: ingress.insecure_skip_verify is set: the binding ingress certificate is NOT verified, so anyone on the ' +
          'network path can impersonate it and read or alter forwarded traffic; set ingress.ca_file to the CA that signs ' +
          'the ingress certificate and remove insecure_skip_verify',
      )
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
    throwIfAborted(signal, hostname, port)
    const ingress = parseIngressEndpoint(this.options.endpoint())
    const credentials = await this.options.credentials()
    throwIfAborted(signal, hostname, port)
    const context = this.secureContext(credentials)
    return this.exchange(ingress, context, hostname, port, signal)
  }

  private secureContext({ certPem, keyPem }: IngressCredentials): tls.SecureContext {
    const c = this.cached
    if (c && c.certPem === certPem && c.keyPem === keyPem) return c.context
    let context: tls.SecureContext
    try {
      context = tls.createSecureContext({
        cert: certPem,
        key: keyPem,
        ca: this.options.ca,
        minVersion: 'TLSv1.2', // PROTOCOL.md §4.1: TLS 1.2 or 1.3
        maxVersion: 'TLSv1.3',
      })
    } catch (cause) {
      throw new NgrokdError('NGROKD_ERR_CERT', `client certificate or key is unusable: ${(cause as Error).message}`, {
        cause,
        hint: 'the certificate and key in the state directory are damaged or do not match; re-register (ngrokd doctor)',
      })
    }
    this.cached = { certPem, keyPem, context }
    return context
  }

  private exchange(
    ingress: { host: string; port: number; text: string },
    secureContext: tls.SecureContext,
    hostname: string,
    port: number,
    signal: AbortSignal | undefined,
  ): Promise<DialResult> {
    const insecure = this.options.insecureSkipVerify === true
    return new Promise<DialResult>((resolve, reject) => {
      let phase: Phase = 'connect'
      let settled = false
      let received = 0
      const reader = new FrameReader()
      // The raw TCP socket is kept so that everything is destroyed on error, whatever state TLS is in.
      const raw = net.connect({ host: ingress.host, port: ingress.port, allowHalfOpen: true, noDelay: true, lookup: this.options.lookup })
      raw.setKeepAlive(true, 30_000)
      const socket = tls.connect({
        socket: raw,
        host: ingress.host, // the name checkServerIdentity verifies
        servername: net.isIP(ingress.host) ? undefined : ingress.host, // SNI is never an IP literal (RFC 6066 §3)
        secureContext,
        rejectUnauthorized: !insecure,
        checkServerIdentity: insecure ? () => undefined : tls.checkServerIdentity,
      })
      let timer = setTimeout(() => onTimeout(), this.handshakeTimeoutMs)

      const where = `binding ingress ${ingress.text}`
      const fail = (error: NgrokdError): void => {
        if (settled) return
        settled = true
        detach()
        socket.destroy()
        raw.destroy()
        reject(error)
      }
      const onTimeout = (): void => {
        const ms = phase === 'response' ? this.responseTimeoutMs : this.handshakeTimeoutMs
        const what = phase === 'connect' ? 'TCP connect' : phase === 'handshake' ? 'TLS handshake' : 'ConnResponse'
        fail(
          new NgrokdError('NGROKD_ERR_INGRESS_TIMEOUT', `${where}: ${what} for ${hostname}:${port} took longer than ${ms} ms`, {
            hint: phase === 'response' ? CERT_NOT_ACCEPTED_HINT : 'check the network path to the ingress (firewall, proxy) and ingress.endpoint',
          }),
        )
      }
      const onAbort = (): void => {
        fail(new NgrokdError('NGROKD_ERR_ABORTED', `${where}: dial for ${hostname}:${port} aborted`, { cause: signal?.reason }))
      }
      const onConnect = (): void => {
        if (phase === 'connect') phase = 'handshake'
      }
      const onSecure = (): void => {
        phase = 'response'
        clearTimeout(timer)
        timer = setTimeout(() => onTimeout(), this.responseTimeoutMs)
        socket.write(encodeConnRequest({ host: hostname, port }))
      }
      const onError = (err: Error): void => {
        fail(classifyError(err, phase, socket.authorizationError, where, ingress.host))
      }
      const onEndOrClose = (): void => {
        if (phase === 'response' && received > 0) {
          fail(new NgrokdError('NGROKD_ERR_INGRESS_PROTOCOL', `${where}: connection closed in the middle of the ConnResponse for ${hostname}:${port}`))
        } else if (phase === 'connect') {
          fail(new NgrokdError('NGROKD_ERR_INGRESS_UNREACHABLE', `${where}: connection closed before it was established`))
        } else {
          const when = phase === 'handshake' ? 'during the TLS handshake' : 'before answering the ConnRequest'
          fail(
            new NgrokdError('NGROKD_ERR_INGRESS_TLS', `${where} closed the connection ${when} for ${hostname}:${port}: our client certificate is likely not accepted`, {
              hint: CERT_NOT_ACCEPTED_HINT,
            }),
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
          fail(new NgrokdError('NGROKD_ERR_INGRESS_PROTOCOL', `${where}: ConnResponse for ${hostname}:${port} does not decode: ${(cause as Error).message}`, { cause }))
          return
        }
        if (response.errorCode || response.errorMessage) {
          fail(new IngressRefusedError(hostname, port, response.errorCode, response.errorMessage))
          return
        }
        settled = true
        socket.pause() // before the data listener goes, so nothing after the ConnResponse is lost
        detach()
        for (const notice of response.notices) this.logger.warn({ hostname, port, notice }, `binding ingress notice for ${hostname}:${port}: ${notice}`)
        resolve({ socket, response, early: Buffer.from(frame.rest) })
      }
      function detach(): void {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        raw.off('connect', onConnect).off('error', onError)
        socket.off('secureConnect', onSecure).off('error', onError).off('data', onData).off('end', onEndOrClose).off('close', onEndOrClose)
      }

      raw.once('connect', onConnect).on('error', onError)
      socket.once('secureConnect', onSecure).on('error', onError).on('data', onData).once('end', onEndOrClose).once('close', onEndOrClose)
      if (signal) signal.addEventListener('abort', onAbort, { once: true })
      if (!settled && signal?.aborted) onAbort()
      // Stays for the socket's life: after the hand-over, errors belong to the caller's listeners; this
      // only keeps one from going unhandled (and crashing the process) before the caller attaches them.
      const guard = (err: Error): void => {
        if (settled && socket.listenerCount('error') === 1) this.logger.debug({ hostname, port, err: err.message }, 'ingress connection error')
      }
      socket.on('error', guard)
      raw.on('error', guard)
      socket.once('close', () => raw.destroy())
    })
  }
}

function throwIfAborted(signal: AbortSignal | undefined, hostname: string, port: number): void {
  if (signal?.aborted) throw new NgrokdError('NGROKD_ERR_ABORTED', `binding ingress: dial for ${hostname}:${port} aborted`, { cause: signal.reason })
}

/** Parses `host:port`, `[v6]:port`, or a bare host (port 443, PROTOCOL.md §2). */
export function parseIngressEndpoint(text: string): { host: string; port: number; text: string } {
  const t = text.trim()
  let host: string
  let portText: string | undefined
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(t)
  if (v6) {
    host = v6[1]!
    portText = v6[2]
  } else if (net.isIPv6(t)) {
    host = t
  } else {
    const m = /^([^:\s/]+)(?::(\d+))?$/.exec(t)
    if (!m) host = ''
    else {
      host = m[1]!
      portText = m[2]
    }
  }
  const port = portText === undefined ? 443 : Number(portText)
  if (!host || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `binding ingress endpoint ${JSON.stringify(text)} is not host:port`, {
      hint: 'ingress.endpoint (or the registration) must look like kubernetes-binding-ingress.ngrok.io:443',
    })
  }
  return { host, port, text: net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}` }
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
  return new NgrokdError('NGROKD_ERR_INGRESS_PROTOCOL', `${where}: ${detail}`, { cause: err })
}
