import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls'
import { FrameReader, decodeConnResponseBody, encodeConnRequest, type ConnRequest, type ConnResponse } from '@ngrokd/core'

export interface DialIngressOptions {
  host: string
  port: number
  /** PEM anchors to verify the ingress with (the simulator's `caCertPem`, its intermediate: partial chains are allowed). */
  ca: string
  cert: string
  key: string
  request: ConnRequest
  /** SNI and name to verify. Default `localhost`. */
  servername?: string
}

export interface IngressClientConnection {
  socket: TLSSocket
  response: ConnResponse
  /** Payload bytes that arrived together with the ConnResponse. */
  rest: Buffer
}

/**
 * A minimal binding-ingress client (PROTOCOL.md §4) for tests: TLS with a client certificate, one
 * ConnRequest, one ConnResponse. On success the socket carries the raw stream (half-open allowed).
 * Rejects when the connection closes before a whole ConnResponse arrived.
 */
export function dialIngress(o: DialIngressOptions): Promise<IngressClientConnection> {
  return new Promise((resolve, reject) => {
    // tls.connect honours allowHalfOpen (documented) though @types/node omits it.
    const options: ConnectionOptions & { allowHalfOpen: boolean } = {
      host: o.host,
      port: o.port,
      ca: o.ca,
      allowPartialTrustChain: true,
      cert: o.cert,
      key: o.key,
      servername: o.servername ?? 'localhost',
      allowHalfOpen: true,
      minVersion: 'TLSv1.2',
    }
    const socket = connect(options)
    const reader = new FrameReader()
    let settled = false
    const fail = (err: Error) => {
      if (settled) return
      settled = true
      socket.destroy()
      reject(err)
    }
    socket.once('secureConnect', () => socket.write(encodeConnRequest(o.request)))
    const onData = (chunk: Buffer) => {
      const f = reader.push(chunk)
      if (!f) return
      socket.pause()
      socket.off('data', onData)
      socket.off('end', onEnd)
      socket.off('error', fail)
      settled = true
      socket.on('error', () => {
        /* the caller watches 'close' */
      })
      resolve({ socket, response: decodeConnResponseBody(f.body), rest: f.rest })
    }
    const onEnd = () => fail(new Error('ingress closed the connection before a ConnResponse'))
    socket.on('data', onData)
    socket.on('end', onEnd)
    socket.on('error', fail)
    socket.on('close', () => fail(new Error('ingress closed the connection before a ConnResponse')))
  })
}
