import { connect, createServer } from 'node:net'

/** A port nothing listens on at `address` right now (the OS picks it). */
export async function freePort(address = '127.0.0.1'): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host: address, port: 0 }, resolve)
  })
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/**
 * Opens a TCP connection and closes it at once: is something accepting on host:port? A reset
 * counts as accepted: a forwarder that cannot reach its ingress resets the connection it accepted,
 * sometimes before the client saw its handshake finish.
 */
export function tryConnect(host: string, port: number): Promise<'connected' | 'refused'> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port })
    socket.once('connect', () => {
      socket.destroy()
      resolve('connected')
    })
    socket.once('error', (e: NodeJS.ErrnoException) => {
      socket.destroy()
      if (e.code === 'ECONNREFUSED') resolve('refused')
      else if (e.code === 'ECONNRESET' || e.code === 'EPIPE') resolve('connected')
      else reject(e)
    })
  })
}
