import net from 'node:net'
import tls from 'node:tls'
import { FrameReader, decodeConnRequestBody, encodeConnResponse, type ConnRequest, type ConnResponse } from '../protocol/binding-frames.js'
import type { TestKeyPair, TestPki } from './test-pki.js'

/** One connection as the fake ingress saw it, after the ConnRequest was read. */
export interface FakeIngressConn {
  socket: tls.TLSSocket
  /** The ConnRequest exactly as it came over the wire: 2-byte length and body. */
  requestBytes: Buffer
  request: ConnRequest
  /** SNI the client sent (false without). */
  servername: string | false
  /** Serial number of the client certificate, hex. */
  clientSerial: string
  /** Writes an accepting ConnResponse, then `early` in the same write. */
  accept(early?: Buffer | string, response?: Partial<ConnResponse>): void
}

export interface FakeIngressOptions {
  pki: TestPki
  /** Server certificate; default `pki.ingress`. */
  cert?: TestKeyPair
  maxVersion?: tls.SecureVersion
  /** Pick the cipher suite by the client's order (tls.createServer's default is its own order). */
  followClientCipherOrder?: boolean
  /**
   * Runs once the ConnRequest is read. The socket is paused; bytes that followed the request have been
   * unshifted back into it. Default: accept and echo (half-close aware).
   */
  onRequest?: (conn: FakeIngressConn) => void
}

export interface FakeIngress {
  port: number
  /** `127.0.0.1:<port>` */
  endpoint: string
  connections: FakeIngressConn[]
  close(): Promise<void>
}

/** The accepting default: echo every byte back and end when the client ends. */
export function echo(conn: FakeIngressConn): void {
  conn.accept()
  conn.socket.pipe(conn.socket)
}

/**
 * A minimal binding ingress on 127.0.0.1 (PROTOCOL.md §4) for testing a forwarder on its own: mTLS
 * with the test client CA, one framed ConnRequest per connection, then whatever `onRequest` does —
 * no API, no registration, no endpoints. For ngrokd end to end, use the cloud simulator
 * (`@ngrokd/plugin-simulator`), whose ingress checks operators and routes to endpoints.
 */
export async function startFakeIngress({ pki, cert = pki.ingress, maxVersion, followClientCipherOrder = false, onRequest = echo }: FakeIngressOptions): Promise<FakeIngress> {
  const sockets = new Set<net.Socket>()
  const connections: FakeIngressConn[] = []
  const server = tls.createServer({
    cert: cert.certPem,
    key: cert.keyPem,
    ca: pki.clientCaPem,
    requestCert: true,
    rejectUnauthorized: true,
    allowHalfOpen: true,
    maxVersion,
    honorCipherOrder: !followClientCipherOrder,
  })
  server.on('connection', (s: net.Socket) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
    s.on('error', () => {})
  })
  server.on('tlsClientError', () => {})
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    socket.on('error', () => {})
    const reader = new FrameReader()
    const onData = (chunk: Buffer): void => {
      const frame = reader.push(chunk)
      if (!frame) return
      socket.off('data', onData)
      socket.pause()
      if (frame.rest.length > 0) socket.unshift(frame.rest)
      const requestBytes = Buffer.concat([Buffer.from([frame.body.length & 0xff, frame.body.length >> 8]), frame.body])
      const conn: FakeIngressConn = {
        socket,
        requestBytes,
        request: decodeConnRequestBody(frame.body),
        servername: socket.servername ?? false,
        clientSerial: socket.getPeerCertificate().serialNumber,
        accept(early, response) {
          const head = encodeConnResponse({ endpointId: 'ep_test', proto: 'tcp', ...response })
          socket.write(early === undefined ? head : Buffer.concat([head, Buffer.from(early)]))
        },
      }
      connections.push(conn)
      onRequest(conn)
    }
    socket.on('data', onData)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  return {
    port,
    endpoint: `127.0.0.1:${port}`,
    connections,
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
