import type { Server } from 'node:net'
import { NgrokdError } from '@ngrokd/core'

/** Tries with a new ephemeral port when the one picked on the first address is taken on another. */
const EPHEMERAL_ATTEMPTS = 5
/** Errors that mean "this machine has no such address" (e.g. no IPv6 on lo). */
const ABSENT = new Set(['EADDRNOTAVAIL', 'EAFNOSUPPORT', 'EINVAL'])

function listenOne(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err)
    server.once('error', onError)
    server.listen({ host, port, ipv6Only: host.includes(':') }, () => {
      server.off('error', onError)
      const addr = server.address()
      resolve(typeof addr === 'object' && addr ? addr.port : port)
    })
  })
}

const closeAll = (servers: Server[]) => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))))

/**
 * Listens on every host with one port (the first host picks it when `port` is 0). Hosts in
 * `optional` are skipped when the machine does not have them.
 */
export async function listenAll(
  make: () => Server,
  hosts: string[],
  port: number,
  optional: string[] = [],
): Promise<{ servers: Server[]; port: number; addresses: string[] }> {
  let lastError: unknown
  for (let attempt = 0; attempt < (port === 0 ? EPHEMERAL_ATTEMPTS : 1); attempt++) {
    const servers: Server[] = []
    const addresses: string[] = []
    let chosen = port
    try {
      for (const host of hosts) {
        const server = make()
        try {
          chosen = await listenOne(server, host, chosen)
          servers.push(server)
          addresses.push(host)
        } catch (e) {
          const errCode = (e as NodeJS.ErrnoException).code ?? ''
          if (optional.includes(host) && ABSENT.has(errCode)) continue
          throw e
        }
      }
      return { servers, port: chosen, addresses }
    } catch (e) {
      lastError = e
      await closeAll(servers)
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') break
    }
  }
  const err = lastError as NodeJS.ErrnoException
  throw new NgrokdError('NGROKD_ERR_LISTEN', `simulator: cannot listen on ${hosts.join(', ')} port ${port}: ${err?.code ?? err?.message}`, {
    cause: lastError,
    hint: port === 0 ? 'free some ephemeral ports' : `choose another port than ${port}`,
  })
}
