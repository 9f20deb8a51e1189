import { randomBytes } from 'node:crypto'
import { createServer, type Server, type Socket } from 'node:net'
import { TLSSocket, createSecureContext, type SecureContext } from 'node:tls'
import {
  FrameReader,
  INGRESS_CIPHERS,
  decodeConnRequestBody,
  encodeConnResponse,
  resetUnderEnd,
  type ConnRequest,
  type ConnResponse,
  type Logger,
} from '@ngrokd/core'
import type { Backends } from './backends.js'
import type { SimulatorCa } from './ca.js'
import { createDuplexPair } from './duplex-pair.js'
import { sleep } from './http-util.js'
import { listenAll } from './listen-all.js'
import { NGROK_ERRORS } from './ngrok-errors.js'
import { relay } from './relay.js'
import type { SimulatorState } from './simulator-state.js'

/** Time a client has from TCP accept (after any injected delay) to a complete ConnRequest. */
const REQUEST_TIMEOUT_MS = 10_000

const code = (k: keyof typeof NGROK_ERRORS): string => `ERR_NGROK_${NGROK_ERRORS[k].code}`

export interface IngressServerOptions {
  state: SimulatorState
  backends: Backends
  ca: SimulatorCa
  /** Listen addresses, all on one port. */
  hosts: string[]
  /** Hosts that may be skipped when the machine lacks them (e.g. `::1` without IPv6). */
  optionalHosts?: string[]
  /** 0 = pick a free port. */
  port: number
  /** DNS names and IPs for the server certificate. */
  certNames: string[]
  logger: Logger
}

/**
 * The binding ingress of PROTOCOL.md §4: TLS 1.2/1.3 with a required client certificate from the
 * simulator CA, issued to an operator that still exists; then one length-prefixed ConnRequest,
 * one ConnResponse, and raw bytes both ways to the endpoint's backend.
 *
 * Refusals: a certificate from another CA, expired, or missing → the connection is closed right
 * after the handshake without a ConnResponse (what a client sees from ngrok for a certificate it
 * does not accept); an operator deleted since → ERR_NGROK_15010; `host` with `:port` →
 * ERR_NGROK_706; no endpoint for host+port → ERR_NGROK_3200.
 */
export class IngressServer {
  private readonly sockets = new Set<Socket>()
  private readonly secureContext: SecureContext

  private constructor(
    private readonly options: IngressServerOptions,
    private readonly servers: Server[],
    readonly port: number,
    /** The addresses actually listened on. */
    readonly addresses: string[],
    certPem: string,
    keyPem: string,
  ) {
    this.secureContext = createSecureContext({
      cert: certPem,
      key: keyPem,
      ca: options.ca.rootCertPem, // client certificates come from the root
      minVersion: 'TLSv1.2',
      // ngrok's ingress is Go: on AES hardware its crypto/tls picks TLS_AES_128_GCM_SHA256 first,
      // whatever the client prefers. Modelled with the same order and the server's preference.
      ciphers: INGRESS_CIPHERS,
      honorCipherOrder: true,
      // Session resumption with client certificates needs a session id context (OpenSSL refuses a
      // resumed handshake without one) and ticket keys; tls.Server sets both itself.
      sessionIdContext: 'ngrokd-simulator-ingress',
      ticketKeys: randomBytes(48),
    })
  }

  static async start(options: IngressServerOptions): Promise<IngressServer> {
    const { certPem, keyPem } = options.ca.issueServerCert(options.certNames)
    let ingress: IngressServer | undefined
    const make = () => {
      const server = createServer({ allowHalfOpen: true, noDelay: true }, (raw) => void ingress?.accept(raw))
      server.on('error', (err) => options.logger.error({ err }, 'simulator: ingress listener error'))
      return server
    }
    const { servers, port, addresses } = await listenAll(make, options.hosts, options.port, options.optionalHosts ?? [])
    ingress = new IngressServer(options, servers, port, addresses, certPem, keyPem)
    return ingress
  }

  /** Closes the listeners and destroys every connection (and with it every backend stream). */
  async close(): Promise<void> {
    const closed = Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))))
    for (const s of this.sockets) s.destroy()
    this.sockets.clear()
    await closed
  }

  private async accept(raw: Socket): Promise<void> {
    const { state, logger } = this.options
    this.sockets.add(raw)
    raw.on('close', () => this.sockets.delete(raw))
    raw.on('error', (err) => logger.debug({ err }, 'simulator: ingress socket error'))
    const delay = state.faults.takeHandshakeDelay()
    if (delay > 0) {
      await sleep(delay)
      if (raw.destroyed) return
    }
    const timer = setTimeout(() => raw.destroy(), REQUEST_TIMEOUT_MS)
    raw.on('close', () => clearTimeout(timer))

    const tls = new TLSSocket(raw, {
      isServer: true,
      secureContext: this.secureContext,
      requestCert: true,
      rejectUnauthorized: true,
    })
    let refused = false
    const refuseTls = (why: string, err?: unknown) => {
      if (refused) return
      refused = true
      state.recordRefusal('tls')
      logger.debug({ err, why }, 'simulator: ingress refused a TLS client')
      tls.destroy()
      raw.destroy()
    }
    tls.on('error', (err) => refuseTls('tls error', err))
    tls.once('secure', () => {
      const peer = tls.getPeerX509Certificate()
      const now = Date.now()
      if (!peer) return refuseTls('no client certificate')
      if (!this.options.ca.issued(peer)) return refuseTls('client certificate from another CA')
      if (now < Date.parse(peer.validFrom) || now > Date.parse(peer.validTo)) return refuseTls('client certificate expired')
      tls.removeAllListeners('error')
      tls.on('error', (err) => logger.debug({ err }, 'simulator: ingress tls error'))
      this.readRequest(tls, raw, peer.serialNumber, timer).catch((err: unknown) => {
        logger.error({ err }, 'simulator: ingress connection failed')
        tls.destroy()
      })
    })
  }

  private async readRequest(tls: TLSSocket, raw: Socket, serial: string, timer: NodeJS.Timeout): Promise<void> {
    const { state } = this.options
    const reader = new FrameReader()
    const frame = await new Promise<{ body: Buffer; rest: Buffer } | undefined>((resolve) => {
      const onData = (chunk: Buffer) => {
        const f = reader.push(chunk)
        if (!f) return
        tls.pause()
        tls.off('data', onData)
        tls.off('end', onEnd)
        tls.off('close', onClose)
        resolve(f)
      }
      // The client gave up before sending a whole ConnRequest.
      const onEnd = () => {
        tls.destroy()
        resolve(undefined)
      }
      const onClose = () => resolve(undefined)
      tls.on('data', onData)
      tls.once('end', onEnd)
      tls.once('close', onClose)
    })
    if (!frame) return

    let req: ConnRequest
    try {
      req = decodeConnRequestBody(frame.body)
    } catch {
      state.recordRefusal('protocol')
      tls.destroy()
      return
    }
    clearTimeout(timer)
    state.recordConnRequest({ host: req.host, port: req.port, ...(req.podIdentity ? { podIdentity: req.podIdentity } : {}), bodyHex: frame.body.toString('hex') })

    const op = state.operatorForSerial(serial)
    if (!op) {
      const id = state.operatorIdForSerial(serial) ?? 'unknown'
      return this.refuse(tls, code('operatorNotFound'), `kubernetes operator ${id} does not exist`)
    }
    if (req.host.includes(':')) {
      return this.refuse(tls, code('badBindingHost'), `invalid host ${JSON.stringify(req.host)}: host must not contain a port`)
    }
    const fault = state.faults.takeRefusal(req.host, req.port)
    if (fault) {
      return this.refuse(tls, fault.errorCode ?? code('endpointOffline'), fault.errorMessage ?? 'endpoint is offline')
    }
    const ep = state.routeEndpoint(op, req.host, req.port)
    if (!ep) {
      return this.refuse(tls, code('endpointOffline'), `no kubernetes-bound endpoint for ${req.host}:${req.port}`)
    }

    const response: Partial<ConnResponse> = { endpointId: ep.id, proto: ep.proto, notices: ep.notices }
    tls.write(encodeConnResponse(response))
    state.stats.ingress.accepted++
    state.stats.ingress.active++

    const [ingressSide, backendSide] = createDuplexPair()
    ingressSide.on('error', () => {
      /* surfaced through relay's close handling */
    })
    this.options.backends.serve(ep, backendSide)
    if (frame.rest.length > 0) ingressSide.write(frame.rest)
    const cutAfter = state.faults.takeCut(req.host)
    // an operator's reset (a client of its that broke off an upload) reaches the backend as a reset, not as the request's end
    const aEndedCleanly = () => resetUnderEnd(tls, 'the operator') === undefined
    await relay(tls, ingressSide, cutAfter === undefined ? { aEndedCleanly } : { cutAfterBytesToA: cutAfter, onCut: () => raw.resetAndDestroy(), aEndedCleanly })
    state.stats.ingress.active--
  }

  private refuse(tls: TLSSocket, errorCode: string, errorMessage: string): void {
    this.options.state.recordRefusal(errorCode)
    // Graceful close: the client reads the refusal, then closes; whatever it still sends is dropped.
    tls.resume()
    tls.end(encodeConnResponse({ errorCode, errorMessage }))
    const linger = setTimeout(() => tls.destroy(), REQUEST_TIMEOUT_MS)
    tls.once('close', () => clearTimeout(linger))
  }
}
